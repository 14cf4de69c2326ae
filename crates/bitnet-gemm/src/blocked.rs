//! Cache-blocked GEMM: single-level ([`gemm_blocked`], the log's auto-tuned block size) and
//! two-level ([`gemm_multilevel`]), with block sizes derived from the cache sizes `bitnet-simd`
//! reports. Both use the same block kernel: i-k-j over a block, whose inner loop is a vector
//! `C[i, j..] += (alpha A[i, p]) B[p, j..]` when B and C have unit column stride (plain loops
//! otherwise).
//!
//! These are the log's techniques made real, kept for the record and for what they measure
//! (`gemm/variants_512` in `docs/BENCHMARKS.md`); the packed kernel is the fast path.

use bitnet_simd::{CacheInfo, Level};
use pulp::{Simd, WithSimd};

use crate::error::GemmError;
use crate::reference::check_shapes;
use crate::view::{MatMut, MatRef};

/// The block edge for which three `bs x bs` f32 blocks fit in `cache_bytes`, a multiple of 16.
pub fn block_size(cache_bytes: usize) -> usize {
    let bs = ((cache_bytes / (3 * size_of::<f32>())) as f64).sqrt() as usize;
    (bs / 16 * 16).max(16)
}

/// `C = alpha * A * B + beta * C`, blocked for L1 (three `bs x bs` blocks fit in L1d).
pub fn gemm_blocked(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    let level = Level::active()?;
    c.scale(beta);
    let bs = block_size(CacheInfo::get().l1d);
    blocked_accumulate(level, alpha, a, b, &mut c, bs);
    Ok(())
}

/// `C = alpha * A * B + beta * C`, blocked twice: L2-sized blocks, each computed with L1-sized
/// blocks.
pub fn gemm_multilevel(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    let level = Level::active()?;
    c.scale(beta);
    let caches = CacheInfo::get();
    let (outer, inner) = (block_size(caches.l2), block_size(caches.l1d));
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    for i0 in (0..m).step_by(outer) {
        for p0 in (0..k).step_by(outer) {
            for j0 in (0..n).step_by(outer) {
                let (mb, kb, nb) = (outer.min(m - i0), outer.min(k - p0), outer.min(n - j0));
                let ab = a.submatrix(i0, p0, mb, kb).expect("inside A");
                let bb = b.submatrix(p0, j0, kb, nb).expect("inside B");
                let mut cb = c.submatrix_mut(i0, j0, mb, nb).expect("inside C");
                blocked_accumulate(level, alpha, ab, bb, &mut cb, inner);
            }
        }
    }
    Ok(())
}

/// `C += alpha * A * B` in `bs`-sized blocks, i-k-j order between and inside blocks.
pub(crate) fn blocked_accumulate(
    level: Level,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut MatMut<'_>,
    bs: usize,
) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    for i0 in (0..m).step_by(bs) {
        for p0 in (0..k).step_by(bs) {
            for j0 in (0..n).step_by(bs) {
                let (mb, kb, nb) = (bs.min(m - i0), bs.min(k - p0), bs.min(n - j0));
                let ab = a.submatrix(i0, p0, mb, kb).expect("inside A");
                let bb = b.submatrix(p0, j0, kb, nb).expect("inside B");
                let cb = c.submatrix_mut(i0, j0, mb, nb).expect("inside C");
                level.run(BlockIkj {
                    alpha,
                    a: ab,
                    b: bb,
                    c: cb,
                });
            }
        }
    }
}

/// One block, i-k-j: `C += alpha * A * B`.
struct BlockIkj<'a> {
    alpha: f32,
    a: MatRef<'a>,
    b: MatRef<'a>,
    c: MatMut<'a>,
}

impl WithSimd for BlockIkj<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        let (m, n, k) = (self.c.rows(), self.c.cols(), self.a.cols());
        for i in 0..m {
            for p in 0..k {
                let s = self.alpha * self.a.at(i, p);
                match (self.b.row(p), self.c.row_mut(i)) {
                    (Some(b_row), Some(c_row)) => {
                        let vs = simd.splat_f32s(s);
                        let (cv, ct) = S::as_mut_simd_f32s(c_row);
                        let (bv, bt) = S::as_simd_f32s(b_row);
                        for (c, b) in cv.iter_mut().zip(bv) {
                            *c = simd.mul_add_e_f32s(vs, *b, *c);
                        }
                        for (c, b) in ct.iter_mut().zip(bt) {
                            *c += s * b;
                        }
                    }
                    _ => {
                        for j in 0..n {
                            *self.c.at_mut(i, j) += s * self.b.at(p, j);
                        }
                    }
                }
            }
        }
    }
}
