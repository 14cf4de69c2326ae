//! The x86 conversion kernels: one function per conversion and level, each a vector loop over
//! whole vectors and a masked (AVX-512) or `half` (AVX2) tail. Data at any address: unaligned
//! loads and stores throughout.

use core::arch::x86_64::*;

use half::{bf16, f16};

use super::ConvertPath;

/// Calls the AVX-512 or the AVX2 kernel of a conversion for a checked `path`.
macro_rules! by_level {
    ($path:expr, $avx512:ident, $avx2:ident ($($arg:expr),*)) => {
        // SAFETY: the caller checked the path: its level's CPU features exist (AVX-512 F/BW/VL
        // for the AVX-512 paths, AVX2 + FMA + F16C for x86-64-v3).
        unsafe {
            match $path {
                ConvertPath::Avx512Bf16 | ConvertPath::Avx512 => $avx512($($arg),*),
                _ => $avx2($($arg),*),
            }
        }
    };
}

/// `dst = f16(src)` on a checked non-scalar path; equal lengths.
pub(super) fn f32_to_f16(path: ConvertPath, src: &[f32], dst: &mut [u16]) {
    by_level!(path, f32_to_f16_avx512, f32_to_f16_avx2(src, dst));
}

/// `dst = f32(src)` (f16 bits) on a checked non-scalar path; equal lengths.
pub(super) fn f16_to_f32(path: ConvertPath, src: &[u16], dst: &mut [f32]) {
    by_level!(path, f16_to_f32_avx512, f16_to_f32_avx2(src, dst));
}

/// `dst = f32(src)` (bf16 bits) on a checked non-scalar path; equal lengths.
pub(super) fn bf16_to_f32(path: ConvertPath, src: &[u16], dst: &mut [f32]) {
    by_level!(path, bf16_to_f32_avx512, bf16_to_f32_avx2(src, dst));
}

/// `dst = bf16(src)` on a checked non-scalar path; equal lengths.
pub(super) fn f32_to_bf16(path: ConvertPath, src: &[f32], dst: &mut [u16]) {
    if path == ConvertPath::Avx512Bf16 {
        // SAFETY: the caller checked the path: AVX-512 BF16 on AVX-512 F/BW/VL exists.
        unsafe { f32_to_bf16_avx512bf16(src, dst) };
        return;
    }
    by_level!(path, f32_to_bf16_avx512, f32_to_bf16_avx2(src, dst));
}

/// The mask of the first `n ≤ 16` of 16 lanes.
#[inline]
pub(crate) fn lanes16(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn f32_to_f16_avx512(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    let (n, full) = (src.len(), src.len() / 16 * 16);
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= n for both slices.
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_loadu_ps(src.as_ptr().add(i)),
            );
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), h);
        }
    }
    if full < n {
        let m = lanes16(n - full);
        // SAFETY: only the n - full present lanes are read and written (masks).
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_maskz_loadu_ps(m, src.as_ptr().add(full)),
            );
            _mm256_mask_storeu_epi16(dst.as_mut_ptr().add(full).cast(), m, h);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn f16_to_f32_avx512(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    let (n, full) = (src.len(), src.len() / 16 * 16);
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= n for both slices.
        unsafe {
            let h = _mm256_loadu_si256(src.as_ptr().add(i).cast());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
        }
    }
    if full < n {
        let m = lanes16(n - full);
        // SAFETY: only the n - full present lanes are read and written (masks).
        unsafe {
            let h = _mm256_maskz_loadu_epi16(m, src.as_ptr().add(full).cast());
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(full), m, _mm512_cvtph_ps(h));
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn bf16_to_f32_avx512(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    let (n, full) = (src.len(), src.len() / 16 * 16);
    // A NaN is quieted (bit 6 of the bf16 set), as `half` widens it.
    let widen = |h: __m256i| {
        let w = _mm512_cvtepu16_epi32(h);
        let nan = _mm512_cmpgt_epu32_mask(
            _mm512_and_si512(w, _mm512_set1_epi32(0x7FFF)),
            _mm512_set1_epi32(0x7F80),
        );
        let w = _mm512_mask_or_epi32(w, nan, w, _mm512_set1_epi32(0x0040));
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
    };
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= n for both slices.
        unsafe {
            let h = _mm256_loadu_si256(src.as_ptr().add(i).cast());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), widen(h));
        }
    }
    if full < n {
        let m = lanes16(n - full);
        // SAFETY: only the n - full present lanes are read and written (masks).
        unsafe {
            let h = _mm256_maskz_loadu_epi16(m, src.as_ptr().add(full).cast());
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(full), m, widen(h));
        }
    }
}

/// Round to nearest even on the f32 bits, NaN quieted (module docs), as 32-bit lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn bf16_bits_avx512(x: __m512) -> __m512i {
    let x = _mm512_castps_si512(x);
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(
        x,
        _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)),
    ));
    let nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(x, _mm512_set1_epi32(0x7FFF_FFFF)),
        _mm512_set1_epi32(0x7F80_0000),
    );
    let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(0x0040));
    _mm512_mask_blend_epi32(nan, rounded, quiet)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn f32_to_bf16_avx512(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    let (n, full) = (src.len(), src.len() / 16 * 16);
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= n for both slices.
        unsafe {
            let b = bf16_bits_avx512(_mm512_loadu_ps(src.as_ptr().add(i)));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi16(b));
        }
    }
    if full < n {
        let m = lanes16(n - full);
        // SAFETY: only the n - full present lanes are read and written (masks).
        unsafe {
            let b = bf16_bits_avx512(_mm512_maskz_loadu_ps(m, src.as_ptr().add(full)));
            _mm256_mask_storeu_epi16(
                dst.as_mut_ptr().add(full).cast(),
                m,
                _mm512_cvtepi32_epi16(b),
            );
        }
    }
}

/// `vcvtne2ps2bf16`: 32 values per instruction (module docs: subnormals flushed).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn f32_to_bf16_avx512bf16(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    let (n, full) = (src.len(), src.len() / 32 * 32);
    for i in (0..full).step_by(32) {
        // SAFETY: i + 32 <= n for both slices.
        unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr().add(i));
            let hi = _mm512_loadu_ps(src.as_ptr().add(i + 16));
            // Lanes 0..16 of the result come from the second operand.
            let b = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(
                dst.as_mut_ptr().add(i).cast(),
                core::mem::transmute::<__m512bh, __m512i>(b),
            );
        }
    }
    let mut i = full;
    while i < n {
        let m = lanes16((n - i).min(15));
        let m = if n - i >= 16 { 0xFFFF } else { m };
        // SAFETY: only the present lanes (at most 16) are read and written (masks).
        unsafe {
            let b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src.as_ptr().add(i)));
            _mm256_mask_storeu_epi16(
                dst.as_mut_ptr().add(i).cast(),
                m,
                core::mem::transmute::<__m256bh, __m256i>(b),
            );
        }
        i += 16;
    }
}

/// The values after the last whole vector, through `half`.
fn f32_to_f16_tail(src: &[f32], dst: &mut [u16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(s).to_bits();
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_to_f16_avx2(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    let full = src.len() / 8 * 8;
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let h =
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
        }
    }
    f32_to_f16_tail(&src[full..], &mut dst[full..]);
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f16_to_f32_avx2(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    let full = src.len() / 8 * 8;
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    for (d, &s) in dst[full..].iter_mut().zip(&src[full..]) {
        *d = f16::from_bits(s).to_f32();
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_to_f32_avx2(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len());
    let full = src.len() / 8 * 8;
    for i in (0..full).step_by(8) {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(src.as_ptr().add(i).cast()));
            // A NaN is quieted (bit 6 of the bf16 set), as `half` widens it.
            let nan = _mm256_cmpgt_epi32(
                _mm256_and_si256(w, _mm256_set1_epi32(0x7FFF)),
                _mm256_set1_epi32(0x7F80),
            );
            let w = _mm256_or_si256(w, _mm256_and_si256(nan, _mm256_set1_epi32(0x0040)));
            let w = _mm256_slli_epi32::<16>(w);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_castsi256_ps(w));
        }
    }
    for (d, &s) in dst[full..].iter_mut().zip(&src[full..]) {
        *d = bf16::from_bits(s).to_f32();
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_to_bf16_avx2(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    let full = src.len() / 16 * 16;
    let bits = |x: __m256| -> __m256i {
        let x = _mm256_castps_si256(x);
        let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(1));
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(
            x,
            _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF)),
        ));
        // |x| > inf as signed i32 compares: both sides are below 2^31.
        let nan = _mm256_cmpgt_epi32(
            _mm256_and_si256(x, _mm256_set1_epi32(0x7FFF_FFFF)),
            _mm256_set1_epi32(0x7F80_0000),
        );
        let quiet = _mm256_or_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(0x0040));
        _mm256_blendv_epi8(rounded, quiet, nan)
    };
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= n for both slices.
        unsafe {
            let a = bits(_mm256_loadu_ps(src.as_ptr().add(i)));
            let b = bits(_mm256_loadu_ps(src.as_ptr().add(i + 8)));
            // vpackusdw packs per 128-bit lane ([a0 b0 a1 b1]); the permute restores order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(a, b));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), packed);
        }
    }
    for (d, &s) in dst[full..].iter_mut().zip(&src[full..]) {
        *d = bf16::from_f32(s).to_bits();
    }
}
