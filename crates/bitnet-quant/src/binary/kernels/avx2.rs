//! AVX2 binary kernels.
//!
//! XNOR-popcount without a vector popcount: per 256 bits, `vpxor`, then the nibble-table count
//! (`vpshufb` of a 16-entry table for the low and the high nibble of every byte) added into byte
//! counters; every 31 steps (a byte gains at most 8 per step: 31 × 8 = 248 ≤ 255) `vpsadbw`
//! widens them into u64 lanes. Four rows share each activation load.
//!
//! int8 × binary: each 32-bit weight word is spread to a byte mask (`vpshufb` copies byte `i / 8`
//! to byte `i`, `vpand` + `vpcmpeqb` with the bit `1 << i % 8`), which selects the biased
//! activations (`q + 128`) that `vpsadbw` sums into u64 lanes.

use core::arch::x86_64::*;

/// Steps of byte counting before they are widened (module docs).
const FLUSH: usize = 31;

/// Summed popcounts of `rows[r] XOR x` over `words` u64 words (a multiple of 4 or not).
#[target_feature(enable = "avx2")]
pub fn xnor_rows(rows: [&[u64]; 4], x: &[u64], words: usize) -> [u32; 4] {
    assert!(rows.iter().all(|r| r.len() >= words) && x.len() >= words);
    let low = _mm256_set1_epi8(0x0f);
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3,
        3, 4,
    );
    let zero = _mm256_setzero_si256();
    let mut wide = [zero; 4];
    let full = words / 4 * 4;
    let mut i = 0;
    while i < full {
        let end = (i + 4 * FLUSH).min(full);
        let mut bytes = [zero; 4];
        while i < end {
            // SAFETY: words i..i + 4 <= full <= words are inside x and every row.
            let xv = unsafe { _mm256_loadu_si256(x.as_ptr().add(i).cast()) };
            for (r, b) in bytes.iter_mut().enumerate() {
                // SAFETY: as above.
                let w = unsafe { _mm256_loadu_si256(rows[r].as_ptr().add(i).cast()) };
                let d = _mm256_xor_si256(w, xv);
                let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(d, low));
                let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16::<4>(d), low));
                *b = _mm256_add_epi8(*b, _mm256_add_epi8(lo, hi));
            }
            i += 4;
        }
        for (w, b) in wide.iter_mut().zip(&bytes) {
            *w = _mm256_add_epi64(*w, _mm256_sad_epu8(*b, zero));
        }
    }
    let mut out = wide.map(|v| {
        let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u32
    });
    for j in full..words {
        for (o, row) in out.iter_mut().zip(&rows) {
            *o += (row[j] ^ x[j]).count_ones();
        }
    }
    out
}

/// `Σ_{bit = 1} (q + 128)` of each of 4 rows (`words` u64 words each) against one token's
/// biased activations `qb` (at least `64 · words` bytes; see the AVX-512 kernel).
#[target_feature(enable = "avx2")]
pub fn int8_rows(rows: [&[u64]; 4], qb: &[u8], words: usize) -> [u64; 4] {
    assert!(rows.iter().all(|r| r.len() >= words) && qb.len() >= words * 64);
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let zero = _mm256_setzero_si256();
    let mut acc = [zero; 4];
    for i in 0..words * 2 {
        // SAFETY: 32 bytes from 32 i <= 64 words − 32 are inside qb (asserted length).
        let q = unsafe { _mm256_loadu_si256(qb.as_ptr().add(i * 32).cast()) };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let half = (rows[r][i / 2] >> (32 * (i % 2))) as u32;
            let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(half as i32), spread);
            let mask = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
            let picked = _mm256_and_si256(mask, q);
            *acc_r = _mm256_add_epi64(*acc_r, _mm256_sad_epu8(picked, zero));
        }
    }
    acc.map(|v| {
        let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u64
    })
}
