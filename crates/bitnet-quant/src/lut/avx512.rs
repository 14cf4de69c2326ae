//! The LUT kernel on AVX-512 BW with `vpermw`: the 16-entry i16 table of a pair, written twice
//! (32 entries, one zmm), is indexed directly by the i16 lanes of the index vector: `vpermw`
//! reads only the low 5 bits of each lane, and the doubled table makes bit 4 irrelevant. So lane
//! `e` (bytes `2e`, `2e + 1`: rows `2e`, `2e + 1`) shifted right by 0, 4, 8 or 12 looks up pair
//! A or B of the even or odd row, exact i16, with no byte-to-word widening.

use core::arch::x86_64::*;

use super::{FLUSH_GROUPS, TILE_ROWS};

/// `Σ w · q` of the 64 rows of a tile (`groups` × 64 index bytes) against one token's doubled
/// i16 tables (`groups` × 128 bytes: 32 i16 per pair; [`super::build_tables_i16`]).
#[target_feature(enable = "avx512f,avx512bw")]
pub fn tile_dots(tile: &[u8], tables: &[u8], groups: usize) -> [i32; TILE_ROWS] {
    assert!(tile.len() >= groups * 64 && tables.len() >= groups * 128);
    // [0]: rows 2e, [1]: rows 2e + 1, e = 0..32.
    let mut sums = [[0i32; 32]; 2];
    for g0 in (0..groups).step_by(FLUSH_GROUPS) {
        let mut acc = [_mm512_setzero_si512(); 2];
        for g in g0..groups.min(g0 + FLUSH_GROUPS) {
            // SAFETY: group g's 64 index bytes are inside the tile (asserted length).
            let v = unsafe { _mm512_loadu_si512(tile.as_ptr().add(g * 64).cast()) };
            // SAFETY: pairs 2g and 2g + 1's 64-byte tables are inside `tables` (asserted).
            let (ta, tb) = unsafe {
                let t = tables.as_ptr().add(g * 128);
                (
                    _mm512_loadu_si512(t.cast()),
                    _mm512_loadu_si512(t.add(64).cast()),
                )
            };
            let even_a = _mm512_permutexvar_epi16(v, ta);
            let even_b = _mm512_permutexvar_epi16(_mm512_srli_epi16::<4>(v), tb);
            let odd_a = _mm512_permutexvar_epi16(_mm512_srli_epi16::<8>(v), ta);
            let odd_b = _mm512_permutexvar_epi16(_mm512_srli_epi16::<12>(v), tb);
            acc[0] = _mm512_add_epi16(acc[0], _mm512_add_epi16(even_a, even_b));
            acc[1] = _mm512_add_epi16(acc[1], _mm512_add_epi16(odd_a, odd_b));
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            let halves = [
                _mm512_castsi512_si256(*a),
                _mm512_extracti64x4_epi64::<1>(*a),
            ];
            for (h, half) in halves.into_iter().enumerate() {
                // SAFETY: 16 i32 at s[16h..].
                unsafe {
                    let p = s.as_mut_ptr().add(16 * h).cast::<__m512i>();
                    let wide = _mm512_cvtepi16_epi32(half);
                    _mm512_storeu_si512(p, _mm512_add_epi32(_mm512_loadu_si512(p), wide));
                }
            }
        }
    }
    core::array::from_fn(|r| sums[r % 2][r / 2])
}
