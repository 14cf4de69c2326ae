//! The KV cache: keys and values of past tokens, per KV head, in f32 or f16.
//!
//! Layout: keys (and, separately, values) `kv_heads × capacity × head_dim`, so that each head's
//! keys are one contiguous run the attention kernels stream; token `t` of head `h` at
//! `(h · capacity + t) · head_dim`. `append` writes new tokens after the last one (f16 storage
//! rounds to nearest even through `bitnet_quant::float16`, exactly as `half` does).

use bitnet_quant::float16;
use half::f16;

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
        let n = kv_heads
            .checked_mul(head_dim)
            .and_then(|v| v.checked_mul(capacity))
            .ok_or_else(|| NnError::Invalid {
                what: "KV cache shape",
                reason: format!("{kv_heads} x {capacity} x {head_dim} overflows"),
            })?;
        let alloc = || -> Result<Buf, NnError> {
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
            k: alloc()?,
            v: alloc()?,
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
        for (src, dst) in [(k, &mut self.k), (v, &mut self.v)] {
            for t in 0..tokens {
                for h in 0..self.kv_heads {
                    let from = &src[(t * self.kv_heads + h) * d..][..d];
                    let at = (h * cap + len + t) * d;
                    match dst {
                        Buf::F32(b) => b[at..at + d].copy_from_slice(from),
                        Buf::F16(b) => float16::f32_to_f16(from, &mut b[at..at + d])?,
                    }
                }
            }
        }
        self.len += tokens;
        Ok(())
    }

    /// Keys (`values` false) or values of head `h` at positions `range`, as f32 into `out`
    /// (`range.len() × head_dim`).
    pub(crate) fn read(
        &self,
        values: bool,
        h: usize,
        range: core::ops::Range<usize>,
        out: &mut [f32],
    ) -> Result<(), NnError> {
        let d = self.head_dim;
        let at = (h * self.capacity + range.start) * d;
        let n = range.len() * d;
        match if values { &self.v } else { &self.k } {
            Buf::F32(b) => out[..n].copy_from_slice(&b[at..at + n]),
            Buf::F16(b) => float16::f16_to_f32(&b[at..at + n], &mut out[..n])?,
        }
        Ok(())
    }

    /// Keys or values of head `h` at positions `range` when stored as f32 (no copy).
    pub(crate) fn f32_slice(
        &self,
        values: bool,
        h: usize,
        range: core::ops::Range<usize>,
    ) -> Option<&[f32]> {
        let d = self.head_dim;
        let at = (h * self.capacity + range.start) * d;
        match if values { &self.v } else { &self.k } {
            Buf::F32(b) => Some(&b[at..at + range.len() * d]),
            Buf::F16(_) => None,
        }
    }
}
