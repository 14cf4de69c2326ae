//! ggml's K-quant super-blocks Q4_K and Q6_K (256 values): quantization following ggml's
//! reference quantizers (`quantize_row_q4_K_ref` with `make_qkx2_quants`,
//! `quantize_row_q6_K_ref` with `make_qx_quants`), dequantization as `gguf-py`.
//!
//! ```text
//! Q4_K, 144 bytes                         Q6_K, 210 bytes
//!   0..2    f16 d                           0..128   ql: low 4 bits
//!   2..4    f16 dmin                        128..192 qh: high 2 bits
//!   4..16   8 × (6-bit scale, 6-bit min)    192..208 16 × i8 sub-scale
//!   16..144 qs: 4-bit codes                 208..210 f16 d
//! value i = d·sc[i/32]·q − dmin·m[i/32]    value i = d·sc[i/16]·(q − 32)
//! ```
//! Q4_K codes: 32-byte chunk `c` holds values `64c + l` (low nibble of byte `l`) and
//! `64c + 32 + l` (high nibble). Scales: for `j < 4`, `sc = scales[j] & 63`,
//! `m = scales[j + 4] & 63`; for `j ≥ 4`, `sc = (scales[j + 4] & 15) | (scales[j − 4] >> 6) << 4`,
//! `m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4`.
//! Q6_K codes: half `n` (values `128n..128n + 128`) uses `ql[64n..][..64]` and
//! `qh[32n..][..32]`; for `l < 32`: value `128n + l` = `ql[l] & 15 | (qh[l] & 3) << 4`,
//! `+ 32` = `ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4`, `+ 64` = `ql[l] >> 4 | (qh[l] >> 4 & 3) << 4`,
//! `+ 96` = `ql[l + 32] >> 4 | (qh[l] >> 6) << 4`.

use super::codec::{f16_at, nearest_int, to_f16};

/// Bytes of a Q4_K block.
pub(crate) const Q4K_BYTES: usize = 144;
/// Bytes of a Q6_K block.
pub(crate) const Q6K_BYTES: usize = 210;

/// ggml's `GROUP_MAX_EPS`: sub-blocks below it quantize to zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// The 6-bit scale and minimum of Q4_K sub-block `j` (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// The 256 codes (0..=15) of a Q4_K block, in value order.
#[inline(always)]
pub(crate) fn q4_k_codes(block: &[u8], codes: &mut [u8; 256]) {
    for (c, chunk) in block[16..144].chunks_exact(32).enumerate() {
        for (l, &b) in chunk.iter().enumerate() {
            codes[64 * c + l] = b & 0xF;
            codes[64 * c + 32 + l] = b >> 4;
        }
    }
}

/// The 256 codes (0..=63) of a Q6_K block, in value order.
#[inline(always)]
pub(crate) fn q6_k_codes(block: &[u8], codes: &mut [u8; 256]) {
    for n in 0..2 {
        let ql = &block[64 * n..64 * n + 64];
        let qh = &block[128 + 32 * n..128 + 32 * n + 32];
        for l in 0..32 {
            let base = 128 * n + l;
            codes[base] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            codes[base + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            codes[base + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            codes[base + 96] = (ql[l + 32] >> 4) | ((qh[l] >> 6) << 4);
        }
    }
}

/// ggml's `make_qkx2_quants`: a scale and a minimum for `x` with codes `0..=nmax`, searched
/// over `nstep + 1` candidate scales by weighted least squares. Returns `(scale, −min)`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_mad = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_mad += weights[i] * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            aux[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut mad = 0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(aux[i]) + this_min - x[i];
                mad += weights[i] * (diff * diff);
            }
            if mad < best_mad {
                l_out[..n].copy_from_slice(&aux[..n]);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type` 1 (weights `x²`): a signed scale for codes
/// `−nmax..nmax` (stored `+ nmax`), searched over 19 candidates.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [u8]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = code(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let mut iscale = -(nmax as f32) / max;
    for (o, &v) in l_out.iter_mut().zip(x) {
        *o = (code(iscale, v) + nmax) as u8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (o, &v) in l_out.iter_mut().zip(x) {
                *o = (code(iscale, v) + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Quantizes 256 values to a Q4_K block (ggml's `quantize_row_q4_K_ref`).
pub(crate) fn quantize_q4_k(x: &[f32], out: &mut [u8]) -> Result<(), String> {
    let mut codes = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2 = xs.iter().fold(0f32, |s, &v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + xs[l].abs());
        let (scale, min) = make_qkx2_quants(
            15,
            xs,
            &weights,
            &mut codes[32 * j..32 * j + 32],
            -1.0,
            0.1,
            20,
        );
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let s = &mut out[4..16];
    s.fill(0);
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            s[j - 4] |= (ls >> 4) << 6;
            s[j] |= (lm >> 4) << 6;
        }
    }
    out[..2].copy_from_slice(&to_f16(max_scale / 63.0, "scale")?);
    out[2..4].copy_from_slice(&to_f16(max_min / 63.0, "minimum")?);
    let (d, dmin) = (f16_at(out, 0), f16_at(out, 2));
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &out[4..16]);
        let dj = d * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for i in 32 * j..32 * j + 32 {
            codes[i] = nearest_int((x[i] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    for (c, chunk) in out[16..144].chunks_exact_mut(32).enumerate() {
        for (l, b) in chunk.iter_mut().enumerate() {
            *b = codes[64 * c + l] | (codes[64 * c + 32 + l] << 4);
        }
    }
    Ok(())
}

/// Dequantizes a Q4_K block as `gguf-py`: `(d·sc)·q − dmin·m`.
#[inline(always)]
pub(crate) fn dequantize_q4_k(block: &[u8], out: &mut [f32]) {
    let mut codes = [0u8; 256];
    q4_k_codes(block, &mut codes);
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    for (j, (o, c)) in out
        .chunks_exact_mut(32)
        .zip(codes.chunks_exact(32))
        .enumerate()
    {
        let (sc, m) = scale_min_k4(j, &block[4..16]);
        let (dj, mj) = (d * f32::from(sc), dmin * f32::from(m));
        for (o, &q) in o.iter_mut().zip(c) {
            *o = dj * f32::from(q) - mj;
        }
    }
}

/// Quantizes 256 values to a Q6_K block (ggml's `quantize_row_q6_K_ref`).
pub(crate) fn quantize_q6_k(x: &[f32], out: &mut [u8]) -> Result<(), String> {
    let mut codes = [0u8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for ib in 0..16 {
        let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut codes[16 * ib..][..16]);
        scales[ib] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    out.fill(0);
    if max_abs_scale < GROUP_MAX_EPS {
        return Ok(());
    }
    let iscale = -128.0 / max_scale;
    out[208..210].copy_from_slice(&to_f16(1.0 / iscale, "scale")?);
    for ib in 0..16 {
        out[192 + ib] = nearest_int(iscale * scales[ib]).clamp(-128, 127) as i8 as u8;
    }
    let d = f16_at(out, 208);
    for j in 0..16 {
        let dj = d * f32::from(out[192 + j] as i8);
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            codes[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as u8;
        }
    }
    for n in 0..2 {
        for l in 0..32 {
            let q = |o: usize| codes[128 * n + l + o];
            out[64 * n + l] = (q(0) & 0xF) | ((q(64) & 0xF) << 4);
            out[64 * n + l + 32] = (q(32) & 0xF) | ((q(96) & 0xF) << 4);
            out[128 + 32 * n + l] =
                (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
        }
    }
    Ok(())
}

/// Dequantizes a Q6_K block as `gguf-py`: `(d·sc)·(q − 32)`.
#[inline(always)]
pub(crate) fn dequantize_q6_k(block: &[u8], out: &mut [f32]) {
    let mut codes = [0u8; 256];
    q6_k_codes(block, &mut codes);
    let d = f16_at(block, 208);
    for (j, (o, c)) in out
        .chunks_exact_mut(16)
        .zip(codes.chunks_exact(16))
        .enumerate()
    {
        let dj = d * f32::from(block[192 + j] as i8);
        for (o, &q) in o.iter_mut().zip(c) {
            *o = dj * f32::from(i16::from(q) - 32);
        }
    }
}

/// The eight 6-bit scales and the eight 6-bit minimums of a Q4_K block (its 12 scale bytes at
/// `s`), each as eight bytes of a u64 (sub-block `j` in byte `j`): [`scale_min_k4`] for all
/// sub-blocks at once, on three u32 words.
pub(crate) fn scales_mins_k4(s: &[u8]) -> (u64, u64) {
    let word = |i: usize| u32::from_le_bytes(s[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let (x0, x1, x2) = (word(0), word(1), word(2));
    let sc_lo = x0 & 0x3f3f_3f3f;
    let m_lo = x1 & 0x3f3f_3f3f;
    let sc_hi = (x2 & 0x0f0f_0f0f) | (((x0 >> 6) & 0x0303_0303) << 4);
    let m_hi = ((x2 >> 4) & 0x0f0f_0f0f) | (((x1 >> 6) & 0x0303_0303) << 4);
    (
        u64::from(sc_lo) | (u64::from(sc_hi) << 32),
        u64::from(m_lo) | (u64::from(m_hi) << 32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_unpacking_matches_scale_min_k4() {
        let mut s = [0u8; 12];
        for seed in 0..2000u32 {
            for (i, b) in s.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).rotate_left(i as u32 * 5) >> 3) as u8;
            }
            let (sc, m) = scales_mins_k4(&s);
            for j in 0..8 {
                let (a, b) = scale_min_k4(j, &s);
                assert_eq!(
                    ((sc >> (8 * j)) as u8, (m >> (8 * j)) as u8),
                    (a, b),
                    "{s:?} {j}"
                );
            }
        }
    }
}
