//! ggml's Q8_K: the activation block that TQ1_0 and TQ2_0 (and the K-quants) dot with.
//!
//! ```text
//! block of 256 values, 292 bytes (little-endian):
//!   bytes   0..4    d: f32            value = d * q
//!   bytes   4..260  q: 256 x i8
//!   bytes 260..292  bsums: 16 x i16   bsums[j] = Σ q[16j..16j+16]
//! ```
//! Quantization follows ggml's reference (`quantize_row_q8_K_ref`): `max` is the value of largest
//! magnitude (the first one on ties), `iscale = -127 / max`,
//! `q = min(127, round_half_even(iscale · x))`, `d = 1 / iscale` (so `d` has the opposite sign
//! of `max`); an all-zero block has `d = 0` and zero values and sums.

use crate::error::{QuantError, check_finite, check_len, elements};

/// Values per block.
pub const QK_K: usize = 256;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 292;

/// One Q8_K block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockQ8K {
    /// Scale: value = `d * q`.
    pub d: f32,
    /// The quantized values.
    pub q: [i8; QK_K],
    /// Sums of `q` over each 16 consecutive values.
    pub bsums: [i16; QK_K / 16],
}

impl BlockQ8K {
    /// Quantizes 256 values as ggml does (module docs). Non-finite values are an error.
    pub fn quantize(x: &[f32]) -> Result<BlockQ8K, QuantError> {
        check_len("Q8_K block", QK_K, x.len())?;
        match Self::quantize_with(crate::activations::RowOps::for_ceiling()?, x) {
            Some(block) => Ok(block),
            None => {
                check_finite("Q8_K block", x)?;
                unreachable!("a non-finite value was found")
            }
        }
    }

    /// [`BlockQ8K::quantize`] with the row operations of the ceiling; `None` if a value is not
    /// finite (found in the same pass as the scale).
    pub(crate) fn quantize_with(rows: crate::activations::RowOps, x: &[f32]) -> Option<BlockQ8K> {
        let mut block = BlockQ8K {
            d: 0.0,
            q: [0; QK_K],
            bsums: [0; QK_K / 16],
        };
        let amax = rows.absmax(x);
        if !amax.is_finite() {
            return None;
        }
        if amax == 0.0 {
            return Some(block);
        }
        // The first value of the largest magnitude, with its sign.
        let max = *x
            .iter()
            .find(|v| v.abs() == amax)
            .expect("amax is some |x|");
        let iscale = -127.0 / max;
        if iscale.is_finite() {
            // |iscale * v| <= 127 up to rounding, so the clamp to [-128, 127] acts as ggml's
            // min(127, ·).
            rows.quantize(x, iscale, &mut block.q);
            block.d = 1.0 / iscale;
        } else {
            // |max| below ~3.7e-37: -127 / max overflows f32 (ggml would write garbage here).
            // The same arithmetic in f64, with d = max / -127 rounded to f32.
            let iscale = -127.0 / f64::from(max);
            for (q, &v) in block.q.iter_mut().zip(x) {
                *q = ((iscale * f64::from(v)).round_ties_even() as i32).min(127) as i8;
            }
            block.d = (f64::from(max) / -127.0) as f32;
        }
        block.fill_sums();
        Some(block)
    }

    fn fill_sums(&mut self) {
        for (s, chunk) in self.bsums.iter_mut().zip(self.q.chunks_exact(16)) {
            *s = chunk.iter().map(|&v| i16::from(v)).sum();
        }
    }

    /// The 292 bytes of the block.
    pub fn to_bytes(&self) -> [u8; BLOCK_BYTES] {
        let mut out = [0u8; BLOCK_BYTES];
        out[..4].copy_from_slice(&self.d.to_le_bytes());
        for (o, &q) in out[4..260].iter_mut().zip(&self.q) {
            *o = q as u8;
        }
        for (o, s) in out[260..].chunks_exact_mut(2).zip(&self.bsums) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// A block from its 292 bytes; `d` must be finite and the sums the sums of the values.
    pub fn from_bytes(bytes: &[u8]) -> Result<BlockQ8K, QuantError> {
        check_len("Q8_K block bytes", BLOCK_BYTES, bytes.len())?;
        let mut block = BlockQ8K {
            d: f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")),
            q: [0; QK_K],
            bsums: [0; QK_K / 16],
        };
        if !block.d.is_finite() {
            return Err(QuantError::Malformed {
                format: "Q8_K",
                offset: 0,
                reason: format!("the scale is {}", block.d),
            });
        }
        for (q, &b) in block.q.iter_mut().zip(&bytes[4..260]) {
            *q = b as i8;
        }
        block.fill_sums();
        for (j, (stored, &sum)) in bytes[260..].chunks_exact(2).zip(&block.bsums).enumerate() {
            if i16::from_le_bytes([stored[0], stored[1]]) != sum {
                return Err(QuantError::Malformed {
                    format: "Q8_K",
                    offset: 260 + 2 * j,
                    reason: format!("block sum {j} is not the sum of its 16 values ({sum})"),
                });
            }
        }
        Ok(block)
    }

    /// `d * q` for the 256 values.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        for (o, &q) in out.iter_mut().zip(&self.q) {
            *o = self.d * f32::from(q);
        }
    }
}

/// `tokens x k` activations as Q8_K blocks (`k / 256` per token, token-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Q8KActivations {
    tokens: usize,
    k: usize,
    blocks: Vec<BlockQ8K>,
}

impl Q8KActivations {
    /// Quantizes the row-major `tokens x k` activations (each 256-block as ggml does). Errors:
    /// `k` not a multiple of 256, a length mismatch, a non-finite value.
    pub fn quantize(x: &[f32], tokens: usize, k: usize) -> Result<Q8KActivations, QuantError> {
        if !k.is_multiple_of(QK_K) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: QK_K,
                format: "Q8_K",
            });
        }
        crate::error::check_k(k)?;
        check_len("activations", elements(tokens, k)?, x.len())?;
        let rows = crate::activations::RowOps::for_ceiling()?;
        let mut blocks = Vec::with_capacity(x.len() / QK_K);
        for c in x.chunks_exact(QK_K) {
            match BlockQ8K::quantize_with(rows, c) {
                Some(b) => blocks.push(b),
                None => {
                    check_finite("activations", x)?;
                    unreachable!("a non-finite value was found");
                }
            }
        }
        Ok(Q8KActivations { tokens, k, blocks })
    }

    /// Activations from blocks (`tokens * k / 256` of them).
    pub fn from_blocks(
        tokens: usize,
        k: usize,
        blocks: Vec<BlockQ8K>,
    ) -> Result<Q8KActivations, QuantError> {
        if !k.is_multiple_of(QK_K) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: QK_K,
                format: "Q8_K",
            });
        }
        crate::error::check_k(k)?;
        check_len("Q8_K blocks", elements(tokens, k)? / QK_K, blocks.len())?;
        if let Some(i) = blocks.iter().position(|b| !b.d.is_finite()) {
            return Err(QuantError::Malformed {
                format: "Q8_K",
                offset: i * BLOCK_BYTES,
                reason: format!("block {i} has the scale {}", blocks[i].d),
            });
        }
        for (i, b) in blocks.iter().enumerate() {
            let mut fixed = *b;
            fixed.fill_sums();
            if fixed.bsums != b.bsums {
                return Err(QuantError::Malformed {
                    format: "Q8_K",
                    offset: i * BLOCK_BYTES + 260,
                    reason: format!("block {i}'s sums are not the sums of its values"),
                });
            }
        }
        Ok(Q8KActivations { tokens, k, blocks })
    }

    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// All blocks, token-major.
    pub fn blocks(&self) -> &[BlockQ8K] {
        &self.blocks
    }

    /// Token `t`'s blocks.
    ///
    /// # Panics
    /// If `t >= tokens`.
    pub fn row(&self, t: usize) -> &[BlockQ8K] {
        let per = self.k / QK_K;
        &self.blocks[t * per..(t + 1) * per]
    }
}
