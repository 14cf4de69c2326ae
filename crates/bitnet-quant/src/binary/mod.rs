//! 1-bit weights (BitNet v1 / the log's binary path) and their scalar XNOR-popcount kernels.
//!
//! Binarization: `w_b = +1 if w − mean(w) ≥ 0 else −1` over the group (tensor or row), with the
//! scale `β = mean|w|` (both means accumulated in f64, rounded to f32), so `w ≈ β · w_b`.
//!
//! Packing (the log's `pack_bits_word_level`): each row is `ceil(cols / 64)` little-endian u64
//! words; bit `j % 64` of word `j / 64` is 1 for +1 and 0 for −1; the padding bits past `cols`
//! are 0 (checked by [`BinaryMatrix::from_parts`], ignored by the kernels).
//!
//! Kernels: with sign-binarized activations (the same packing; `β_x = mean|x|` per token) the dot
//! product of two ±1 vectors of `n` bits is `n − 2 · popcount(a XOR b)`, exact in i32; the
//! output is `f32(dot) · (β_w · β_x)` (`≤ 2 ε |y_exact|` off, ε = `f32::EPSILON`). With int8
//! activations: `Σ w_b · q = 2 Σ_{bit = 1} q − Σ q`, exact, then `f32(·) / a · β_w`
//! (`≤ 3 ε |y_exact|`).

pub mod kernels;

use crate::activations::Int8Activations;
use crate::error::{QuantError, check_finite, check_k, check_len, elements, try_filled};
use crate::ternary::ScaleGroup;

/// u64 words per packed row of `cols` bits.
pub fn words_per_row(cols: usize) -> usize {
    cols.div_ceil(64)
}

/// Packs the sign bits of `values` (bit 1 where `v >= 0`, i.e. +1) into u64 words, low bit
/// first; bits past `values.len()` are 0.
pub fn pack_bits_word_level(values: &[f32]) -> Vec<u64> {
    values
        .chunks(64)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &v)| w | (u64::from(v >= 0.0) << i))
        })
        .collect()
}

/// `n − 2 · popcount(a XOR b)` over the first `n` bits of two packed ±1 vectors (each at least
/// `ceil(n / 64)` words; `n ≤ MAX_K`).
pub fn xnor_dot(a: &[u64], b: &[u64], n: usize) -> Result<i32, QuantError> {
    check_k(n)?;
    let words = words_per_row(n);
    for (what, v) in [("a", a), ("b", b)] {
        if v.len() < words {
            return Err(QuantError::Length {
                what,
                expected: words,
                got: v.len(),
            });
        }
    }
    Ok(xnor_dot_unchecked(a, b, n))
}

/// [`xnor_dot`] for lengths the caller has checked.
fn xnor_dot_unchecked(a: &[u64], b: &[u64], n: usize) -> i32 {
    let words = words_per_row(n);
    let mut differ = 0u32;
    for (i, (&x, &y)) in a[..words].iter().zip(&b[..words]).enumerate() {
        let valid = if (i + 1) * 64 <= n {
            u64::MAX
        } else {
            (1u64 << (n % 64)) - 1
        };
        differ += ((x ^ y) & valid).count_ones();
    }
    n as i32 - 2 * differ as i32
}

/// A `rows x cols` ±1 matrix packed as sign bits, with its scale(s).
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryMatrix {
    rows: usize,
    cols: usize,
    bits: Vec<u64>,
    scales: Vec<f32>,
    /// Set bits (+1 weights) per row, counted once: the int8 kernels' correction term.
    ones: Vec<u32>,
}

impl BinaryMatrix {
    /// The matrix of validated parts, with its per-row counts of +1 weights.
    fn new(rows: usize, cols: usize, bits: Vec<u64>, scales: Vec<f32>) -> BinaryMatrix {
        // Empty when rows hold no bits (then every count is 0; rows may be huge).
        let ones = match words_per_row(cols) {
            0 => Vec::new(),
            wpr => bits
                .chunks_exact(wpr)
                .map(|r| r.iter().map(|w| w.count_ones()).sum())
                .collect(),
        };
        BinaryMatrix {
            rows,
            cols,
            bits,
            scales,
            ones,
        }
    }

    /// Binarizes the row-major `rows x cols` `weights` (module docs) with one scale per tensor
    /// ([`ScaleGroup::Tensor`]) or per row ([`ScaleGroup::Row`]; blocks are not supported).
    pub fn binarize(
        weights: &[f32],
        rows: usize,
        cols: usize,
        group: ScaleGroup,
    ) -> Result<BinaryMatrix, QuantError> {
        check_len("weights", elements(rows, cols)?, weights.len())?;
        check_finite("weights", weights)?;
        let mean = |v: &[f32], f: fn(f32) -> f32| {
            (v.iter().map(|&x| f64::from(f(x))).sum::<f64>() / v.len().max(1) as f64) as f32
        };
        let n_groups = match group {
            ScaleGroup::Tensor => 1,
            ScaleGroup::Row => rows,
            ScaleGroup::Block(_) => {
                return Err(QuantError::Invalid {
                    what: "scale group",
                    reason: "binary weights take one scale per tensor or per row".into(),
                });
            }
        };
        let group_len = if group == ScaleGroup::Row {
            cols
        } else {
            weights.len()
        };
        let mut centers = try_filled("scales", n_groups, 0f32)?;
        let mut scales = try_filled("scales", n_groups, 0f32)?;
        if group_len > 0 {
            for (g, chunk) in weights.chunks_exact(group_len).enumerate() {
                centers[g] = mean(chunk, |x| x);
                scales[g] = mean(chunk, f32::abs);
            }
        }
        let wpr = words_per_row(cols);
        let mut bits = vec![0u64; rows * wpr];
        if cols > 0 {
            for (r, row) in weights.chunks_exact(cols).enumerate() {
                let center = if group == ScaleGroup::Row {
                    centers[r]
                } else {
                    centers[0]
                };
                for (j, &w) in row.iter().enumerate() {
                    bits[r * wpr + j / 64] |= u64::from(w - center >= 0.0) << (j % 64);
                }
            }
        }
        Ok(BinaryMatrix::new(rows, cols, bits, scales))
    }

    /// A matrix from packed rows (`rows * ceil(cols / 64)` words, zero padding bits) and one
    /// scale (per tensor) or `rows` scales (per row), each finite and non-negative.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        bits: Vec<u64>,
        scales: Vec<f32>,
    ) -> Result<BinaryMatrix, QuantError> {
        let wpr = words_per_row(cols);
        check_len("bits", elements(rows, wpr)?, bits.len())?;
        if scales.len() != 1 && scales.len() != rows {
            return Err(QuantError::Invalid {
                what: "scales",
                reason: format!(
                    "{} scales: expected 1 (per tensor) or {rows} (per row)",
                    scales.len()
                ),
            });
        }
        check_finite("scales", &scales)?;
        if scales.iter().any(|&s| s < 0.0) {
            return Err(QuantError::Invalid {
                what: "scales",
                reason: "a negative scale".into(),
            });
        }
        if !cols.is_multiple_of(64) {
            let pad = !((1u64 << (cols % 64)) - 1);
            if let Some(r) = (0..rows).find(|r| bits[r * wpr + wpr - 1] & pad != 0) {
                return Err(QuantError::Invalid {
                    what: "bits",
                    reason: format!("row {r} has set padding bits past column {cols}"),
                });
            }
        }
        Ok(BinaryMatrix::new(rows, cols, bits, scales))
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (bits per row).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Packed row `r`.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[u64] {
        let wpr = words_per_row(self.cols);
        &self.bits[r * wpr..(r + 1) * wpr]
    }

    /// The number of +1 weights (set bits) of row `r`.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn ones(&self, r: usize) -> u32 {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        self.ones.get(r).copied().unwrap_or(0)
    }

    /// The scale of row `r`.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn scale(&self, r: usize) -> f32 {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        if self.scales.len() == 1 {
            self.scales[0]
        } else {
            self.scales[r]
        }
    }

    /// `±scale` for every element, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        if self.cols == 0 {
            return Vec::new();
        }
        (0..self.rows)
            .flat_map(|r| {
                let (row, s) = (self.row(r), self.scale(r));
                (0..self.cols).map(move |j| {
                    if row[j / 64] >> (j % 64) & 1 == 1 {
                        s
                    } else {
                        -s
                    }
                })
            })
            .collect()
    }
}

/// Sign-binarized activations: `tokens` rows of `k` bits (as [`pack_bits_word_level`]) with
/// `β_x = mean|x|` per token.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryActivations {
    tokens: usize,
    k: usize,
    bits: Vec<u64>,
    scales: Vec<f32>,
}

impl BinaryActivations {
    /// Binarizes the row-major `tokens x k` activations: bit = `x >= 0`, scale = `mean|x|`.
    pub fn binarize(x: &[f32], tokens: usize, k: usize) -> Result<BinaryActivations, QuantError> {
        check_k(k)?;
        check_len("activations", elements(tokens, k)?, x.len())?;
        check_finite("activations", x)?;
        let mut scales = try_filled("tokens", tokens, 0f32)?;
        let mut bits = Vec::with_capacity(tokens * words_per_row(k));
        if k > 0 {
            for (t, row) in x.chunks_exact(k).enumerate() {
                bits.extend(pack_bits_word_level(row));
                let mean = row.iter().map(|v| f64::from(v.abs())).sum::<f64>() / k as f64;
                scales[t] = mean as f32;
            }
        }
        Ok(BinaryActivations {
            tokens,
            k,
            bits,
            scales,
        })
    }

    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Bits per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Packed token `t`.
    ///
    /// # Panics
    /// If `t >= tokens`.
    pub fn row(&self, t: usize) -> &[u64] {
        let wpr = words_per_row(self.k);
        &self.bits[t * wpr..(t + 1) * wpr]
    }

    /// `β_x` of token `t`.
    pub fn scale(&self, t: usize) -> f32 {
        self.scales[t]
    }
}

/// `y[t * rows + r] = β_w(r) β_x(t) (W_b[r] · x_b[t])` by XNOR-popcount, scalar.
pub fn gemm_xnor(w: &BinaryMatrix, x: &BinaryActivations, y: &mut [f32]) -> Result<(), QuantError> {
    if w.cols != x.k {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.cols,
            right: x.k,
        });
    }
    check_len("output", elements(x.tokens, w.rows)?, y.len())?;
    for t in 0..x.tokens {
        for r in 0..w.rows {
            let dot = xnor_dot_unchecked(w.row(r), x.row(t), w.cols);
            y[t * w.rows + r] = dot as f32 * (w.scale(r) * x.scale(t));
        }
    }
    Ok(())
}

/// `y[t * rows + r] = β_w(r) (W_b[r] · q[t]) / a_t` for int8 activations, scalar:
/// `Σ w_b q = 2 Σ_{bit = 1} q − Σ q`.
pub fn gemm_int8(w: &BinaryMatrix, x: &Int8Activations, y: &mut [f32]) -> Result<(), QuantError> {
    if w.cols != x.k() {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.cols,
            right: x.k(),
        });
    }
    check_len("output", elements(x.tokens(), w.rows)?, y.len())?;
    for t in 0..x.tokens() {
        let q = x.row(t);
        for r in 0..w.rows {
            let row = w.row(r);
            let plus: i32 = q
                .iter()
                .enumerate()
                .filter(|(j, _)| row[j / 64] >> (j % 64) & 1 == 1)
                .map(|(_, &v)| i32::from(v))
                .sum();
            let dot = 2 * plus - x.sums()[t];
            y[t * w.rows + r] = dot as f32 / x.scales()[t] * w.scale(r);
        }
    }
    Ok(())
}
