//! Softmax and log-softmax over the rows of a row-major matrix, in place, on the active level;
//! rows split over the cores `Par` allows.
//!
//! Per row: the maximum `m` (NaN if the row holds one), then `eᵢ = exp(xᵢ − m)` summed in four
//! vector accumulators (softmax stores `eᵢ`), then softmax multiplies by `1 / Σ` and
//! log-softmax writes `(xᵢ − m) − ln Σ`. A row holding NaN, `+inf`, or only `−inf` becomes NaN
//! (the f64 formula does the same).
//!
//! Error (ε = `f32::EPSILON`, `L` lanes, `n` columns, `E` the `exp`'s bound in ulps — see
//! [`crate`]): softmax `|yᵢ − pᵢ| ≤ (|xᵢ − m| + E + ⌈n / 4L⌉ + L + 4) · ε · pᵢ` (the rounding of
//! `xᵢ − m` is amplified by `exp`); log-softmax `|yᵢ − ℓᵢ| ≤ 4ε · |ℓᵢ| + (E + ⌈n / 4L⌉ + L + 4) ·
//! ε`.

use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::act::ExpKind;
use crate::error::{NnError, rows_of};
use crate::reduce::row_max;

/// Softmax of each row of `cols` values of `x`, in place, with the `exp` of `kind`; an error
/// unless `x` is a whole number of rows.
pub fn softmax_rows(x: &mut [f32], cols: usize, kind: ExpKind, par: Par) -> Result<(), NnError> {
    rows(x, cols, kind, false, par)
}

/// Log-softmax of each row, in place (see [`softmax_rows`]).
pub fn log_softmax_rows(
    x: &mut [f32],
    cols: usize,
    kind: ExpKind,
    par: Par,
) -> Result<(), NnError> {
    rows(x, cols, kind, true, par)
}

fn rows(x: &mut [f32], cols: usize, kind: ExpKind, log: bool, par: Par) -> Result<(), NnError> {
    rows_of("x", x.len(), cols)?;
    let level = Level::active()?;
    if x.is_empty() {
        return Ok(());
    }
    par.for_bytes(8 * x.len())
        .for_each_chunk_mut(x, cols, |_, part| {
            for row in part.chunks_exact_mut(cols) {
                level.run(Row { x: row, kind, log });
            }
        });
    Ok(())
}

/// `v` with the lanes past the first `n` set to zero.
#[inline(always)]
pub(crate) fn first_lanes<S: Simd>(simd: S, v: S::f32s, n: usize) -> S::f32s {
    let mut buf = [0f32; 64];
    let lanes = size_of::<S::f32s>() / size_of::<f32>();
    simd.partial_store_f32s(&mut buf[..n.min(lanes)], v);
    simd.partial_load_f32s(&buf[..n.min(lanes)])
}

struct Row<'a> {
    x: &'a mut [f32],
    kind: ExpKind,
    log: bool,
}

impl WithSimd for Row<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Row { x, kind, log } = self;
        let m = row_max(simd, x);
        let mv = simd.splat_f32s(m);
        let mut acc = [simd.splat_f32s(0.0); 4];
        let (body, tail) = S::as_mut_simd_f32s(x);
        for (i, v) in body.iter_mut().enumerate() {
            let e = kind.eval(simd, simd.sub_f32s(*v, mv));
            if !log {
                *v = e;
            }
            acc[i % 4] = simd.add_f32s(acc[i % 4], e);
        }
        if !tail.is_empty() {
            let e = kind.eval(simd, simd.sub_f32s(simd.partial_load_f32s(tail), mv));
            if !log {
                simd.partial_store_f32s(tail, e);
            }
            acc[0] = simd.add_f32s(acc[0], first_lanes(simd, e, tail.len()));
        }
        let total = simd.reduce_sum_f32s(
            simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3])),
        );
        let (body, tail) = S::as_mut_simd_f32s(x);
        if log {
            let ln = simd.splat_f32s(total.ln());
            let f = |v: S::f32s| simd.sub_f32s(simd.sub_f32s(v, mv), ln);
            for v in body.iter_mut() {
                *v = f(*v);
            }
            if !tail.is_empty() {
                simd.partial_store_f32s(tail, f(simd.partial_load_f32s(tail)));
            }
        } else {
            let inv = simd.splat_f32s(1.0 / total);
            for v in body.iter_mut() {
                *v = simd.mul_f32s(*v, inv);
            }
            if !tail.is_empty() {
                simd.partial_store_f32s(tail, simd.mul_f32s(simd.partial_load_f32s(tail), inv));
            }
        }
    }
}
