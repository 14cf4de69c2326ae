//! The KV cache: keys and values of past tokens, per KV head, in f32 or f16.
//!
//! Layout (element offsets; `T` = [`KEY_TILE`], `d` = `head_dim`, `tiles = ⌈capacity / T⌉`):
//! - values: `kv_heads × capacity × d`, row-major: value `c` of token `t` of head `h` at
//!   `(h · capacity + t) · d + c`. The kernels add whole value rows scaled by their weight.
//! - keys: per head, tiles of `T` tokens stored transposed (`d × T`, one row per dimension):
//!   key `c` of token `t` of head `h` at `((h · tiles + t / T) · d + c) · T + t mod T`. A row of a
//!   tile is `T` consecutive tokens' values of one dimension, so the scores of a whole tile come
//!   from broadcast-multiply-adds of the query's dimensions with no horizontal sums. Columns of
//!   the last tile past `len` hold zeros or stale tokens and are never part of a result.
//!
//! `append` writes new tokens after the last one (f16 storage rounds to nearest even through
//! `bitnet_quant::float16`, exactly as `half` does).

use bitnet_quant::float16;
use bitnet_simd::mem::Ahead;
use half::f16;

use super::KEY_TILE;
use crate::error::{NnError, check_len};

/// The element type of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvStorage {
    /// f32: exact.
    F32,
    /// f16: half the bytes per token (rounded to nearest even; |values| past 65504 become inf).
    F16,
}

#[derive(Clone, Debug, PartialEq)]
enum Buf {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl Buf {
    /// Elements `span` as f32 into the start of `out`.
    fn read(&self, span: core::ops::Range<usize>, out: &mut [f32]) -> Result<(), NnError> {
        let out = &mut out[..span.len()];
        match self {
            Buf::F32(b) => out.copy_from_slice(&b[span]),
            Buf::F16(b) => float16::f16_to_f32(&b[span], out)?,
        }
        Ok(())
    }

    /// Elements `span` when stored as f32.
    fn f32_slice(&self, span: core::ops::Range<usize>) -> Option<&[f32]> {
        match self {
            Buf::F32(b) => Some(&b[span]),
            Buf::F16(_) => None,
        }
    }

    /// Elements `span` as a prefetch over `steps` steps.
    fn ahead(&self, span: core::ops::Range<usize>, steps: usize) -> Ahead {
        match self {
            Buf::F32(b) => Ahead::new(&b[span], steps),
            Buf::F16(b) => Ahead::new(&b[span], steps),
        }
    }
}

/// Keys and values of up to `capacity` tokens (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct KvCache {
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
    k: Buf,
    v: Buf,
}

impl KvCache {
    /// An empty cache for `capacity` tokens of `kv_heads` heads of `head_dim` (both > 0).
    pub fn new(
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        storage: KvStorage,
    ) -> Result<KvCache, NnError> {
        if kv_heads == 0 || head_dim == 0 {
            return Err(NnError::Invalid {
                what: "KV cache shape",
                reason: format!("{kv_heads} heads of {head_dim}: both must be positive"),
            });
        }
        let elements = |tokens: usize| {
            kv_heads
                .checked_mul(head_dim)
                .and_then(|v| v.checked_mul(tokens))
                .ok_or_else(|| NnError::Invalid {
                    what: "KV cache shape",
                    reason: format!("{kv_heads} x {capacity} x {head_dim} overflows"),
                })
        };
        let tiles = capacity.div_ceil(KEY_TILE);
        let alloc = |n: usize| -> Result<Buf, NnError> {
            let fail = |_| NnError::Invalid {
                what: "KV cache",
                reason: format!("{n} elements cannot be allocated"),
            };
            Ok(match storage {
                KvStorage::F32 => {
                    let mut v = Vec::new();
                    v.try_reserve_exact(n).map_err(fail)?;
                    v.resize(n, 0f32);
                    Buf::F32(v)
                }
                KvStorage::F16 => {
                    let mut v = Vec::new();
                    v.try_reserve_exact(n).map_err(fail)?;
                    v.resize(n, f16::ZERO);
                    Buf::F16(v)
                }
            })
        };
        Ok(KvCache {
            kv_heads,
            head_dim,
            capacity,
            len: 0,
            k: alloc(elements(tiles.saturating_mul(KEY_TILE))?)?,
            v: alloc(elements(capacity)?)?,
        })
    }

    /// KV heads.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Values per head vector.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Tokens the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element type.
    pub fn storage(&self) -> KvStorage {
        match self.k {
            Buf::F32(_) => KvStorage::F32,
            Buf::F16(_) => KvStorage::F16,
        }
    }

    /// Bytes per stored element.
    pub fn element_bytes(&self) -> usize {
        match self.k {
            Buf::F32(_) => 4,
            Buf::F16(_) => 2,
        }
    }

    /// Forgets every token after the first `len` (no effect if `len ≥ self.len()`).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `tokens` tokens: `k` and `v` are `tokens × kv_heads × head_dim` each (the layout
    /// a K or V projection writes). An error if they do not match or the cache would overflow.
    pub fn append(&mut self, k: &[f32], v: &[f32]) -> Result<(), NnError> {
        let token_len = self.kv_heads * self.head_dim;
        let tokens = crate::error::rows_of("k", k.len(), token_len)?;
        check_len("v", k.len(), v.len())?;
        if tokens > self.capacity - self.len {
            return Err(NnError::Invalid {
                what: "KV cache",
                reason: format!(
                    "{tokens} more tokens exceed the capacity {} (holding {})",
                    self.capacity, self.len
                ),
            });
        }
        let (d, cap, len) = (self.head_dim, self.capacity, self.len);
        let mut halves = vec![f16::ZERO; d];
        for t in 0..tokens {
            for h in 0..self.kv_heads {
                let row = (t * self.kv_heads + h) * d..(t * self.kv_heads + h + 1) * d;
                let at = (h * cap + len + t) * d;
                match &mut self.v {
                    Buf::F32(b) => b[at..at + d].copy_from_slice(&v[row.clone()]),
                    Buf::F16(b) => float16::f32_to_f16(&v[row.clone()], &mut b[at..at + d])?,
                }
                // A key goes into one column of its tile.
                let (tile, col) = self.key_tile_at(h, len + t);
                let column = (tile..tile + d * KEY_TILE)
                    .step_by(KEY_TILE)
                    .map(|i| i + col);
                match &mut self.k {
                    Buf::F32(b) => {
                        for (i, &x) in column.zip(&k[row]) {
                            b[i] = x;
                        }
                    }
                    Buf::F16(b) => {
                        float16::f32_to_f16(&k[row], &mut halves)?;
                        for (i, &x) in column.zip(&halves) {
                            b[i] = x;
                        }
                    }
                }
            }
        }
        self.len += tokens;
        Ok(())
    }

    /// The offset of the key tile holding token `t` of head `h`, and `t`'s column in it.
    fn key_tile_at(&self, h: usize, t: usize) -> (usize, usize) {
        let tiles = self.capacity.div_ceil(KEY_TILE);
        (
            (h * tiles + t / KEY_TILE) * self.head_dim * KEY_TILE,
            t % KEY_TILE,
        )
    }

    /// The elements of key tile `tile` of head `h` (tokens `tile · KEY_TILE ..`, transposed:
    /// `head_dim × KEY_TILE`, module docs).
    fn key_tile_span(&self, h: usize, tile: usize) -> core::ops::Range<usize> {
        let (at, _) = self.key_tile_at(h, tile * KEY_TILE);
        at..at + self.head_dim * KEY_TILE
    }

    /// The elements of the values of head `h` at positions `range` (`range.len() × head_dim`).
    fn value_span(&self, h: usize, range: core::ops::Range<usize>) -> core::ops::Range<usize> {
        let d = self.head_dim;
        let at = (h * self.capacity + range.start) * d;
        at..at + range.len() * d
    }

    /// Key tile `tile` of head `h` as f32 into `out`.
    pub(crate) fn read_key_tile(
        &self,
        h: usize,
        tile: usize,
        out: &mut [f32],
    ) -> Result<(), NnError> {
        self.k.read(self.key_tile_span(h, tile), out)
    }

    /// Key tile `tile` of head `h` when stored as f32 (no copy).
    pub(crate) fn key_tile_f32(&self, h: usize, tile: usize) -> Option<&[f32]> {
        self.k.f32_slice(self.key_tile_span(h, tile))
    }

    /// Key tile `tile` of head `h` as a prefetch spread over `steps` steps (nothing past the
    /// last tile).
    pub(crate) fn key_tile_ahead(&self, h: usize, tile: usize, steps: usize) -> Ahead {
        if tile >= self.capacity.div_ceil(KEY_TILE) {
            return Ahead::none();
        }
        self.k.ahead(self.key_tile_span(h, tile), steps)
    }

    /// Values of head `h` at positions `range` as a prefetch spread over `steps` steps.
    pub(crate) fn values_ahead(
        &self,
        h: usize,
        range: core::ops::Range<usize>,
        steps: usize,
    ) -> Ahead {
        if range.is_empty() || range.end > self.capacity {
            return Ahead::none();
        }
        self.v.ahead(self.value_span(h, range), steps)
    }

    /// Values of head `h` at positions `range`, as f32 into `out` (`range.len() × head_dim`).
    pub(crate) fn read_values(
        &self,
        h: usize,
        range: core::ops::Range<usize>,
        out: &mut [f32],
    ) -> Result<(), NnError> {
        self.v.read(self.value_span(h, range), out)
    }

    /// Values of head `h` at positions `range` when stored as f32 (no copy).
    pub(crate) fn values_f32(&self, h: usize, range: core::ops::Range<usize>) -> Option<&[f32]> {
        self.v.f32_slice(self.value_span(h, range))
    }

    /// Keys of head `h` at positions `0..len`, row-major (`len × head_dim`) as f32 into `out`:
    /// gathered from the transposed tiles.
    pub(crate) fn read_keys(&self, h: usize, len: usize, out: &mut [f32]) -> Result<(), NnError> {
        let d = self.head_dim;
        let mut tile = vec![0f32; d * KEY_TILE];
        for (b, rows) in out[..len * d].chunks_mut(KEY_TILE * d).enumerate() {
            self.read_key_tile(h, b, &mut tile)?;
            for (j, row) in rows.chunks_exact_mut(d).enumerate() {
                for (c, x) in row.iter_mut().enumerate() {
                    *x = tile[c * KEY_TILE + j];
                }
            }
        }
        Ok(())
    }
}
