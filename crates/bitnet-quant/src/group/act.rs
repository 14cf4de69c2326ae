//! Int8 activations of the 32-value group formats: one f32 scale per 32 values.
//!
//! Block `j` of token `t` holds `q[32j..32j + 32]` (i8) with scale `d = max|x| / 127`
//! (`q = clamp(round_half_even(x · 127 / max|x|), −127, 127)`, an all-zero block has `d = 0`),
//! its sum `s = Σ q` and `d·s` (what the minimum and offset terms of the weights multiply).
//! The f32 scale (ggml's Q8_0/Q8_1 store f16) keeps the activation error at int8's.

use crate::activations::RowOps;
use crate::error::{QuantError, check_finite, check_k, check_len, elements};

/// Values per activation block.
pub const QK8: usize = 32;

/// `tokens x k` activations in blocks of 32, token-major (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Q8x32Activations {
    tokens: usize,
    k: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    sums: Vec<i32>,
    ds: Vec<f32>,
}

impl Q8x32Activations {
    /// Quantizes row-major `tokens x k` values; `k` a multiple of 32, at most
    /// [`crate::MAX_K`]; non-finite values are an error.
    pub fn quantize(x: &[f32], tokens: usize, k: usize) -> Result<Q8x32Activations, QuantError> {
        check_k(k)?;
        if !k.is_multiple_of(QK8) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: QK8,
                format: "Q8x32 activations",
            });
        }
        check_len("activations", elements(tokens, k)?, x.len())?;
        check_finite("activations", x)?;
        let rows = RowOps::for_ceiling()?;
        let blocks = tokens * (k / QK8);
        let mut out = Q8x32Activations {
            tokens,
            k,
            q: vec![0; tokens * k],
            d: vec![0.0; blocks],
            sums: vec![0; blocks],
            ds: vec![0.0; blocks],
        };
        for (b, (xs, qs)) in x
            .chunks_exact(QK8)
            .zip(out.q.chunks_exact_mut(QK8))
            .enumerate()
        {
            let amax = rows.absmax(xs);
            if amax == 0.0 {
                continue;
            }
            let id = 127.0 / amax;
            let sum = if id.is_finite() {
                rows.quantize(xs, id, qs)
            } else {
                // max|x| below ~3.7e-37: 127 / max|x| overflows f32; the same in f64.
                let id = 127.0 / f64::from(amax);
                let mut sum = 0;
                for (q, &v) in qs.iter_mut().zip(xs) {
                    *q = (f64::from(v) * id).round_ties_even().clamp(-127.0, 127.0) as i8;
                    sum += i32::from(*q);
                }
                sum
            };
            out.d[b] = amax / 127.0;
            out.sums[b] = sum;
            out.ds[b] = out.d[b] * sum as f32;
        }
        Ok(out)
    }

    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The i8 values of token `t` (panics if `t >= tokens`).
    pub fn row(&self, t: usize) -> &[i8] {
        &self.q[t * self.k..(t + 1) * self.k]
    }

    /// The block scales of token `t`.
    pub fn scales(&self, t: usize) -> &[f32] {
        let n = self.k / QK8;
        &self.d[t * n..(t + 1) * n]
    }

    /// The block sums `Σ q` of token `t`.
    pub fn sums(&self, t: usize) -> &[i32] {
        let n = self.k / QK8;
        &self.sums[t * n..(t + 1) * n]
    }

    /// `d · Σ q` per block of token `t`.
    pub fn scaled_sums(&self, t: usize) -> &[f32] {
        let n = self.k / QK8;
        &self.ds[t * n..(t + 1) * n]
    }

    /// The dequantized values `d · q`, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        self.q
            .chunks_exact(QK8)
            .zip(&self.d)
            .flat_map(|(qs, &d)| qs.iter().map(move |&q| d * f32::from(q)))
            .collect()
    }
}
