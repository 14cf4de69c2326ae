//! AVX-512 16 x 16 in-register transpose for the packers (`transpose.rs`).

use core::arch::x86_64::*;

/// Writes the 16 x 16 block of floats at `src` (row `i` at `src + i * src_stride`) transposed to
/// `dst` (row `j` at `dst + j * dst_stride`): `dst[j][i] = src[i][j]`.
///
/// # Safety
/// The CPU must support AVX-512F; the 16 source rows of 16 floats must be readable and the 16
/// destination rows of 16 floats writable (any alignment), and the two must not overlap.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose_16x16(
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
) {
    // SAFETY: each row read is inside the source block (caller's contract).
    let r: [__m512; 16] =
        core::array::from_fn(|i| unsafe { _mm512_loadu_ps(src.add(i * src_stride)) });
    for (j, col) in transpose_registers(r).into_iter().enumerate() {
        // SAFETY: row j < 16 of the destination block (caller's contract).
        unsafe { _mm512_storeu_ps(dst.add(j * dst_stride), col) };
    }
}

/// The ragged form of [`transpose_16x16`]: the block at `src` is `rows x cols` (each ≤ 16) and
/// only the `cols x rows` transposed block is written (masked loads and stores touch nothing
/// else; the missing source elements count as zero).
///
/// # Safety
/// The CPU must support AVX-512F; `rows` source rows of `cols` floats must be readable and `cols`
/// destination rows of `rows` floats writable, not overlapping.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose_masked(
    src: *const f32,
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: *mut f32,
    dst_stride: usize,
) {
    debug_assert!(rows <= 16 && cols <= 16);
    let lanes = |n: usize| ((1u32 << n) - 1) as __mmask16;
    let r: [__m512; 16] = core::array::from_fn(|i| {
        if i < rows {
            // SAFETY: masked-off lanes are not accessed; the `cols` others are inside row i of
            // the source block (caller's contract).
            unsafe { _mm512_maskz_loadu_ps(lanes(cols), src.add(i * src_stride)) }
        } else {
            _mm512_setzero_ps()
        }
    });
    for (j, col) in transpose_registers(r).into_iter().enumerate().take(cols) {
        // SAFETY: as above: `rows` floats of destination row j < cols.
        unsafe { _mm512_mask_storeu_ps(dst.add(j * dst_stride), lanes(rows), col) };
    }
}

/// Transposes 16 registers of 16 floats: lane `i` of `out[j]` is lane `j` of `r[i]`
/// ([`bitnet_simd::transpose::transpose_16x16_x32`] on the same bits).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose_registers(r: [__m512; 16]) -> [__m512; 16] {
    let bits = r.map(|v| _mm512_castps_si512(v));
    bitnet_simd::transpose::transpose_16x16_x32(bits).map(|v| _mm512_castsi512_ps(v))
}

/// Unit indices of the second stage of [`transpose_6x16`]: for output vector `v % 3` of a half,
/// 64-bit unit `j` is (depth `p`, pair `q`) with `8 * (v % 3) + j = 3 * p + q`.
const fn six_run_tables() -> [([i64; 8], [i64; 8], u8); 3] {
    let mut out = [([0i64; 8], [0i64; 8], 0u8); 3];
    let mut v = 0;
    while v < 3 {
        let mut j = 0;
        while j < 8 {
            let u = 8 * v + j;
            let (p, q) = ((u / 3) as i64, u % 3);
            match q {
                0 => out[v].0[j] = p,
                1 => out[v].0[j] = 8 + p,
                _ => {
                    out[v].1[j] = p;
                    out[v].2 |= 1 << j;
                }
            }
            j += 1;
        }
        v += 1;
    }
    out
}

const SIX_RUN_TABLES: [([i64; 8], [i64; 8], u8); 3] = six_run_tables();

/// Writes 16 depth steps of 6 runs (run `r` at `src + r * src_stride`) as 16 contiguous rows of
/// 6 floats at `dst` (96 floats): the B panel of the 64 x 6 AVX-512 tile.
///
/// Two permute stages, 18 permutes for 96 floats (the masked 16 x 16 transpose takes 64):
/// interleave runs pairwise (`(r0 p, r1 p)` as one 64-bit unit per depth), then gather each
/// output vector's 8 units from the three pair vectors of its half.
///
/// # Safety
/// The CPU must support AVX-512F; 6 source rows of 16 floats must be readable and 96 floats
/// from `dst` writable, not overlapping.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose_6x16(src: *const f32, src_stride: usize, dst: *mut f32) {
    // SAFETY: each row read is inside the source block (caller's contract).
    let r: [__m512; 6] =
        core::array::from_fn(|i| unsafe { _mm512_loadu_ps(src.add(i * src_stride)) });
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // pairs[q][h]: runs 2q and 2q+1 interleaved, depths 8h..8h+8, one 64-bit unit per depth.
    let pairs: [[__m512d; 2]; 3] = core::array::from_fn(|q| {
        let (a, b) = (r[2 * q], r[2 * q + 1]);
        [
            _mm512_castps_pd(_mm512_permutex2var_ps(a, lo, b)),
            _mm512_castps_pd(_mm512_permutex2var_ps(a, hi, b)),
        ]
    });
    for v in 0..6 {
        let (h, (first_two, third, third_mask)) = (v / 3, SIX_RUN_TABLES[v % 3]);
        let idx01 = _mm512_setr_epi64(
            first_two[0],
            first_two[1],
            first_two[2],
            first_two[3],
            first_two[4],
            first_two[5],
            first_two[6],
            first_two[7],
        );
        let idx2 = _mm512_setr_epi64(
            third[0], third[1], third[2], third[3], third[4], third[5], third[6], third[7],
        );
        let units = _mm512_permutex2var_pd(pairs[0][h], idx01, pairs[1][h]);
        let units = _mm512_mask_permutexvar_pd(units, third_mask, idx2, pairs[2][h]);
        // SAFETY: floats 16v..16v+16 < 96 of the destination (caller's contract).
        unsafe { _mm512_storeu_ps(dst.add(16 * v), _mm512_castpd_ps(units)) };
    }
}
