//! The sparse dot `Σ values[i] · x[cols[i]]` with hardware gathers: 16 (AVX-512,
//! `vgatherdps` zmm) or 8 (AVX2) nonzeros per step, two accumulators taking steps in turn, the
//! ragged tail under a mask (AVX-512) or in scalar FMAs (AVX2); then a tree of adds.
//!
//! Preconditions the callers establish: every `cols[i] < x.len() ≤ i32::MAX` (gathers take
//! signed 32-bit indices, scaled by 4).

use core::arch::x86_64::*;

/// AVX-512: 16 nonzeros per gather.
///
/// # Safety
/// AVX-512 F; `cols.len() == values.len()`, every `cols[i] < x.len() ≤ i32::MAX`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sparse_dot_avx512(cols: &[u32], values: &[f32], x: &[f32]) -> f32 {
    debug_assert!(cols.len() == values.len() && x.len() <= i32::MAX as usize);
    debug_assert!(cols.iter().all(|&c| (c as usize) < x.len()));
    let n = values.len();
    let mut acc = [_mm512_setzero_ps(); 2];
    let full = n / 16;
    for s in 0..full {
        // SAFETY: 16 indices and values at 16 s < n; the gathered addresses are inside x
        // (caller).
        unsafe {
            let idx = _mm512_loadu_si512(cols.as_ptr().add(16 * s).cast());
            let v = _mm512_loadu_ps(values.as_ptr().add(16 * s));
            let g = _mm512_i32gather_ps::<4>(idx, x.as_ptr().cast());
            acc[s % 2] = _mm512_fmadd_ps(v, g, acc[s % 2]);
        }
    }
    let done = 16 * full;
    if done < n {
        let m = ((1u32 << (n - done)) - 1) as __mmask16;
        // SAFETY: only the n − done present lanes are loaded and gathered (mask).
        unsafe {
            let idx = _mm512_maskz_loadu_epi32(m, cols.as_ptr().add(done).cast());
            let v = _mm512_maskz_loadu_ps(m, values.as_ptr().add(done));
            let g = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, idx, x.as_ptr().cast());
            acc[full % 2] = _mm512_fmadd_ps(v, g, acc[full % 2]);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]))
}

/// AVX2: 8 nonzeros per gather.
///
/// # Safety
/// AVX2 and FMA; `cols.len() == values.len()`, every `cols[i] < x.len() ≤ i32::MAX`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sparse_dot_avx2(cols: &[u32], values: &[f32], x: &[f32]) -> f32 {
    debug_assert!(cols.len() == values.len() && x.len() <= i32::MAX as usize);
    debug_assert!(cols.iter().all(|&c| (c as usize) < x.len()));
    let n = values.len();
    let mut acc = [_mm256_setzero_ps(); 2];
    let full = n / 8;
    for s in 0..full {
        // SAFETY: 8 indices and values at 8 s < n; the gathered addresses are inside x
        // (caller).
        unsafe {
            let idx = _mm256_loadu_si256(cols.as_ptr().add(8 * s).cast());
            let v = _mm256_loadu_ps(values.as_ptr().add(8 * s));
            let g = _mm256_i32gather_ps::<4>(x.as_ptr(), idx);
            acc[s % 2] = _mm256_fmadd_ps(v, g, acc[s % 2]);
        }
    }
    let s = _mm256_add_ps(acc[0], acc[1]);
    let lo = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    let lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    let mut sum = _mm_cvtss_f32(lo);
    for i in 8 * full..n {
        sum = values[i].mul_add(x[cols[i] as usize], sum);
    }
    sum
}
