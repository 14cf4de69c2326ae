//! RMSNorm and LayerNorm over the rows of a row-major matrix (row length = `gamma.len()`), and
//! the fused forms BitNet b1.58 runs: the residual add followed by RMSNorm, and RMSNorm followed
//! by the per-token int8 absmax quantization of `bitnet-quant` that feeds every ternary
//! projection. Rows split over the cores `Par` allows; each row on the active level.
//!
//! Per row (`n` values):
//! - RMSNorm: `r = 1 / √(Σ xᵢ² / n + eps)`, `yᵢ = (xᵢ · r) · γᵢ`; the squares summed in four
//!   vector accumulators (vector `v` into accumulator `v mod 4`).
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
    for_parts(y, cols, par, |start, part| {
        level.run(RmsRows {
            src: Some(&x[start..start + part.len()]),
            rows: part,
            gamma,
            eps,
        })
    });
    Ok(())
}

/// RMSNorm of the rows of `x`, in place.
pub fn rms_norm_in_place(x: &mut [f32], gamma: &[f32], eps: f32, par: Par) -> Result<(), NnError> {
    shape(x.len(), gamma.len(), eps)?;
    let level = Level::active()?;
    for_parts(x, gamma.len(), par, |_, part| {
        level.run(RmsRows {
            src: None,
            rows: part,
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
                level.run(AddRms {
                    residual: row,
                    delta: &delta[at..at + cols],
                    y: y_row,
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
/// results are identical); a non-finite normalized value is an error. The rows are normalized
/// a few at a time into an L1-resident scratch block of their thread and go straight into the
/// quantizer, never to memory as f32. Allocates the result; [`rms_norm_quantize_into`] reuses one.
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
    // Rows normalized a few at a time (pipelined like rms_norm), about 32 KiB: in L1 when the
    // quantizer reads them.
    let block = (8192 / cols.max(1)).max(1);
    out.quantize_blocks_into(tokens, cols, block, par, |t0, rows| {
        level.run(RmsRows {
            src: Some(&x[t0 * cols..t0 * cols + rows.len()]),
            rows,
            gamma,
            eps,
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
    for_parts(y, cols, par, |start, part| {
        level.run(LayerRows {
            src: Some(&x[start..start + part.len()]),
            rows: part,
            gamma,
            beta,
            eps,
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
    for_parts(x, gamma.len(), par, |_, part| {
        level.run(LayerRows {
            src: None,
            rows: part,
            gamma,
            beta,
            eps,
        })
    });
    Ok(())
}

/// Runs `f(offset, part)` on parts of whole rows of `cols` values of `x`, split over `par`.
fn for_parts(x: &mut [f32], cols: usize, par: Par, f: impl Fn(usize, &mut [f32]) + Sync) {
    if cols == 0 || x.is_empty() {
        return;
    }
    par.for_bytes(8 * x.len()).for_each_chunk_mut(x, cols, f);
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

/// One residual add + RMSNorm row: `residual += delta`, then `y` = the normalized residual;
/// `ahead` (the next row's delta) is prefetched during the scaling pass.
struct AddRms<'a> {
    residual: &'a mut [f32],
    delta: &'a [f32],
    y: &'a mut [f32],
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
    for (a, &v) in acc.iter_mut().zip(quads.remainder()) {
        *a = simd.mul_add_e_f32s(v, v, *a);
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

impl WithSimd for AddRms<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let AddRms {
            residual,
            delta,
            y,
            gamma,
            eps,
            ahead,
        } = self;
        let ss = add_sum_squares(simd, residual, delta);
        let r = (ss / residual.len() as f32 + eps).sqrt().recip();
        scale_to(simd, residual, y, r, gamma, ahead);
    }
}

/// RMSNorm of consecutive rows (`rows`, of `gamma.len()`): from `src` (as long) or in place.
/// Software-pipelined: the pass that scales row `i` also sums the squares of row `i + 1`, so
/// that a row costs one streaming pass, like a copy, instead of two.
struct RmsRows<'a> {
    src: Option<&'a [f32]>,
    rows: &'a mut [f32],
    gamma: &'a [f32],
    eps: f32,
}

impl WithSimd for RmsRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let RmsRows {
            src,
            rows,
            gamma,
            eps,
        } = self;
        let cols = gamma.len();
        let rstd = |ss: f32| (ss / cols as f32 + eps).sqrt().recip();
        pipeline_rows(
            src,
            rows,
            cols,
            gamma,
            |x| sum_squares(simd, x),
            |x, y, ss, next| scale_and_square(simd, x, y, rstd(ss), gamma, next),
        );
    }
}

/// The software pipeline of [`RmsRows`] and [`LayerRows`] over `rows` (of `cols` values), from
/// `src` or in place: `first(row 0)` is the first row's sum; `step(x, y, sum, next)` writes row
/// `i` (from `x`, or `y` in place when `x` is `None`) given its sum and returns the sum of
/// `next`: row `i + 1`, or after the last row the stand-in `last` (a row in L1, sum unused).
#[inline(always)]
fn pipeline_rows(
    src: Option<&[f32]>,
    rows: &mut [f32],
    cols: usize,
    last: &[f32],
    first: impl FnOnce(&[f32]) -> f32,
    mut step: impl FnMut(Option<&[f32]>, &mut [f32], f32, &[f32]) -> f32,
) {
    let n = rows.len() / cols;
    let mut sum = first(src.map_or(&rows[..cols], |src| &src[..cols]));
    for i in 0..n {
        let (y, rest) = rows[i * cols..].split_at_mut(cols);
        sum = match src {
            Some(src) => {
                let next = src.get((i + 1) * cols..(i + 2) * cols).unwrap_or(last);
                step(Some(&src[i * cols..(i + 1) * cols]), y, sum, next)
            }
            None => step(None, y, sum, rest.get(..cols).unwrap_or(last)),
        };
    }
}

/// `y = (x · r) · γ` (from `src`, or `y` in place when `src` is `None`) and `Σ next²` (`next`
/// as long as `y`; the squares go to the accumulators [`sum_squares`] uses, so the sum is the
/// same) in one pass.
#[inline(always)]
fn scale_and_square<S: Simd>(
    simd: S,
    src: Option<&[f32]>,
    y: &mut [f32],
    r: f32,
    gamma: &[f32],
    next: &[f32],
) -> f32 {
    let r = simd.splat_f32s(r);
    let f = |v: S::f32s, g: S::f32s| simd.mul_f32s(simd.mul_f32s(v, r), g);
    let (gv, gt) = S::as_simd_f32s(gamma);
    let (nv, nt) = S::as_simd_f32s(next);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let (yv, yt) = S::as_mut_simd_f32s(y);
    let step = |y: &mut S::f32s, x: S::f32s, g: S::f32s, w: S::f32s, a: &mut S::f32s| {
        *y = f(x, g);
        *a = simd.mul_add_e_f32s(w, w, *a);
    };
    let whole = yv.len() / 4 * 4;
    let gn4 = gv.chunks_exact(4).zip(nv.chunks_exact(4));
    let gn_rest = gv[whole.min(gv.len())..]
        .iter()
        .zip(&nv[whole.min(nv.len())..]);
    let tail = match src {
        Some(src) => {
            let (xv, xt) = S::as_simd_f32s(src);
            for ((y4, x4), (g4, n4)) in yv.chunks_exact_mut(4).zip(xv.chunks_exact(4)).zip(gn4) {
                for (((y, &x), &g), (&w, a)) in
                    y4.iter_mut().zip(x4).zip(g4).zip(n4.iter().zip(&mut acc))
                {
                    step(y, x, g, w, a);
                }
            }
            let ys = yv[whole..].iter_mut().zip(&xv[whole..]);
            for (((y, &x), (&g, &w)), a) in ys.zip(gn_rest).zip(&mut acc) {
                step(y, x, g, w, a);
            }
            xt
        }
        None => {
            for (y4, (g4, n4)) in yv.chunks_exact_mut(4).zip(gn4) {
                for ((y, &g), (&w, a)) in y4.iter_mut().zip(g4).zip(n4.iter().zip(&mut acc)) {
                    step(y, *y, g, w, a);
                }
            }
            for ((y, (&g, &w)), a) in yv[whole..].iter_mut().zip(gn_rest).zip(&mut acc) {
                step(y, *y, g, w, a);
            }
            &*yt
        }
    };
    if !yt.is_empty() {
        let v = f(simd.partial_load_f32s(tail), simd.partial_load_f32s(gt));
        simd.partial_store_f32s(yt, v);
        let w = simd.partial_load_f32s(nt);
        acc[0] = simd.mul_add_e_f32s(w, w, acc[0]);
    }
    total(simd, acc)
}

/// LayerNorm of consecutive rows (`rows`, of `gamma.len()`): from `src` (as long) or in place.
/// Software-pipelined like [`RmsRows`]: the pass that writes row `i` also sums row `i + 1`, so a
/// row costs that streaming pass and the variance pass over the row in L1.
struct LayerRows<'a> {
    src: Option<&'a [f32]>,
    rows: &'a mut [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
}

impl WithSimd for LayerRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let LayerRows {
            src,
            rows,
            gamma,
            beta,
            eps,
        } = self;
        let cols = gamma.len();
        pipeline_rows(
            src,
            rows,
            cols,
            gamma,
            |x| row_sum(simd, x),
            |x, y, sum, next| {
                let (mean, r) = mean_and_rstd(simd, x.unwrap_or(y), sum, eps);
                affine_and_sum(simd, x, y, (mean, r), (gamma, beta), next)
            },
        );
    }
}

/// `Σ x` in four vector accumulators (vector `v` into accumulator `v mod 4`, the tail into 0).
#[inline(always)]
fn row_sum<S: Simd>(simd: S, x: &[f32]) -> f32 {
    let (xv, xt) = S::as_simd_f32s(x);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let mut quads = xv.chunks_exact(4);
    for x4 in &mut quads {
        for (a, &v) in acc.iter_mut().zip(x4) {
            *a = simd.add_f32s(*a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(quads.remainder()) {
        *a = simd.add_f32s(*a, v);
    }
    if !xt.is_empty() {
        acc[0] = simd.add_f32s(acc[0], simd.partial_load_f32s(xt));
    }
    total(simd, acc)
}

/// The mean (from the row's sum) and `1 / √(σ² + eps)` with `σ²` from a second pass over the
/// deviations (no cancellation), as vectors.
#[inline(always)]
fn mean_and_rstd<S: Simd>(simd: S, x: &[f32], sum: f32, eps: f32) -> (S::f32s, S::f32s) {
    let n = x.len() as f32;
    let mean = simd.splat_f32s(sum / n);
    let (xv, xt) = S::as_simd_f32s(x);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let square = |a: &mut S::f32s, v: S::f32s| {
        let d = simd.sub_f32s(v, mean);
        *a = simd.mul_add_e_f32s(d, d, *a);
    };
    let mut quads = xv.chunks_exact(4);
    for x4 in &mut quads {
        for (a, &v) in acc.iter_mut().zip(x4) {
            square(a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(quads.remainder()) {
        square(a, v);
    }
    if !xt.is_empty() {
        let d = first_lanes(
            simd,
            simd.sub_f32s(simd.partial_load_f32s(xt), mean),
            xt.len(),
        );
        acc[0] = simd.mul_add_e_f32s(d, d, acc[0]);
    }
    let r = simd.splat_f32s((total(simd, acc) / n + eps).sqrt().recip());
    (mean, r)
}

/// `y = ((x − μ) · r) · γ + β` (from `src`, or `y` in place when `src` is `None`) and `Σ next`
/// (as long as `y`; summed as [`row_sum`] sums) in one pass.
#[inline(always)]
fn affine_and_sum<S: Simd>(
    simd: S,
    src: Option<&[f32]>,
    y: &mut [f32],
    (mean, r): (S::f32s, S::f32s),
    (gamma, beta): (&[f32], &[f32]),
    next: &[f32],
) -> f32 {
    let f = |v: S::f32s, g: S::f32s, b: S::f32s| {
        simd.mul_add_e_f32s(simd.mul_f32s(simd.sub_f32s(v, mean), r), g, b)
    };
    let (gv, gt) = S::as_simd_f32s(gamma);
    let (bv, bt) = S::as_simd_f32s(beta);
    let (nv, nt) = S::as_simd_f32s(next);
    let mut acc = [simd.splat_f32s(0.0); 4];
    let (yv, yt) = S::as_mut_simd_f32s(y);
    // The output from `x`, and vector i of `next` into accumulator i mod 4; groups of four
    // exactly (iterators, no indexing), so that the accumulators stay in registers.
    let step =
        |y: &mut S::f32s, x: S::f32s, (g, b, w): (S::f32s, S::f32s, S::f32s), a: &mut S::f32s| {
            *y = f(x, g, b);
            *a = simd.add_f32s(*a, w);
        };
    let (g4, b4, n4) = (gv.chunks_exact(4), bv.chunks_exact(4), nv.chunks_exact(4));
    let whole = yv.len() / 4 * 4;
    let (g_rest, b_rest, n_rest) = (
        &gv[whole.min(gv.len())..],
        &bv[whole.min(bv.len())..],
        &nv[whole.min(nv.len())..],
    );
    let gbn4 = g4.zip(b4).zip(n4);
    let gbn_rest = g_rest.iter().zip(b_rest).zip(n_rest);
    let tail = match src {
        Some(src) => {
            let (xv, xt) = S::as_simd_f32s(src);
            for ((y4, x4), ((g4, b4), n4)) in
                yv.chunks_exact_mut(4).zip(xv.chunks_exact(4)).zip(gbn4)
            {
                for ((((y, &x), &g), &b), (&w, a)) in y4
                    .iter_mut()
                    .zip(x4)
                    .zip(g4)
                    .zip(b4)
                    .zip(n4.iter().zip(&mut acc))
                {
                    step(y, x, (g, b, w), a);
                }
            }
            let ys = yv[whole..].iter_mut().zip(&xv[whole..]);
            for (((y, &x), ((&g, &b), &w)), a) in ys.zip(gbn_rest).zip(&mut acc) {
                step(y, x, (g, b, w), a);
            }
            xt
        }
        None => {
            for (y4, ((g4, b4), n4)) in yv.chunks_exact_mut(4).zip(gbn4) {
                for (((y, &g), &b), (&w, a)) in
                    y4.iter_mut().zip(g4).zip(b4).zip(n4.iter().zip(&mut acc))
                {
                    step(y, *y, (g, b, w), a);
                }
            }
            for ((y, ((&g, &b), &w)), a) in yv[whole..].iter_mut().zip(gbn_rest).zip(&mut acc) {
                step(y, *y, (g, b, w), a);
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
        acc[0] = simd.add_f32s(acc[0], simd.partial_load_f32s(nt));
    }
    total(simd, acc)
}
