//! AVX2 8 x 8 in-register transpose for the packers (`transpose.rs`).

use core::arch::x86_64::*;

/// Writes the 8 x 8 block of floats at `src` (row `i` at `src + i * src_stride`) transposed to
/// `dst` (row `j` at `dst + j * dst_stride`): `dst[j][i] = src[i][j]`.
///
/// Three shuffle stages, 24 shuffles for 64 floats: unpack pairs of rows, 64-bit shuffles of
/// those, then 128-bit lane permutes.
///
/// # Safety
/// The CPU must support AVX; the 8 source rows of 8 floats must be readable and the 8
/// destination rows of 8 floats writable (any alignment), and the two must not overlap.
#[target_feature(enable = "avx")]
pub unsafe fn transpose_8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: each row read is inside the source block (caller's contract).
    let r: [__m256; 8] =
        core::array::from_fn(|i| unsafe { _mm256_loadu_ps(src.add(i * src_stride)) });
    // t[2q], t[2q+1]: rows 2q, 2q+1 interleaved within each 128-bit half.
    let mut t = [_mm256_setzero_ps(); 8];
    for q in 0..4 {
        t[2 * q] = _mm256_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm256_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    // u[4h + c]: rows 4h..4h+4 at columns c and c + 4 (one per 128-bit half).
    let mut u = [_mm256_setzero_ps(); 8];
    for h in 0..2 {
        let (a, b, c, d) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
        u[4 * h] = _mm256_shuffle_ps::<0x44>(a, c);
        u[4 * h + 1] = _mm256_shuffle_ps::<0xee>(a, c);
        u[4 * h + 2] = _mm256_shuffle_ps::<0x44>(b, d);
        u[4 * h + 3] = _mm256_shuffle_ps::<0xee>(b, d);
    }
    for c in 0..4 {
        let low = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
        let high = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
        // SAFETY: rows c and c + 4 < 8 of the destination block (caller's contract).
        unsafe {
            _mm256_storeu_ps(dst.add(c * dst_stride), low);
            _mm256_storeu_ps(dst.add((c + 4) * dst_stride), high);
        }
    }
}
