//! The LUT kernel on AVX2: each 64-row group as two ymm of indices (rows 0..32, 32..64),
//! `vpshufb` on tables broadcast to both 128-bit lanes.

use core::arch::x86_64::*;

use super::{FLUSH_GROUPS, TILE_ROWS};

/// `Σ w · q` of the 64 rows of a tile against one token's tables (as the AVX-512 kernel).
#[target_feature(enable = "avx2")]
pub fn tile_dots(tile: &[u8], tables: &[u8], groups: usize) -> [i32; TILE_ROWS] {
    assert!(tile.len() >= groups * 64 && tables.len() >= groups * 64);
    let low = _mm256_set1_epi8(0x0f);
    let mut rows = [0i32; TILE_ROWS];
    for g0 in (0..groups).step_by(FLUSH_GROUPS) {
        // i16 sums: [half][part]: rows 32 half + 16L + 8 part + 0..8 of lane L.
        let mut acc = [[_mm256_setzero_si256(); 2]; 2];
        for g in g0..groups.min(g0 + FLUSH_GROUPS) {
            // SAFETY: group g's 64 index bytes are inside the tile (asserted length).
            let v: [__m256i; 2] = core::array::from_fn(|half| unsafe {
                _mm256_loadu_si256(tile.as_ptr().add(g * 64 + 32 * half).cast())
            });
            for h in 0..2 {
                // SAFETY: pair 2g + h's 32 table bytes are inside `tables` (asserted length).
                let (lo, hi) = unsafe {
                    let t = tables.as_ptr().add((2 * g + h) * 32);
                    (
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.cast())),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(16).cast())),
                    )
                };
                for (half, acc_half) in acc.iter_mut().enumerate() {
                    let idx = if h == 0 {
                        _mm256_and_si256(v[half], low)
                    } else {
                        _mm256_and_si256(_mm256_srli_epi16::<4>(v[half]), low)
                    };
                    let (l, s) = (_mm256_shuffle_epi8(lo, idx), _mm256_shuffle_epi8(hi, idx));
                    acc_half[0] = _mm256_add_epi16(acc_half[0], _mm256_unpacklo_epi8(l, s));
                    acc_half[1] = _mm256_add_epi16(acc_half[1], _mm256_unpackhi_epi8(l, s));
                }
            }
        }
        for (half, parts) in acc.iter().enumerate() {
            for (part, a) in parts.iter().enumerate() {
                let lanes = [
                    _mm256_castsi256_si128(*a),
                    _mm256_extracti128_si256::<1>(*a),
                ];
                for (l, lane) in lanes.into_iter().enumerate() {
                    let first = 32 * half + 16 * l + 8 * part;
                    let r = &mut rows[first..first + 8];
                    // SAFETY: 8 i32.
                    unsafe {
                        let p = r.as_mut_ptr().cast::<__m256i>();
                        let sum =
                            _mm256_add_epi32(_mm256_loadu_si256(p), _mm256_cvtepi16_epi32(lane));
                        _mm256_storeu_si256(p, sum);
                    }
                }
            }
        }
    }
    rows
}
