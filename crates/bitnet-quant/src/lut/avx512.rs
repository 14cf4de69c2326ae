//! The LUT kernel on AVX-512 BW: 64 rows per zmm of indices, `vpshufb` on tables broadcast to
//! the four 128-bit lanes.

use core::arch::x86_64::*;

use super::{FLUSH_GROUPS, TILE_ROWS};

/// `Σ w · q` of the 64 rows of a tile (`groups` × 64 index bytes) against one token's tables
/// (`groups` × 64 bytes: two pairs of lo and hi tables per group), see the module docs of
/// [`super`].
#[target_feature(enable = "avx512f,avx512bw")]
pub fn tile_dots(tile: &[u8], tables: &[u8], groups: usize) -> [i32; TILE_ROWS] {
    assert!(tile.len() >= groups * 64 && tables.len() >= groups * 64);
    let low = _mm512_set1_epi8(0x0f);
    let mut rows = [0i32; TILE_ROWS];
    for g0 in (0..groups).step_by(FLUSH_GROUPS) {
        // i16 sums: [0] rows 16L + 0..8 of lane L, [1] rows 16L + 8..16.
        let mut acc = [_mm512_setzero_si512(); 2];
        for g in g0..groups.min(g0 + FLUSH_GROUPS) {
            // SAFETY: group g's 64 index bytes are inside the tile (asserted length).
            let v = unsafe { _mm512_loadu_si512(tile.as_ptr().add(g * 64).cast()) };
            let idx = [
                _mm512_and_si512(v, low),
                _mm512_and_si512(_mm512_srli_epi16::<4>(v), low),
            ];
            for (h, idx) in idx.into_iter().enumerate() {
                // SAFETY: pair 2g + h's 32 table bytes are inside `tables` (asserted length).
                let (lo, hi) = unsafe {
                    let t = tables.as_ptr().add((2 * g + h) * 32);
                    (
                        _mm512_broadcast_i32x4(_mm_loadu_si128(t.cast())),
                        _mm512_broadcast_i32x4(_mm_loadu_si128(t.add(16).cast())),
                    )
                };
                let (l, s) = (_mm512_shuffle_epi8(lo, idx), _mm512_shuffle_epi8(hi, idx));
                acc[0] = _mm512_add_epi16(acc[0], _mm512_unpacklo_epi8(l, s));
                acc[1] = _mm512_add_epi16(acc[1], _mm512_unpackhi_epi8(l, s));
            }
        }
        for (part, a) in acc.iter().enumerate() {
            let halves = [
                _mm512_castsi512_si256(*a),
                _mm512_extracti64x4_epi64::<1>(*a),
            ];
            for (q, half) in halves.into_iter().enumerate() {
                let lanes = [
                    _mm256_castsi256_si128(half),
                    _mm256_extracti128_si256::<1>(half),
                ];
                for (l, lane) in lanes.into_iter().enumerate() {
                    let first = 16 * (2 * q + l) + 8 * part;
                    add_rows(&mut rows[first..first + 8], _mm256_cvtepi16_epi32(lane));
                }
            }
        }
    }
    rows
}

/// `rows[..8] += v`.
#[inline]
#[target_feature(enable = "avx2")]
fn add_rows(rows: &mut [i32], v: __m256i) {
    assert!(rows.len() >= 8);
    // SAFETY: 8 i32 (asserted).
    unsafe {
        let p = rows.as_mut_ptr().cast::<__m256i>();
        _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), v));
    }
}
