//! AVX2 ternary dot kernels: `R` rows of 2-bit codes (0, 1, 2) against one token's int8
//! activations with `vpmaddubsw` (u8 × s8 → pairs summed into i16) and `vpmaddwd` by ones (→ i32).
//!
//! i16 bound: a `vpmaddubsw` lane is at most 2 · 2 · 128 = 512 in magnitude (codes ≤ 2,
//! |q| ≤ 128), and at most 8 of them are summed in i16 before widening (4096 < 32767), so nothing
//! saturates. (bitnet.cpp sums 128 of them, which can wrap for extreme inputs.)
//!
//! Layout: the same permuted activations as the AVX-512 kernels ([`super::permute_activations`]),
//! read as 32-byte halves: for 256-chunk `p`, field `g` of the 32 bytes of half `h` pairs with
//! `act[p * 256 + 64g + 32h..][..32]`.

use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2")]
fn reduce_i32x8(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
    _mm_cvtsi128_si32(s)
}

#[inline]
#[target_feature(enable = "avx2")]
fn reduce_f32x8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Four 2-bit fields of 32 code bytes times four activation vectors, summed into i32 lanes.
/// `shifts[i]` is the right shift that brings field `i` down.
#[inline]
#[target_feature(enable = "avx2")]
fn dot32(w: __m256i, shifts: [i32; 4], a: [__m256i; 4]) -> __m256i {
    let mask = _mm256_set1_epi8(3);
    let field = |i: usize| {
        let s = _mm_cvtsi32_si128(shifts[i]);
        _mm256_and_si256(_mm256_srl_epi16(w, s), mask)
    };
    let p0 = _mm256_maddubs_epi16(field(0), a[0]);
    let p1 = _mm256_maddubs_epi16(field(1), a[1]);
    let p2 = _mm256_maddubs_epi16(field(2), a[2]);
    let p3 = _mm256_maddubs_epi16(field(3), a[3]);
    let sum16 = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
    _mm256_madd_epi16(sum16, _mm256_set1_epi16(1))
}

/// Activation vectors of half `h` of 256-chunk `p` (permuted layout).
///
/// # Safety
/// `act` must hold at least `p * 256 + 256` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn permuted(act: &[i8], p: usize, h: usize) -> [__m256i; 4] {
    // SAFETY: the 4 loads end at p * 256 + 3 * 64 + 32 + 32 <= p * 256 + 256 (caller).
    core::array::from_fn(|g| unsafe {
        _mm256_loadu_si256(act.as_ptr().add(p * 256 + g * 64 + h * 32).cast())
    })
}

/// `Σ code · q` of each I2_S row against the permuted activations (see the AVX-512 kernel).
#[target_feature(enable = "avx2")]
pub fn i2s_dots<const R: usize>(rows: &[&[u8]; R], act: &[i8]) -> [i32; R] {
    let k = act.len();
    assert!(k.is_multiple_of(128) && rows.iter().all(|r| r.len() == k / 4));
    const I2S_SHIFTS: [i32; 4] = [6, 4, 2, 0];
    let mut acc = [_mm256_setzero_si256(); R];
    let blocks = k / 128;
    for blk in 0..blocks {
        let (p, h) = (blk / 2, blk % 2);
        let a = if p < k / 256 {
            // SAFETY: p < k / 256.
            unsafe { permuted(act, p, h) }
        } else {
            // The odd last block is not permuted: field g pairs with act[base + 32g..][..32].
            // SAFETY: its 128 activations end at k.
            core::array::from_fn(|g| unsafe {
                _mm256_loadu_si256(act.as_ptr().add(blk * 128 + g * 32).cast())
            })
        };
        for (r, row) in rows.iter().enumerate() {
            // SAFETY: block blk's 32 bytes end at (blk + 1) * 32 <= k / 4.
            let w = unsafe { _mm256_loadu_si256(row.as_ptr().add(blk * 32).cast()) };
            acc[r] = _mm256_add_epi32(acc[r], dot32(w, I2S_SHIFTS, a));
        }
    }
    core::array::from_fn(|r| reduce_i32x8(acc[r]))
}

/// TQ2_0 rows against one token (see the AVX-512 kernel for the arithmetic).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn tq2_0_dots<const R: usize>(
    rows: &[&[u8]; R],
    act: &[i8],
    ds: &[f32],
    sumqs: &[i32],
) -> [f32; R] {
    let nb = ds.len();
    assert!(sumqs.len() == nb && act.len() == nb * 256 && rows.iter().all(|r| r.len() == nb * 66));
    const TQ2_SHIFTS: [i32; 4] = [0, 2, 4, 6];
    let mut accf = [_mm256_setzero_ps(); R];
    for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        // SAFETY: b < nb, so chunk b of the permuted activations is inside `act`.
        let (a0, a1) = unsafe { (permuted(act, b, 0), permuted(act, b, 1)) };
        let seed = _mm256_setr_epi32(-sumq, 0, 0, 0, 0, 0, 0, 0);
        for (r, row) in rows.iter().enumerate() {
            let block = &row[b * 66..b * 66 + 66];
            // SAFETY: the two 32-byte halves of `qs` are inside the 66-byte block.
            let (w0, w1) = unsafe {
                (
                    _mm256_loadu_si256(block.as_ptr().cast()),
                    _mm256_loadu_si256(block.as_ptr().add(32).cast()),
                )
            };
            let acc = _mm256_add_epi32(
                _mm256_add_epi32(seed, dot32(w0, TQ2_SHIFTS, a0)),
                dot32(w1, TQ2_SHIFTS, a1),
            );
            let dw = f16_bits_to_f32(u16::from_le_bytes([block[64], block[65]]));
            accf[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(dx * dw), accf[r]);
        }
    }
    core::array::from_fn(|r| reduce_f32x8(accf[r]))
}

/// `Σ code · q` of the four rows of a native group (see the AVX-512 kernel).
#[target_feature(enable = "avx2")]
pub fn native_i2s_dots(group: &[u8], act: &[i8]) -> [i32; 4] {
    let k = act.len();
    assert!(k.is_multiple_of(256) && group.len() == k);
    const I2S_SHIFTS: [i32; 4] = [6, 4, 2, 0];
    let mut acc = [_mm256_setzero_si256(); 4];
    for p in 0..k / 256 {
        for h in 0..2 {
            // SAFETY: p < k / 256.
            let a = unsafe { permuted(act, p, h) };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: half h of row r's 64 bytes of chunk p is inside the group.
                let w = unsafe {
                    _mm256_loadu_si256(group.as_ptr().add(p * 256 + r * 64 + h * 32).cast())
                };
                *acc_r = _mm256_add_epi32(*acc_r, dot32(w, I2S_SHIFTS, a));
            }
        }
    }
    acc.map(|v| reduce_i32x8(v))
}

/// The four rows of a native group repacked from TQ2_0 (see the AVX-512 kernel).
#[target_feature(enable = "avx2,fma")]
pub fn native_tq_dots(
    group: &[u8],
    scales: &[f32],
    act: &[i8],
    ds: &[f32],
    sumqs: &[i32],
) -> [f32; 4] {
    let nb = ds.len();
    assert!(sumqs.len() == nb && act.len() == nb * 256 && group.len() == nb * 256);
    assert!(scales.len() == nb * 4);
    const I2S_SHIFTS: [i32; 4] = [6, 4, 2, 0];
    let mut accf = [_mm256_setzero_ps(); 4];
    for (p, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        // SAFETY: p < nb.
        let (a0, a1) = unsafe { (permuted(act, p, 0), permuted(act, p, 1)) };
        let seed = _mm256_setr_epi32(-sumq, 0, 0, 0, 0, 0, 0, 0);
        for (r, accf_r) in accf.iter_mut().enumerate() {
            // SAFETY: row r's 64 bytes of chunk p are inside the group.
            let (w0, w1) = unsafe {
                let base = group.as_ptr().add(p * 256 + r * 64);
                (
                    _mm256_loadu_si256(base.cast()),
                    _mm256_loadu_si256(base.add(32).cast()),
                )
            };
            let acc = _mm256_add_epi32(
                _mm256_add_epi32(seed, dot32(w0, I2S_SHIFTS, a0)),
                dot32(w1, I2S_SHIFTS, a1),
            );
            let scale = _mm256_set1_ps(dx * scales[p * 4 + r]);
            *accf_r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), scale, *accf_r);
        }
    }
    accf.map(|v| reduce_f32x8(v))
}

/// TQ1_0 rows against one token (see the AVX-512 kernel): the block's trit bytes as two halves,
/// `qs[0..32]` and `[qs[32..48], qh[0..4], 0 × 12]`, lanes 0..32 and 32..64 of the arranged
/// activations. Unsigned `≥` by `max_epu8` + `cmpeq`; `vpmaddubsw` lanes are at most 512 and ten
/// of them (five steps × two halves) are summed in i16 (5120) before widening.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn tq1_0_dots<const R: usize>(
    rows: &[&[u8]; R],
    act: &[i8],
    ds: &[f32],
    sumqs: &[i32],
) -> [f32; R] {
    let nb = ds.len();
    assert!(sumqs.len() == nb && act.len() == nb * 320 && rows.iter().all(|r| r.len() == nb * 54));
    let (t1, t2) = (_mm256_set1_epi8(86), _mm256_set1_epi8(171u8 as i8));
    let zero = _mm256_setzero_si256();
    let trit = |p: __m256i| {
        let ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, t1), p);
        let ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, t2), p);
        _mm256_sub_epi8(_mm256_sub_epi8(zero, ge1), ge2)
    };
    let mut accf = [_mm256_setzero_ps(); R];
    for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        let base = b * 320;
        // SAFETY: b < nb: the block's 320 arranged activation bytes are inside `act`.
        let a: [[__m256i; 2]; 5] = core::array::from_fn(|n| unsafe {
            [
                _mm256_loadu_si256(act.as_ptr().add(base + n * 64).cast()),
                _mm256_loadu_si256(act.as_ptr().add(base + n * 64 + 32).cast()),
            ]
        });
        let seed = _mm256_setr_epi32(-sumq, 0, 0, 0, 0, 0, 0, 0);
        for (r, row) in rows.iter().enumerate() {
            let block = &row[b * 54..b * 54 + 54];
            let mut tail = [0u8; 32];
            tail[..20].copy_from_slice(&block[32..52]);
            // SAFETY: 32 bytes of the 54-byte block, and the 32-byte local copy.
            let (mut p0, mut p1) = unsafe {
                (
                    _mm256_loadu_si256(block.as_ptr().cast()),
                    _mm256_loadu_si256(tail.as_ptr().cast()),
                )
            };
            let mut sum16 = _mm256_setzero_si256();
            for a_n in &a {
                sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit(p0), a_n[0]));
                sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit(p1), a_n[1]));
                p0 = _mm256_add_epi8(_mm256_add_epi8(p0, p0), p0);
                p1 = _mm256_add_epi8(_mm256_add_epi8(p1, p1), p1);
            }
            let acc = _mm256_add_epi32(seed, _mm256_madd_epi16(sum16, _mm256_set1_epi16(1)));
            let dw = f16_bits_to_f32(u16::from_le_bytes([block[52], block[53]]));
            accf[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(dx * dw), accf[r]);
        }
    }
    core::array::from_fn(|r| reduce_f32x8(accf[r]))
}

/// An f16 (its bits) as f32, with F16C's `vcvtph2ps`.
#[inline]
#[target_feature(enable = "f16c")]
fn f16_bits_to_f32(bits: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}
