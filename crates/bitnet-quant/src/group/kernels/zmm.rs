//! Q4_0 on AVX-512 VNNI: two 18-byte blocks per 512-bit step, so the per-block work of the
//! 256-bit kernel (nibble split, byte dot, offset, convert, scale, FMA) is issued once per 64
//! values — what lets a GEMV keep up with DRAM on every core.
//!
//! Layout of one step (blocks `b`, `b + 1`, each `f16 d` then 16 code bytes): the code runs
//! `c0`, `c1` become one vector of 128-bit lanes `[c0, c0 >> 4, c1, c1 >> 4]` masked to nibbles,
//! which is value order for the 64 contiguous activations of the two blocks. The offset is
//! taken off exactly in the integers (`Σ code·q − Σ 8·q`, the second a `vpdpbusd` of 8s), the
//! lanes converted and multiplied by `d_w · d_a` of their block (lanes 0..8 block `b`, 8..16
//! block `b + 1`) in one FMA into one of `U` accumulators per token. An odd last block runs
//! alone with the upper half of the activations masked to zero.

use core::arch::x86_64::*;

use super::ymm::f16x4_load;
use crate::formats::q8_k::BlockQ8K;

/// One Q4_0 row against `NT` tokens (i8 values `q`, block scales `d`), `U` accumulators per
/// token.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q4_0<const NT: usize, const U: usize>(
    row: &[u8],
    q: [&[i8]; NT],
    d: [&[f32]; NT],
) -> [f32; NT] {
    const BB: usize = 18;
    let nb = row.len() / BB;
    assert!(row.len() == nb * BB && (0..NT).all(|t| q[t].len() == nb * 32 && d[t].len() == nb));
    let nib = _mm512_set1_epi8(0x0F);
    let eights = _mm512_set1_epi8(8);
    let spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    // Blocks b and b + 1, or b alone (`two` false).
    let step = |b: usize, two: bool, acc: &mut [__m512; NT]| {
        let b1 = if two { b + 1 } else { b };
        // SAFETY: blocks b and b1 < nb lie inside the row (asserted): 18 bytes each, of which
        // the scale reads 8 and the codes 16 from byte 2.
        let (c0, c1, w0, w1) = unsafe {
            let (p0, p1) = (row.as_ptr().add(b * BB), row.as_ptr().add(b1 * BB));
            (
                _mm_loadu_si128(p0.add(2).cast()),
                _mm_loadu_si128(p1.add(2).cast()),
                f16x4_load(p0),
                f16x4_load(p1),
            )
        };
        let y = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(c0), c1);
        let z = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(y), _mm256_srli_epi16::<4>(y));
        let codes = _mm512_and_si512(_mm512_shuffle_i64x2::<0b11_01_10_00>(z, z), nib);
        let dw = _mm_unpacklo_ps(w0, w1);
        let mask: __mmask64 = if two { u64::MAX } else { u32::MAX as u64 };
        for t in 0..NT {
            // SAFETY: values 32b..32b + 64 of token t (32b + 32 under the one-block mask) and
            // scales b, b1 exist (asserted lengths).
            let (a, da) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, q[t].as_ptr().add(32 * b).cast()),
                    _mm_setr_ps(*d[t].get_unchecked(b), *d[t].get_unchecked(b1), 0.0, 0.0),
                )
            };
            let sum = _mm512_sub_epi32(
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, a),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, a),
            );
            let scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc[t]);
        }
    };
    let mut acc = [[_mm512_setzero_ps(); NT]; U];
    let pairs = nb / 2;
    let full = pairs / U * U;
    for p0 in (0..full).step_by(U) {
        for u in 0..U {
            step(2 * (p0 + u), true, &mut acc[u]);
        }
    }
    for p in full..pairs {
        step(2 * p, true, &mut acc[0]);
    }
    if nb % 2 == 1 {
        step(nb - 1, false, &mut acc[0]);
    }
    core::array::from_fn(|t| {
        _mm512_reduce_add_ps((1..U).fold(acc[0][t], |s, u| _mm512_add_ps(s, acc[u][t])))
    })
}

/// The f16 scales (each block's first two bytes) of up to 16 consecutive `BB`-byte blocks at
/// `p` (`n` of them; the others 0) as f32. Block `j`'s scale is word `j · BB / 2` of the run: a
/// 128-byte window (two loads) holds the scales of its first `g = 63 / (BB / 2) + 1` blocks (8 of
/// Q4_0's 18-byte blocks, 4 of Q8_0's 34-byte ones), picked by one `vpermt2w` into words
/// `g·w..g·w + g` for window `w`. A gather of the 16 dwords measured 3× slower on Zen 5.
///
/// # Safety
/// `p` must be valid for `BB · n` bytes, `n ≤ 16`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c")]
unsafe fn block_scales16<const BB: usize>(p: *const u8, n: usize) -> __m512 {
    let g = 63 / (BB / 2) + 1;
    let len = BB * n;
    // Bytes at..at + 64 of the run that lie in its BB · n bytes.
    let part = |at: usize| -> __m512i {
        let valid = len.saturating_sub(at).min(64);
        let mask: __mmask64 = if valid == 64 {
            u64::MAX
        } else {
            (1u64 << valid) - 1
        };
        // SAFETY: only the bytes below BB · n are read (mask; caller).
        unsafe { _mm512_maskz_loadu_epi8(mask, p.wrapping_add(at).cast()) }
    };
    let words: [i16; 32] = core::array::from_fn(|i| ((i % g) * BB / 2) as i16);
    // SAFETY: 64 bytes of a local array.
    let words = unsafe { _mm512_loadu_si512(words.as_ptr().cast()) };
    let mut f16s = _mm512_setzero_si512();
    for w in 0..16 / g {
        let at = w * g * BB;
        let into: __mmask32 = ((1u32 << g) - 1) << (g * w);
        f16s = _mm512_or_si512(
            f16s,
            _mm512_maskz_permutex2var_epi16(into, part(at), words, part(at + 64)),
        );
    }
    _mm512_cvtph_ps(_mm512_castsi512_si256(f16s))
}

/// `acc + f32(dot) · scales[idx]`: a byte dot's lanes converted and multiplied by the scale of
/// the block or sub-block each lane belongs to (`idx`: that scale's index, per lane).
#[inline]
#[target_feature(enable = "avx512f")]
fn add_scaled(dot: __m512i, idx: __m512i, scales: __m512, acc: __m512) -> __m512 {
    _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(dot),
        _mm512_permutexvar_ps(idx, scales),
        acc,
    )
}

/// One step of a four-row kernel of 32-value blocks: blocks `b..b + 4` of every row, absent
/// blocks (past the row's end) with zero activations and zero scales.
#[derive(Clone, Copy)]
struct Step32 {
    /// The token's values of the four blocks (`x[0]`: blocks `b`, `b + 1`; `x[1]`: `b + 2`,
    /// `b + 3`).
    x: [__m512i; 2],
    /// Byte offset in a row of each block's codes (an absent block repeats the last present
    /// one, whose codes then meet zero activations).
    at: [usize; 4],
    /// Index of block `b` in the chunk's 16 scales.
    first: usize,
}

/// The frame shared by the four-row GEMV kernels of the 32-value formats with an f16 scale in
/// the first two bytes of each `BB`-byte block (Q4_0, Q8_0): for chunks of 16 blocks, the row
/// scales fetched at once ([`block_scales16`]) times the token's block scales `d`; then steps
/// of four blocks, each handed to `step` with the token's values (`q`), the code offsets and
/// the scale index, with the rows' scale vectors and accumulators.
///
/// Rows of a tensor are adjacent, so the row group after next starts four rows after this
/// group's last row ends: each step prefetches it at the pace this group is read (`16 · BB`
/// bytes per step), which keeps the memory stream running (four interleaved short rows alone
/// lose the hardware prefetchers). Measured on Q4_0 from DRAM on one core (Zen 5, 6912 × 2560):
/// 12.6 GB/s without, 25.7 one group ahead, 33.5 two groups ahead.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn rows4_blocks32<const BB: usize>(
    rows: [&[u8]; 4],
    q: &[i8],
    d: &[f32],
    mut step: impl FnMut(Step32, &[__m512; 4], &mut [__m512; 4]),
) -> [f32; 4] {
    let nb = q.len() / 32;
    assert!(q.len() == nb * 32 && d.len() == nb && rows.iter().all(|r| r.len() == nb * BB));
    // Bytes of the first `n` of 64 (a load mask).
    let first = |n: usize| -> __mmask64 { if n >= 64 { u64::MAX } else { (1u64 << n) - 1 } };
    let mut acc = [_mm512_setzero_ps(); 4];
    for c0 in (0..nb).step_by(16) {
        let n = 16.min(nb - c0);
        let lanes: __mmask16 = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
        // SAFETY: blocks c0..c0 + n exist in d (asserted length); masked lanes are not read.
        let da = unsafe { _mm512_maskz_loadu_ps(lanes, d.as_ptr().add(c0)) };
        let scales: [__m512; 4] = core::array::from_fn(|r| {
            // SAFETY: blocks c0..c0 + n of row r exist (asserted length).
            let w = unsafe { block_scales16::<BB>(rows[r].as_ptr().add(c0 * BB), n) };
            _mm512_mul_ps(w, da)
        });
        // Step `s` of the chunk: its blocks b..b + valid (valid ≤ 4).
        let mut run = |s: usize, valid: usize, acc: &mut [__m512; 4]| {
            let b = c0 + 4 * s;
            let full = valid == 4;
            let next = rows[3].as_ptr().wrapping_add(5 * nb * BB + 4 * BB * b);
            for line in 0..(16 * BB).div_ceil(64) {
                // A prefetch never faults, wherever it points.
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(line * 64).cast());
            }
            // SAFETY: the token's values of blocks b..b + valid (all 128 bytes when full) exist.
            let x = unsafe {
                let p = q.as_ptr().add(32 * b);
                if full {
                    [
                        _mm512_loadu_si512(p.cast()),
                        _mm512_loadu_si512(p.add(64).cast()),
                    ]
                } else {
                    let bytes = 32 * valid;
                    [
                        _mm512_maskz_loadu_epi8(first(bytes), p.cast()),
                        _mm512_maskz_loadu_epi8(
                            first(bytes.saturating_sub(64)),
                            p.wrapping_add(64).cast(),
                        ),
                    ]
                }
            };
            let at = if full {
                core::array::from_fn(|i| (b + i) * BB + 2)
            } else {
                core::array::from_fn(|i| (b + i.min(valid - 1)) * BB + 2)
            };
            step(
                Step32 {
                    x,
                    at,
                    first: 4 * s,
                },
                &scales,
                acc,
            );
        };
        for s in 0..n / 4 {
            run(s, 4, &mut acc);
        }
        if n % 4 != 0 {
            run(n / 4, n % 4, &mut acc);
        }
    }
    acc.map(|v| _mm512_reduce_add_ps(v))
}

/// Four Q4_0 rows against one token (a GEMV), sharing every activation load: `q` the token's
/// i8 values, `d` its block scales.
///
/// Loop order ([`rows4_blocks32`]): chunks of 16 blocks, steps of four blocks, rows. A step
/// joins each row's four 16-byte code runs into one vector `[c0, c1, c2, c3]`: its low nibbles
/// are the values `0..16` of each block and its high nibbles `16..32`, and the token's 128
/// values are put in those two orders once per step (two `vshufi64x2`) for all four rows, as is
/// the exact offset `−Σ 8·q` that each row's two byte dots start from. Lanes `4i..4i + 4` then
/// belong to block `i` of the step, whose scale one `vpermps` spreads over them.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q4_0_rows4(rows: [&[u8]; 4], q: &[i8], d: &[f32]) -> [f32; 4] {
    let nib = _mm512_set1_epi8(0x0F);
    let eights = _mm512_set1_epi8(8);
    let spread0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    rows4_blocks32::<18>(rows, q, d, |st, scales, acc| {
        let [x0, x1] = st.x;
        let a_lo = _mm512_shuffle_i64x2::<0b10_00_10_00>(x0, x1);
        let a_hi = _mm512_shuffle_i64x2::<0b11_01_11_01>(x0, x1);
        let pos = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, a_lo);
        let neg_off = _mm512_sub_epi32(
            _mm512_setzero_si512(),
            _mm512_dpbusd_epi32(pos, eights, a_hi),
        );
        let spread = _mm512_add_epi32(spread0, _mm512_set1_epi32(st.first as i32));
        for r in 0..4 {
            // SAFETY: the frame's offsets are of blocks of row r: 16 code bytes each.
            let runs = unsafe {
                let p = rows[r].as_ptr();
                let load = |i: usize| _mm_loadu_si128(p.add(st.at[i]).cast());
                let y0 = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(load(0)), load(1));
                let y1 = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(load(2)), load(3));
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(y0), y1)
            };
            let lo = _mm512_and_si512(runs, nib);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(runs), nib);
            let dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(neg_off, lo, a_lo), hi, a_hi);
            acc[r] = add_scaled(dot, spread, scales[r], acc[r]);
        }
    })
}

/// Four Q8_0 rows against one token (a GEMV), sharing every activation load: `q` the token's
/// i8 values, `d` its block scales.
///
/// Loop order as [`q4_0_rows4`] ([`rows4_blocks32`]). A step's two vectors per row hold the
/// 32-byte code runs of blocks `b, b + 1` and `b + 2, b + 3`, in value order against the
/// token's 128 values. Each i8 weight is made a u8 by flipping its sign bit (`w + 128`), and each
/// row's byte dot starts from `−Σ 128·q` of its lanes (once per step for all rows), so the
/// integer is exact. Lanes `0..8` of a vector belong to its first block, `8..16` to its second.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q8_0_rows4(rows: [&[u8]; 4], q: &[i8], d: &[f32]) -> [f32; 4] {
    let bias = _mm512_set1_epi8(-128);
    let spread0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    rows4_blocks32::<34>(rows, q, d, |st, scales, acc| {
        let neg_off = st.x.map(|xv| {
            _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv),
            )
        });
        for r in 0..4 {
            for h in 0..2 {
                // SAFETY: the frame's offsets are of blocks of row r: 32 code bytes each.
                let w = unsafe {
                    let p = rows[r].as_ptr();
                    _mm512_inserti64x4::<1>(
                        _mm512_castsi256_si512(_mm256_loadu_si256(p.add(st.at[2 * h]).cast())),
                        _mm256_loadu_si256(p.add(st.at[2 * h + 1]).cast()),
                    )
                };
                let dot = _mm512_dpbusd_epi32(neg_off[h], _mm512_xor_si512(w, bias), st.x[h]);
                let spread =
                    _mm512_add_epi32(spread0, _mm512_set1_epi32((st.first + 2 * h) as i32));
                acc[r] = add_scaled(dot, spread, scales[r], acc[r]);
            }
        }
    })
}

/// Four Q4_K rows against one Q8_K token (a GEMV), sharing every activation load.
///
/// Loop order: super-blocks of 256 values, then rows, then the four 64-value chunks. Per
/// super-block the token's 256 values are four vectors and its block sums become the eight
/// sub-block-pair sums `Σ bsum_2j + bsum_2j+1` (f32, negated). Per row and super-block one
/// vector `S` holds `sc_j · d · d_a` in lanes `j` and `m_j · dmin · d_a` in lanes `8 + j` (the
/// 6-bit fields unpacked as in [`crate::group::k_quants_scales`]); the minimums are then one FMA
/// of `S` with the pair sums. Chunk `c`'s 32 code bytes, broadcast to both halves of a vector
/// with the upper half shifted by 4 and masked to nibbles, are sub-blocks `2c` (lanes 0..8) and
/// `2c + 1` (lanes 8..16) in value order, so one `vpdpbusd` against the chunk's 64 token values
/// gives both; its lanes are converted and multiplied by their sub-block's entry of `S`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q4_k_rows4(rows: [&[u8]; 4], x: &[BlockQ8K]) -> [f32; 4] {
    const BB: usize = 144;
    let nb = x.len();
    assert!(rows.iter().all(|r| r.len() == nb * BB));
    let nib = _mm512_set1_epi8(0x0F);
    // Lanes 0..8 take entry 0, lanes 8..16 entry 1: d and dmin of a vector [d, dmin, ..], and
    // (plus 2c) the sub-blocks 2c and 2c + 1 of chunk c.
    let pairs_spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    let mut acc = [_mm512_setzero_ps(); 4];
    for (b, xb) in x.iter().enumerate() {
        // The row group after next, prefetched at the pace this one is consumed (see rows4_blocks32).
        let next = rows[3].as_ptr().wrapping_add(5 * nb * BB + 4 * BB * b);
        for line in 0..9 {
            // A prefetch never faults, wherever it points.
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(line * 64).cast());
        }
        // SAFETY: the 256 values (4 x 64 bytes) and the 16 i16 block sums (32 bytes) of xb.
        let (a, bsums) = unsafe {
            let p = xb.q.as_ptr();
            let a: [__m512i; 4] =
                core::array::from_fn(|c| _mm512_loadu_si512(p.add(64 * c).cast()));
            (a, _mm256_loadu_si256(xb.bsums.as_ptr().cast()))
        };
        // Lanes 8 + j: −(bsum_2j + bsum_2j+1); lanes 0..8 zero.
        let pairs = _mm256_madd_epi16(bsums, _mm256_set1_epi16(-1));
        let neg_pairs = _mm512_cvtepi32_ps(_mm512_inserti64x4::<1>(_mm512_setzero_si512(), pairs));
        let da = _mm_set1_ps(xb.d);
        for r in 0..4 {
            // SAFETY: block b of row r (144 bytes) lies inside the row (asserted length).
            let block = unsafe { rows[r].as_ptr().add(b * BB) };
            // SAFETY: the 12 scale bytes at 4..16 of the block.
            let (sc, m) = crate::group::k_quants_scales(unsafe {
                core::slice::from_raw_parts(block.add(4), 12)
            });
            let sixbit = _mm512_cvtepu8_epi32(_mm_set_epi64x(m as i64, sc as i64));
            // SAFETY: d and dmin are the block's first 4 bytes; 8 bytes lie inside it.
            let dd = _mm_mul_ps(unsafe { f16x4_load(block) }, da);
            let scale = _mm512_mul_ps(
                _mm512_cvtepi32_ps(sixbit),
                _mm512_permutexvar_ps(pairs_spread, _mm512_castps128_ps512(dd)),
            );
            let mut sum = _mm512_mul_ps(scale, neg_pairs);
            for (c, &ac) in a.iter().enumerate() {
                // SAFETY: chunk c's 32 code bytes at 16 + 32c of the block.
                let run = unsafe {
                    _mm512_broadcast_i64x4(_mm256_loadu_si256(block.add(16 + 32 * c).cast()))
                };
                let codes = _mm512_and_si512(_mm512_mask_srli_epi16(run, 0xFFFF_0000, run, 4), nib);
                let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, ac);
                let spread = _mm512_add_epi32(pairs_spread, _mm512_set1_epi32(2 * c as i32));
                sum = add_scaled(dot, spread, scale, sum);
            }
            acc[r] = _mm512_add_ps(acc[r], sum);
        }
    }
    acc.map(|v| _mm512_reduce_add_ps(v))
}

/// Four Q6_K rows against one Q8_K token (a GEMV), sharing every activation load.
///
/// Loop order: super-blocks, then rows, then the four 64-value chunks. Half `n` of a block
/// (values `128n..128n + 128`) has 64 `ql` bytes and 32 `qh` bytes: one 64-byte load of `ql`
/// holds, in its low nibbles, the low bits of values `128n..128n + 64` in order and, in its high
/// nibbles, those of `128n + 64..128n + 128`; the `qh` run broadcast to both halves of a vector
/// gives their two high bits after a shift per half (`vpsllw`/`vpsrlw` under a mask), merged with
/// one `vpternlogd`. The `− 32` of every code is exact in the integers: each row's byte dot starts
/// from `−Σ 32·q` of its lanes, computed once per chunk for all four rows. Lanes `4i..4i + 4` of
/// chunk `c` belong to sub-block `4c + i`; its i8 scale times `d · d_a` comes from one f32
/// vector per row and super-block.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub fn q6_k_rows4(rows: [&[u8]; 4], x: &[BlockQ8K]) -> [f32; 4] {
    const BB: usize = 210;
    let nb = x.len();
    assert!(rows.iter().all(|r| r.len() == nb * BB));
    let (nib, top2) = (_mm512_set1_epi32(0x0F0F_0F0F), _mm512_set1_epi8(0x30));
    let thirty_two = _mm512_set1_epi8(32);
    // Upper 256 bits of a vector of 16-bit words.
    const UPPER: __mmask32 = 0xFFFF_0000;
    let spread0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    let mut acc = [_mm512_setzero_ps(); 4];
    for (b, xb) in x.iter().enumerate() {
        // The row group after next, prefetched at the pace this one is consumed (see rows4_blocks32).
        let next = rows[3].as_ptr().wrapping_add(5 * nb * BB + 4 * BB * b);
        for line in 0..14 {
            // A prefetch never faults, wherever it points.
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(line * 64).cast());
        }
        // SAFETY: the 256 values of xb (4 x 64 bytes).
        let a: [__m512i; 4] = core::array::from_fn(|c| unsafe {
            _mm512_loadu_si512(xb.q.as_ptr().add(64 * c).cast())
        });
        let neg_off: [__m512i; 4] = core::array::from_fn(|c| {
            _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), thirty_two, a[c]),
            )
        });
        let da = _mm_set1_ps(xb.d);
        for r in 0..4 {
            // SAFETY: block b of row r (210 bytes) lies inside the row (asserted length).
            let block = unsafe { rows[r].as_ptr().add(b * BB) };
            // SAFETY: the 16 i8 sub-scales at 192..208; the f16 d at 208 read as the last of the
            // four f16 at 202..210.
            let scale = unsafe {
                let sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                    block.add(192).cast(),
                )));
                let d = _mm_mul_ps(f16x4_load(block.add(202)), da);
                _mm512_mul_ps(sc, _mm512_broadcastss_ps(_mm_shuffle_ps::<0xFF>(d, d)))
            };
            let mut sum = _mm512_setzero_ps();
            for n in 0..2 {
                // SAFETY: ql at 64 n (64 bytes) and qh at 128 + 32 n (32 bytes) of the block.
                let (ql, qh) = unsafe {
                    (
                        _mm512_loadu_si512(block.add(64 * n).cast()),
                        _mm512_broadcast_i64x4(_mm256_loadu_si256(block.add(128 + 32 * n).cast())),
                    )
                };
                // Values 128n..128n + 64: qh bits 0-1 (lower half) and 2-3 (upper) to bits 4-5.
                let h_lo = _mm512_mask_slli_epi16(_mm512_slli_epi16::<4>(qh), UPPER, qh, 2);
                // Values 128n + 64..128n + 128: qh bits 4-5 (lower half) and 6-7 (upper).
                let h_hi = _mm512_mask_srli_epi16(qh, UPPER, qh, 2);
                // (low & 0x0F) | (high & 0x30): 0xEA is `A & B | C` with C already masked.
                let codes = [
                    _mm512_ternarylogic_epi32::<0xEA>(ql, nib, _mm512_and_si512(h_lo, top2)),
                    _mm512_ternarylogic_epi32::<0xEA>(
                        _mm512_srli_epi16::<4>(ql),
                        nib,
                        _mm512_and_si512(h_hi, top2),
                    ),
                ];
                for (i, &u) in codes.iter().enumerate() {
                    let c = 2 * n + i;
                    let dot = _mm512_dpbusd_epi32(neg_off[c], u, a[c]);
                    let spread = _mm512_add_epi32(spread0, _mm512_set1_epi32(4 * c as i32));
                    sum = add_scaled(dot, spread, scale, sum);
                }
            }
            acc[r] = _mm512_add_ps(acc[r], sum);
        }
    }
    acc.map(|v| _mm512_reduce_add_ps(v))
}
