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

/// Transposes 16 registers of 16 floats: lane `i` of `out[j]` is lane `j` of `r[i]`.
///
/// Four shuffle stages, 64 shuffles for 256 floats: unpack pairs of rows (32-bit), unpack pairs
/// of those (64-bit), then two rounds of 128-bit lane shuffles that gather each column's four
/// quarter-columns.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose_registers(r: [__m512; 16]) -> [__m512; 16] {
    // t[2q], t[2q+1]: rows 2q, 2q+1 interleaved (lanes hold elements 0,1 / 2,3 of each 128 bits).
    let mut t = [_mm512_setzero_ps(); 16];
    for q in 0..8 {
        t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    // u[4g + c]: rows 4g..4g+4 at columns c, c + 4, c + 8, c + 12 (one per 128-bit lane).
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(c)));
        u[4 * g + 1] =
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(c)));
        u[4 * g + 2] =
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(b), _mm512_castps_pd(d)));
        u[4 * g + 3] =
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(b), _mm512_castps_pd(d)));
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        // Rows 0-7 and 8-15 at columns c and c + 8 (0x88), c + 4 and c + 12 (0xdd).
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_f32x4::<0xdd>(u[c], u[4 + c]);
        let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
        let v3 = _mm512_shuffle_f32x4::<0xdd>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
        out[c + 8] = _mm512_shuffle_f32x4::<0xdd>(v0, v2);
        out[c + 4] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
        out[c + 12] = _mm512_shuffle_f32x4::<0xdd>(v1, v3);
    }
    out
}
