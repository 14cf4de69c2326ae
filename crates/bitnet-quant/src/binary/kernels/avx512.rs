//! AVX-512 binary kernels.
//!
//! XNOR-popcount (VPOPCNTDQ): per 512 bits, `vpxorq` (the bits where weight and activation
//! differ), `vpopcntq`, `vpaddq` into u64 lanes. Tile: 4 rows × `T` tokens (16 accumulators at
//! `T` = 4), so each weight load serves `T` tokens and each activation load four rows. Loop order:
//! 8-word steps outside, rows and tokens inside; the last `words % 8` words with masked loads.
//!
//! int8 × binary (AVX-512 BW): each 64-bit weight word is the mask of a `vpmaskmovb` over the
//! token's 64 activations biased to unsigned (`q ^ 0x80` = `q + 128`), and `vpsadbw` sums them
//! into u64 lanes: `Σ_{bit=1} (q + 128)`, exact. Four rows share each activation load.

use core::arch::x86_64::*;

/// Summed popcounts of `rows[r] XOR xs[t]` over `words` u64 words, for 4 rows × `T` tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
pub fn xnor_tile<const T: usize>(
    rows: [&[u64]; 4],
    xs: [&[u64]; T],
    words: usize,
) -> [[u32; T]; 4] {
    assert!(rows.iter().all(|r| r.len() >= words) && xs.iter().all(|x| x.len() >= words));
    let mut acc = [[_mm512_setzero_si512(); T]; 4];
    let step = |acc: &mut [[__m512i; T]; 4], i: usize, m: __mmask8| {
        // SAFETY: the masked loads read words i..i + popcount(m) <= words of each slice only.
        let x: [__m512i; T] = core::array::from_fn(|t| unsafe {
            _mm512_maskz_loadu_epi64(m, xs[t].as_ptr().add(i).cast())
        });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let w = unsafe { _mm512_maskz_loadu_epi64(m, rows[r].as_ptr().add(i).cast()) };
            for (a, x) in acc_r.iter_mut().zip(&x) {
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(w, *x)));
            }
        }
    };
    let full = words / 8 * 8;
    for i in (0..full).step_by(8) {
        step(&mut acc, i, 0xFF);
    }
    if full < words {
        step(&mut acc, full, (1u8 << (words - full)) - 1);
    }
    // Four horizontal sums at a time (row-major order of the accumulators).
    let mut out = [[0u32; T]; 4];
    for (sums, vs) in out
        .as_flattened_mut()
        .chunks_exact_mut(4)
        .zip(acc.as_flattened().chunks_exact(4))
    {
        let h = hsum4([vs[0], vs[1], vs[2], vs[3]]);
        for (o, v) in sums.iter_mut().zip(h) {
            *o = v as u32;
        }
    }
    out
}

/// The horizontal sums of four vectors of u64 lanes: pairs interleaved and added, then the
/// 128-bit lanes folded (9 instructions instead of four separate reductions).
#[inline]
#[target_feature(enable = "avx512f")]
fn hsum4(v: [__m512i; 4]) -> [u64; 4] {
    // Per 128-bit lane: [a, b] and [c, d].
    let ab = _mm512_add_epi64(
        _mm512_unpacklo_epi64(v[0], v[1]),
        _mm512_unpackhi_epi64(v[0], v[1]),
    );
    let cd = _mm512_add_epi64(
        _mm512_unpacklo_epi64(v[2], v[3]),
        _mm512_unpackhi_epi64(v[2], v[3]),
    );
    // [ab.0 + ab.2, ab.1 + ab.3, cd.0 + cd.2, cd.1 + cd.3], then adjacent 128-bit lanes added.
    let s = _mm512_add_epi64(
        _mm512_shuffle_i64x2::<0b01_00_01_00>(ab, cd),
        _mm512_shuffle_i64x2::<0b11_10_11_10>(ab, cd),
    );
    let t = _mm512_add_epi64(s, _mm512_shuffle_i64x2::<0b10_11_00_01>(s, s));
    let mut lanes = [0u64; 8];
    // SAFETY: lanes is 8 u64.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), t) };
    [lanes[0], lanes[1], lanes[4], lanes[5]]
}

/// `Σ_{bit = 1} (q + 128)` of each of 4 rows (`words` u64 words each) against one token's
/// biased activations `qb` (`q ^ 0x80`, at least `64 · words` bytes; bytes past `k` are masked
/// out by the rows' zero padding bits).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub fn int8_rows(rows: [&[u64]; 4], qb: &[u8], words: usize) -> [u64; 4] {
    assert!(rows.iter().all(|r| r.len() >= words) && qb.len() >= words * 64);
    let zero = _mm512_setzero_si512();
    let mut acc = [zero; 4];
    for i in 0..words {
        // SAFETY: 64 bytes from 64 i <= 64 (words − 1) are inside qb (asserted length).
        let q = unsafe { _mm512_loadu_si512(qb.as_ptr().add(i * 64).cast()) };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let picked = _mm512_maskz_mov_epi8(rows[r][i], q);
            *acc_r = _mm512_add_epi64(*acc_r, _mm512_sad_epu8(picked, zero));
        }
    }
    hsum4(acc)
}
