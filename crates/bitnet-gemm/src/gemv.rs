//! GEMV, `y = alpha * A x + beta * y`: the decode case. It reads A once, so it is memory
//! bound and measured in bytes per second.
//!
//! - Row-major A (unit column stride): one dot product per row, rows split across threads
//!   ([`Par::for_bytes`]); each dot runs four vector accumulators over the row.
//! - Column-major A (unit row stride): `y += (alpha x_p) A[:, p]` column by column, each thread
//!   owning a range of rows of y so that its slice of every column streams once.
//! - Any other strides: plain loops (correct, not fast).

use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::error::GemmError;
use crate::view::MatRef;

/// `y = alpha * A x + beta * y` for an `m x k` A, `x` of length `k`, `y` of length `m`. With
/// `beta == 0`, y is only written. Error bound per element (ε = `f32::EPSILON`):
/// `(k + 2) ε (|alpha| Σ_p |A[i,p]| |x_p| + |beta| |y_i|)`.
pub fn gemv(
    alpha: f32,
    a: MatRef<'_>,
    x: &[f32],
    beta: f32,
    y: &mut [f32],
    par: Par,
) -> Result<(), GemmError> {
    let (m, k) = (a.rows(), a.cols());
    if x.len() != k || y.len() != m {
        return Err(GemmError::ShapeMismatch {
            a_rows: m,
            a_cols: k,
            b_rows: x.len(),
            b_cols: 1,
            c_rows: y.len(),
            c_cols: 1,
        });
    }
    let level = Level::active()?;
    let par = par.for_bytes(4 * m * k);
    if k == 0 {
        y.iter_mut()
            .for_each(|v| *v = if beta == 0.0 { 0.0 } else { beta * *v });
        return Ok(());
    }
    if a.col_stride() == 1 {
        let (data, lda) = (a.data(), a.row_stride());
        par.for_each_chunk_mut(y, 4, |row0, ys| {
            level.run(RowDots {
                a: data,
                lda,
                row0,
                x,
                y: ys,
                alpha,
                beta,
            })
        });
    } else if a.row_stride() == 1 {
        let (data, lda) = (a.data(), a.col_stride());
        par.for_each_chunk_mut(y, 64, |row0, ys| {
            level.run(ColumnAxpys {
                a: data,
                lda,
                row0,
                x,
                y: ys,
                alpha,
                beta,
            })
        });
    } else {
        for (i, yi) in y.iter_mut().enumerate() {
            let dot: f32 = (0..k).map(|p| a.at(i, p) * x[p]).sum();
            *yi = if beta == 0.0 {
                alpha * dot
            } else {
                alpha * dot + beta * *yi
            };
        }
    }
    Ok(())
}

/// Rows `row0..row0 + y.len()` of a row-major A (row stride `lda`) dotted with `x`.
struct RowDots<'a> {
    a: &'a [f32],
    lda: usize,
    row0: usize,
    x: &'a [f32],
    y: &'a mut [f32],
    alpha: f32,
    beta: f32,
}

impl WithSimd for RowDots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let k = self.x.len();
        let (xv, xt) = S::as_simd_f32s(self.x);
        for (r, yi) in self.y.iter_mut().enumerate() {
            let start = (self.row0 + r) * self.lda;
            let row = &self.a[start..start + k];
            let (rv, rt) = S::as_simd_f32s(row);
            let mut acc = [simd.splat_f32s(0.0); 4];
            let mut r4 = rv.chunks_exact(4);
            let mut x4 = xv.chunks_exact(4);
            for (a, b) in (&mut r4).zip(&mut x4) {
                for u in 0..4 {
                    acc[u] = simd.mul_add_e_f32s(a[u], b[u], acc[u]);
                }
            }
            for (a, b) in r4.remainder().iter().zip(x4.remainder()) {
                acc[0] = simd.mul_add_e_f32s(*a, *b, acc[0]);
            }
            let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
            let tail: f32 = rt.iter().zip(xt).map(|(a, b)| a * b).sum();
            let dot = simd.reduce_sum_f32s(sum) + tail;
            *yi = if self.beta == 0.0 {
                self.alpha * dot
            } else {
                self.alpha * dot + self.beta * *yi
            };
        }
    }
}

/// Rows `row0..row0 + y.len()` of `A x` for a column-major A (column stride `lda`).
struct ColumnAxpys<'a> {
    a: &'a [f32],
    lda: usize,
    row0: usize,
    x: &'a [f32],
    y: &'a mut [f32],
    alpha: f32,
    beta: f32,
}

impl WithSimd for ColumnAxpys<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let rows = self.y.len();
        if self.beta == 0.0 {
            self.y.fill(0.0);
        } else if self.beta != 1.0 {
            self.y.iter_mut().for_each(|v| *v *= self.beta);
        }
        let (yv, yt) = S::as_mut_simd_f32s(self.y);
        for (p, &xp) in self.x.iter().enumerate() {
            let s = self.alpha * xp;
            let vs = simd.splat_f32s(s);
            let start = p * self.lda + self.row0;
            let col = &self.a[start..start + rows];
            let (cv, ct) = S::as_simd_f32s(col);
            for (y, c) in yv.iter_mut().zip(cv) {
                *y = simd.mul_add_e_f32s(vs, *c, *y);
            }
            for (y, c) in yt.iter_mut().zip(ct) {
                *y += s * c;
            }
        }
    }
}
