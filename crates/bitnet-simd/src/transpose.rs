//! In-register transposes of 32-bit elements, shared by the kernels that pack operands (the f32
//! GEMM packers of `bitnet-gemm`, the int8 GEMM's B panels of `bitnet-quant`). The shuffles move
//! bits, so one routine serves f32 and i32 (cast the registers).

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

/// Transposes 16 registers of 16 32-bit elements: lane `i` of `out[j]` is lane `j` of `r[i]`.
///
/// Four shuffle stages, 64 shuffles for 256 elements: unpack pairs of rows (32-bit), unpack pairs
/// of those (64-bit), then two rounds of 128-bit lane shuffles that gather each column's four
/// quarter-columns.
///
/// # Safety
/// The CPU must support AVX-512 F (a safe call from code compiled with that feature).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub fn transpose_16x16_x32(r: [__m512i; 16]) -> [__m512i; 16] {
    // t[2q], t[2q+1]: rows 2q, 2q+1 interleaved (lanes hold elements 0,1 / 2,3 of each 128 bits).
    let mut t = [_mm512_setzero_si512(); 16];
    for q in 0..8 {
        t[2 * q] = _mm512_unpacklo_epi32(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_epi32(r[2 * q], r[2 * q + 1]);
    }
    // u[4g + c]: rows 4g..4g+4 at columns c, c + 4, c + 8, c + 12 (one per 128-bit lane).
    let mut u = [_mm512_setzero_si512(); 16];
    for g in 0..4 {
        let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = _mm512_unpacklo_epi64(a, c);
        u[4 * g + 1] = _mm512_unpackhi_epi64(a, c);
        u[4 * g + 2] = _mm512_unpacklo_epi64(b, d);
        u[4 * g + 3] = _mm512_unpackhi_epi64(b, d);
    }
    let mut out = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        // Rows 0-7 and 8-15 at columns c and c + 8 (0x88), c + 4 and c + 12 (0xdd).
        let v0 = _mm512_shuffle_i32x4::<0x88>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_i32x4::<0xdd>(u[c], u[4 + c]);
        let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + c], u[12 + c]);
        let v3 = _mm512_shuffle_i32x4::<0xdd>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        out[c + 8] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
        out[c + 4] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        out[c + 12] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
    }
    out
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn transposes_16x16() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("transpose_16x16_x32: AVX-512 F absent here, not run");
            return;
        }
        let m: Vec<i32> = (0..256).collect();
        // SAFETY: AVX-512 F is present (checked above); each load reads 16 i32 of `m`.
        let out = unsafe {
            let r = core::array::from_fn(|i| _mm512_loadu_si512(m.as_ptr().add(16 * i).cast()));
            transpose_16x16_x32(r)
        };
        let mut got = [0i32; 256];
        for (j, v) in out.iter().enumerate() {
            // SAFETY: 16 i32 into got[16j..].
            unsafe { _mm512_storeu_si512(got.as_mut_ptr().add(16 * j).cast(), *v) };
        }
        for j in 0..16 {
            for i in 0..16 {
                assert_eq!(got[16 * j + i], m[16 * i + j]);
            }
        }
    }
}
