//! The naive attention: per query head (one task each), the whole `tokens × len` score matrix
//! (f32), a softmax of each row's visible prefix, then `P · V` one AXPY per score.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};

use super::{KvCache, visible};
use crate::act::ExpKind;
use crate::error::NnError;

#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    q: &[f32],
    tokens: usize,
    heads: usize,
    group: usize,
    cache: &KvCache,
    causal: bool,
    out: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    let level = Level::active()?;
    let (d, len) = (cache.head_dim(), cache.len());
    let shared = SharedOut::new(out.as_mut_ptr());
    let scale = 1.0 / (d as f32).sqrt();
    let work = (len * d * 8).saturating_mul(tokens.max(1));
    super::try_tasks(par.for_bytes(work * heads), heads, |h| {
        {
            let g = h / group;
            let mut k = vec![0f32; len * d];
            let mut v = vec![0f32; len * d];
            cache.read_keys(g, len, &mut k)?;
            cache.read_values(g, 0..len, &mut v)?;
            let mut scores = vec![0f32; tokens * len];
            for t in 0..tokens {
                let n = visible(len, tokens, t, causal);
                let row = &mut scores[t * len..t * len + n];
                let qv = &q[(t * heads + h) * d..][..d];
                for (s, kj) in row.iter_mut().zip(k.chunks_exact(d)) {
                    *s = level.run(Dot { a: qv, b: kj }) * scale;
                }
                crate::softmax::softmax_rows(row, n, ExpKind::Exact, Par::Seq)?;
                // SAFETY: output row (t, h) lies inside out and belongs to head h's task.
                let dst =
                    unsafe { core::slice::from_raw_parts_mut(shared.at((t * heads + h) * d), d) };
                dst.fill(0.0);
                for (&p, vj) in row.iter().zip(v.chunks_exact(d)) {
                    crate::act::axpy(level, p, vj, dst);
                }
            }
            Ok(())
        }
    })
}

/// [`dot`] on a level.
struct Dot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl pulp::WithSimd for Dot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> f32 {
        dot(simd, self.a, self.b)
    }
}

/// `Σ aᵢ bᵢ` with four vector accumulators.
#[inline(always)]
fn dot<S: pulp::Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let mut acc = [simd.splat_f32s(0.0); 4];
    // Explicit groups of four, so that the accumulators stay in registers.
    let (mut aq, mut bq) = (av.chunks_exact(4), bv.chunks_exact(4));
    for (x4, y4) in (&mut aq).zip(&mut bq) {
        for ((a, &x), &y) in acc.iter_mut().zip(x4).zip(y4) {
            *a = simd.mul_add_e_f32s(x, y, *a);
        }
    }
    for (&x, &y) in aq.remainder().iter().zip(bq.remainder()) {
        acc[0] = simd.mul_add_e_f32s(x, y, acc[0]);
    }
    if !at.is_empty() {
        acc[0] = simd.mul_add_e_f32s(
            simd.partial_load_f32s(at),
            simd.partial_load_f32s(bt),
            acc[0],
        );
    }
    simd.reduce_sum_f32s(
        simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3])),
    )
}
