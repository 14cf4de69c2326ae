//! RMSNorm and LayerNorm over the rows of a row-major matrix (row length = `gamma.len()`), and
//! the fused forms BitNet b1.58 runs: the residual add followed by RMSNorm, and RMSNorm followed
//! by the per-token int8 absmax quantization of `bitnet-quant` that feeds every ternary
//! projection. Rows split over the cores `Par` allows; each row on the active level.
//!
//! Per row (`n` values):
//! - RMSNorm: `r = 1 / √(Σ xᵢ² / n + eps)`, `yᵢ = (xᵢ · r) · γᵢ`; the squares summed in four
//!   vector accumulators.
//! - LayerNorm: `μ = Σ xᵢ / n`, `σ² = Σ (xᵢ − μ)² / n` (two passes, no cancellation),
//!   `yᵢ = ((xᵢ − μ) · r) · γᵢ + βᵢ` with `r = 1 / √(σ² + eps)`.
//!
//! Error (ε = `f32::EPSILON`, `L` lanes): RMSNorm `|yᵢ − ŷᵢ| ≤ (⌈n / 4L⌉ + L + 8) · ε · |ŷᵢ|`;
//! LayerNorm `|yᵢ − ŷᵢ| ≤ (⌈n / 4L⌉ + L + 8) · ε · (|ŷᵢ − βᵢ| + |γᵢ| · (1 + |μ| / σ')) + ε·|βᵢ|`
//! with `σ' = √(σ² + eps)` (the rounding of `xᵢ − μ` relative to the spread). Non-finite
//! inputs propagate (a row with an infinity or NaN becomes NaN where the formula does).

#[cfg(doc)]
use bitnet_quant::ActScale;
use bitnet_quant::Int8Activations;
use bitnet_simd::mem::Ahead;
use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::error::{NnError, check_len, rows_of};
use crate::softmax::first_lanes;

/// The checked shape: rows of `gamma.len()`, `eps` finite and `≥ 0`.
fn shape(x: usize, gamma: usize, eps: f32) -> Result<usize, NnError> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(NnError::Invalid {
            what: "eps",
            reason: format!("{eps} is not finite and ≥ 0"),
        });
    }
    rows_of("x", x, gamma)
}

/// `y` = RMSNorm of the rows of `x` (rows of `gamma.len()`).
pub fn rms_norm(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    check_len("output", x.len(), y.len())?;
    let level = Level::active()?;
    let cols = gamma.len();
    for_rows(y, cols, par, |start, row, _| {
        level.run(Rms {
            io: RmsIo::To(&x[start..start + cols], row),
            gamma,
            eps,
            ahead: next_row(x, start + cols, cols),
        })
    });
    Ok(())
}

/// RMSNorm of the rows of `x`, in place.
pub fn rms_norm_in_place(x: &mut [f32], gamma: &[f32], eps: f32, par: Par) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    let level = Level::active()?;
    for_rows(x, gamma.len(), par, |_, row, ahead| {
        level.run(Rms {
            io: RmsIo::InPlace(row),
            gamma,
            eps,
            ahead,
        })
    });
    Ok(())
}

/// `residual += delta`, then `y` = RMSNorm of the new residual rows: one pass for the add and the
/// squares, one for the scaling (BitNet b1.58's `x + attn → ffn_norm`).
pub fn add_rms_norm(
    residual: &mut [f32],
    delta: &[f32],
    gamma: &[f32],
    eps: f32,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    shape(residual.len(), gamma.len(), eps)?;
    check_len("delta", residual.len(), delta.len())?;
    check_len("output", residual.len(), y.len())?;
    let level = Level::active()?;
    let cols = gamma.len();
    if cols == 0 {
        return Ok(());
    }
    let out = SharedOut::new(y.as_mut_ptr());
    par.for_bytes(16 * residual.len())
        .for_each_chunk_mut(residual, cols, |start, part| {
            for (i, row) in part.chunks_exact_mut(cols).enumerate() {
                let at = start + i * cols;
                // SAFETY: the output row at `at` (inside y, same length as residual) belongs to
                // this part alone.
                let y_row = unsafe { core::slice::from_raw_parts_mut(out.at(at), cols) };
                level.run(Rms {
                    io: RmsIo::Add(row, &delta[at..at + cols], y_row),
                    gamma,
                    eps,
                    ahead: next_row(delta, at + cols, cols),
                });
            }
        });
    Ok(())
}

/// RMSNorm of the rows of `x`, then each row quantized to int8 by absmax exactly as
/// [`Int8Activations::quantize`] with [`ActScale::PerToken`] quantizes the normalized rows (the
/// results are identical); a non-finite normalized value is an error. Each normalized row goes
/// to an L1-resident scratch row of its thread and straight into the quantizer, never to memory
/// as f32. Allocates the result; [`rms_norm_quantize_into`] reuses one.
pub fn rms_norm_quantize(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    par: Par,
) -> Result<Int8Activations, NnError> {
    let mut out = Int8Activations::default();
    rms_norm_quantize_into(x, gamma, eps, &mut out, par)?;
    Ok(out)
}

/// [`rms_norm_quantize`] into `out`, whose buffers are reused (what a decode loop wants: no
/// allocation per call once they are large enough); rows split over `par`.
pub fn rms_norm_quantize_into(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    out: &mut Int8Activations,
    par: Par,
) -> Result<(), NnError> {
    let tokens = shape(x.len(), gamma.len(), eps)?;
    let level = Level::active()?;
    let cols = gamma.len();
    out.quantize_rows_into(tokens, cols, par, |t, row| {
        level.run(Rms {
            io: RmsIo::To(&x[t * cols..(t + 1) * cols], row),
            gamma,
            eps,
            ahead: next_row(x, (t + 1) * cols, cols),
        })
    })?;
    Ok(())
}

/// `y` = LayerNorm of the rows of `x` (rows of `gamma.len()`, `beta` as long).
pub fn layer_norm(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    check_len("output", x.len(), y.len())?;
    check_len("beta", gamma.len(), beta.len())?;
    let level = Level::active()?;
    let cols = gamma.len();
    for_rows(y, cols, par, |start, row, _| {
        level.run(Layer {
            src: Some(&x[start..start + cols]),
            x: row,
            gamma,
            beta,
            eps,
            ahead: next_row(x, start + cols, cols),
        })
    });
    Ok(())
}

/// LayerNorm of the rows of `x`, in place.
pub fn layer_norm_in_place(
    x: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    par: Par,
) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    check_len("beta", gamma.len(), beta.len())?;
    let level = Level::active()?;
    for_rows(x, gamma.len(), par, |_, row, ahead| {
        level.run(Layer {
            src: None,
            x: row,
            gamma,
            beta,
            eps,
            ahead,
        })
    });
    Ok(())
}

/// Runs `f(offset, row, next)` on every row of `cols` values of `x`, rows split over `par`;
/// `next` prefetches the following row of the same part (none after the last).
fn for_rows(x: &mut [f32], cols: usize, par: Par, f: impl Fn(usize, &mut [f32], Ahead) + Sync) {
    if cols == 0 || x.is_empty() {
        return;
    }
    par.for_bytes(8 * x.len())
        .for_each_chunk_mut(x, cols, |start, part| {
            for i in 0..part.len() / cols {
                let next = next_row(part, (i + 1) * cols, cols);
                f(start + i * cols, &mut part[i * cols..(i + 1) * cols], next);
            }
        });
}

/// A prefetch of the row of `cols` values at `at` in `x` (none past the end), spread over the
/// steps of a pass of AVX-512 vectors.
fn next_row(x: &[f32], at: usize, cols: usize) -> Ahead {
    let row = x.get(at..at.saturating_add(cols)).unwrap_or(&[]);
    Ahead::new(row, cols / 16)
}

/// `Σ` of four accumulators.
#[inline(always)]
fn total<S: Simd>(simd: S, acc: [S::f32s; 4]) -> f32 {
    simd.reduce_sum_f32s(
        simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3])),
    )
}

/// Where an RMSNorm row comes from and goes.
enum RmsIo<'a> {
    /// Normalize in place.
    InPlace(&'a mut [f32]),
    /// Read the first, write the second.
    To(&'a [f32], &'a mut [f32]),
    /// `residual += delta` (the first two), then write the normalized residual to the third.
    Add(&'a mut [f32], &'a [f32], &'a mut [f32]),
}

/// One RMSNorm row; `ahead` (the next row's input) is prefetched during the scaling pass, so
/// that the next row's first pass reads from L1.
struct Rms<'a> {
    io: RmsIo<'a>,
    gamma: &'a [f32],
    eps: f32,
    ahead: Ahead,
}

/// `Σ v²` of a row, four accumulators.
#[inline(always)]
fn sum_squares<S: Simd>(simd: S, x: &[f32]) -> f32 {
    let (xv, xt) = S::as_simd_f32s(x);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let mut quads = xv.chunks_exact(4);
    for q in &mut quads {
        for (a, &v) in acc.iter_mut().zip(q) {
            *a = simd.mul_add_e_f32s(v, v, *a);
        }
    }
    for &v in quads.remainder() {
        acc[0] = simd.mul_add_e_f32s(v, v, acc[0]);
    }
    if !xt.is_empty() {
        let v = simd.partial_load_f32s(xt);
        acc[0] = simd.mul_add_e_f32s(v, v, acc[0]);
    }
    total(simd, acc)
}

/// `residual += delta` and `Σ residual²`, one pass.
#[inline(always)]
fn add_sum_squares<S: Simd>(simd: S, residual: &mut [f32], delta: &[f32]) -> f32 {
    let mut acc = [simd.splat_f32s(0.0); 4];
    let (xv, xt) = S::as_mut_simd_f32s(residual);
    let (dv, dt) = S::as_simd_f32s(delta);
    for (i, (v, &d)) in xv.iter_mut().zip(dv).enumerate() {
        *v = simd.add_f32s(*v, d);
        acc[i % 4] = simd.mul_add_e_f32s(*v, *v, acc[i % 4]);
    }
    if !xt.is_empty() {
        let v = simd.add_f32s(simd.partial_load_f32s(xt), simd.partial_load_f32s(dt));
        simd.partial_store_f32s(xt, v);
        acc[0] = simd.mul_add_e_f32s(v, v, acc[0]);
    }
    total(simd, acc)
}

/// `y = (x · r) · γ`, prefetching `ahead` on the way.
#[inline(always)]
fn scale_to<S: Simd>(simd: S, x: &[f32], y: &mut [f32], r: f32, gamma: &[f32], mut ahead: Ahead) {
    let r = simd.splat_f32s(r);
    let (gv, gt) = S::as_simd_f32s(gamma);
    let f = |v: S::f32s, g: S::f32s| simd.mul_f32s(simd.mul_f32s(v, r), g);
    let (xv, xt) = S::as_simd_f32s(x);
    let (yv, yt) = S::as_mut_simd_f32s(y);
    for ((y, &v), &g) in yv.iter_mut().zip(xv).zip(gv) {
        ahead.step();
        *y = f(v, g);
    }
    if !xt.is_empty() {
        let v = f(simd.partial_load_f32s(xt), simd.partial_load_f32s(gt));
        simd.partial_store_f32s(yt, v);
    }
}

/// `x = (x · r) · γ`, the same arithmetic as [`scale_to`].
#[inline(always)]
fn scale_in_place<S: Simd>(simd: S, x: &mut [f32], r: f32, gamma: &[f32], mut ahead: Ahead) {
    let r = simd.splat_f32s(r);
    let (gv, gt) = S::as_simd_f32s(gamma);
    let f = |v: S::f32s, g: S::f32s| simd.mul_f32s(simd.mul_f32s(v, r), g);
    let (xv, xt) = S::as_mut_simd_f32s(x);
    for (v, &g) in xv.iter_mut().zip(gv) {
        ahead.step();
        *v = f(*v, g);
    }
    if !xt.is_empty() {
        let v = f(simd.partial_load_f32s(xt), simd.partial_load_f32s(gt));
        simd.partial_store_f32s(xt, v);
    }
}

impl WithSimd for Rms<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Rms {
            io,
            gamma,
            eps,
            ahead,
        } = self;
        let r = |ss: f32, n: usize| (ss / n as f32 + eps).sqrt().recip();
        match io {
            RmsIo::InPlace(x) => {
                let r = r(sum_squares(simd, x), x.len());
                scale_in_place(simd, x, r, gamma, ahead);
            }
            RmsIo::To(x, y) => {
                let r = r(sum_squares(simd, x), x.len());
                scale_to(simd, x, y, r, gamma, ahead);
            }
            RmsIo::Add(res, delta, y) => {
                let r = r(add_sum_squares(simd, res, delta), res.len());
                scale_to(simd, res, y, r, gamma, ahead);
            }
        }
    }
}

/// One LayerNorm row: of `src` into `x`, or of `x` in place; `ahead` (the next row's input)
/// is prefetched during the last pass.
struct Layer<'a> {
    src: Option<&'a [f32]>,
    x: &'a mut [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
    ahead: Ahead,
}

/// The mean of a row and `1 / √(σ² + eps)`, as vectors: two passes (module docs).
#[inline(always)]
fn mean_and_rstd<S: Simd>(simd: S, x: &[f32], eps: f32) -> (S::f32s, S::f32s) {
    let n = x.len() as f32;
    let (xv, xt) = S::as_simd_f32s(x);
    let mut acc = [simd.splat_f32s(0.0); 4];
    for (i, &v) in xv.iter().enumerate() {
        acc[i % 4] = simd.add_f32s(acc[i % 4], v);
    }
    let tail = (!xt.is_empty()).then(|| simd.partial_load_f32s(xt));
    if let Some(v) = tail {
        acc[0] = simd.add_f32s(acc[0], v);
    }
    let mean = simd.splat_f32s(total(simd, acc) / n);
    let mut acc = [simd.splat_f32s(0.0); 4];
    for (i, &v) in xv.iter().enumerate() {
        let d = simd.sub_f32s(v, mean);
        acc[i % 4] = simd.mul_add_e_f32s(d, d, acc[i % 4]);
    }
    if let Some(v) = tail {
        let d = first_lanes(simd, simd.sub_f32s(v, mean), xt.len());
        acc[0] = simd.mul_add_e_f32s(d, d, acc[0]);
    }
    let r = simd.splat_f32s((total(simd, acc) / n + eps).sqrt().recip());
    (mean, r)
}

impl WithSimd for Layer<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Layer {
            src,
            x,
            gamma,
            beta,
            eps,
            mut ahead,
        } = self;
        let (mean, r) = mean_and_rstd(simd, src.unwrap_or(x), eps);
        let (gv, gt) = S::as_simd_f32s(gamma);
        let (bv, bt) = S::as_simd_f32s(beta);
        let f = |v: S::f32s, g: S::f32s, b: S::f32s| {
            simd.mul_add_e_f32s(simd.mul_f32s(simd.sub_f32s(v, mean), r), g, b)
        };
        let (yv, yt) = S::as_mut_simd_f32s(x);
        // The input vectors: the source row's, or the output's own (in place).
        let tail = match src {
            Some(src) => {
                let (xv, xt) = S::as_simd_f32s(src);
                for (((y, &v), &g), &b) in yv.iter_mut().zip(xv).zip(gv).zip(bv) {
                    ahead.step();
                    *y = f(v, g, b);
                }
                xt
            }
            None => {
                for ((y, &g), &b) in yv.iter_mut().zip(gv).zip(bv) {
                    ahead.step();
                    *y = f(*y, g, b);
                }
                &*yt
            }
        };
        if !yt.is_empty() {
            let v = f(
                simd.partial_load_f32s(tail),
                simd.partial_load_f32s(gt),
                simd.partial_load_f32s(bt),
            );
            simd.partial_store_f32s(yt, v);
        }
    }
}
