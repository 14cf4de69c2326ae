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

use bitnet_simd::mem::Ahead;
use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

use super::{KEY_TILE, KvCache, KvStorage, visible};
use crate::error::NnError;
use crate::math::exp;

// Per tile, the queries go in passes of up to `P` (4 on AVX-512, 2 on AVX2: `P × KEY_TILE /
// lanes` = 16 vector accumulators). A pass's scores come from the transposed key tile (the
// cache's layout: one row of `KEY_TILE` keys per dimension `c`): `s[p][..] += q[p][c] · row_c`,
// a broadcast and `KEY_TILE / lanes` FMAs per query and dimension, no horizontal sums. Then per
// query: the tile maximum and `exp` over the score vectors, and `o = o·c + Σ p_j v_j` with up to
// eight vectors of `o` in registers while the value rows stream past.

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
        let mut state = ScratchPool::global().take::<f32>(nq * (2 * d + 2) + 2 * KEY_TILE * d);
        let (qs, rest) = state.split_at_mut(nq * d);
        let (o, rest) = rest.split_at_mut(nq * d);
        let (ml, tiles) = rest.split_at_mut(2 * nq);
        let (k_tile, v_tile) = tiles.split_at_mut(KEY_TILE * d);
        // The task's queries in order (token, head of the group), pre-scaled.
        for (ti, t) in t_range.clone().enumerate() {
            for hg in 0..group {
                let row = &q[(t * heads + g * group + hg) * d..][..d];
                for (x, &y) in qs[(ti * group + hg) * d..][..d].iter_mut().zip(row) {
                    *x = y * scale;
                }
            }
        }
        o.fill(0.0);
        for ml in ml.chunks_exact_mut(2) {
            ml.copy_from_slice(&[f32::NEG_INFINITY, 0.0]);
        }
        let mut seen = vec![0usize; nq];
        // The last position any query of the block sees.
        let last = visible(len, tokens, t_range.end - 1, causal);
        for tile in 0..last.div_ceil(KEY_TILE) {
            let j0 = tile * KEY_TILE;
            let jn = KEY_TILE.min(last - j0);
            let kt = match cache.key_tile_f32(g, tile) {
                Some(k) => k,
                None => {
                    cache.read_key_tile(g, tile, k_tile)?;
                    &*k_tile
                }
            };
            let v = match cache.values_f32(g, j0..j0 + jn) {
                Some(v) => v,
                None => {
                    cache.read_values(g, j0..j0 + jn, v_tile)?;
                    &v_tile[..jn * d]
                }
            };
            for (ti, t) in t_range.clone().enumerate() {
                let n = visible(len, tokens, t, causal).saturating_sub(j0).min(jn);
                seen[ti * group..(ti + 1) * group].fill(n);
            }
            // Software prefetch, because the key and value streams take turns too briefly for
            // the hardware prefetchers. f32: this tile's values while the scores are computed,
            // the next tile's keys while the values are summed. f16 (both converted before the
            // tile): the next tile's keys, then its values.
            let first = seen.iter().position(|&n| n > 0).unwrap_or(0);
            let next = (j0 + KEY_TILE).min(last)..last.min(j0 + 2 * KEY_TILE);
            let next_keys = |steps| {
                if next.is_empty() {
                    Ahead::none()
                } else {
                    cache.key_tile_ahead(g, tile + 1, steps)
                }
            };
            let (during_scores, during_sums) = if cache.storage() == KvStorage::F32 {
                (
                    cache.values_ahead(g, j0..j0 + jn, d),
                    next_keys(seen[first]),
                )
            } else {
                let values = cache.values_ahead(g, next.clone(), seen[first]);
                (next_keys(d), values)
            };
            level.run(TileStep {
                q: qs,
                kt,
                v,
                seen: &seen,
                ml,
                o,
                during_scores,
                during_sums,
            });
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

/// Every query of a task against one key tile: updates each query's `(m, l)` and `o` (module
/// docs). `q` and `o` are `nq × d`, `kt` the transposed tile (`d × KEY_TILE`), `v` the tile's
/// value rows, `seen[i]` how many of the tile's keys query `i` sees (0: skipped);
/// `during_scores` is prefetched over the first pass's scores, `during_sums` over the value
/// sums of the pass holding the first query that sees a key.
struct TileStep<'a> {
    q: &'a [f32],
    kt: &'a [f32],
    v: &'a [f32],
    seen: &'a [usize],
    ml: &'a mut [f32],
    o: &'a mut [f32],
    during_scores: Ahead,
    during_sums: Ahead,
}

impl WithSimd for TileStep<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        match size_of::<S::f32s>() / size_of::<f32>() {
            16 => tile::<S, 4, 4, 4>(simd, self),
            8 => tile::<S, 8, 2, 4>(simd, self),
            4 => tile::<S, 16, 1, 8>(simd, self),
            1 => tile::<S, 64, 1, 8>(simd, self),
            _ => tile::<S, 0, 1, 8>(simd, self),
        }
    }
}

/// [`TileStep`] with `V = KEY_TILE / lanes` score vectors per query (0: no vector form, scalar
/// scores), passes of up to `P` queries and `W` vectors of each output row in registers.
#[inline(always)]
fn tile<S: Simd, const V: usize, const P: usize, const W: usize>(simd: S, step: TileStep<'_>) {
    let TileStep {
        q,
        kt,
        v,
        seen,
        ml,
        o,
        mut during_scores,
        mut during_sums,
    } = step;
    let nq = seen.len();
    let d = q.len() / nq;
    let first = seen.iter().position(|&n| n > 0).unwrap_or(0);
    let mut s = [[0f32; KEY_TILE]; P];
    for p0 in (0..nq).step_by(P) {
        let np = P.min(nq - p0);
        if seen[p0..p0 + np].iter().all(|&n| n == 0) {
            continue;
        }
        let qp = &q[p0 * d..(p0 + np) * d];
        // Only the first pass prefetches (a separate copy of the loop without it for the rest).
        let ahead = if p0 == 0 {
            Some(&mut during_scores)
        } else {
            None
        };
        match (np, ahead) {
            _ if V == 0 => scores_scalar(qp, kt, &mut s[..np]),
            (1, a @ Some(_)) => scores::<S, V, 1>(simd, qp, kt, &mut s, a),
            (1, None) => scores::<S, V, 1>(simd, qp, kt, &mut s, None),
            (2, a) => scores::<S, V, 2>(simd, qp, kt, &mut s, a),
            (3, a) => scores::<S, V, 3>(simd, qp, kt, &mut s, a),
            (_, a @ Some(_)) => scores::<S, V, P>(simd, qp, kt, &mut s, a),
            (_, None) => scores::<S, V, P>(simd, qp, kt, &mut s, None),
        }
        // Per query the softmax step, then o = o·c + Σ p_j v_j: jointly over the keys every
        // query of the pass sees (sharing the value loads), then each query's further keys.
        let mut c = [1f32; P];
        for (p, (s, c)) in s.iter_mut().zip(&mut c).take(np).enumerate() {
            let i = p0 + p;
            if seen[i] > 0 {
                let (m, l) = (ml[2 * i], ml[2 * i + 1]);
                let m_l_c = softmax_step(simd, s, seen[i], m, l);
                (ml[2 * i], ml[2 * i + 1], *c) = m_l_c;
            }
        }
        let pass = &seen[p0..p0 + np];
        let joint = pass.iter().copied().min().unwrap_or(0);
        let o = &mut o[p0 * d..(p0 + np) * d];
        let ahead = if p0 <= first && first < p0 + np {
            Some(&mut during_sums)
        } else {
            None
        };
        match (np, ahead) {
            (1, a) => accumulate::<S, 1, W>(simd, &s, &c, 0..joint, v, o, a),
            (2, a) => accumulate::<S, 2, W>(simd, &s, &c, 0..joint, v, o, a),
            (3, a) => accumulate::<S, 3, W>(simd, &s, &c, 0..joint, v, o, a),
            (_, a @ Some(_)) => accumulate::<S, P, W>(simd, &s, &c, 0..joint, v, o, a),
            (_, None) => accumulate::<S, P, W>(simd, &s, &c, 0..joint, v, o, None),
        }
        for (p, (&n, o)) in pass.iter().zip(o.chunks_exact_mut(d)).enumerate() {
            if n > joint {
                // The scale c is already applied.
                let s = core::slice::from_ref(&s[p]);
                accumulate::<S, 1, W>(simd, s, &[1.0], joint..n, v, o, None);
            }
        }
    }
}

/// `s[p][j] = q_p · k_j` for the `R ≤ s.len()` queries of `q` (`R × d`) and the `KEY_TILE`
/// keys of the transposed tile `kt`: `R × V` vector accumulators, one FMA chain per score (the
/// sum runs over `c` in order).
#[inline(always)]
fn scores<S: Simd, const V: usize, const R: usize>(
    simd: S,
    q: &[f32],
    kt: &[f32],
    s: &mut [[f32; KEY_TILE]],
    mut ahead: Option<&mut Ahead>,
) {
    let d = q.len() / R;
    let rows: [&[f32]; R] = core::array::from_fn(|p| &q[p * d..(p + 1) * d]);
    let mut acc = [[simd.splat_f32s(0.0); V]; R];
    for (c, row) in kt.chunks_exact(KEY_TILE).take(d).enumerate() {
        if let Some(a) = ahead.as_deref_mut() {
            a.step();
        }
        let (kv, _) = S::as_simd_f32s(row);
        let kv = &kv[..V];
        for (acc, q) in acc.iter_mut().zip(&rows) {
            let qc = simd.splat_f32s(q[c]);
            for (a, &k) in acc.iter_mut().zip(kv) {
                *a = simd.mul_add_e_f32s(qc, k, *a);
            }
        }
    }
    for (s, acc) in s.iter_mut().zip(&acc) {
        let (sv, _) = S::as_mut_simd_f32s(s);
        for (x, &a) in sv.iter_mut().zip(acc) {
            *x = a;
        }
    }
}

/// [`scores`] without vectors: the same sums in the same order, one at a time.
fn scores_scalar(q: &[f32], kt: &[f32], s: &mut [[f32; KEY_TILE]]) {
    let d = q.len() / s.len();
    for (s, q) in s.iter_mut().zip(q.chunks_exact(d)) {
        for (j, x) in s.iter_mut().enumerate() {
            *x = q
                .iter()
                .enumerate()
                .fold(0.0, |a, (c, &qc)| qc.mul_add(kt[c * KEY_TILE + j], a));
        }
    }
}

/// One query's online-softmax step over a tile's scores `s`, of which the first `n` are
/// visible: turns them into `p_j = e^(s_j − m')` and returns the new `(m', l')` and the factor
/// `c` the output is to be scaled by (module docs).
#[inline(always)]
fn softmax_step<S: Simd>(
    simd: S,
    s: &mut [f32; KEY_TILE],
    n: usize,
    m: f32,
    l: f32,
) -> (f32, f32, f32) {
    s[n..].fill(f32::NEG_INFINITY);
    let (sv, st) = S::as_mut_simd_f32s(&mut s[..]);
    let mut mx = simd.splat_f32s(f32::NEG_INFINITY);
    for &x in sv.iter() {
        mx = simd.max_f32s(mx, x);
    }
    let tile_max = st.iter().fold(simd.reduce_max_f32s(mx), |a, &b| a.max(b));
    let m_new = m.max(tile_max);
    // exp of the shifted scores (the masked ones give 0), one vector at a time.
    let shift = simd.splat_f32s(m_new);
    let mut sum = simd.splat_f32s(0.0);
    for x in sv.iter_mut() {
        *x = exp(simd, simd.sub_f32s(*x, shift));
        sum = simd.add_f32s(sum, *x);
    }
    let mut sum = simd.reduce_sum_f32s(sum);
    for x in st.iter_mut() {
        *x = (*x - m_new).exp();
        sum += *x;
    }
    let c = if m == f32::NEG_INFINITY {
        0.0
    } else {
        (m - m_new).exp()
    };
    (m_new, l * c + sum, c)
}

/// `o_p = o_p · c_p + Σ_{j ∈ keys} s[p][j] · v_j` for the `R` output rows of `o` (`R × d`):
/// blocks of `W` vectors of every row held in registers (`R × W` accumulators) while the value
/// rows stream past, one load of each value vector for all `R` rows.
#[inline(always)]
fn accumulate<S: Simd, const R: usize, const W: usize>(
    simd: S,
    s: &[[f32; KEY_TILE]],
    scale: &[f32],
    keys: core::ops::Range<usize>,
    v: &[f32],
    o: &mut [f32],
    mut ahead: Option<&mut Ahead>,
) {
    let d = o.len() / R;
    let lanes = size_of::<S::f32s>() / size_of::<f32>();
    let full = d / lanes;
    // Blocks of W vectors, then single vectors, then the last partial vector in scalars; only
    // the first block prefetches.
    let mut x0 = 0;
    while x0 + W <= full {
        accumulate_block::<S, R, W>(simd, s, scale, keys.clone(), v, o, x0, ahead.take());
        x0 += W;
    }
    while x0 < full {
        accumulate_block::<S, R, 1>(simd, s, scale, keys.clone(), v, o, x0, ahead.take());
        x0 += 1;
    }
    let rows = v.chunks_exact(d).take(keys.end).skip(keys.start);
    for p in 0..R {
        let row = &mut o[p * d..(p + 1) * d];
        for (i, x) in row.iter_mut().enumerate().skip(full * lanes) {
            let mut acc = *x * scale[p];
            for (j, vj) in keys.clone().zip(rows.clone()) {
                acc = s[p][j].mul_add(vj[i], acc);
            }
            *x = acc;
        }
    }
}

/// [`accumulate`] for vectors `x0 .. x0 + N` of every output row, in `R × N` registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn accumulate_block<S: Simd, const R: usize, const N: usize>(
    simd: S,
    s: &[[f32; KEY_TILE]],
    scale: &[f32],
    keys: core::ops::Range<usize>,
    v: &[f32],
    o: &mut [f32],
    x0: usize,
    mut ahead: Option<&mut Ahead>,
) {
    let d = o.len() / R;
    let mut acc = [[simd.splat_f32s(0.0); N]; R];
    for (p, acc) in acc.iter_mut().enumerate() {
        let (ov, _) = S::as_simd_f32s(&o[p * d..(p + 1) * d]);
        let c = simd.splat_f32s(scale[p]);
        for (a, &x) in acc.iter_mut().zip(&ov[x0..x0 + N]) {
            *a = simd.mul_f32s(x, c);
        }
    }
    let lanes = size_of::<S::f32s>() / size_of::<f32>();
    for j in keys {
        if let Some(a) = ahead.as_deref_mut() {
            a.step();
        }
        let (vv, _) = S::as_simd_f32s(&v[j * d + x0 * lanes..j * d + (x0 + N) * lanes]);
        let vv = &vv[..N];
        for (acc, s) in acc.iter_mut().zip(s) {
            let p = simd.splat_f32s(s[j]);
            for (a, &y) in acc.iter_mut().zip(vv) {
                *a = simd.mul_add_e_f32s(p, y, *a);
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        let (ov, _) = S::as_mut_simd_f32s(&mut o[p * d..(p + 1) * d]);
        ov[x0..x0 + N].copy_from_slice(acc);
    }
}
