//! The flash-style kernel: tasks of (KV head, block of queries); per task the visible keys in
//! tiles of `KEY_TILE` positions, each tile read (or converted from f16) once and applied to
//! every query of the block and every query head of the group; per query a running maximum `m`,
//! sum `l` and output `o` (online softmax):
//!
//! ```text
//! s_j = scale · q·k_j         (j in the tile, up to the query's last visible position)
//! m' = max(m, max_j s_j);  c = e^(m − m');  p_j = e^(s_j − m')
//! l  = l·c + Σ_j p_j;      o = o·c + Σ_j p_j v_j;     m = m'
//! ```
//! and `o / l` at the end.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

use super::{KEY_TILE, KvCache, visible};
use crate::error::NnError;
use crate::math::exp;

/// Queries per task.
const QUERY_BLOCK: usize = 32;

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
    let d = cache.head_dim();
    let len = cache.len();
    if tokens == 0 {
        return Ok(());
    }
    let blocks = tokens.div_ceil(QUERY_BLOCK);
    let tasks = cache.kv_heads() * blocks;
    let shared = SharedOut::new(out.as_mut_ptr());
    let scale = 1.0 / (d as f32).sqrt();
    let work = (len * d * cache.element_bytes() * 2).saturating_mul(blocks * group);
    super::try_tasks(par.for_bytes(work), tasks, |task| {
        let (g, b) = (task / blocks, task % blocks);
        let t_range = b * QUERY_BLOCK..tokens.min((b + 1) * QUERY_BLOCK);
        let nq = t_range.len() * group;
        let mut state = ScratchPool::global().take::<f32>(nq * (d + 2) + 2 * KEY_TILE * d);
        let (o, rest) = state.split_at_mut(nq * d);
        let (ml, tiles) = rest.split_at_mut(2 * nq);
        let (k_tile, v_tile) = tiles.split_at_mut(KEY_TILE * d);
        for i in 0..nq {
            ml[2 * i] = f32::NEG_INFINITY;
        }
        // The last position any query of the block sees.
        let last = visible(len, tokens, t_range.end - 1, causal);
        for j0 in (0..last).step_by(KEY_TILE) {
            let jn = KEY_TILE.min(last - j0);
            let (k, v) = match (
                cache.f32_slice(false, g, j0..j0 + jn),
                cache.f32_slice(true, g, j0..j0 + jn),
            ) {
                (Some(k), Some(v)) => (k, v),
                _ => {
                    cache.read(false, g, j0..j0 + jn, k_tile)?;
                    cache.read(true, g, j0..j0 + jn, v_tile)?;
                    (&k_tile[..jn * d], &v_tile[..jn * d])
                }
            };
            for (ti, t) in t_range.clone().enumerate() {
                let seen = visible(len, tokens, t, causal).saturating_sub(j0).min(jn);
                if seen == 0 {
                    continue;
                }
                for hg in 0..group {
                    let h = g * group + hg;
                    let i = ti * group + hg;
                    let qv = &q[(t * heads + h) * d..][..d];
                    let (m, l) = (ml[2 * i], ml[2 * i + 1]);
                    let (m, l) = level.run(TileStep {
                        q: qv,
                        k: &k[..seen * d],
                        v: &v[..seen * d],
                        scale,
                        m,
                        l,
                        o: &mut o[i * d..(i + 1) * d],
                    });
                    (ml[2 * i], ml[2 * i + 1]) = (m, l);
                }
            }
        }
        for (ti, t) in t_range.clone().enumerate() {
            for hg in 0..group {
                let h = g * group + hg;
                let i = ti * group + hg;
                let inv = 1.0 / ml[2 * i + 1];
                // SAFETY: output row (t, h) lies inside out (tokens × heads × d, checked by the
                // caller) and belongs to this task's (KV head, query block) alone.
                let dst =
                    unsafe { core::slice::from_raw_parts_mut(shared.at((t * heads + h) * d), d) };
                for (y, &x) in dst.iter_mut().zip(&o[i * d..(i + 1) * d]) {
                    *y = x * inv;
                }
            }
        }
        Ok(())
    })
}

/// One query against one tile of `k.len() / d` keys: updates `(m, l)` and `o` (module docs).
struct TileStep<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    scale: f32,
    m: f32,
    l: f32,
    o: &'a mut [f32],
}

impl WithSimd for TileStep<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f32, f32) {
        let TileStep {
            q,
            k,
            v,
            scale,
            m,
            l,
            o,
        } = self;
        let d = q.len();
        let n = k.len() / d;
        let mut s = [0f32; super::KEY_TILE];
        for (j, kj) in k.chunks_exact(d).enumerate() {
            s[j] = dot(simd, q, kj) * scale;
        }
        let tile_max = s[..n].iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let m_new = m.max(tile_max);
        // exp of the shifted scores, one vector at a time.
        let shift = simd.splat_f32s(m_new);
        let (sv, st) = S::as_mut_simd_f32s(&mut s[..n]);
        for x in sv.iter_mut() {
            *x = exp(simd, simd.sub_f32s(*x, shift));
        }
        if !st.is_empty() {
            let e = exp(simd, simd.sub_f32s(simd.partial_load_f32s(st), shift));
            simd.partial_store_f32s(st, e);
        }
        let c = if m == f32::NEG_INFINITY {
            0.0
        } else {
            (m - m_new).exp()
        };
        let l_new = l * c + s[..n].iter().sum::<f32>();
        // o = o·c + Σ p_j v_j, four vectors of o at a time held in registers over the keys.
        let cv = simd.splat_f32s(c);
        let (ov, ot) = S::as_mut_simd_f32s(o);
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        for (b, block) in ov.chunks_mut(4).enumerate() {
            let mut acc = [simd.splat_f32s(0.0); 4];
            for (a, &x) in acc.iter_mut().zip(block.iter()) {
                *a = simd.mul_f32s(x, cv);
            }
            for (j, vj) in v.chunks_exact(d).enumerate() {
                let p = simd.splat_f32s(s[j]);
                let (vv, _) = S::as_simd_f32s(&vj[4 * b * lanes..]);
                for (a, &y) in acc.iter_mut().zip(vv.iter().take(block.len())) {
                    *a = simd.mul_add_e_f32s(p, y, *a);
                }
            }
            for (x, &a) in block.iter_mut().zip(&acc) {
                *x = a;
            }
        }
        let tail0 = d - ot.len();
        for (i, x) in ot.iter_mut().enumerate() {
            let mut acc = *x * c;
            for (j, vj) in v.chunks_exact(d).enumerate() {
                acc = s[j].mul_add(vj[tail0 + i], acc);
            }
            *x = acc;
        }
        (m_new, l_new)
    }
}

/// `Σ aᵢ bᵢ` with four vector accumulators.
#[inline(always)]
pub(super) fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
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
