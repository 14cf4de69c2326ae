//! `vpdpbusd` on ymm: the 256-bit kernels of [`super::ymm`] for CPUs with AVX-VNNI and no
//! AVX-512 (VEX encoding, this module), and the same kernels in the EVEX encoding of AVX-512 VNNI
//! + VL ([`evex`]).
//!
//! The two differ only in the instruction's encoding, so [`evex`] is how a machine with AVX-512
//! VNNI verifies the code an AVX-VNNI machine runs: the tests run both wherever they can, and
//! report the VEX path as absent where the CPU lacks AVX-VNNI.

use core::arch::x86_64::__m256i;

/// Adds `Σ_i u[i] · s[i]` (u8 × s8, four adjacent bytes per lane, no saturation) to the i32
/// lanes of `acc`, in two `vpdpbusd` chains.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
pub(crate) fn dot<const N: usize>(acc: __m256i, u: [__m256i; N], s: [__m256i; N]) -> __m256i {
    use core::arch::x86_64::*;
    let (mut even, mut odd) = (acc, _mm256_setzero_si256());
    for (i, (u, s)) in u.into_iter().zip(s).enumerate() {
        if i % 2 == 0 {
            even = _mm256_dpbusd_avx_epi32(even, u, s);
        } else {
            odd = _mm256_dpbusd_avx_epi32(odd, u, s);
        }
    }
    _mm256_add_epi32(even, odd)
}

super::ymm::ymm_kernels!("avx2,fma,f16c,avxvnni", dot);

/// The same kernels with the EVEX `vpdpbusd` of AVX-512 VNNI + VL.
pub mod evex {
    use core::arch::x86_64::__m256i;

    /// As the VEX `dot` of the parent module.
    #[inline]
    #[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
    pub(crate) fn dot<const N: usize>(acc: __m256i, u: [__m256i; N], s: [__m256i; N]) -> __m256i {
        use core::arch::x86_64::*;
        let (mut even, mut odd) = (acc, _mm256_setzero_si256());
        for (i, (u, s)) in u.into_iter().zip(s).enumerate() {
            if i % 2 == 0 {
                even = _mm256_dpbusd_epi32(even, u, s);
            } else {
                odd = _mm256_dpbusd_epi32(odd, u, s);
            }
        }
        _mm256_add_epi32(even, odd)
    }

    crate::kernels::ymm::ymm_kernels!("avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot);
}
