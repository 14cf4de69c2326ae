//! bitnet-rs's own kernel layout for 2-bit ternary weights: four rows interleaved per 256
//! weights, so that a GEMV streams one contiguous region and each activation vector serves four
//! rows. Repacked at load time from I2_S or TQ2_0 ([`NativeTernary::repack`]); TQ1_0 is not
//! repacked (its codes are not 2-bit fields).
//!
//! ```text
//! row group G = rows 4G..4G+4 (rows past the end are code 1 = weight 0), chunk p = weights
//! 256p..256p+256 of each row:
//!   bytes (G * k/256 + p) * 256 + 64 r .. + 64: row 4G + r, chunk p, in I2_S's field order:
//!     byte h*32 + j (h = 0, 1; j < 32) holds weights 128h + j (bits 7:6), 128h + j + 32
//!     (bits 5:4), 128h + j + 64 (bits 3:2), 128h + j + 96 (bits 1:0)
//! scales: I2_S: the tensor's f32 scale; TQ2_0: f32 (from the f16) per (group, chunk, r),
//!   at index (G * k/256 + p) * 4 + r
//! ```
//! `k` must be a multiple of 256.

use bitnet_simd::AlignedVec;

use super::{TernaryFormat, TernaryWeights, i2_s};
use crate::error::QuantError;

/// Rows per interleaved group.
pub const GROUP: usize = 4;

/// A ternary weight matrix in the native layout (module docs).
#[derive(Clone, Debug)]
pub struct NativeTernary {
    source: TernaryFormat,
    rows: usize,
    k: usize,
    codes: AlignedVec<u8>,
    scales: Vec<f32>,
}

impl NativeTernary {
    /// Repacks a validated I2_S or TQ2_0 tensor (`k` a multiple of 256).
    pub fn repack(w: &TernaryWeights<'_>) -> Result<NativeTernary, QuantError> {
        let (rows, k, source) = (w.rows(), w.k(), w.format());
        if source == TernaryFormat::Tq1_0 {
            return Err(QuantError::Invalid {
                what: "format",
                reason: "TQ1_0 stores trits, not 2-bit fields: it has no native repack".into(),
            });
        }
        if !k.is_multiple_of(256) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: 256,
                format: "native",
            });
        }
        let chunks = k / 256;
        let groups = rows.div_ceil(GROUP);
        let mut codes = AlignedVec::from_slice(&vec![0x55u8; groups * chunks * 256]);
        let mut scales = match source {
            TernaryFormat::I2s => vec![w.tensor_scale().expect("I2_S")],
            _ => vec![0f32; groups * chunks * GROUP],
        };
        for r in 0..rows {
            let (g, lane) = (r / GROUP, r % GROUP);
            let (row_codes, row_scales) = w.row_codes(r);
            for p in 0..chunks {
                let dst = &mut codes[((g * chunks + p) * GROUP + lane) * 64..][..64];
                let packed = i2_s::encode(&row_codes[p * 256..(p + 1) * 256], 0.0)?;
                dst.copy_from_slice(&packed[..64]);
                if source == TernaryFormat::Tq2_0 {
                    scales[(g * chunks + p) * GROUP + lane] = row_scales[p];
                }
            }
        }
        Ok(NativeTernary {
            source,
            rows,
            k,
            codes,
            scales,
        })
    }

    /// The public format this was repacked from (it decides the activations it pairs with).
    pub fn source(&self) -> TernaryFormat {
        self.source
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Weights per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes of codes (what a GEMV reads).
    pub fn code_bytes(&self) -> usize {
        self.codes.len()
    }

    /// The interleaved codes of row group `g` (`k` bytes: 4 rows of `k / 4`).
    ///
    /// # Panics
    /// If `g >= rows.div_ceil(4)`.
    pub fn group(&self, g: usize) -> &[u8] {
        &self.codes[g * self.k..(g + 1) * self.k]
    }

    /// The per-(chunk, row) scales of group `g` (TQ2_0 source), `4 * k / 256` of them.
    pub fn group_scales(&self, g: usize) -> &[f32] {
        let n = self.k / 256 * GROUP;
        &self.scales[g * n..(g + 1) * n]
    }

    /// The tensor scale (I2_S source).
    pub fn tensor_scale(&self) -> Option<f32> {
        (self.source == TernaryFormat::I2s).then(|| self.scales[0])
    }
}
