//! bitnet.cpp's I2_S (x86 layout): 128 ternary weights in 32 bytes, one f32 scale per tensor,
//! byte-compatible with the official BitNet b1.58 GGUF files.
//!
//! ```text
//! the tensor's n = rows * k weights, flattened row-major, in blocks of 128:
//!   block i, bytes 32i..32i+32: byte j holds the codes of weights 128i + j (bits 7:6),
//!                               128i + j + 32 (bits 5:4), + 64 (bits 3:2), + 96 (bits 1:0)
//! bytes n/4 .. n/4 + 4:  scale, f32 little-endian
//! bytes n/4 + 4 .. n/4 + 32: padding (ignored)
//! weight = scale * (code - 1), code in {0, 1, 2}
//! ```
//! Row `r` starts at byte `r * k / 4`; the kernels need whole blocks per row, so `k` must be a
//! multiple of 128 (it is for every BitNet b1.58 2B4T projection: 2560, 6912).
//! Quantization follows bitnet.cpp's `quantize_i2_s`: `scale = max|w|`, code 1 where
//! `|w| < 1e-6`, else 2 for positive and 0 for negative weights (it expects weights that are
//! already ternary times one scale, as the converter writes them).

use crate::error::{QuantError, check_finite};

/// Weights per block.
pub const QK: usize = 128;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 32;
/// Bytes after the packed weights: the f32 scale and padding.
pub const TRAILER_BYTES: usize = 32;

/// Bytes of an I2_S tensor of `n` weights (`n` a multiple of 128).
pub fn data_len(n: usize) -> usize {
    n / 4 + TRAILER_BYTES
}

/// Packs `codes` (unsigned, each 0, 1 or 2; a multiple of 128 of them) and the scale.
pub fn encode(codes: &[u8], scale: f32) -> Result<Vec<u8>, QuantError> {
    if !codes.len().is_multiple_of(QK) {
        return Err(QuantError::NotMultiple {
            what: "codes",
            len: codes.len(),
            block: QK,
            format: "I2_S",
        });
    }
    super::check_codes(codes)?;
    let n = codes.len();
    let mut out = vec![0u8; data_len(n)];
    for (block, dst) in codes
        .chunks_exact(QK)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
    {
        for (j, byte) in dst.iter_mut().enumerate() {
            *byte = (0..4).fold(0u8, |b, g| b | (block[32 * g + j] << (6 - 2 * g)));
        }
    }
    out[n / 4..n / 4 + 4].copy_from_slice(&scale.to_le_bytes());
    Ok(out)
}

/// Quantizes `weights` as bitnet.cpp does (module docs); `weights.len()` must be a multiple of
/// 128 and every weight finite.
pub fn quantize(weights: &[f32]) -> Result<Vec<u8>, QuantError> {
    if !weights.len().is_multiple_of(QK) {
        return Err(QuantError::NotMultiple {
            what: "weights",
            len: weights.len(),
            block: QK,
            format: "I2_S",
        });
    }
    check_finite("weights", weights)?;
    let scale = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
    let codes: Vec<u8> = weights
        .iter()
        .map(|&w| match w {
            w if f64::from(w).abs() < 1e-6 => 1,
            w if w > 0.0 => 2,
            _ => 0,
        })
        .collect();
    encode(&codes, scale)
}

/// The 128 codes of a block, in weight order.
pub fn decode_block(block: &[u8; BLOCK_BYTES]) -> [u8; QK] {
    let mut codes = [0u8; QK];
    for (g, group) in codes.chunks_exact_mut(32).enumerate() {
        for (c, &byte) in group.iter_mut().zip(block) {
            *c = (byte >> (6 - 2 * g)) & 3;
        }
    }
    codes
}

/// The per-tensor scale of an I2_S tensor of `n` weights (`data` already validated).
pub(crate) fn scale(data: &[u8], n: usize) -> f32 {
    f32::from_le_bytes(data[n / 4..n / 4 + 4].try_into().expect("4 bytes"))
}

/// Checks an I2_S tensor of `n` weights: its length (with the scale), no code 3, a finite,
/// non-negative scale.
pub fn validate(data: &[u8], n: usize) -> Result<(), QuantError> {
    if data.len() != data_len(n) {
        let reason = if data.len() == n / 4 {
            format!(
                "{} bytes hold the weights but not the f32 scale that follows them",
                n / 4
            )
        } else {
            format!(
                "expected {} bytes (n/4 + 32) for {n} weights, got {}",
                data_len(n),
                data.len()
            )
        };
        return Err(QuantError::Malformed {
            format: "I2_S",
            offset: data.len().min(n / 4),
            reason,
        });
    }
    if let Some(i) = super::first_code_3(&data[..n / 4]) {
        return Err(QuantError::Malformed {
            format: "I2_S",
            offset: i,
            reason: format!(
                "byte {:#04x} holds the 2-bit code 3 (codes are 0, 1, 2)",
                data[i]
            ),
        });
    }
    let s = scale(data, n);
    if !s.is_finite() || s < 0.0 {
        return Err(QuantError::Malformed {
            format: "I2_S",
            offset: n / 4,
            reason: format!("the scale is {s} (it must be finite and not negative)"),
        });
    }
    Ok(())
}
