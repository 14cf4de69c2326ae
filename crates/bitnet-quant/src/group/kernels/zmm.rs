//! Q4_0 on AVX-512 VNNI: two 18-byte blocks per 512-bit step, so the per-block work of the
//! 256-bit kernel (nibble split, byte dot, offset, convert, scale, FMA) is issued once per 64
//! values — what lets a GEMV keep up with DRAM on every core.
//!
//! Layout of one step (blocks `b`, `b + 1`, each `f16 d` then 16 code bytes): the code runs
//! `c0`, `c1` become one vector of 128-bit lanes `[c0, c0 >> 4, c1, c1 >> 4]` masked to nibbles,
//! which is value order for the 64 contiguous activations of the two blocks. The offset is
//! taken off exactly in the integers (`Σ code·q − Σ 8·q`, the second a `vpdpbusd` of 8s), the
//! lanes converted and multiplied by `d_w · d_a` of their block (lanes 0..8 block `b`, 8..16
//! block `b + 1`) in one FMA into one of `U` accumulators per token. An odd last block runs
//! alone with the upper half of the activations masked to zero.

use core::arch::x86_64::*;

use super::ymm::f16x4_load;

/// One Q4_0 row against `NT` tokens (i8 values `q`, block scales `d`), `U` accumulators per
/// token.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q4_0<const NT: usize, const U: usize>(
    row: &[u8],
    q: [&[i8]; NT],
    d: [&[f32]; NT],
) -> [f32; NT] {
    const BB: usize = 18;
    let nb = row.len() / BB;
    assert!(row.len() == nb * BB && (0..NT).all(|t| q[t].len() == nb * 32 && d[t].len() == nb));
    let nib = _mm512_set1_epi8(0x0F);
    let eights = _mm512_set1_epi8(8);
    let spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    // Blocks b and b + 1, or b alone (`two` false).
    let step = |b: usize, two: bool, acc: &mut [__m512; NT]| {
        let b1 = if two { b + 1 } else { b };
        // SAFETY: blocks b and b1 < nb lie inside the row (asserted): 18 bytes each, of which
        // the scale reads 8 and the codes 16 from byte 2.
        let (c0, c1, w0, w1) = unsafe {
            let (p0, p1) = (row.as_ptr().add(b * BB), row.as_ptr().add(b1 * BB));
            (
                _mm_loadu_si128(p0.add(2).cast()),
                _mm_loadu_si128(p1.add(2).cast()),
                f16x4_load(p0),
                f16x4_load(p1),
            )
        };
        let y = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(c0), c1);
        let z = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(y), _mm256_srli_epi16::<4>(y));
        let codes = _mm512_and_si512(_mm512_shuffle_i64x2::<0b11_01_10_00>(z, z), nib);
        let dw = _mm_unpacklo_ps(w0, w1);
        let mask: __mmask64 = if two { u64::MAX } else { u32::MAX as u64 };
        for t in 0..NT {
            // SAFETY: values 32b..32b + 64 of token t (32b + 32 under the one-block mask) and
            // scales b, b1 exist (asserted lengths).
            let (a, da) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, q[t].as_ptr().add(32 * b).cast()),
                    _mm_setr_ps(*d[t].get_unchecked(b), *d[t].get_unchecked(b1), 0.0, 0.0),
                )
            };
            let sum = _mm512_sub_epi32(
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, a),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, a),
            );
            let scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc[t]);
        }
    };
    let mut acc = [[_mm512_setzero_ps(); NT]; U];
    let pairs = nb / 2;
    let full = pairs / U * U;
    for p0 in (0..full).step_by(U) {
        for u in 0..U {
            step(2 * (p0 + u), true, &mut acc[u]);
        }
    }
    for p in full..pairs {
        step(2 * p, true, &mut acc[0]);
    }
    if nb % 2 == 1 {
        step(nb - 1, false, &mut acc[0]);
    }
    core::array::from_fn(|t| {
        _mm512_reduce_add_ps((1..U).fold(acc[0][t], |s, u| _mm512_add_ps(s, acc[u][t])))
    })
}
