//! Scaled dot-product attention over a [`KvCache`]: causal or not, grouped-query (fewer KV heads
//! than query heads), multi-threaded over (KV head, query block) tasks.
//!
//! Shapes: `q` and the output are `tokens × heads × head_dim`; the queries are the last
//! `tokens` tokens of the cache (positions `len − tokens ..`), so a decode step appends its key
//! and value and attends with one query, and a prefill appends the prompt and attends with all
//! of it. With `causal`, query `t` sees cache positions `0 ..= len − tokens + t`; without, every
//! position. Query head `h` reads KV head `h / (heads / kv_heads)`. Scores are scaled by
//! `1 / √head_dim`.
//!
//! - [`attention`]: flash-style: per KV head and block of queries, the keys (stored transposed
//!   per tile, see [`KvCache`]) and values stream through in tiles of [`KEY_TILE`] positions (converted from f16 once per tile and shared by
//!   every query head of the group); each query keeps a running maximum, sum and output and
//!   rescales them when the maximum grows (online softmax). The score matrix never exists;
//!   memory is one tile per thread.
//! - [`attention_naive`]: materialises each head's `tokens × len` score matrix, takes row
//!   softmaxes ([`crate::softmax`]), then multiplies by V: the baseline.
//!
//! Error (both, ε = `f32::EPSILON`, against the f64 formula on the same stored K/V): each
//! score is a dot of `d = head_dim` terms, relative to `Σ |q k| / √d`: `(d + 2) ε` in the flash
//! kernel (one FMA chain per score over the pre-scaled query), `(⌈d / 4⌉ + 16) ε` in the naive
//! one (four chains, then a horizontal sum); the output is a weighted mean:
//! `|o − ô| ≤ (2 · E + (n + 32) ε) · Σⱼ pⱼ |vⱼ|` with `E` the largest score error and `n` the
//! visible positions (tested with the larger of the two score bounds).

mod flash;
mod kv_cache;
mod naive;

pub use kv_cache::{KvCache, KvStorage};

use bitnet_simd::Par;

use crate::error::{NnError, check_len};

/// Key positions per tile of the flash-style kernel (`64 × head_dim` f32 of K and of V: 64 KiB
/// at `head_dim = 128`, in L2).
pub const KEY_TILE: usize = 64;

/// The checked shape of a call: `(group, token_len)`.
fn check(
    q: &[f32],
    tokens: usize,
    heads: usize,
    cache: &KvCache,
    out: &[f32],
) -> Result<usize, NnError> {
    let kv = cache.kv_heads();
    if heads == 0 || !heads.is_multiple_of(kv) {
        return Err(NnError::Invalid {
            what: "heads",
            reason: format!("{heads} query heads are not a positive multiple of {kv} KV heads"),
        });
    }
    if tokens > cache.len() {
        return Err(NnError::Invalid {
            what: "tokens",
            reason: format!(
                "{tokens} queries but the cache holds {} tokens (append the keys and values first)",
                cache.len()
            ),
        });
    }
    let n = tokens * heads * cache.head_dim();
    check_len("q", n, q.len())?;
    check_len("output", n, out.len())?;
    Ok(heads / kv)
}

/// Flash-style attention of the last `tokens` tokens of `cache` (module docs): `q` and `out`
/// are `tokens × heads × head_dim`.
pub fn attention(
    q: &[f32],
    tokens: usize,
    heads: usize,
    cache: &KvCache,
    causal: bool,
    out: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    let group = check(q, tokens, heads, cache, out)?;
    flash::run(q, tokens, heads, group, cache, causal, out, par)
}

/// The naive attention (module docs): the same result by materialising the scores.
pub fn attention_naive(
    q: &[f32],
    tokens: usize,
    heads: usize,
    cache: &KvCache,
    causal: bool,
    out: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    let group = check(q, tokens, heads, cache, out)?;
    naive::run(q, tokens, heads, group, cache, causal, out, par)
}

/// Runs the fallible `task(i)` for `i` in `0..n` on `par` and returns the first error any
/// returned (tasks after an error still run).
fn try_tasks(
    par: Par,
    n: usize,
    task: impl Fn(usize) -> Result<(), NnError> + Sync,
) -> Result<(), NnError> {
    let first = std::sync::Mutex::new(None);
    par.for_each_task(n, |i| {
        if let Err(e) = task(i) {
            first
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
    });
    match first.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Positions query `t` of `tokens` sees in a cache of `len`.
fn visible(len: usize, tokens: usize, t: usize, causal: bool) -> usize {
    if causal { len - tokens + t + 1 } else { len }
}
