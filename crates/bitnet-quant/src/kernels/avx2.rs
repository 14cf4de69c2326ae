//! AVX2 ternary dot kernels: the 256-bit kernels of [`super::ymm`] on `vpmaddubsw` (u8 × s8 →
//! pairs summed into i16) and `vpmaddwd` by ones (→ i32).
//!
//! i16 bound: a `vpmaddubsw` lane is at most 2 · 2 · 128 = 512 in magnitude (codes and trits
//! ≤ 2, |q| ≤ 128), and at most 10 of them are summed in i16 before widening (5120 < 32767), so
//! nothing saturates. (bitnet.cpp sums 128 of them, which can wrap for extreme inputs.)

use core::arch::x86_64::__m256i;

/// Adds `Σ_i u[i] · s[i]` (u8 × s8, four adjacent bytes per lane) to the i32 lanes of `acc`:
/// the `N` (≤ 10) `vpmaddubsw` results are summed in i16, then widened once.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn dot<const N: usize>(acc: __m256i, u: [__m256i; N], s: [__m256i; N]) -> __m256i {
    use core::arch::x86_64::*;
    const { assert!(N <= 10, "more than 10 i16 partial sums could saturate") };
    let mut sum16 = _mm256_setzero_si256();
    for (u, s) in u.into_iter().zip(s) {
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(u, s));
    }
    _mm256_add_epi32(acc, _mm256_madd_epi16(sum16, _mm256_set1_epi16(1)))
}

super::ymm::ymm_kernels!("avx2,fma,f16c", dot);
