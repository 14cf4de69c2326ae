//! ggml's TQ2_0: 256 ternary weights in 66 bytes (2.0625 bits per weight), byte-compatible with
//! GGUF files.
//!
//! ```text
//! bytes 0..64   qs: two chunks of 32 bytes; byte m of chunk c holds the codes of weights
//!               128c + m (bits 1:0), 128c + m + 32 (bits 3:2), + 64 (bits 5:4), + 96 (bits 7:6)
//! bytes 64..66  d: f16 (little-endian), the block's absmax
//! weight = d * (code - 1), code in {0, 1, 2}
//! ```
//! Quantization follows ggml's reference (`quantize_row_tq2_0_ref`) and gguf-py: `d = max|x|`,
//! `code = round_half_away(x * (1/d)) + 1` (the reciprocal and product in f32), `d` stored as f16
//! (round to nearest even).

use half::f16;

use crate::error::{QuantError, check_len};

/// Weights per block.
pub const QK: usize = 256;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 66;

/// Quantizes 256 weights into one block (module docs). Non-finite values are an error.
pub fn quantize_block(x: &[f32]) -> Result<[u8; BLOCK_BYTES], QuantError> {
    let (codes, d16) = super::absmax_codes("TQ2_0", x)?;
    encode_block(&codes, d16)
}

/// Packs 256 unsigned codes (each 0, 1 or 2, else an error) and the scale.
pub fn encode_block(codes: &[u8; QK], d: f16) -> Result<[u8; BLOCK_BYTES], QuantError> {
    super::check_codes(codes)?;
    let mut out = [0u8; BLOCK_BYTES];
    for chunk in 0..2 {
        for m in 0..32 {
            out[32 * chunk + m] = (0..4).fold(0u8, |byte, n| {
                byte | ((codes[128 * chunk + 32 * n + m] & 3) << (2 * n))
            });
        }
    }
    out[64..].copy_from_slice(&d.to_le_bytes());
    Ok(out)
}

/// The 256 unsigned codes and the scale of a block (not validated: see [`validate_block`]).
pub fn decode_block(block: &[u8; BLOCK_BYTES]) -> ([u8; QK], f16) {
    let mut codes = [0u8; QK];
    for chunk in 0..2 {
        for m in 0..32 {
            let byte = block[32 * chunk + m];
            for n in 0..4 {
                codes[128 * chunk + 32 * n + m] = (byte >> (2 * n)) & 3;
            }
        }
    }
    (codes, scale(block))
}

/// The scale of a block.
pub fn scale(block: &[u8; BLOCK_BYTES]) -> f16 {
    f16::from_le_bytes([block[64], block[65]])
}

/// Checks one block: no 2-bit code of 3 and a finite scale. `offset` (the block's byte offset
/// in the tensor) goes into the error.
pub fn validate_block(block: &[u8], offset: usize) -> Result<(), QuantError> {
    check_len("TQ2_0 block", BLOCK_BYTES, block.len())?;
    if let Some(i) = super::first_code_3(&block[..64]) {
        return Err(QuantError::Malformed {
            format: "TQ2_0",
            offset: offset + i,
            reason: format!(
                "byte {:#04x} holds the 2-bit code 3 (codes are 0, 1, 2)",
                block[i]
            ),
        });
    }
    let d = f16::from_le_bytes([block[64], block[65]]);
    if !d.is_finite() {
        return Err(QuantError::Malformed {
            format: "TQ2_0",
            offset: offset + 64,
            reason: format!("the block scale is {d}"),
        });
    }
    Ok(())
}

/// `d * (code - 1)` for the 256 weights of a (valid) block.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; QK]) {
    let (codes, d) = decode_block(block);
    let d = d.to_f32();
    for (o, &c) in out.iter_mut().zip(&codes) {
        *o = d * (f32::from(c) - 1.0);
    }
}
