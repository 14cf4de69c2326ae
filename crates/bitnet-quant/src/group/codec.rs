//! Blocks of the 32-granular formats: the log's 2/4-bit groups (Q4_0 and Q4_1 among them) and
//! Q8_0 — quantization as ggml's reference quantizers, dequantization as `gguf-py`.
//!
//! ```text
//! group of `size` values, `bits` 4:        group of `size` values, `bits` 2:
//!   f16 d, [f16 m], size/2 code bytes        f16 d, [f16 m], size/4 code bytes
//!   byte j: low nibble  = code of value j    byte j: bits 2s..2s+2 = code of value
//!           high nibble = value j + size/2           j + s·size/4 (s = 0..4)
//! value = d·(code − 2^(bits−1)), or d·code + m with a minimum
//!
//! Q8_0: f16 d, then 32 × i8 q;  value = q·d
//! ```

use half::f16;

use super::GroupSpec;

/// Bytes of a Q8_0 block.
pub(crate) const Q8_0_BYTES: usize = 34;

/// ggml's `nearest_int`: round half to even through the f32 magic-number addition, the same
/// result bit for bit for `|x| < 2^22`; beyond, where ggml's trick is undefined, the rounded
/// value saturated to i32.
pub(crate) fn nearest_int(x: f32) -> i32 {
    if x.abs() < 4_194_303.0 {
        let bits = (x + 12_582_912.0).to_bits() as i32;
        (bits & 0x007f_ffff) - 0x0040_0000
    } else {
        x.round_ties_even() as i32
    }
}

/// `v` as f16 bits, or an error when it is beyond the f16 range.
pub(crate) fn to_f16(v: f32, what: &str) -> Result<[u8; 2], String> {
    let h = f16::from_f32(v);
    if h.is_finite() {
        Ok(h.to_le_bytes())
    } else {
        Err(format!("the {what} {v} is beyond the f16 range"))
    }
}

/// The f32 value of the f16 at `bytes[o..o + 2]`.
#[inline(always)]
pub(crate) fn f16_at(bytes: &[u8], o: usize) -> f32 {
    f16::from_le_bytes([bytes[o], bytes[o + 1]]).to_f32()
}

/// Writes the codes of one group (`codes.len() == s.size()`) after the header.
fn pack_group(s: GroupSpec, codes: &[u8], out: &mut [u8]) {
    let body = &mut out[s.header_bytes()..];
    body.fill(0);
    let lanes = 8 / s.bits() as usize;
    let stride = s.size() / lanes;
    for (i, &q) in codes.iter().enumerate() {
        body[i % stride] |= q << (s.bits() as usize * (i / stride));
    }
}

/// The codes of one group: field `s` of byte `j` is value `j + s · stride`.
#[inline(always)]
pub(crate) fn group_codes(s: GroupSpec, block: &[u8], codes: &mut [u8]) {
    let body = &block[s.header_bytes()..];
    let bits = s.bits() as usize;
    let stride = s.size() * bits / 8;
    let mask = (1u8 << bits) - 1;
    for (field, out) in codes.chunks_exact_mut(stride).enumerate() {
        for (c, &b) in out.iter_mut().zip(&body[..stride]) {
            *c = (b >> (bits * field)) & mask;
        }
    }
}

/// Quantizes one group: symmetric as ggml's `quantize_row_q4_0_ref` (`d = max / −2^(bits−1)`
/// with `max` the value of largest magnitude, `code = min(2^bits − 1, trunc(x/d + 2^(bits−1) +
/// 0.5))`), with a minimum as `quantize_row_q4_1_ref` (`d = (max − min) / (2^bits − 1)`,
/// `code = min(2^bits − 1, trunc((x − min)/d + 0.5))`), `1/d` taken once in f32.
pub(crate) fn quantize_group(s: GroupSpec, x: &[f32], out: &mut [u8]) -> Result<(), String> {
    let top = (1u32 << s.bits()) - 1;
    let mut codes = [0u8; 128];
    let codes = &mut codes[..s.size()];
    if s.with_min() {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in x {
            min = min.min(v);
            max = max.max(v);
        }
        let d = (max - min) / top as f32;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&to_f16(d, "scale")?);
        out[2..4].copy_from_slice(&to_f16(min, "minimum")?);
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = (((v - min) * id + 0.5) as i32).clamp(0, top as i32) as u8;
        }
    } else {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let half = (1u32 << (s.bits() - 1)) as f32;
        let d = max / -half;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out[..2].copy_from_slice(&to_f16(d, "scale")?);
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = ((v * id + (half + 0.5)) as i32).clamp(0, top as i32) as u8;
        }
    }
    pack_group(s, codes, out);
    Ok(())
}

/// Dequantizes one group as `gguf-py`: `d · f32(code − offset)`, or `d · f32(code) + m`.
#[inline(always)]
pub(crate) fn dequantize_group(s: GroupSpec, block: &[u8], out: &mut [f32]) {
    let mut codes = [0u8; 128];
    let codes = &mut codes[..s.size()];
    group_codes(s, block, codes);
    let d = f16_at(block, 0);
    if s.with_min() {
        let m = f16_at(block, 2);
        for (o, &c) in out.iter_mut().zip(codes.iter()) {
            *o = d * f32::from(c) + m;
        }
    } else {
        let off = s.offset();
        for (o, &c) in out.iter_mut().zip(codes.iter()) {
            *o = d * (i32::from(c) - off) as f32;
        }
    }
}

/// Quantizes one Q8_0 block as ggml: `d = max|x| / 127`, `q = round_half_away(x · (1/d))`.
pub(crate) fn quantize_q8_0(x: &[f32], out: &mut [u8]) -> Result<(), String> {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&to_f16(d, "scale")?);
    for (o, &v) in out[2..].iter_mut().zip(x) {
        *o = ((v * id).round() as i32).clamp(-128, 127) as i8 as u8;
    }
    Ok(())
}

/// Dequantizes one Q8_0 block: `f32(q) · d`.
#[inline(always)]
pub(crate) fn dequantize_q8_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..]) {
        *o = f32::from(q as i8) * d;
    }
}
