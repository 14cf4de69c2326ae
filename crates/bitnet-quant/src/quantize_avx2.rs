//! AVX2 leaves of the activation quantizers: the absmax of a row and `round_half_even(x · s)`
//! clamped to i8 with its sum, eight lanes at a time. `vcvtps2dq` rounds to nearest even (the
//! default MXCSR mode) and the saturating packs clamp to [-128, 127], so the result is the
//! scalar definition's, bit for bit.

use core::arch::x86_64::*;

/// `max |x|` (0 for an empty row); NaN if any value is NaN (an infinity gives infinity), so that
/// one pass both scales and checks the row.
#[target_feature(enable = "avx2")]
pub fn absmax(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    let mut nan = _mm256_setzero_ps();
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` is 8 floats.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    }
    if _mm256_movemask_ps(nan) != 0 || tail.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` is 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    lanes
        .iter()
        .chain(tail)
        .fold(0f32, |acc, v| acc.max(v.abs()))
}

/// `out[i] = clamp(round_half_even(x[i] · s), -128, 127)`; returns `Σ out`.
#[target_feature(enable = "avx2")]
pub fn quantize(x: &[f32], s: f32, out: &mut [i8]) -> i32 {
    assert_eq!(x.len(), out.len());
    let vs = _mm256_set1_ps(s);
    let mut sum = _mm256_setzero_si256();
    // packs interleave 128-bit halves; this permutation restores element order.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let n32 = x.len() / 32 * 32;
    for (xc, oc) in x[..n32]
        .chunks_exact(32)
        .zip(out[..n32].chunks_exact_mut(32))
    {
        // SAFETY: `xc` is 32 floats.
        let q: [__m256i; 4] = core::array::from_fn(|i| unsafe {
            _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xc.as_ptr().add(8 * i)), vs))
        });
        let w01 = _mm256_packs_epi32(q[0], q[1]);
        let w23 = _mm256_packs_epi32(q[2], q[3]);
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
        // SAFETY: `oc` is 32 bytes.
        unsafe { _mm256_storeu_si256(oc.as_mut_ptr().cast(), bytes) };
        // Sum the stored (clamped) bytes: sign-extend to i16 pairs, then to i32.
        let lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(bytes));
        let hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(bytes));
        sum = _mm256_add_epi32(
            sum,
            _mm256_madd_epi16(_mm256_add_epi16(lo, hi), _mm256_set1_epi16(1)),
        );
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 8 i32.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum) };
    let mut total: i32 = lanes.iter().sum();
    for (o, &v) in out[n32..].iter_mut().zip(&x[n32..]) {
        *o = (v * s).round_ties_even().clamp(-128.0, 127.0) as i8;
        total += i32::from(*o);
    }
    total
}
