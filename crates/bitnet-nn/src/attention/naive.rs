//! The naive attention: per query head (one task each), the whole `tokens × len` score matrix
//! (f32), a softmax of each row's visible prefix, then `P · V` one AXPY per score.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};

use super::flash::dot;
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
            cache.read(false, g, 0..len, &mut k)?;
            cache.read(true, g, 0..len, &mut v)?;
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
