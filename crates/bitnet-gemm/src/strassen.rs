//! Strassen's algorithm with a cutoff to the packed kernel.
//!
//! The even-sized leading part `2m' x 2n' x 2k'` is split into quadrants and computed with
//! seven half-size products (classic Strassen), each of which recurses while all its sizes are at
//! least the cutoff; below it the packed kernel runs. An odd last row, column or depth step is
//! fixed up with the packed kernel. Temporaries come from the scratch pool.
//!
//! ```text
//! M1 = (A11 + A22)(B11 + B22)   M5 = (A11 + A12) B22       C11 += M1 + M4 - M5 + M7
//! M2 = (A21 + A22) B11          M6 = (A21 - A11)(B11 + B12) C12 += M3 + M5
//! M3 = A11 (B12 - B22)          M7 = (A12 - A22)(B21 + B22) C21 += M2 + M4
//! M4 = A22 (B21 - B11)                                      C22 += M1 - M2 + M3 + M6
//! ```
//!
//! **Error bound** (Higham, *Accuracy and Stability of Numerical Algorithms*, Thm. 23.2, with the
//! max-element norm): after `l` levels of recursion ending in conventional products of depth
//! `k0 = ceil(k / 2^l)`, `max|C − Ĉ| ≤ (12^l (k0² + 5 k0)) u |alpha| max|A| max|B| + 2u |beta| max|C|`
//! to first order, u = 2⁻²⁴. It is normwise, not componentwise like the conventional bound: small
//! entries of C can have large relative error. The tests assert it with ε = 2u.

use bitnet_simd::{Par, ScratchPool};

use crate::error::GemmError;
use crate::packed::gemm_packed;
use crate::reference::check_shapes;
use crate::view::{MatMut, MatRef};

/// The smallest size (of every one of m, n, k) at which a level of Strassen is used by
/// [`gemm_strassen`].
pub const DEFAULT_CUTOFF: usize = 512;

/// `C = alpha * A * B + beta * C` by Strassen with [`DEFAULT_CUTOFF`].
pub fn gemm_strassen(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    par: Par,
) -> Result<(), GemmError> {
    gemm_strassen_with_cutoff(alpha, a, b, beta, c, par, DEFAULT_CUTOFF)
}

/// The number of Strassen levels [`gemm_strassen_with_cutoff`] uses for an `m x n x k` product.
pub fn strassen_levels(m: usize, n: usize, k: usize, cutoff: usize) -> u32 {
    let cutoff = cutoff.max(2);
    let (mut m, mut n, mut k, mut l) = (m, n, k, 0);
    while m >= cutoff && n >= cutoff && k >= cutoff {
        (m, n, k, l) = (m / 2, n / 2, k / 2, l + 1);
    }
    l
}

/// `C = alpha * A * B + beta * C` by Strassen, recursing while m, n and k are all at least
/// `cutoff` (at least 2). With `beta == 0`, C is only written.
pub fn gemm_strassen_with_cutoff(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
    par: Par,
    cutoff: usize,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    bitnet_simd::Level::active()?;
    let cutoff = cutoff.max(2);
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    if m < cutoff || n < cutoff || k < cutoff {
        return gemm_packed(alpha, a, b, beta, c, par);
    }
    let (m2, n2, k2) = (m / 2, n / 2, k / 2);
    let (me, ne, ke) = (2 * m2, 2 * n2, 2 * k2);
    // Odd edges first, with the packed kernel: the last row and column of C over the full depth.
    if me < m {
        gemm_packed(
            alpha,
            a.submatrix(me, 0, m - me, k).expect("row"),
            b,
            beta,
            c.submatrix_mut(me, 0, m - me, n).expect("row"),
            par,
        )?;
    }
    if ne < n {
        gemm_packed(
            alpha,
            a.submatrix(0, 0, me, k).expect("rows"),
            b.submatrix(0, ne, k, n - ne).expect("col"),
            beta,
            c.submatrix_mut(0, ne, me, n - ne).expect("col"),
            par,
        )?;
    }
    // The even core: C_core = beta C_core + alpha A_core B_core (+ the odd depth step).
    let mut core = c.submatrix_mut(0, 0, me, ne).expect("core");
    core.scale(beta);
    let a_core = a.submatrix(0, 0, me, ke).expect("core");
    let b_core = b.submatrix(0, 0, ke, ne).expect("core");
    let (a11, a12, a21, a22) = (
        q(&a_core, 0, 0, m2, k2),
        q(&a_core, 0, 1, m2, k2),
        q(&a_core, 1, 0, m2, k2),
        q(&a_core, 1, 1, m2, k2),
    );
    let (b11, b12, b21, b22) = (
        q(&b_core, 0, 0, k2, n2),
        q(&b_core, 0, 1, k2, n2),
        q(&b_core, 1, 0, k2, n2),
        q(&b_core, 1, 1, k2, n2),
    );
    let pool = ScratchPool::global();
    let mut ta = pool.take_uninit::<f32>(m2 * k2);
    let mut tb = pool.take_uninit::<f32>(k2 * n2);
    let mut mm = pool.take_uninit::<f32>(m2 * n2);
    // (left factor, right factor, the quadrants of C it adds into, with signs)
    type Term<'t> = (MatRef<'t>, Option<(f32, MatRef<'t>)>);
    type Product<'t> = (Term<'t>, Term<'t>, &'static [(usize, f32)]);
    let products: [Product<'_>; 7] = [
        (
            (a11, Some((1.0, a22))),
            (b11, Some((1.0, b22))),
            &[(0, 1.0), (3, 1.0)],
        ),
        ((a21, Some((1.0, a22))), (b11, None), &[(2, 1.0), (3, -1.0)]),
        ((a11, None), (b12, Some((-1.0, b22))), &[(1, 1.0), (3, 1.0)]),
        ((a22, None), (b21, Some((-1.0, b11))), &[(0, 1.0), (2, 1.0)]),
        ((a11, Some((1.0, a12))), (b22, None), &[(0, -1.0), (1, 1.0)]),
        (
            (a21, Some((-1.0, a11))),
            (b11, Some((1.0, b12))),
            &[(3, 1.0)],
        ),
        (
            (a12, Some((-1.0, a22))),
            (b21, Some((1.0, b22))),
            &[(0, 1.0)],
        ),
    ];
    for (left, right, dests) in products {
        let l = combine(left, &mut ta);
        let r = combine(right, &mut tb);
        let prod = MatMut::row_major(&mut mm, m2, n2)?;
        gemm_strassen_with_cutoff(1.0, l, r, 0.0, prod, par, cutoff)?;
        for &(quad, sign) in dests {
            let (qi, qj) = (quad / 2, quad % 2);
            let mut cq = core
                .submatrix_mut(qi * m2, qj * n2, m2, n2)
                .expect("quadrant");
            for i in 0..m2 {
                for j in 0..n2 {
                    *cq.at_mut(i, j) += sign * alpha * mm[i * n2 + j];
                }
            }
        }
    }
    if ke < k {
        // The odd depth step: a rank-1 update of the core.
        gemm_packed(
            alpha,
            a.submatrix(0, ke, me, 1).expect("depth"),
            b.submatrix(ke, 0, 1, ne).expect("depth"),
            1.0,
            c.submatrix_mut(0, 0, me, ne).expect("core"),
            par,
        )?;
    }
    Ok(())
}

/// Quadrant `(i, j)` of `r x s` blocks of `x`.
fn q<'t>(x: &MatRef<'t>, i: usize, j: usize, r: usize, s: usize) -> MatRef<'t> {
    x.submatrix(i * r, j * s, r, s).expect("quadrant")
}

/// `x` or `x + sign * y`, as a view: `x` itself when there is no `y`, else written row-major
/// into `buf`.
fn combine<'t>((x, y): (MatRef<'t>, Option<(f32, MatRef<'t>)>), buf: &'t mut [f32]) -> MatRef<'t> {
    let Some((sign, y)) = y else {
        return x;
    };
    let (r, s) = (x.rows(), x.cols());
    for i in 0..r {
        for j in 0..s {
            buf[i * s + j] = x.at(i, j) + sign * y.at(i, j);
        }
    }
    MatRef::row_major(&buf[..r * s], r, s).expect("sized")
}
