//! Activation quantization to int8 by absmax (BitNet b1.58): per token (one row of the
//! activation matrix) or per tensor.
//!
//! `a = 127 / max(max|x|, 1e-5)` in f32, `q = clamp(round_half_even(x * a), -128, 127)`, so that
//! `x ≈ q / a`. The kernels need `Σ q` per token (the correction for unsigned weight codes,
//! `Σ w·q = Σ (w+1)·q − Σ q`), computed here once; [`Int8Activations::block_sums`] gives it per
//! block for formats that correct per block.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Par, ScratchPool};

use crate::error::{
    QuantError, check_finite, check_k, check_len, elements, try_filled, try_resize,
};

/// The floor of `max|x|`: an all-zero token quantizes to zeros with scale `127 / 1e-5`.
pub const MIN_ABSMAX: f32 = 1e-5;

/// Which values share one activation scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActScale {
    /// One scale per token (row): BitNet b1.58's activation quantization.
    PerToken,
    /// One scale for all tokens.
    PerTensor,
}

/// The row operations of the quantizers: AVX-512 or AVX2 when the active level has it, else
/// scalar (all give identical results).
#[derive(Clone, Copy)]
pub(crate) struct RowOps {
    width: RowWidth,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowWidth {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl RowOps {
    /// The operations the active ceiling allows.
    pub(crate) fn for_ceiling() -> Result<RowOps, QuantError> {
        let level = bitnet_simd::Level::active()?;
        #[cfg(target_arch = "x86_64")]
        let width = match level {
            bitnet_simd::Level::Avx512(_) => RowWidth::Avx512,
            bitnet_simd::Level::Avx2(_) => RowWidth::Avx2,
            _ => RowWidth::Scalar,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let width = {
            let _ = level;
            RowWidth::Scalar
        };
        Ok(RowOps { width })
    }

    /// `max |x|`, NaN if a value is NaN (so a non-finite result means a non-finite input).
    pub(crate) fn absmax(self, x: &[f32]) -> f32 {
        match self.width {
            // SAFETY: the width is AVX-512 only at level AVX-512.
            #[cfg(target_arch = "x86_64")]
            RowWidth::Avx512 => unsafe { crate::quantize_avx512::absmax(x) },
            // SAFETY: the width is AVX2 only at level AVX2.
            #[cfg(target_arch = "x86_64")]
            RowWidth::Avx2 => unsafe { crate::quantize_avx2::absmax(x) },
            RowWidth::Scalar => x.iter().fold(0f32, |m, v| {
                if v.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(v.abs())
                }
            }),
        }
    }

    /// `out = clamp(round_half_even(x · s), -128, 127)`; returns `Σ out`.
    pub(crate) fn quantize(self, x: &[f32], s: f32, out: &mut [i8]) -> i32 {
        match self.width {
            // SAFETY: as in `absmax`.
            #[cfg(target_arch = "x86_64")]
            RowWidth::Avx512 => unsafe { crate::quantize_avx512::quantize(x, s, out) },
            // SAFETY: as in `absmax`.
            #[cfg(target_arch = "x86_64")]
            RowWidth::Avx2 => unsafe { crate::quantize_avx2::quantize(x, s, out) },
            RowWidth::Scalar => {
                let mut sum = 0;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = (v * s).round_ties_even().clamp(-128.0, 127.0) as i8;
                    sum += i32::from(*o);
                }
                sum
            }
        }
    }
}

/// `tokens x k` int8 activations, row-major, with one scale and one sum per token.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Activations {
    tokens: usize,
    k: usize,
    q: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

/// No tokens of no values: an empty buffer for [`Int8Activations::quantize_rows_into`].
impl Default for Int8Activations {
    fn default() -> Int8Activations {
        Int8Activations {
            tokens: 0,
            k: 0,
            q: Vec::new(),
            scales: Vec::new(),
            sums: Vec::new(),
        }
    }
}

impl Int8Activations {
    /// Quantizes the row-major `tokens x k` matrix `x` (see the module docs). With
    /// [`ActScale::PerTensor`] every token gets the same scale.
    ///
    /// Errors: a length that does not match the shape, a non-finite value.
    pub fn quantize(
        x: &[f32],
        tokens: usize,
        k: usize,
        scale: ActScale,
    ) -> Result<Int8Activations, QuantError> {
        check_k(k)?;
        check_len("activations", elements(tokens, k)?, x.len())?;
        let simd = RowOps::for_ceiling()?;
        // One pass finds the scale and any non-finite value (then located for the error).
        let tensor_absmax = match scale {
            ActScale::PerTensor => simd.absmax(x),
            ActScale::PerToken => 0.0,
        };
        if !tensor_absmax.is_finite() {
            check_finite("activations", x)?;
        }
        let tensor_scale = 127.0 / tensor_absmax.max(MIN_ABSMAX);
        let scale_of = |row: &[f32]| -> Result<f32, QuantError> {
            Ok(match scale {
                ActScale::PerToken => {
                    let m = simd.absmax(row);
                    if !m.is_finite() {
                        check_finite("activations", x)?;
                    }
                    127.0 / m.max(MIN_ABSMAX)
                }
                ActScale::PerTensor => tensor_scale,
            })
        };
        Self::quantize_rows(tokens, k, |t, q| {
            let row = &x[t * k..(t + 1) * k];
            let a = scale_of(row)?;
            Ok((a, simd.quantize(row, a, q)))
        })
    }

    /// Quantizes `tokens` rows of `k` values that `fill(t, row)` writes one at a time into a
    /// scratch row (so the f32 rows never exist all at once), each per token exactly as
    /// [`Int8Activations::quantize`] with [`ActScale::PerToken`] quantizes it: fused producers
    /// (a norm followed by the quantization) give identical results.
    ///
    /// Errors: `k` above the limit, a non-finite value in a row.
    pub fn quantize_rows_with(
        tokens: usize,
        k: usize,
        mut fill: impl FnMut(usize, &mut [f32]),
    ) -> Result<Int8Activations, QuantError> {
        check_k(k)?;
        elements(tokens, k)?;
        let ops = RowOps::for_ceiling()?;
        let mut row = try_filled("activations", k, 0f32)?;
        Self::quantize_rows(tokens, k, |t, q| {
            fill(t, &mut row);
            quantize_token(ops, &row, q)
        })
    }

    /// [`Int8Activations::quantize_rows_with`] into `self`, whose buffers are reused (no
    /// allocation once they are large enough), with the tokens split over `par` (each thread
    /// fills its own scratch row, so `fill` is `Fn + Sync`). The results are identical.
    ///
    /// Errors: as `quantize_rows_with`; then `self` has the requested shape but unspecified
    /// values.
    pub fn quantize_rows_into(
        &mut self,
        tokens: usize,
        k: usize,
        par: Par,
        fill: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<(), QuantError> {
        self.quantize_blocks_into(tokens, k, 1, par, |t0, rows| fill(t0, rows))
    }

    /// [`Int8Activations::quantize_rows_into`] with the rows produced `block` at a time:
    /// `fill(t0, rows)` writes tokens `t0 ..` into `rows` (`n × k`, `1 ≤ n ≤ block`; a
    /// per-thread scratch), for producers that work faster on several rows at once (a norm
    /// pipelined over rows); keep `block × k` floats within L1. The results are identical.
    pub fn quantize_blocks_into(
        &mut self,
        tokens: usize,
        k: usize,
        block: usize,
        par: Par,
        fill: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<(), QuantError> {
        check_k(k)?;
        let n = elements(tokens, k)?;
        let ops = RowOps::for_ceiling()?;
        try_resize(&mut self.q, n, "activations", 0)?;
        try_resize(&mut self.scales, tokens, "tokens", 0.0)?;
        try_resize(&mut self.sums, tokens, "tokens", 0)?;
        (self.tokens, self.k) = (tokens, k);
        if k == 0 {
            let (a, sum) = quantize_token(ops, &[], &mut [])?;
            self.scales.fill(a);
            self.sums.fill(sum);
            return Ok(());
        }
        let block = block.max(1);
        let scales = SharedOut::new(self.scales.as_mut_ptr());
        let sums = SharedOut::new(self.sums.as_mut_ptr());
        let first_error = std::sync::Mutex::new(None);
        par.for_bytes(5 * n)
            .for_each_chunk_mut(&mut self.q, k, |start, part| {
                let mut rows = ScratchPool::global().take::<f32>(block * k);
                for (b, q_block) in part.chunks_mut(block * k).enumerate() {
                    let t0 = start / k + b * block;
                    let rows = &mut rows[..q_block.len()];
                    fill(t0, rows);
                    for (i, (q, row)) in q_block
                        .chunks_exact_mut(k)
                        .zip(rows.chunks_exact(k))
                        .enumerate()
                    {
                        let t = t0 + i;
                        match quantize_token(ops, row, q) {
                            // SAFETY: token t < tokens indexes scales and sums (both `tokens`
                            // long), and its row belongs to this part alone.
                            Ok((a, sum)) => unsafe {
                                *scales.at(t) = a;
                                *sums.at(t) = sum;
                            },
                            Err(e) => {
                                let mut first =
                                    first_error.lock().unwrap_or_else(|e| e.into_inner());
                                first.get_or_insert(e);
                                return;
                            }
                        }
                    }
                }
            });
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Allocates the result and runs `row(t, q_row) -> (scale, Σ q)` for every token.
    fn quantize_rows(
        tokens: usize,
        k: usize,
        mut row: impl FnMut(usize, &mut [i8]) -> Result<(f32, i32), QuantError>,
    ) -> Result<Int8Activations, QuantError> {
        let mut q = try_filled("activations", elements(tokens, k)?, 0i8)?;
        let mut scales = try_filled("tokens", tokens, 0f32)?;
        let mut sums = try_filled("tokens", tokens, 0i32)?;
        for t in 0..tokens {
            let (a, sum) = row(t, &mut q[t * k..(t + 1) * k])?;
            scales[t] = a;
            sums[t] = sum;
        }
        Ok(Int8Activations {
            tokens,
            k,
            q,
            scales,
            sums,
        })
    }

    /// Activations from their parts (`sums` are computed); checks lengths and that every scale
    /// is finite and positive.
    pub fn from_parts(
        tokens: usize,
        k: usize,
        q: Vec<i8>,
        scales: Vec<f32>,
    ) -> Result<Int8Activations, QuantError> {
        check_k(k)?;
        check_len("q", elements(tokens, k)?, q.len())?;
        check_len("scales", tokens, scales.len())?;
        check_finite("scales", &scales)?;
        if let Some(i) = scales.iter().position(|&s| s <= 0.0) {
            return Err(QuantError::Invalid {
                what: "scales",
                reason: format!("scale {i} is {}, not positive", scales[i]),
            });
        }
        let sums = (0..tokens)
            .map(|t| q[t * k..(t + 1) * k].iter().map(|&v| i32::from(v)).sum())
            .collect();
        Ok(Int8Activations {
            tokens,
            k,
            q,
            scales,
            sums,
        })
    }

    /// Number of tokens (rows).
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        self.k
    }

    /// All quantized values, row-major.
    pub fn values(&self) -> &[i8] {
        &self.q
    }

    /// Token `t`'s quantized values.
    ///
    /// # Panics
    /// If `t >= tokens`.
    pub fn row(&self, t: usize) -> &[i8] {
        &self.q[t * self.k..(t + 1) * self.k]
    }

    /// The multiplier `a` of each token (`x ≈ q / a`).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// `Σ q` of each token.
    pub fn sums(&self) -> &[i32] {
        &self.sums
    }

    /// `Σ q` over each block of `block` values of each token: `tokens * k / block` sums,
    /// token-major. Errors if `block` is 0 or does not divide `k`.
    pub fn block_sums(&self, block: usize) -> Result<Vec<i32>, QuantError> {
        if block == 0 || !self.k.is_multiple_of(block) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: self.k,
                block,
                format: "activation block",
            });
        }
        Ok(self
            .q
            .chunks(block)
            .map(|c| c.iter().map(|&v| i32::from(v)).sum())
            .collect())
    }

    /// `q / a` for every value, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.tokens)
            .flat_map(|t| {
                self.row(t)
                    .iter()
                    .map(move |&q| f32::from(q) / self.scales[t])
            })
            .collect()
    }
}

/// One token's row quantized per token into `q`: `(scale, Σ q)`; an error if the row has a
/// non-finite value.
fn quantize_token(ops: RowOps, row: &[f32], q: &mut [i8]) -> Result<(f32, i32), QuantError> {
    let m = ops.absmax(row);
    if !m.is_finite() {
        check_finite("activations", row)?;
    }
    let a = 127.0 / m.max(MIN_ABSMAX);
    Ok((a, ops.quantize(row, a, q)))
}
