//! Packed ternary formats: ggml's TQ2_0 and TQ1_0, bitnet.cpp's I2_S, and ggml's Q8_K
//! activation blocks. `docs/FORMATS.md` documents each byte by byte.
//!
//! [`TernaryWeights`] is a validated view of a packed `rows x k` weight matrix in any of the
//! three formats (the kernels take it); [`PackedTernary`] owns one.

pub mod i2_s;
pub mod native;
pub mod q8_k;
pub mod tq1_0;
pub mod tq2_0;

use half::f16;

use crate::error::{QuantError, elements};
use crate::ternary::{ScaleGroup, TernaryMatrix};

/// A packed ternary weight format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TernaryFormat {
    /// ggml TQ2_0: 2 bits per weight, f16 scale per 256 (2.0625 bits per weight).
    Tq2_0,
    /// ggml TQ1_0: 5 trits per byte, f16 scale per 256 (1.6875 bits per weight).
    Tq1_0,
    /// bitnet.cpp I2_S: 2 bits per weight, one f32 scale per tensor.
    I2s,
}

impl TernaryFormat {
    /// Every format.
    pub const ALL: [TernaryFormat; 3] = [
        TernaryFormat::Tq2_0,
        TernaryFormat::Tq1_0,
        TernaryFormat::I2s,
    ];

    /// The name GGUF and ggml use.
    pub fn name(self) -> &'static str {
        match self {
            TernaryFormat::Tq2_0 => "TQ2_0",
            TernaryFormat::Tq1_0 => "TQ1_0",
            TernaryFormat::I2s => "I2_S",
        }
    }

    /// Weights per block (`k` must be a multiple of it).
    pub fn block(self) -> usize {
        match self {
            TernaryFormat::Tq2_0 => tq2_0::QK,
            TernaryFormat::Tq1_0 => tq1_0::QK,
            TernaryFormat::I2s => i2_s::QK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            TernaryFormat::Tq2_0 => tq2_0::BLOCK_BYTES,
            TernaryFormat::Tq1_0 => tq1_0::BLOCK_BYTES,
            TernaryFormat::I2s => i2_s::BLOCK_BYTES,
        }
    }

    /// Stored bits per weight, scales included (I2_S's one scale per tensor not counted).
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.block_bytes() as f64 / self.block() as f64
    }

    /// Bytes of one packed row of `k` weights (without I2_S's tensor trailer).
    pub fn row_bytes(self, k: usize) -> Result<usize, QuantError> {
        if !k.is_multiple_of(self.block()) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: self.block(),
                format: self.name(),
            });
        }
        Ok(k / self.block() * self.block_bytes())
    }

    /// Bytes of a packed `rows x k` tensor.
    pub fn data_len(self, rows: usize, k: usize) -> Result<usize, QuantError> {
        let row = self.row_bytes(k)?;
        let body = elements(rows, row)?;
        Ok(match self {
            TernaryFormat::I2s => body
                .checked_add(i2_s::TRAILER_BYTES)
                .ok_or(QuantError::Overflow { rows, cols: k })?,
            _ => body,
        })
    }
}

impl std::fmt::Display for TernaryFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated view of a packed `rows x k` ternary weight matrix (row `r` holds the `k` weights
/// that dot with an activation vector to give output `r`). Any alignment works.
#[derive(Clone, Copy, Debug)]
pub struct TernaryWeights<'a> {
    format: TernaryFormat,
    data: &'a [u8],
    rows: usize,
    k: usize,
}

impl<'a> TernaryWeights<'a> {
    /// Checks `data` as a `rows x k` tensor of `format`: its length, `k` a whole number of
    /// blocks, and every byte and scale (O(size): do it once per tensor, at load).
    pub fn new(
        format: TernaryFormat,
        data: &'a [u8],
        rows: usize,
        k: usize,
    ) -> Result<TernaryWeights<'a>, QuantError> {
        let expected = format.data_len(rows, k)?;
        match format {
            TernaryFormat::I2s => i2_s::validate(data, elements(rows, k)?)?,
            _ => {
                crate::error::check_len(format.name(), expected, data.len())?;
                let bb = format.block_bytes();
                for (i, block) in data.chunks_exact(bb).enumerate() {
                    match format {
                        TernaryFormat::Tq2_0 => tq2_0::validate_block(block, i * bb)?,
                        _ => tq1_0::validate_block(block, i * bb)?,
                    }
                }
            }
        }
        Ok(TernaryWeights {
            format,
            data,
            rows,
            k,
        })
    }

    /// The format.
    pub fn format(&self) -> TernaryFormat {
        self.format
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Weights per row (the reduction dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The whole packed tensor.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The packed bytes of row `r` (blocks only; I2_S's scale is [`TernaryWeights::tensor_scale`]).
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let len = self.k / self.format.block() * self.format.block_bytes();
        &self.data[r * len..(r + 1) * len]
    }

    /// I2_S's per-tensor scale (`None` for the per-block formats).
    pub fn tensor_scale(&self) -> Option<f32> {
        (self.format == TernaryFormat::I2s).then(|| i2_s::scale(self.data, self.rows * self.k))
    }

    /// Row `r`'s unsigned codes (weight + 1, each 0, 1 or 2) and the scale of each block.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row_codes(&self, r: usize) -> (Vec<u8>, Vec<f32>) {
        let row = self.row(r);
        match self.format {
            TernaryFormat::I2s => {
                let codes = row
                    .chunks_exact(i2_s::BLOCK_BYTES)
                    .flat_map(|b| i2_s::decode_block(b.try_into().expect("32 bytes")))
                    .collect();
                let s = self.tensor_scale().expect("I2_S");
                (codes, vec![s; self.k / i2_s::QK])
            }
            TernaryFormat::Tq2_0 | TernaryFormat::Tq1_0 => {
                let bb = self.format.block_bytes();
                let mut codes = Vec::with_capacity(self.k);
                let mut scales = Vec::with_capacity(self.k / 256);
                for block in row.chunks_exact(bb) {
                    let (c, d) = if self.format == TernaryFormat::Tq2_0 {
                        tq2_0::decode_block(block.try_into().expect("66 bytes"))
                    } else {
                        tq1_0::decode_block(block.try_into().expect("54 bytes"))
                    };
                    codes.extend_from_slice(&c);
                    scales.push(d.to_f32());
                }
                (codes, scales)
            }
        }
    }

    /// Every weight as f32 (`scale * (code - 1)`), row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        if self.k == 0 {
            return Vec::new();
        }
        let mut out = vec![0f32; self.rows * self.k];
        for r in 0..self.rows {
            let dst = &mut out[r * self.k..(r + 1) * self.k];
            match self.format {
                TernaryFormat::Tq2_0 => {
                    for (b, o) in self.row(r).chunks_exact(66).zip(dst.chunks_exact_mut(256)) {
                        tq2_0::dequantize_block(
                            b.try_into().expect("66"),
                            o.try_into().expect("256"),
                        );
                    }
                }
                TernaryFormat::Tq1_0 => {
                    for (b, o) in self.row(r).chunks_exact(54).zip(dst.chunks_exact_mut(256)) {
                        tq1_0::dequantize_block(
                            b.try_into().expect("54"),
                            o.try_into().expect("256"),
                        );
                    }
                }
                TernaryFormat::I2s => {
                    let (codes, scales) = self.row_codes(r);
                    for (o, &c) in dst.iter_mut().zip(&codes) {
                        *o = scales[0] * (f32::from(c) - 1.0);
                    }
                }
            }
        }
        out
    }
}

/// An owned packed ternary matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedTernary {
    format: TernaryFormat,
    data: Vec<u8>,
    rows: usize,
    k: usize,
}

impl PackedTernary {
    /// Quantizes the row-major `rows x k` f32 `weights` with the format's own reference
    /// quantizer (byte-identical to what ggml / gguf-py / bitnet.cpp write): absmax per block for
    /// TQ2_0 and TQ1_0, bitnet.cpp's sign-and-max for I2_S.
    pub fn quantize(
        format: TernaryFormat,
        weights: &[f32],
        rows: usize,
        k: usize,
    ) -> Result<PackedTernary, QuantError> {
        format.row_bytes(k)?;
        crate::error::check_len("weights", elements(rows, k)?, weights.len())?;
        crate::error::check_finite("weights", weights)?;
        let block_error = |i: usize| {
            move |e: QuantError| match e {
                QuantError::Invalid { what, reason } => QuantError::Invalid {
                    what,
                    reason: format!("block {i} (weights {}..): {reason}", i * 256),
                },
                other => other,
            }
        };
        let data = match format {
            TernaryFormat::I2s => i2_s::quantize(weights)?,
            TernaryFormat::Tq2_0 => weights
                .chunks_exact(256)
                .enumerate()
                .map(|(i, b)| tq2_0::quantize_block(b).map_err(block_error(i)))
                .collect::<Result<Vec<_>, _>>()?
                .concat(),
            TernaryFormat::Tq1_0 => weights
                .chunks_exact(256)
                .enumerate()
                .map(|(i, b)| tq1_0::quantize_block(b).map_err(block_error(i)))
                .collect::<Result<Vec<_>, _>>()?
                .concat(),
        };
        Ok(PackedTernary {
            format,
            data,
            rows,
            k,
        })
    }

    /// Packs an absmean-quantized matrix. I2_S needs one scale per tensor; TQ2_0 and TQ1_0 need
    /// a scale that is constant over each 256-block (per tensor, per row, or blocks of exactly
    /// 256) and store it as f16 (rounded to nearest even, so the packed
    /// scale can differ from the f32 one by half an f16 ulp).
    pub fn from_ternary(
        format: TernaryFormat,
        m: &TernaryMatrix,
    ) -> Result<PackedTernary, QuantError> {
        let (rows, k) = (m.rows(), m.cols());
        format.row_bytes(k)?;
        let unsigned = |codes: &[i8]| -> Vec<u8> { codes.iter().map(|&c| (c + 1) as u8).collect() };
        let data = match format {
            TernaryFormat::I2s => {
                if m.group() != ScaleGroup::Tensor {
                    return Err(QuantError::Invalid {
                        what: "scale group",
                        reason: format!(
                            "I2_S stores one scale per tensor, the matrix has {:?}",
                            m.group()
                        ),
                    });
                }
                i2_s::encode(&unsigned(m.codes()), m.scales()[0])?
            }
            TernaryFormat::Tq2_0 | TernaryFormat::Tq1_0 => {
                if let ScaleGroup::Block(b) = m.group()
                    && b != 256
                {
                    return Err(QuantError::Invalid {
                        what: "scale group",
                        reason: format!(
                            "{format} stores one scale per 256 weights, the matrix has one per {b}"
                        ),
                    });
                }
                let mut data = Vec::with_capacity(format.data_len(rows, k)?);
                for (i, codes) in m.codes().chunks_exact(256).enumerate() {
                    let (r, c) = (i * 256 / k.max(1), i * 256 % k.max(1));
                    let d = block_scale_f16(format.name(), m.scale_at(r, c))?;
                    let codes: [u8; 256] = unsigned(codes).try_into().expect("256 codes");
                    if format == TernaryFormat::Tq2_0 {
                        data.extend_from_slice(&tq2_0::encode_block(&codes, d)?);
                    } else {
                        data.extend_from_slice(&tq1_0::encode_block(&codes, d)?);
                    }
                }
                data
            }
        };
        Ok(PackedTernary {
            format,
            data,
            rows,
            k,
        })
    }

    /// The validated view the kernels take.
    pub fn view(&self) -> TernaryWeights<'_> {
        TernaryWeights {
            format: self.format,
            data: &self.data,
            rows: self.rows,
            k: self.k,
        }
    }

    /// The packed bytes (what a GGUF tensor holds).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// A block scale as the f16 the TQ formats store; an error if it does not fit (|d| > 65504).
pub(crate) fn block_scale_f16(format: &'static str, d: f32) -> Result<f16, QuantError> {
    let h = f16::from_f32(d);
    if h.is_finite() {
        Ok(h)
    } else {
        Err(QuantError::Invalid {
            what: "block scale",
            reason: format!("{d} does not fit the f16 scale of {format} (|d| <= 65504)"),
        })
    }
}

/// The offset of the first byte of `bytes` that holds a 2-bit field of 3 (a field `0b11` has
/// both bits set: `x & (x >> 1)` at its low bit), eight bytes at a time.
pub(crate) fn first_code_3(bytes: &[u8]) -> Option<usize> {
    const LOW_BITS: u64 = 0x5555_5555_5555_5555;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for (i, w) in words.enumerate() {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if x & (x >> 1) & LOW_BITS != 0 {
            return (0..8)
                .map(|j| i * 8 + j)
                .find(|&o| bytes[o] & (bytes[o] >> 1) & 0x55 != 0);
        }
    }
    let base = bytes.len() - tail.len();
    (base..bytes.len()).find(|&o| bytes[o] & (bytes[o] >> 1) & 0x55 != 0)
}

/// Checks that every unsigned code is 0, 1 or 2.
pub(crate) fn check_codes(codes: &[u8]) -> Result<(), QuantError> {
    match codes.iter().position(|&c| c > 2) {
        None => Ok(()),
        Some(i) => Err(QuantError::Invalid {
            what: "codes",
            reason: format!("code {i} is {}, not 0, 1 or 2", codes[i]),
        }),
    }
}

/// The TQ formats' block quantizer (ggml's `quantize_row_tq*_0_ref`, gguf-py): `d = max|x|` as
/// f16, `code = round_half_away(x · (1/d)) + 1` with the reciprocal and product in f32.
pub(crate) fn absmax_codes(
    format: &'static str,
    x: &[f32],
) -> Result<([u8; 256], f16), QuantError> {
    crate::error::check_len(format, 256, x.len())?;
    crate::error::check_finite(format, x)?;
    let d = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d16 = block_scale_f16(format, d)?;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut codes = [0u8; 256];
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = code(v * id);
    }
    Ok((codes, d16))
}

/// The unsigned code (0, 1, 2) of a weight already divided by its scale: round half away from
/// zero, as ggml's `lroundf`, clamped (a subnormal scale can make the quotient infinite).
#[inline]
pub(crate) fn code(x: f32) -> u8 {
    (x.round().clamp(-1.0, 1.0) as i32 + 1) as u8
}
