//! AVX-512 leaves of the activation quantizers: the same two operations as
//! [`crate::quantize_avx2`], sixteen lanes at a time with masked tails. `vcvtps2dq` rounds to
//! nearest even (the default MXCSR mode); the results are clamped to [-128, 127] as i32 and
//! narrowed with `vpmovdb`, so they are the scalar definition's, bit for bit.

use core::arch::x86_64::*;

use crate::float16::x86::lanes16;

/// `max |x|` (0 for an empty row); NaN if any value is NaN (an infinity gives infinity).
#[target_feature(enable = "avx512f")]
pub fn absmax(x: &[f32]) -> f32 {
    let mut m = [_mm512_setzero_ps(); 4];
    let mut nan: __mmask16 = 0;
    let mut quads = x.chunks_exact(64);
    for c in &mut quads {
        for (i, m) in m.iter_mut().enumerate() {
            // SAFETY: `c` is 64 floats.
            let v = unsafe { _mm512_loadu_ps(c.as_ptr().add(16 * i)) };
            *m = _mm512_max_ps(*m, _mm512_abs_ps(v));
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        }
    }
    for c in quads.remainder().chunks(16) {
        // SAFETY: the mask covers the `c.len() ≤ 16` floats of `c`; masked-off lanes are zero.
        let v = unsafe { _mm512_maskz_loadu_ps(lanes16(c.len()), c.as_ptr()) };
        m[0] = _mm512_max_ps(m[0], _mm512_abs_ps(v));
        nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    }
    if nan != 0 {
        return f32::NAN;
    }
    _mm512_reduce_max_ps(_mm512_max_ps(
        _mm512_max_ps(m[0], m[1]),
        _mm512_max_ps(m[2], m[3]),
    ))
}

/// `out[i] = clamp(round_half_even(x[i] · s), -128, 127)`; returns `Σ out`.
#[target_feature(enable = "avx512f")]
pub fn quantize(x: &[f32], s: f32, out: &mut [i8]) -> i32 {
    assert_eq!(x.len(), out.len());
    let vs = _mm512_set1_ps(s);
    let (lo, hi) = (_mm512_set1_epi32(-128), _mm512_set1_epi32(127));
    let q = |v: __m512| {
        _mm512_min_epi32(
            _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vs)), lo),
            hi,
        )
    };
    let mut sum = [_mm512_setzero_si512(); 2];
    let n32 = x.len() / 32 * 32;
    for (xc, oc) in x[..n32]
        .chunks_exact(32)
        .zip(out[..n32].chunks_exact_mut(32))
    {
        for (i, sum) in sum.iter_mut().enumerate() {
            // SAFETY: `xc` is 32 floats and `oc` 32 bytes.
            unsafe {
                let v = q(_mm512_loadu_ps(xc.as_ptr().add(16 * i)));
                _mm_storeu_si128(oc.as_mut_ptr().add(16 * i).cast(), _mm512_cvtepi32_epi8(v));
                *sum = _mm512_add_epi32(*sum, v);
            }
        }
    }
    for (xc, oc) in x[n32..].chunks(16).zip(out[n32..].chunks_mut(16)) {
        let mask = lanes16(xc.len());
        // SAFETY: the mask covers the `xc.len() ≤ 16` floats of `xc` and bytes of `oc`;
        // masked-off lanes load as zero and quantize to zero.
        unsafe {
            let v = q(_mm512_maskz_loadu_ps(mask, xc.as_ptr()));
            _mm512_mask_cvtepi32_storeu_epi8(oc.as_mut_ptr().cast(), mask, v);
            sum[0] = _mm512_add_epi32(sum[0], v);
        }
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(sum[0], sum[1]))
}
