//! GEMM for a few rows of A times a weight stored row by row: the prefill of a handful of tokens
//! and the batched decode of an LLM, `C = alpha * X W^T + beta * C` with `X` (m x k, m small) and
//! `W` (n x k, row-major), i.e. B = W^T a column-major `k x n` view.
//!
//! Packing B would copy the whole weight (tens of MB) for a few rows of work, so this kernel
//! streams `W` once, straight from memory: for each group of 4 rows of `W` and each pair of rows
//! of `X`, 2 x 4 vector accumulators run over `k` (one load of each `X` and `W` vector feeds
//! several FMAs), then reduce to 8 elements of C. `W`'s rows are split across threads.

use bitnet_simd::{Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

use crate::error::GemmError;
use crate::reference::check_shapes;
use crate::view::{MatMut, MatRef};
use bitnet_simd::par::SharedOut;

/// The most rows of A this kernel is chosen for by [`crate::gemm`]. Measured on the Zen 4
/// machine of the first reports, `X (m x 2560) · W^T (2560 x 2560)`, GFLOP/s small-m / packed
/// (medians of an ad-hoc timing loop), one thread: m = 8: 42 / 34, 12: 49 / 48, 16: 52 / 48-52,
/// 20: 50 / 47, 24: 54 / 66, 32: 59 / 67, 64: 51-56 / 71; two threads: m = 16: 103 / 102,
/// 32: 113 / 133. Packing W transposes it (16 x 16 blocks in registers), which pays for itself
/// from about 20 rows on.
pub const MAX_ROWS: usize = 16;

/// `C = alpha * A * B + beta * C` for a B with unit row stride (B = W^T, W row-major), streaming
/// B without packing. Any m works; it is the fastest variant for small m. With `beta == 0`, C is
/// only written. Error bound as [`crate::packed::gemm_packed`].
pub fn gemm_small_m(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
    par: Par,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    let level = Level::active()?;
    let (m, n, k) = (a.rows(), b.cols(), a.cols());
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 || (b.row_stride() != 1 && k > 1) {
        // No depth, or not a W^T view: the packed kernel handles every case.
        return crate::packed::gemm_packed(alpha, a, b, beta, c, par);
    }
    // A's rows, contiguous (a copy of m x k floats, small by construction).
    let mut a_rows = ScratchPool::global().take_uninit::<f32>(m * k);
    for (i, row) in a_rows.chunks_exact_mut(k.max(1)).enumerate().take(m) {
        for (p, v) in row.iter_mut().enumerate() {
            *v = a.at(i, p);
        }
    }
    let a_rows: &[f32] = &a_rows;
    let (w, ldw) = (b.data(), b.col_stride());
    let (ptr, _, _, rs, cs) = c.raw();
    let c = SharedOut::new(ptr);
    let par = par.for_bytes(n.saturating_mul(k).saturating_mul(4));
    par.for_each_range(n, 4, |cols| {
        level.run(Dots {
            a: a_rows,
            m,
            k,
            w,
            ldw,
            cols,
            c,
            rs,
            cs,
            alpha,
            beta,
        })
    });
    Ok(())
}

struct Dots<'a> {
    a: &'a [f32],
    m: usize,
    k: usize,
    w: &'a [f32],
    ldw: usize,
    cols: std::ops::Range<usize>,
    c: SharedOut<f32>,
    rs: usize,
    cs: usize,
    alpha: f32,
    beta: f32,
}

impl WithSimd for Dots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let k = self.k;
        let a_row = |i: usize| &self.a[i * k..(i + 1) * k];
        let w_row = |j: usize| &self.w[j * self.ldw..j * self.ldw + k];
        let mut j = self.cols.start;
        while j < self.cols.end {
            let jb = (self.cols.end - j).min(4);
            let mut i = 0;
            while i < self.m {
                let ib = (self.m - i).min(2);
                let mut out = [[0f32; 4]; 2];
                if ib == 2 && jb == 4 {
                    out = dots::<S, 2, 4>(
                        simd,
                        [a_row(i), a_row(i + 1)],
                        [w_row(j), w_row(j + 1), w_row(j + 2), w_row(j + 3)],
                    );
                } else {
                    for ii in 0..ib {
                        for jj in 0..jb {
                            out[ii][jj] =
                                dots::<S, 1, 1>(simd, [a_row(i + ii)], [w_row(j + jj)])[0][0];
                        }
                    }
                }
                for (ii, row) in out.iter().enumerate().take(ib) {
                    for (jj, &dot) in row.iter().enumerate().take(jb) {
                        let ptr = self.c.at((i + ii) * self.rs + (j + jj) * self.cs);
                        // SAFETY: (i + ii, j + jj) is inside C; this thread owns column j + jj.
                        unsafe {
                            *ptr = if self.beta == 0.0 {
                                self.alpha * dot
                            } else {
                                self.alpha * dot + self.beta * *ptr
                            };
                        }
                    }
                }
                i += ib;
            }
            j += jb;
        }
    }
}

/// `IB x JB` dot products of rows of X with rows of W (all of length k), with one vector
/// accumulator per pair.
#[inline(always)]
fn dots<S: Simd, const IB: usize, const JB: usize>(
    simd: S,
    x: [&[f32]; IB],
    w: [&[f32]; JB],
) -> [[f32; JB]; IB] {
    let xv = x.map(|r| S::as_simd_f32s(r));
    let wv = w.map(|r| S::as_simd_f32s(r));
    let mut acc = [[simd.splat_f32s(0.0); JB]; IB];
    let nv = wv[0].0.len();
    for p in 0..nv {
        let ws: [S::f32s; JB] = std::array::from_fn(|jj| wv[jj].0[p]);
        for ii in 0..IB {
            let xp = xv[ii].0[p];
            for jj in 0..JB {
                acc[ii][jj] = simd.mul_add_e_f32s(xp, ws[jj], acc[ii][jj]);
            }
        }
    }
    let mut out = [[0f32; JB]; IB];
    for ii in 0..IB {
        for jj in 0..JB {
            let tail: f32 = xv[ii].1.iter().zip(wv[jj].1).map(|(a, b)| a * b).sum();
            out[ii][jj] = simd.reduce_sum_f32s(acc[ii][jj]) + tail;
        }
    }
    out
}
