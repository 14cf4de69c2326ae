//! AVX-512 VNNI ternary dot kernels: `R` rows of 2-bit codes (0, 1, 2) against one token's
//! int8 activations with `vpdpbusd` (u8 code × s8 activation, 4 products summed into each i32
//! lane, no saturation).
//!
//! Layout: one 64-byte load holds 256 codes (an I2_S block pair or a TQ2_0 block's `qs`); the
//! four 2-bit fields of each byte, shifted down and masked, are four vectors whose lanes 0..32
//! and 32..64 pair with activation runs 128 apart, so the activations come pre-permuted
//! ([`super::permute_activations`]): for each 256-chunk, `[q[32g..32g+32], q[128+32g..128+32g+32]]`
//! for g = 0..4. Loop order: 256-chunks outermost, the R rows inside, so each activation vector is
//! loaded once for R rows.

use core::arch::x86_64::*;

/// `Σ code · q` of each I2_S row against `act` (the row's `k` weights as `k / 4` bytes; `act`
/// the `k` permuted activations; `k` a multiple of 128).
///
/// Field `g` of byte `j` (bits `7-2g:6-2g`) is weight `32g + j` of its 128-block.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn i2s_dots<const R: usize>(rows: &[&[u8]; R], act: &[i8]) -> [i32; R] {
    let k = act.len();
    assert!(k.is_multiple_of(128) && rows.iter().all(|r| r.len() == k / 4));
    // Field g is masked in place (no shift): its codes arrive multiplied by 4^(3-g), so each
    // field has its own accumulator, divided back (exactly) at the end. One AND and one
    // vpdpbusd per field instead of shift, AND and vpdpbusd. Lane bound: field 0 holds
    // 64c <= 128, a vpdpbusd adds at most 4 * 128 * 128 = 2^16 to a lane, and a lane sees
    // k / 256 <= 2^14 of them (k <= MAX_K): below 2^31.
    let masks = [0xC0u8, 0x30, 0x0C, 0x03].map(|m| _mm512_set1_epi8(m as i8));
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let pairs = k / 256;
    for p in 0..pairs {
        // SAFETY: p < k / 256, so the 4 x 64 activation bytes from p * 256 are inside `act`.
        let a: [__m512i; 4] = core::array::from_fn(|g| unsafe {
            _mm512_loadu_si512(act.as_ptr().add(p * 256 + g * 64).cast())
        });
        // Public rows are adjacent in memory: the next row group starts where the last row
        // ends. Prefetch it at the pace this group is consumed (R lines per step), so the stream
        // continues into it.
        let next = rows[R - 1].as_ptr().wrapping_add(k / 4 + p * 64 * R);
        for line in 0..R {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(line * 64).cast());
        }
        for (r, row) in rows.iter().enumerate() {
            // SAFETY: 64 bytes from p * 64 < k / 4 are inside the row (asserted length).
            let w = unsafe { _mm512_loadu_si512(row.as_ptr().add(p * 64).cast()) };
            for g in 0..4 {
                acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], _mm512_and_si512(w, masks[g]), a[g]);
            }
        }
    }
    let mut out = [0i32; R];
    for (r, o) in out.iter_mut().enumerate() {
        let [f0, f1, f2, f3] = acc[r];
        let sum = _mm512_add_epi32(
            _mm512_add_epi32(_mm512_srai_epi32::<6>(f0), _mm512_srai_epi32::<4>(f1)),
            _mm512_add_epi32(_mm512_srai_epi32::<2>(f2), f3),
        );
        *o = _mm512_reduce_add_epi32(sum);
    }
    if !k.is_multiple_of(256) {
        // The odd last 128-block, not permuted: field g pairs with act[base + 32g..][..32].
        let base = pairs * 256;
        let mask = _mm256_set1_epi8(3);
        // SAFETY: the 128 activations from `base` end at k.
        let a: [__m256i; 4] = core::array::from_fn(|g| unsafe {
            _mm256_loadu_si256(act.as_ptr().add(base + g * 32).cast())
        });
        for (r, row) in rows.iter().enumerate() {
            // SAFETY: the block's 32 bytes from base / 4 end at k / 4.
            let w = unsafe { _mm256_loadu_si256(row.as_ptr().add(base / 4).cast()) };
            let mut t = _mm256_setzero_si256();
            t = _mm256_dpbusd_epi32(t, _mm256_and_si256(_mm256_srli_epi16::<6>(w), mask), a[0]);
            t = _mm256_dpbusd_epi32(t, _mm256_and_si256(_mm256_srli_epi16::<4>(w), mask), a[1]);
            t = _mm256_dpbusd_epi32(t, _mm256_and_si256(_mm256_srli_epi16::<2>(w), mask), a[2]);
            t = _mm256_dpbusd_epi32(t, _mm256_and_si256(w, mask), a[3]);
            out[r] += reduce_i32x8(t);
        }
    }
    out
}

/// TQ2_0 rows against one token: `Σ_b Σ_j (code − 1) q · (d_x,b · d_w,b)`, with each block's
/// integer part exact in the lanes of one vector (`−Σq_b` seeded into lane 0) and the blocks
/// accumulated in f32 lanes (`ds[b]`, `sumqs[b]`: the scale and `Σq` of the token's Q8_K blocks).
///
/// Field `n` of byte `m` of the 64 `qs` bytes (bits `2n+1:2n`) is weight `32n + m` (first 32
/// bytes) or `128 + 32n + m` (last 32).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub fn tq2_0_dots<const R: usize>(
    rows: &[&[u8]; R],
    act: &[i8],
    ds: &[f32],
    sumqs: &[i32],
) -> [f32; R] {
    let nb = ds.len();
    assert!(sumqs.len() == nb && act.len() == nb * 256 && rows.iter().all(|r| r.len() == nb * 66));
    let mask = _mm512_set1_epi8(3);
    let mut accf = [_mm512_setzero_ps(); R];
    for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        // SAFETY: b < nb, so the 256 activation bytes from b * 256 are inside `act`.
        let a: [__m512i; 4] = core::array::from_fn(|n| unsafe {
            _mm512_loadu_si512(act.as_ptr().add(b * 256 + n * 64).cast())
        });
        let seed = _mm512_zextsi128_si512(_mm_cvtsi32_si128(-sumq));
        for (r, row) in rows.iter().enumerate() {
            let block = &row[b * 66..b * 66 + 66];
            // SAFETY: the block's 64 `qs` bytes are inside the 66-byte slice.
            let w = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
            let mut acc = _mm512_dpbusd_epi32(seed, _mm512_and_si512(w, mask), a[0]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16::<2>(w), mask), a[1]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask), a[2]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16::<6>(w), mask), a[3]);
            let dw = f16_bits_to_f32(u16::from_le_bytes([block[64], block[65]]));
            accf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(dx * dw), accf[r]);
        }
    }
    core::array::from_fn(|r| _mm512_reduce_add_ps(accf[r]))
}

#[inline]
#[target_feature(enable = "avx2")]
fn reduce_i32x8(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
    _mm_cvtsi128_si32(s)
}

/// From this `k` on, the native kernels prefetch their stream [`PREFETCH_AHEAD`] bytes ahead
/// into L2. Measured on a GEMV from DRAM (4096 × 14336, Zen 4): without it a long group (14 KiB
/// of codes against 14 KiB of activations) streams at 16-19 GB/s on one core and 18-20 on two,
/// with it at 21-22 and 28-30; at k = 2560 and 6912 it cost up to a quarter on one core.
pub const PREFETCH_MIN_K: usize = 8192;

/// How far ahead of the current chunk the native kernels prefetch (bytes).
pub const PREFETCH_AHEAD: usize = 8192;

/// Prefetches chunk `p`'s 256 bytes [`PREFETCH_AHEAD`] bytes ahead in `group` (into the next
/// groups at the end: the native layout is one stream) into L2.
#[inline]
#[target_feature(enable = "avx512f")]
fn prefetch_ahead(group: &[u8], p: usize) {
    let ahead = group.as_ptr().wrapping_add(p * 256 + PREFETCH_AHEAD);
    for line in 0..4 {
        // A prefetch never faults, wherever it points.
        _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(line * 64).cast());
    }
}

/// `Σ code · q` of the four rows of a native group (`group`: `k` bytes, 64 per row per
/// 256-chunk, I2_S field order; `act`: the `k` permuted activations). One contiguous stream.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn native_i2s_dots(group: &[u8], act: &[i8]) -> [i32; 4] {
    let k = act.len();
    assert!(k.is_multiple_of(256) && group.len() == k);
    // Masked in place, one accumulator per field (see `i2s_dots`).
    let masks = [0xC0u8, 0x30, 0x0C, 0x03].map(|m| _mm512_set1_epi8(m as i8));
    let mut acc = [[_mm512_setzero_si512(); 4]; 4];
    let prefetch = k >= PREFETCH_MIN_K;
    for p in 0..k / 256 {
        if prefetch {
            prefetch_ahead(group, p);
        }
        // SAFETY: p < k / 256: the 256 activation bytes and the group's 256 code bytes of
        // chunk p are inside `act` and `group`.
        let a: [__m512i; 4] = core::array::from_fn(|g| unsafe {
            _mm512_loadu_si512(act.as_ptr().add(p * 256 + g * 64).cast())
        });
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let w = unsafe { _mm512_loadu_si512(group.as_ptr().add(p * 256 + r * 64).cast()) };
            for g in 0..4 {
                acc_r[g] = _mm512_dpbusd_epi32(acc_r[g], _mm512_and_si512(w, masks[g]), a[g]);
            }
        }
    }
    acc.map(|[f0, f1, f2, f3]| {
        _mm512_reduce_add_epi32(_mm512_add_epi32(
            _mm512_add_epi32(_mm512_srai_epi32::<6>(f0), _mm512_srai_epi32::<4>(f1)),
            _mm512_add_epi32(_mm512_srai_epi32::<2>(f2), f3),
        ))
    })
}

/// The four rows of a native group repacked from TQ2_0 against one token: per 256-chunk `p`
/// and row `r`, the exact block integer (`−Σq` seeded) times `d_x,p · scales[4p + r]`,
/// accumulated in f32 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
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
    let mask = _mm512_set1_epi8(3);
    let mut accf = [_mm512_setzero_ps(); 4];
    let prefetch = nb * 256 >= PREFETCH_MIN_K;
    for (p, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        if prefetch {
            prefetch_ahead(group, p);
        }
        // SAFETY: p < nb: chunk p of `act` and `group` is inside them.
        let a: [__m512i; 4] = core::array::from_fn(|g| unsafe {
            _mm512_loadu_si512(act.as_ptr().add(p * 256 + g * 64).cast())
        });
        let seed = _mm512_zextsi128_si512(_mm_cvtsi32_si128(-sumq));
        for (r, accf_r) in accf.iter_mut().enumerate() {
            // SAFETY: as above.
            let w = unsafe { _mm512_loadu_si512(group.as_ptr().add(p * 256 + r * 64).cast()) };
            let mut acc = _mm512_dpbusd_epi32(
                seed,
                _mm512_and_si512(_mm512_srli_epi16::<6>(w), mask),
                a[0],
            );
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask), a[1]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16::<2>(w), mask), a[2]);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(w, mask), a[3]);
            let scale = _mm512_set1_ps(dx * scales[p * 4 + r]);
            *accf_r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, *accf_r);
        }
    }
    accf.map(|v| _mm512_reduce_add_ps(v))
}

/// TQ1_0 rows against one token. Per block, the 52 trit bytes sit in one vector
/// (`[qs[0..48], qh[0..4], 0 × 12]`, see [`super::tq1_0_lanes`]); step `n` = 0..5 turns every byte
/// into its trit `n` and feeds `vpdpbusd` with the activations of the weights those lanes hold
/// (pre-arranged per step, 320 bytes per block). Trit `n` of byte `b` is `⌊3 P_n / 256⌋` with
/// `P_0 = b`, `P_{n+1} = 3 P_n mod 256` (two byte adds), i.e. `(P_n ≥ 86) + (P_n ≥ 171)`. Lanes
/// without a weight hold trit 0 (padding bytes, and `qh`'s fifth digit, which validation requires
/// to be 0), so they add nothing. The block integer (`−Σq_b` seeded) is exact; blocks accumulate
/// in f32 lanes as TQ2_0.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub fn tq1_0_dots<const R: usize>(
    rows: &[&[u8]; R],
    act: &[i8],
    ds: &[f32],
    sumqs: &[i32],
) -> [f32; R] {
    let nb = ds.len();
    assert!(sumqs.len() == nb && act.len() == nb * 320 && rows.iter().all(|r| r.len() == nb * 54));
    let (t1, t2, one) = (
        _mm512_set1_epi8(86),
        _mm512_set1_epi8(171u8 as i8),
        _mm512_set1_epi8(1),
    );
    let lanes52: __mmask64 = (1 << 52) - 1;
    let mut accf = [_mm512_setzero_ps(); R];
    for (b, (&dx, &sumq)) in ds.iter().zip(sumqs).enumerate() {
        // SAFETY: b < nb: the block's 320 arranged activation bytes are inside `act`.
        let a: [__m512i; 5] = core::array::from_fn(|n| unsafe {
            _mm512_loadu_si512(act.as_ptr().add(b * 320 + n * 64).cast())
        });
        let seed = _mm512_zextsi128_si512(_mm_cvtsi32_si128(-sumq));
        for (r, row) in rows.iter().enumerate() {
            let block = &row[b * 54..b * 54 + 54];
            // SAFETY: the masked load reads the block's first 52 bytes only.
            let mut p = unsafe { _mm512_maskz_loadu_epi8(lanes52, block.as_ptr().cast()) };
            let mut acc = seed;
            for a_n in &a {
                let ge1 = _mm512_cmpge_epu8_mask(p, t1);
                let ge2 = _mm512_cmpge_epu8_mask(p, t2);
                let trit = _mm512_mask_add_epi8(
                    _mm512_maskz_mov_epi8(ge1, one),
                    ge2,
                    _mm512_maskz_mov_epi8(ge1, one),
                    one,
                );
                acc = _mm512_dpbusd_epi32(acc, trit, *a_n);
                p = _mm512_add_epi8(_mm512_add_epi8(p, p), p);
            }
            let dw = f16_bits_to_f32(u16::from_le_bytes([block[52], block[53]]));
            accf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(dx * dw), accf[r]);
        }
    }
    core::array::from_fn(|r| _mm512_reduce_add_ps(accf[r]))
}

/// Tokens per GEMM tile.
pub const TILE_TOKENS: usize = 4;

/// The 2-row × 4-token GEMM tile for I2_S-ordered codes (public I2_S rows with `stride` 64, or
/// native rows with `stride` 256): chunk `p`'s 64 code bytes of row `r` at
/// `rows[r][p * stride..]`; `acts[t]` token `t`'s permuted activations (`chunks * 256`). Returns
/// `Σ code · q` per (row, token). Each row's four fields are decoded once per chunk and serve all
/// four tokens, so the decode cost is a quarter of the per-token kernel's.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn i2s_tile(
    rows: [&[u8]; 2],
    stride: usize,
    acts: [&[i8]; TILE_TOKENS],
    chunks: usize,
) -> [[i32; TILE_TOKENS]; 2] {
    assert!(
        stride >= 64
            && rows
                .iter()
                .all(|r| chunks == 0 || r.len() >= (chunks - 1) * stride + 64)
    );
    assert!(acts.iter().all(|a| a.len() >= chunks * 256));
    let mask = _mm512_set1_epi8(3);
    let mut acc = [[_mm512_setzero_si512(); TILE_TOKENS]; 2];
    for p in 0..chunks {
        let fields: [[__m512i; 4]; 2] = core::array::from_fn(|r| {
            // SAFETY: chunk p's 64 bytes are inside the row (asserted length).
            let w = unsafe { _mm512_loadu_si512(rows[r].as_ptr().add(p * stride).cast()) };
            [
                _mm512_and_si512(_mm512_srli_epi16::<6>(w), mask),
                _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask),
                _mm512_and_si512(_mm512_srli_epi16::<2>(w), mask),
                _mm512_and_si512(w, mask),
            ]
        });
        for (t, act) in acts.iter().enumerate() {
            for g in 0..4 {
                // SAFETY: chunk p of the token's activations is inside it (asserted length).
                let a = unsafe { _mm512_loadu_si512(act.as_ptr().add(p * 256 + g * 64).cast()) };
                acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], fields[0][g], a);
                acc[1][t] = _mm512_dpbusd_epi32(acc[1][t], fields[1][g], a);
            }
        }
    }
    acc.map(|row| row.map(|v| _mm512_reduce_add_epi32(v)))
}

/// An f16 (its bits) as f32, with F16C's `vcvtph2ps`.
#[inline]
#[target_feature(enable = "f16c")]
fn f16_bits_to_f32(bits: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// Blocks whose scale products a [`tq_tile`] computes at once (one zmm of f32 per row and token).
const SCALE_RUN: usize = 16;

/// How a [`tq_tile`] block holds its codes.
pub mod codes {
    /// 64 bytes of 2-bit fields in TQ2_0's order (public TQ2_0; 4 steps).
    pub const TQ2_0: u8 = 0;
    /// 64 bytes of 2-bit fields in I2_S's order (native rows repacked from TQ2_0; 4 steps).
    pub const I2S_ORDER: u8 = 1;
    /// TQ1_0's 52 trit bytes (`qs`, `qh`), decoded as in [`super::tq1_0_dots`] (5 steps).
    pub const TRITS: u8 = 2;
}

/// Decode step `n` of a block whose codes start at `block` (`CODES` from [`codes`]): the code
/// bytes that pair with the block's `n`-th 64 activation bytes.
///
/// # Safety
/// `block` must be valid for 64 bytes (52 for TRITS) and the CPU must have AVX-512 F/BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn decode_steps<const CODES: u8, const STEPS: usize>(block: *const u8) -> [__m512i; STEPS] {
    let mut out = [_mm512_setzero_si512(); STEPS];
    if CODES == codes::TRITS {
        let (t1, t2, one) = (
            _mm512_set1_epi8(86),
            _mm512_set1_epi8(171u8 as i8),
            _mm512_set1_epi8(1),
        );
        // SAFETY: the masked load reads the 52 code bytes only (caller's contract).
        let mut p = unsafe { _mm512_maskz_loadu_epi8((1 << 52) - 1, block.cast()) };
        for o in &mut out {
            let ge1 = _mm512_cmpge_epu8_mask(p, t1);
            let ge2 = _mm512_cmpge_epu8_mask(p, t2);
            let ones = _mm512_maskz_mov_epi8(ge1, one);
            *o = _mm512_mask_add_epi8(ones, ge2, ones, one);
            p = _mm512_add_epi8(_mm512_add_epi8(p, p), p);
        }
    } else {
        // SAFETY: 64 bytes (caller's contract).
        let w = unsafe { _mm512_loadu_si512(block.cast()) };
        let mask = _mm512_set1_epi8(3);
        for (n, o) in out.iter_mut().enumerate() {
            let shift = if CODES == codes::I2S_ORDER {
                6 - 2 * n
            } else {
                2 * n
            };
            *o = _mm512_and_si512(_mm512_srlv_epi16(w, _mm512_set1_epi16(shift as i16)), mask);
        }
    }
    out
}

/// The 2-row × 4-token GEMM tile for the Q8_K formats: block `b` of row `r` at
/// `rows[r][b * stride..]` holds its codes as `CODES` says ([`codes`]; public TQ2_0 rows:
/// `stride` 66, native rows: 256, public TQ1_0 rows: 54, with `STEPS` 4, 4, 5), its weight scale
/// is `dw(r, b)`; `acts[t]` token `t`'s activations in the order the steps read them
/// (`STEPS * 64` bytes per block), with block scales `ds[t]` and block sums `sumqs[t]`. Returns
/// `Σ_b d_x,b d_w,b Σ_j (code − 1) q` per (row, token), each block's integer exact (`−Σq`
/// seeded into lane 0), the blocks accumulated in f32 lanes as in [`tq2_0_dots`].
///
/// Loop order: runs of [`SCALE_RUN`] blocks; per run the 2 × 4 scale products `d_x d_w` are
/// formed with eight vector multiplies and kept on the stack, so each (row, token, block) costs
/// `STEPS` `vpdpbusd`, one convert and one FMA whose scale is a broadcast from memory. Each
/// block is decoded once per row and serves all four tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn tq_tile<const CODES: u8, const STEPS: usize>(
    rows: [&[u8]; 2],
    stride: usize,
    dw: impl Fn(usize, usize) -> f32,
    acts: [&[i8]; TILE_TOKENS],
    ds: [&[f32]; TILE_TOKENS],
    sumqs: [&[i32]; TILE_TOKENS],
) -> [[f32; TILE_TOKENS]; 2] {
    let nb = ds[0].len();
    let (code_bytes, act_stride) = (if CODES == codes::TRITS { 52 } else { 64 }, STEPS * 64);
    assert!(STEPS == if CODES == codes::TRITS { 5 } else { 4 } && stride >= code_bytes);
    assert!(
        rows.iter()
            .all(|r| nb == 0 || r.len() >= (nb - 1) * stride + code_bytes)
    );
    assert!((0..TILE_TOKENS).all(|t| {
        acts[t].len() >= nb * act_stride && ds[t].len() == nb && sumqs[t].len() == nb
    }));
    let mut accf = [[_mm512_setzero_ps(); TILE_TOKENS]; 2];
    for b0 in (0..nb).step_by(SCALE_RUN) {
        let run = SCALE_RUN.min(nb - b0);
        let lanes: __mmask16 = ((1u32 << run) - 1) as u16;
        // prod[r][t][i] = d_w of row r times d_x of token t, block b0 + i.
        let mut prod = [[[0f32; SCALE_RUN]; TILE_TOKENS]; 2];
        for r in 0..2 {
            let mut run_dw = [0f32; SCALE_RUN];
            for (i, d) in run_dw[..run].iter_mut().enumerate() {
                *d = dw(r, b0 + i);
            }
            // SAFETY: run_dw is 16 f32.
            let w = unsafe { _mm512_loadu_ps(run_dw.as_ptr()) };
            for t in 0..TILE_TOKENS {
                // SAFETY: the masked load reads blocks b0..b0 + run < nb of `ds[t]` only.
                let x = unsafe { _mm512_maskz_loadu_ps(lanes, ds[t].as_ptr().add(b0)) };
                // SAFETY: prod[r][t] is 16 f32.
                unsafe { _mm512_storeu_ps(prod[r][t].as_mut_ptr(), _mm512_mul_ps(w, x)) };
            }
        }
        for i in 0..run {
            let b = b0 + i;
            // SAFETY: block b's code bytes are inside the row (asserted length).
            let fields: [[__m512i; STEPS]; 2] = core::array::from_fn(|r| unsafe {
                decode_steps::<CODES, STEPS>(rows[r].as_ptr().add(b * stride))
            });
            for t in 0..TILE_TOKENS {
                // SAFETY: block b of the token's activations is inside it (asserted length).
                let a: [__m512i; STEPS] = core::array::from_fn(|n| unsafe {
                    _mm512_loadu_si512(acts[t].as_ptr().add(b * act_stride + n * 64).cast())
                });
                let seed = _mm512_zextsi128_si512(_mm_cvtsi32_si128(-sumqs[t][b]));
                for r in 0..2 {
                    let mut acc = seed;
                    for (f, a_n) in fields[r].iter().zip(&a) {
                        acc = _mm512_dpbusd_epi32(acc, *f, *a_n);
                    }
                    let scale = _mm512_set1_ps(prod[r][t][i]);
                    accf[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, accf[r][t]);
                }
            }
        }
    }
    accf.map(|row| row.map(|v| _mm512_reduce_add_ps(v)))
}
