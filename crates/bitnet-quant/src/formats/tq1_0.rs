//! ggml's TQ1_0: 256 ternary weights in 54 bytes (1.6875 bits per weight), byte-compatible with
//! GGUF files. Five base-3 digits ("trits") per byte.
//!
//! ```text
//! bytes  0..48  qs: 5 trits per byte
//!                 qs[m],      m < 32: trit n -> weight 32n + m          (weights   0..160)
//!                 qs[32 + m], m < 16: trit n -> weight 160 + 16n + m    (weights 160..240)
//! bytes 48..52  qh: 4 trits per byte (the fifth is 0)
//!                 qh[j],      j < 4:  trit n -> weight 240 + 4n + j     (weights 240..256)
//! bytes 52..54  d: f16 (little-endian), the block's absmax
//! weight = d * (trit - 1)
//! ```
//! A byte stores the 5-digit base-3 number `v = Σ t_n 3^(4-n)` (trit 0 most significant) as
//! `ceil(v * 256 / 243)`; trit `n` of byte `b` is `((b * 3^n mod 256) * 3) >> 8`. Every byte
//! decodes to digits 0..2, but only 243 of the 256 byte values are written by the encoder (and,
//! in `qh`, only those whose fifth digit is 0): the others are rejected as malformed.
//! Quantization as TQ2_0 (ggml's `quantize_row_tq1_0_ref`, gguf-py).

use half::f16;

use crate::error::{QuantError, check_len};

/// Weights per block.
pub const QK: usize = 256;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 54;

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// The five trits of a packed byte, most significant first: trit `n` is
/// `((byte · 3ⁿ mod 256) · 3) >> 8`.
#[inline]
pub fn trits(byte: u8) -> [u8; 5] {
    POW3.map(|p| ((u16::from(byte.wrapping_mul(p)) * 3) >> 8) as u8)
}

/// The byte that stores the five trits `t` (`t[0]` most significant), `None` if a digit is not
/// 0, 1 or 2.
#[inline]
pub fn encode_trits(t: [u8; 5]) -> Option<u8> {
    if t.iter().any(|&d| d > 2) {
        return None;
    }
    let v = t.iter().fold(0u16, |v, &d| 3 * v + u16::from(d));
    Some(((v * 256).div_ceil(243)) as u8)
}

/// Which bytes the encoder writes (bit 0: as a `qs` byte; bit 1: as a `qh` byte, whose fifth
/// digit is 0), for every byte value.
const VALID: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut v = 0;
    while v < 243 {
        let byte = ((v * 256 + 242) / 243) as usize;
        table[byte] |= 1;
        if v % 3 == 0 {
            table[byte] |= 2;
        }
        v += 1;
    }
    table
};

/// Where trit `n` of byte `byte_index` goes in the block.
#[inline]
fn element(byte_index: usize, n: usize) -> usize {
    match byte_index {
        m @ 0..32 => 32 * n + m,
        b @ 32..48 => 160 + 16 * n + (b - 32),
        b => 240 + 4 * n + (b - 48),
    }
}

/// Number of trits byte `byte_index` (0..52) holds.
#[inline]
fn trits_in(byte_index: usize) -> usize {
    if byte_index < 48 { 5 } else { 4 }
}

/// Quantizes 256 weights into one block. Non-finite values are an error.
pub fn quantize_block(x: &[f32]) -> Result<[u8; BLOCK_BYTES], QuantError> {
    let (codes, d16) = super::absmax_codes("TQ1_0", x)?;
    encode_block(&codes, d16)
}

/// Packs 256 unsigned codes (each 0, 1 or 2, else an error) and the scale.
pub fn encode_block(codes: &[u8; QK], d: f16) -> Result<[u8; BLOCK_BYTES], QuantError> {
    super::check_codes(codes)?;
    let mut out = [0u8; BLOCK_BYTES];
    for (b, byte) in out[..52].iter_mut().enumerate() {
        let mut t = [0u8; 5];
        for (n, digit) in t.iter_mut().enumerate().take(trits_in(b)) {
            *digit = codes[element(b, n)];
        }
        *byte = encode_trits(t).expect("codes checked");
    }
    out[52..].copy_from_slice(&d.to_le_bytes());
    Ok(out)
}

/// The 256 unsigned codes and the scale of a block (not validated: see [`validate_block`]).
pub fn decode_block(block: &[u8; BLOCK_BYTES]) -> ([u8; QK], f16) {
    let mut codes = [0u8; QK];
    for (b, &byte) in block[..52].iter().enumerate() {
        let t = trits(byte);
        for n in 0..trits_in(b) {
            codes[element(b, n)] = t[n];
        }
    }
    (codes, scale(block))
}

/// The scale of a block.
pub fn scale(block: &[u8; BLOCK_BYTES]) -> f16 {
    f16::from_le_bytes([block[52], block[53]])
}

/// Checks one block: every byte is one the encoder writes (and `qh` bytes have a zero fifth
/// digit), and the scale is finite. `offset` (the block's byte offset) goes into the error.
pub fn validate_block(block: &[u8], offset: usize) -> Result<(), QuantError> {
    check_len("TQ1_0 block", BLOCK_BYTES, block.len())?;
    for (b, &byte) in block[..52].iter().enumerate() {
        let need = if b < 48 { 1 } else { 2 };
        if VALID[usize::from(byte)] & need == 0 {
            let reason = if b < 48 || VALID[usize::from(byte)] == 0 {
                format!("byte {byte:#04x} is not the encoding of any 5 base-3 digits")
            } else {
                format!("qh byte {byte:#04x} has a non-zero fifth digit")
            };
            return Err(QuantError::Malformed {
                format: "TQ1_0",
                offset: offset + b,
                reason,
            });
        }
    }
    let d = f16::from_le_bytes([block[52], block[53]]);
    if !d.is_finite() {
        return Err(QuantError::Malformed {
            format: "TQ1_0",
            offset: offset + 52,
            reason: format!("the block scale is {d}"),
        });
    }
    Ok(())
}

/// `d * (trit - 1)` for the 256 weights of a (valid) block.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; QK]) {
    let (codes, d) = decode_block(block);
    let d = d.to_f32();
    for (o, &c) in out.iter_mut().zip(&codes) {
        *o = d * (f32::from(c) - 1.0);
    }
}
