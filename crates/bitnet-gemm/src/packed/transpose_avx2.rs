//! AVX2 8 x 8 in-register transpose for the packers (`transpose.rs`).

use core::arch::x86_64::*;

/// Writes the 8 x 8 block of floats at `src` (row `i` at `src + i * src_stride`) transposed to
/// `dst` (row `j` at `dst + j * dst_stride`): `dst[j][i] = src[i][j]`.
///
/// # Safety
/// The CPU must support AVX2; the 8 source rows of 8 floats must be readable and the 8
/// destination rows of 8 floats writable (any alignment), and the two must not overlap.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose_8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: each row read is inside the source block (caller's contract).
    let r: [__m256; 8] =
        core::array::from_fn(|i| unsafe { _mm256_loadu_ps(src.add(i * src_stride)) });
    for (j, col) in transpose_registers(r).into_iter().enumerate() {
        // SAFETY: row j < 8 of the destination block (caller's contract).
        unsafe { _mm256_storeu_ps(dst.add(j * dst_stride), col) };
    }
}

/// The ragged form of [`transpose_8x8`]: the block at `src` is `rows x cols` (each ≤ 8) and only
/// the `cols x rows` transposed block is written (masked loads and stores touch nothing else;
/// the missing source elements count as zero).
///
/// # Safety
/// The CPU must support AVX2; `rows` source rows of `cols` floats must be readable and `cols`
/// destination rows of `rows` floats writable, not overlapping.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose_masked(
    src: *const f32,
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: *mut f32,
    dst_stride: usize,
) {
    debug_assert!(rows <= 8 && cols <= 8);
    let lanes = |n: usize| {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    };
    let r: [__m256; 8] = core::array::from_fn(|i| {
        if i < rows {
            // SAFETY: masked-off lanes are not accessed; the `cols` others are inside row i of
            // the source block (caller's contract).
            unsafe { _mm256_maskload_ps(src.add(i * src_stride), lanes(cols)) }
        } else {
            _mm256_setzero_ps()
        }
    });
    for (j, col) in transpose_registers(r).into_iter().enumerate().take(cols) {
        // SAFETY: as above: `rows` floats of destination row j < cols.
        unsafe { _mm256_maskstore_ps(dst.add(j * dst_stride), lanes(rows), col) };
    }
}

/// Transposes 8 registers of 8 floats: lane `i` of `out[j]` is lane `j` of `r[i]`.
///
/// Three shuffle stages, 24 shuffles for 64 floats: unpack pairs of rows, 64-bit shuffles of
/// those, then 128-bit lane permutes.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose_registers(r: [__m256; 8]) -> [__m256; 8] {
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
    let mut out = [_mm256_setzero_ps(); 8];
    for c in 0..4 {
        out[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
        out[c + 4] = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
    }
    out
}
