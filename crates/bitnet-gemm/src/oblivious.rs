//! Cache-oblivious GEMM: split the largest of m, n, k in half, recursively, until a product is
//! small enough for any cache (at most [`BASE_VOLUME`] multiply-adds), then run the block kernel
//! of [`crate::blocked`]. No cache size is consulted: the recursion fits every level of cache at
//! some depth.

use bitnet_simd::Level;

use crate::blocked::blocked_accumulate;
use crate::error::GemmError;
use crate::reference::check_shapes;
use crate::view::{MatMut, MatRef};

/// The largest `m * n * k` computed directly (a 64 x 64 x 64 product: three 16 KiB blocks).
pub const BASE_VOLUME: usize = 64 * 64 * 64;

/// `C = alpha * A * B + beta * C`, recursively halved. With `beta == 0`, C is only written.
pub fn gemm_oblivious(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    let level = Level::active()?;
    c.scale(beta);
    recurse(level, alpha, a, b, &mut c);
    Ok(())
}

/// `C += alpha * A * B`.
fn recurse(level: Level, alpha: f32, a: MatRef<'_>, b: MatRef<'_>, c: &mut MatMut<'_>) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    if m.saturating_mul(n).saturating_mul(k) <= BASE_VOLUME {
        blocked_accumulate(level, alpha, a, b, c, m.max(n).max(k));
        return;
    }
    if m >= n && m >= k {
        let h = m / 2;
        recurse(
            level,
            alpha,
            a.submatrix(0, 0, h, k).expect("top"),
            b,
            &mut c.submatrix_mut(0, 0, h, n).expect("top"),
        );
        recurse(
            level,
            alpha,
            a.submatrix(h, 0, m - h, k).expect("bottom"),
            b,
            &mut c.submatrix_mut(h, 0, m - h, n).expect("bottom"),
        );
    } else if n >= k {
        let h = n / 2;
        recurse(
            level,
            alpha,
            a,
            b.submatrix(0, 0, k, h).expect("left"),
            &mut c.submatrix_mut(0, 0, m, h).expect("left"),
        );
        recurse(
            level,
            alpha,
            a,
            b.submatrix(0, h, k, n - h).expect("right"),
            &mut c.submatrix_mut(0, h, m, n - h).expect("right"),
        );
    } else {
        let h = k / 2;
        recurse(
            level,
            alpha,
            a.submatrix(0, 0, m, h).expect("left"),
            b.submatrix(0, 0, h, n).expect("top"),
            c,
        );
        recurse(
            level,
            alpha,
            a.submatrix(0, h, m, k - h).expect("right"),
            b.submatrix(h, 0, k - h, n).expect("bottom"),
            c,
        );
    }
}
