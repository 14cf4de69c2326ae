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

/// The pair's 16 i16 table entries `W0[c] · q0 + W1[c] · q1` (module docs of [`super`]).
#[inline]
#[target_feature(enable = "avx2")]
fn pair_table(q0: i8, q1: i8) -> __m256i {
    let w0 = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    let w1 = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    _mm256_add_epi16(
        _mm256_mullo_epi16(w0, _mm256_set1_epi16(i16::from(q0))),
        _mm256_mullo_epi16(w1, _mm256_set1_epi16(i16::from(q1))),
    )
}

/// [`super::build_tables`] (16 low bytes, 16 high bytes per pair) with AVX2: identical bytes.
#[target_feature(enable = "avx2")]
pub fn build_tables(q: &[i8], out: &mut [u8]) {
    assert!(out.len() == q.len() / 2 * 32);
    // Per 128-bit lane: the 8 low bytes, then the 8 high bytes; then the lanes' quarters
    // reordered to [low 0..8, low 8..16, high 0..8, high 8..16].
    let split = _mm256_setr_epi8(
        0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5,
        7, 9, 11, 13, 15,
    );
    for (pair, table) in q.chunks_exact(2).zip(out.chunks_exact_mut(32)) {
        let t = _mm256_shuffle_epi8(pair_table(pair[0], pair[1]), split);
        let t = _mm256_permute4x64_epi64::<0b11_01_10_00>(t);
        // SAFETY: `table` is 32 bytes.
        unsafe { _mm256_storeu_si256(table.as_mut_ptr().cast(), t) };
    }
}

/// [`super::build_tables_i16`] (the 16 i16 entries twice per pair) with AVX2: identical bytes.
#[target_feature(enable = "avx2")]
pub fn build_tables_i16(q: &[i8], out: &mut [u8]) {
    assert!(out.len() == q.len() / 2 * 64);
    for (pair, table) in q.chunks_exact(2).zip(out.chunks_exact_mut(64)) {
        let t = pair_table(pair[0], pair[1]);
        // SAFETY: `table` is 64 bytes.
        unsafe {
            _mm256_storeu_si256(table.as_mut_ptr().cast(), t);
            _mm256_storeu_si256(table.as_mut_ptr().add(32).cast(), t);
        }
    }
}
