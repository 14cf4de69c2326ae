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

use bitnet_quant::{ActScale, Int8Activations};
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
    y.copy_from_slice(x);
    rms_norm_in_place(y, gamma, eps, par)
}

/// RMSNorm of the rows of `x`, in place.
pub fn rms_norm_in_place(x: &mut [f32], gamma: &[f32], eps: f32, par: Par) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    let level = Level::active()?;
    for_rows(x, gamma.len(), par, |row| {
        level.run(Rms {
            x: row,
            delta: None,
            gamma,
            eps,
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
                    x: row,
                    delta: Some((&delta[at..at + cols], y_row)),
                    gamma,
                    eps,
                });
            }
        });
    Ok(())
}

/// RMSNorm of the rows of `x`, then each row quantized to int8 by absmax exactly as
/// [`Int8Activations::quantize`] with [`ActScale::PerToken`] quantizes the normalized rows (the
/// results are identical); a non-finite normalized value is an error.
pub fn rms_norm_quantize(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    par: Par,
) -> Result<Int8Activations, NnError> {
    let tokens = shape(x.len(), gamma.len(), eps)?;
    let mut y = x.to_vec();
    rms_norm_in_place(&mut y, gamma, eps, par)?;
    Ok(Int8Activations::quantize(
        &y,
        tokens,
        gamma.len(),
        ActScale::PerToken,
    )?)
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
    y.copy_from_slice(x);
    layer_norm_in_place(y, gamma, beta, eps, par)
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
    for_rows(x, gamma.len(), par, |row| {
        level.run(Layer {
            x: row,
            gamma,
            beta,
            eps,
        })
    });
    Ok(())
}

/// Runs `f` on every row of `cols` values of `x`, rows split over `par`.
fn for_rows(x: &mut [f32], cols: usize, par: Par, f: impl Fn(&mut [f32]) + Sync) {
    if cols == 0 || x.is_empty() {
        return;
    }
    par.for_bytes(8 * x.len())
        .for_each_chunk_mut(x, cols, |_, part| part.chunks_exact_mut(cols).for_each(&f));
}

/// `Σ` of four accumulators.
#[inline(always)]
fn total<S: Simd>(simd: S, acc: [S::f32s; 4]) -> f32 {
    simd.reduce_sum_f32s(
        simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3])),
    )
}

/// One RMSNorm row, in place; with `delta`, `x += delta` first and the result written to the
/// output row instead.
struct Rms<'a> {
    x: &'a mut [f32],
    delta: Option<(&'a [f32], &'a mut [f32])>,
    gamma: &'a [f32],
    eps: f32,
}

impl WithSimd for Rms<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Rms {
            x,
            delta,
            gamma,
            eps,
        } = self;
        let n = x.len();
        let mut acc = [simd.splat_f32s(0.0); 4];
        {
            let (xv, xt) = S::as_mut_simd_f32s(x);
            match &delta {
                Some((d, _)) => {
                    let (dv, dt) = S::as_simd_f32s(d);
                    for (i, (v, &d)) in xv.iter_mut().zip(dv).enumerate() {
                        *v = simd.add_f32s(*v, d);
                        acc[i % 4] = simd.mul_add_e_f32s(*v, *v, acc[i % 4]);
                    }
                    if !xt.is_empty() {
                        let v =
                            simd.add_f32s(simd.partial_load_f32s(xt), simd.partial_load_f32s(dt));
                        simd.partial_store_f32s(xt, v);
                        acc[0] = simd.mul_add_e_f32s(v, v, acc[0]);
                    }
                }
                None => {
                    for (i, &v) in xv.iter().enumerate() {
                        acc[i % 4] = simd.mul_add_e_f32s(v, v, acc[i % 4]);
                    }
                    if !xt.is_empty() {
                        let v = simd.partial_load_f32s(xt);
                        acc[0] = simd.mul_add_e_f32s(v, v, acc[0]);
                    }
                }
            }
        }
        let r = simd.splat_f32s((total(simd, acc) / n as f32 + eps).sqrt().recip());
        let (gv, gt) = S::as_simd_f32s(gamma);
        let f = |v: S::f32s, g: S::f32s| simd.mul_f32s(simd.mul_f32s(v, r), g);
        match delta {
            Some((_, y)) => {
                let (xv, xt) = S::as_simd_f32s(x);
                let (yv, yt) = S::as_mut_simd_f32s(y);
                for ((y, &v), &g) in yv.iter_mut().zip(xv).zip(gv) {
                    *y = f(v, g);
                }
                if !xt.is_empty() {
                    let v = f(simd.partial_load_f32s(xt), simd.partial_load_f32s(gt));
                    simd.partial_store_f32s(yt, v);
                }
            }
            None => {
                let (xv, xt) = S::as_mut_simd_f32s(x);
                for (v, &g) in xv.iter_mut().zip(gv) {
                    *v = f(*v, g);
                }
                if !xt.is_empty() {
                    let v = f(simd.partial_load_f32s(xt), simd.partial_load_f32s(gt));
                    simd.partial_store_f32s(xt, v);
                }
            }
        }
    }
}

/// One LayerNorm row, in place.
struct Layer<'a> {
    x: &'a mut [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
}

impl WithSimd for Layer<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Layer {
            x,
            gamma,
            beta,
            eps,
        } = self;
        let n = x.len() as f32;
        let (xv, xt) = S::as_mut_simd_f32s(x);
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
        let (gv, gt) = S::as_simd_f32s(gamma);
        let (bv, bt) = S::as_simd_f32s(beta);
        let f = |v: S::f32s, g: S::f32s, b: S::f32s| {
            simd.mul_add_e_f32s(simd.mul_f32s(simd.sub_f32s(v, mean), r), g, b)
        };
        for ((v, &g), &b) in xv.iter_mut().zip(gv).zip(bv) {
            *v = f(*v, g, b);
        }
        if let Some(v) = tail {
            let y = f(v, simd.partial_load_f32s(gt), simd.partial_load_f32s(bt));
            simd.partial_store_f32s(xt, y);
        }
    }
}
