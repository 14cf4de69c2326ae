//! The 256-bit ternary dot kernels, written once and instantiated per byte-dot instruction by
//! [`ymm_kernels!`]: `vpmaddubsw` + `vpmaddwd` on AVX2 (`avx2.rs`), `vpdpbusd` ymm on AVX-VNNI
//! (VEX) and on AVX-512 VNNI + VL (EVEX, `avx_vnni.rs`).
//!
//! A byte dot `dot(acc, u, s)` adds the u8 × s8 products of `N` vector pairs to the i32 lanes of
//! `acc`, four adjacent bytes per lane; the kernels call it only with codes (0, 1, 2) or trits as
//! `u`, so `N` ≤ 10 keeps AVX2's i16 partial sums within ±5120.
//!
//! Layout: the permuted activations of the AVX-512 kernels ([`super::permute_activations`]) read
//! as 32-byte halves: for 256-chunk `p`, field `g` of the 32 code bytes of half `h` pairs with
//! `act[p * 256 + 64g + 32h..][..32]`. Rows are processed four at a time against each
//! activation load (loop order: chunks outside, rows inside).

use core::arch::x86_64::*;

/// The right shifts that bring I2_S's four 2-bit fields down, in activation order.
pub const I2S_SHIFTS: [i32; 4] = [6, 4, 2, 0];
/// The same for TQ2_0's `qs`.
pub const TQ2_SHIFTS: [i32; 4] = [0, 2, 4, 6];

/// The four 2-bit fields of 32 code bytes (`shifts[g]` brings field `g` down).
#[inline]
#[target_feature(enable = "avx2")]
pub fn fields(w: __m256i, shifts: [i32; 4]) -> [__m256i; 4] {
    let mask = _mm256_set1_epi8(3);
    shifts.map(|s| _mm256_and_si256(_mm256_srl_epi16(w, _mm_cvtsi32_si128(s)), mask))
}

/// The fields of both 32-byte halves of 64 code bytes at `codes`, paired with [`permuted_chunk`].
///
/// # Safety
/// `codes` must be valid for 64 bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn fields64(codes: *const u8, shifts: [i32; 4]) -> [__m256i; 8] {
    // SAFETY: 64 bytes (caller).
    let (w0, w1) = unsafe {
        (
            _mm256_loadu_si256(codes.cast()),
            _mm256_loadu_si256(codes.add(32).cast()),
        )
    };
    let (f0, f1) = (fields(w0, shifts), fields(w1, shifts));
    core::array::from_fn(|i| if i < 4 { f0[i] } else { f1[i - 4] })
}

/// Activation vectors of half `h` of 256-chunk `p` (permuted layout).
///
/// # Safety
/// `act` must hold at least `p * 256 + 256` bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn permuted(act: &[i8], p: usize, h: usize) -> [__m256i; 4] {
    // SAFETY: the 4 loads end at p * 256 + 3 * 64 + 32 + 32 <= p * 256 + 256 (caller).
    core::array::from_fn(|g| unsafe {
        _mm256_loadu_si256(act.as_ptr().add(p * 256 + g * 64 + h * 32).cast())
    })
}

/// Both halves of 256-chunk `p`, in the order of [`fields64`].
///
/// # Safety
/// As [`permuted`].
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn permuted_chunk(act: &[i8], p: usize) -> [__m256i; 8] {
    // SAFETY: caller.
    let (a0, a1) = unsafe { (permuted(act, p, 0), permuted(act, p, 1)) };
    core::array::from_fn(|i| if i < 4 { a0[i] } else { a1[i - 4] })
}

/// The activations of an odd last 128-block (not permuted: field `g` pairs with
/// `act[128 blk + 32g..][..32]`).
///
/// # Safety
/// `act` must hold at least `blk * 128 + 128` bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn plain128(act: &[i8], blk: usize) -> [__m256i; 4] {
    // SAFETY: the 4 loads end at blk * 128 + 128 (caller).
    core::array::from_fn(|g| unsafe {
        _mm256_loadu_si256(act.as_ptr().add(blk * 128 + g * 32).cast())
    })
}

/// The ten trit vectors of a TQ1_0 block (five steps × two halves: `qs[0..32]` and
/// `[qs[32..48], qh[0..4], 0 × 12]`, lanes 0..32 and 32..64 of the arranged activations). Trit
/// `n` of a byte is `(P_n ≥ 86) + (P_n ≥ 171)` with `P_{n+1} = 3 P_n mod 256`; unsigned `≥` is
/// `max_epu8` + `cmpeq`.
///
/// # Safety
/// `block` must be valid for 52 bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn trits(block: *const u8) -> [__m256i; 10] {
    let mut tail = [0u8; 32];
    // SAFETY: bytes 32..52 of the block (caller) into the 32-byte local copy; then 32 bytes of
    // the block and the copy.
    let (mut p0, mut p1) = unsafe {
        core::ptr::copy_nonoverlapping(block.add(32), tail.as_mut_ptr(), 20);
        (
            _mm256_loadu_si256(block.cast()),
            _mm256_loadu_si256(tail.as_ptr().cast()),
        )
    };
    let (t1, t2) = (_mm256_set1_epi8(86), _mm256_set1_epi8(171u8 as i8));
    let zero = _mm256_setzero_si256();
    let trit = |p: __m256i| {
        let ge1 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, t1), p);
        let ge2 = _mm256_cmpeq_epi8(_mm256_max_epu8(p, t2), p);
        _mm256_sub_epi8(_mm256_sub_epi8(zero, ge1), ge2)
    };
    let mut out = [zero; 10];
    for n in 0..5 {
        out[2 * n] = trit(p0);
        out[2 * n + 1] = trit(p1);
        p0 = _mm256_add_epi8(_mm256_add_epi8(p0, p0), p0);
        p1 = _mm256_add_epi8(_mm256_add_epi8(p1, p1), p1);
    }
    out
}

/// The arranged activations of TQ1_0 block `b`, in the order of [`trits`].
///
/// # Safety
/// `act` must hold at least `b * 320 + 320` bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn arranged(act: &[i8], b: usize) -> [__m256i; 10] {
    // SAFETY: the 10 loads end at b * 320 + 320 (caller).
    core::array::from_fn(|i| unsafe {
        _mm256_loadu_si256(act.as_ptr().add(b * 320 + i * 32).cast())
    })
}

/// `−Σq` in lane 0 (the seed that makes a block's integer exact).
#[inline]
#[target_feature(enable = "avx2")]
pub fn seed(sumq: i32) -> __m256i {
    _mm256_setr_epi32(-sumq, 0, 0, 0, 0, 0, 0, 0)
}

/// The sum of the i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub fn reduce_i32x8(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
    _mm_cvtsi128_si32(s)
}

/// The sum of the f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub fn reduce_f32x8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// An f16 (its bits) as f32, with F16C's `vcvtph2ps`.
#[inline]
#[target_feature(enable = "f16c")]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// Defines the five 256-bit kernels (`i2s_dots`, `tq2_0_dots`, `native_i2s_dots`,
/// `native_tq_dots`, `tq1_0_dots`) in the invoking module, compiled with `$features` and built
/// on the byte dot `$dot` (module docs). The arithmetic of each is that of the AVX-512 kernel of
/// the same name.
macro_rules! ymm_kernels {
    ($features:literal, $dot:path) => {
        use core::arch::x86_64::*;

        use $crate::kernels::ymm::{
            I2S_SHIFTS, TQ2_SHIFTS, arranged, f16_bits_to_f32, fields, fields64, permuted,
            permuted_chunk, plain128, reduce_f32x8, reduce_i32x8, seed, trits,
        };

        /// `Σ code · q` of each I2_S row (`k / 4` bytes) against the `k` permuted activations
        /// (`k` a multiple of 128).
        #[target_feature(enable = $features)]
        pub fn i2s_dots<const R: usize>(rows: &[&[u8]; R], act: &[i8]) -> [i32; R] {
            let k = act.len();
            assert!(k.is_multiple_of(128) && rows.iter().all(|r| r.len() == k / 4));
            let mut acc = [_mm256_setzero_si256(); R];
            for blk in 0..k / 128 {
                let (p, h) = (blk / 2, blk % 2);
                // SAFETY: p < k / 256 for a permuted chunk; else blk is the odd last 128-block,
                // whose activations end at k.
                let a = unsafe {
                    if p < k / 256 {
                        permuted(act, p, h)
                    } else {
                        plain128(act, blk)
                    }
                };
                for (r, row) in rows.iter().enumerate() {
                    // SAFETY: block blk's 32 bytes end at (blk + 1) * 32 <= k / 4.
                    let w = unsafe { _mm256_loadu_si256(row.as_ptr().add(blk * 32).cast()) };
                    acc[r] = $dot(acc[r], fields(w, I2S_SHIFTS), a);
                }
            }
            core::array::from_fn(|r| reduce_i32x8(acc[r]))
        }

        /// TQ2_0 rows (`nb` blocks of 66 bytes) against one token's permuted Q8_K activations
        /// (`ds`, `sumqs`: its blocks' scales and `Σq`).
        #[target_feature(enable = $features)]
        pub fn tq2_0_dots<const R: usize>(
            rows: &[&[u8]; R],
            act: &[i8],
            ds: &[f32],
            sumqs: &[i32],
        ) -> [f32; R] {
            let nb = ds.len();
            assert!(sumqs.len() == nb && act.len() == nb * 256);
            assert!(rows.iter().all(|r| r.len() == nb * 66));
            let mut accf = [_mm256_setzero_ps(); R];
            for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
                // SAFETY: b < nb, so chunk b of the permuted activations is inside `act`.
                let a = unsafe { permuted_chunk(act, b) };
                for (r, row) in rows.iter().enumerate() {
                    let block = &row[b * 66..b * 66 + 66];
                    // SAFETY: the 64 `qs` bytes are inside the 66-byte block.
                    let w = unsafe { fields64(block.as_ptr(), TQ2_SHIFTS) };
                    let acc = $dot(seed(sumq), w, a);
                    let dw = f16_bits_to_f32(u16::from_le_bytes([block[64], block[65]]));
                    let scale = _mm256_set1_ps(dx * dw);
                    accf[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), scale, accf[r]);
                }
            }
            core::array::from_fn(|r| reduce_f32x8(accf[r]))
        }

        /// `Σ code · q` of the four rows of a native group (`k` bytes) against the `k` permuted
        /// activations.
        #[target_feature(enable = $features)]
        pub fn native_i2s_dots(group: &[u8], act: &[i8]) -> [i32; 4] {
            let k = act.len();
            assert!(k.is_multiple_of(256) && group.len() == k);
            let mut acc = [_mm256_setzero_si256(); 4];
            for p in 0..k / 256 {
                // SAFETY: p < k / 256.
                let a = unsafe { permuted_chunk(act, p) };
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    // SAFETY: row r's 64 bytes of chunk p are inside the group.
                    let w = unsafe { fields64(group.as_ptr().add(p * 256 + r * 64), I2S_SHIFTS) };
                    *acc_r = $dot(*acc_r, w, a);
                }
            }
            acc.map(|v| reduce_i32x8(v))
        }

        /// The four rows of a native group repacked from TQ2_0 (`scales[4p + r]`) against one
        /// token's permuted Q8_K activations.
        #[target_feature(enable = $features)]
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
            let mut accf = [_mm256_setzero_ps(); 4];
            for (p, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
                // SAFETY: p < nb.
                let a = unsafe { permuted_chunk(act, p) };
                for (r, accf_r) in accf.iter_mut().enumerate() {
                    // SAFETY: row r's 64 bytes of chunk p are inside the group.
                    let w = unsafe { fields64(group.as_ptr().add(p * 256 + r * 64), I2S_SHIFTS) };
                    let acc = $dot(seed(sumq), w, a);
                    let scale = _mm256_set1_ps(dx * scales[p * 4 + r]);
                    *accf_r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), scale, *accf_r);
                }
            }
            accf.map(|v| reduce_f32x8(v))
        }

        /// TQ1_0 rows (`nb` blocks of 54 bytes) against one token's arranged Q8_K activations
        /// (320 bytes per block).
        #[target_feature(enable = $features)]
        pub fn tq1_0_dots<const R: usize>(
            rows: &[&[u8]; R],
            act: &[i8],
            ds: &[f32],
            sumqs: &[i32],
        ) -> [f32; R] {
            let nb = ds.len();
            assert!(sumqs.len() == nb && act.len() == nb * 320);
            assert!(rows.iter().all(|r| r.len() == nb * 54));
            let mut accf = [_mm256_setzero_ps(); R];
            for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
                // SAFETY: b < nb: the block's 320 arranged activation bytes are inside `act`.
                let a = unsafe { arranged(act, b) };
                for (r, row) in rows.iter().enumerate() {
                    let block = &row[b * 54..b * 54 + 54];
                    // SAFETY: the 52 trit bytes are inside the 54-byte block.
                    let t = unsafe { trits(block.as_ptr()) };
                    let acc = $dot(seed(sumq), t, a);
                    let dw = f16_bits_to_f32(u16::from_le_bytes([block[52], block[53]]));
                    let scale = _mm256_set1_ps(dx * dw);
                    accf[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), scale, accf[r]);
                }
            }
            core::array::from_fn(|r| reduce_f32x8(accf[r]))
        }
    };
}

pub(crate) use ymm_kernels;
