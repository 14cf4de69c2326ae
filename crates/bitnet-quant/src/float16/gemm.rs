//! GEMV/GEMM of 16-bit float weights: `y[t·rows + r] = Σ_i w(W[r][i]) · x[t][i]` with
//!
//! - [`gemm_f16`]: f16 weights, f32 activations (the f16 output head of the official BitNet
//!   b1.58 file);
//! - [`gemm_bf16_f32`]: bf16 weights, f32 activations (mixed precision: the log's
//!   `matmul_mixed_precision`);
//! - [`gemm_bf16`]: bf16 weights and bf16 activations (the log's `matmul_bf16` and
//!   `bf16_dot_product`): AVX-512 BF16's `vdpbf16ps` where it exists, else the activations are
//!   widened to f32 once per call (exactly) and the mixed kernel runs.
//!
//! All accumulate in f32. Loop order: rows split over threads (`Par`, weighted by the bytes
//! read); per row, tiles of four tokens, then the remaining tokens (all of a GEMV's) one at a
//! time; per tile, the row 16 (AVX-512) or 8 (AVX2) values at a time, each weight vector widened
//! once (`vcvtph2ps` from memory for f16, a zero-extend and shift for bf16) and multiplied into
//! every token, four accumulators per token taking vectors in turn. On AVX-512, from 3 tokens
//! on (measured: 2 tokens run as fast on the row kernels), f32-activation GEMMs pack the
//! weights per 64-row panel and run 6 tokens × 64 rows FMA tiles ([`super::packed`]). The
//! `vdpbf16ps` GEMM runs, below 16 tokens, 4 rows × 4 tokens register tiles of dot products
//! (16 dot instructions on 8 loads per 32 values) over blocks of 64 tokens that stay in L2, and
//! from 16 tokens on the packed 6 × 64 tiles of `vdpbf16ps` (no horizontal sums). A GEMV
//! streams the matrix once, row after row — one sequential stream the hardware prefetchers
//! follow, helped by a software prefetch 2 KiB ahead of each row — against activations that
//! stay in L1 (10 KiB at k = 2560; at k = 6912 they spill to L2, which the prefetch hides).
//! Blocking `k` so that they stay in L1 was measured slower: the strided row pieces defeat
//! the hardware prefetchers.
//!
//! Error: every product of two f16/bf16 values or of one with an f32 is formed exactly by the
//! FMA, so `|y − Σ w_i x_i| ≤ (⌈k / 32⌉ + 16) · ε · Σ |w_i x_i|` on the SIMD paths (ε =
//! `f32::EPSILON`; lanes hold at most `⌈k / 32⌉` terms, then a tree of adds and a tail of fewer
//! than 8 values) and `k · ε · Σ |w_i x_i|` on the scalar path (one FMA chain). The
//! `vdpbf16ps` dot tiles keep one accumulator per row and token, whose lanes take two products
//! per instruction: `(⌈k / 16⌉ + 16) · ε · Σ |w_i x_i|` for normal values; the packed GEMMs sum
//! each output in one lane: `(k + 1) · ε · Σ |w_i x_i|`. By its definition the
//! instruction treats subnormal bf16 inputs
//! (`|v| < 2^−126`) as zero and flushes subnormal sums; tests check each path against its
//! bound. Non-finite values propagate as in IEEE arithmetic.

use bitnet_simd::Par;
use bitnet_simd::par::SharedOut;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::ConvertPath;
#[cfg(target_arch = "x86_64")]
use super::packed;
use crate::error::{QuantError, check_len, elements};

/// Tokens per tile.
const TOKENS: usize = 4;

/// `y[t * rows + r] = W[r] · x[t]` for the row-major f16 matrix `w` (`rows × k`) and the
/// row-major f32 activations `x` (`tokens × k`), on the best path and the cores `par` allows.
pub fn gemm_f16(
    w: &[f16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_f16_on(ConvertPath::best()?, w, rows, k, x, tokens, y, par)
}

/// [`gemm_f16`] on `path` (`Avx512Bf16` runs as `Avx512`); an error where the path may not run
/// or a length does not match the shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f16_on(
    path: ConvertPath,
    w: &[f16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_w16_f32::<false>(path, w.reinterpret_cast(), rows, k, x, tokens, y, par)
}

/// `y[t * rows + r] = W[r] · x[t]` for bf16 weights and f32 activations (mixed precision), on
/// the best path and the cores `par` allows.
pub fn gemm_bf16_f32(
    w: &[bf16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_bf16_f32_on(ConvertPath::best()?, w, rows, k, x, tokens, y, par)
}

/// [`gemm_bf16_f32`] on `path` (`Avx512Bf16` runs as `Avx512`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16_f32_on(
    path: ConvertPath,
    w: &[bf16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_w16_f32::<true>(path, w.reinterpret_cast(), rows, k, x, tokens, y, par)
}

/// `y[t * rows + r] = W[r] · x[t]` for bf16 weights and bf16 activations: `vdpbf16ps` where
/// AVX-512 BF16 exists (see the module docs on subnormals), else [`gemm_bf16_on`] on the best
/// exact path.
pub fn gemm_bf16(
    w: &[bf16],
    rows: usize,
    k: usize,
    x: &[bf16],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    let path = if ConvertPath::Avx512Bf16.available()? {
        ConvertPath::Avx512Bf16
    } else {
        ConvertPath::best()?
    };
    gemm_bf16_on(path, w, rows, k, x, tokens, y, par)
}

/// [`gemm_bf16`] on `path`: `Avx512Bf16` runs `vdpbf16ps`; the others widen the activations
/// to f32 (exactly, once per call) and run [`gemm_bf16_f32_on`]'s kernel.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16_on(
    path: ConvertPath,
    w: &[bf16],
    rows: usize,
    k: usize,
    x: &[bf16],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    check_shapes(rows, k, tokens, w.len(), x.len(), y.len())?;
    path.check()?;
    let bits: &[u16] = w.reinterpret_cast();
    #[cfg(target_arch = "x86_64")]
    if path == ConvertPath::Avx512Bf16 {
        if tokens >= PACKED_MIN_TOKENS {
            // SAFETY: the path was checked: AVX-512 BF16 on AVX-512 F/BW/VL exists.
            unsafe {
                packed::gemm::<packed::Bf16Dot>(bits, rows, k, x.reinterpret_cast(), tokens, y, par)
            };
        } else {
            dpbf16_gemm(bits, rows, k, x.reinterpret_cast(), tokens, y, par);
        }
        return Ok(());
    }
    let mut wide = vec![0f32; x.len()];
    super::bf16_to_f32_on(path, x, &mut wide)?;
    drive_f32::<true>(path, bits, rows, k, &wide, tokens, y, par);
    Ok(())
}

/// From this many tokens on, the `vdpbf16ps` GEMM packs the weights ([`super::packed`]);
/// below, it runs the dot-product tiles.
#[cfg(target_arch = "x86_64")]
const PACKED_MIN_TOKENS: usize = 16;

/// From this many tokens on, the AVX-512 GEMMs of 16-bit weights and f32 activations pack the
/// weights ([`super::packed`]); below, they run the one-row kernels.
#[cfg(target_arch = "x86_64")]
const PACKED_WIDE_MIN_TOKENS: usize = 3;

/// Tokens per block of the `vdpbf16ps` GEMM: their activations (`64 · k · 2` bytes, 320 KiB at
/// k = 2560) stay in L2 while every row group of a thread passes over them.
#[cfg(target_arch = "x86_64")]
const TOKEN_BLOCK: usize = 64;

/// The `vdpbf16ps` GEMM: rows in groups of four over `par`; per thread, blocks of
/// [`TOKEN_BLOCK`] tokens, then its row groups, then tiles of four tokens (a GEMV's single
/// tokens one at a time), each a 4 × 4 (or 4 × 1) register tile of dot products. Short groups
/// and tiles repeat their last row or token (computed, not stored).
#[cfg(target_arch = "x86_64")]
fn dpbf16_gemm(
    w: &[u16],
    rows: usize,
    k: usize,
    x: &[u16],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) {
    if rows == 0 || tokens == 0 {
        return;
    }
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes((rows * k * 2).saturating_mul(tokens));
    par.for_each_range(rows.div_ceil(4), 4, |groups| {
        for b0 in (0..tokens).step_by(TOKEN_BLOCK) {
            let b1 = tokens.min(b0 + TOKEN_BLOCK);
            for g in groups.clone() {
                let (r0, nr) = (4 * g, 4.min(rows - 4 * g));
                let ws: [&[u16]; 4] = core::array::from_fn(|i| &w[(r0 + i.min(nr - 1)) * k..][..k]);
                let full = b0 + (b1 - b0) / TOKENS * TOKENS;
                let starts = (b0..full).step_by(TOKENS).map(|t0| (t0, TOKENS));
                for (t0, tn) in starts.chain((full..b1).map(|t| (t, 1))) {
                    // SAFETY: the caller checked the path: AVX-512 BF16 on AVX-512 F/BW/VL.
                    let dots: [[f32; 4]; TOKENS] = unsafe {
                        if tn == TOKENS {
                            let xs = core::array::from_fn(|i| &x[(t0 + i) * k..][..k]);
                            x86::dpbf16_tile::<TOKENS>(ws, xs)
                        } else {
                            let [d] = x86::dpbf16_tile::<1>(ws, [&x[t0 * k..][..k]]);
                            [d; TOKENS]
                        }
                    };
                    for (ti, d) in dots[..tn].iter().enumerate() {
                        for (i, &v) in d[..nr].iter().enumerate() {
                            // SAFETY: (t0 + ti, r0 + i) is inside y (tokens x rows, checked by
                            // the caller); this task owns row group g.
                            unsafe { *out.at((t0 + ti) * rows + r0 + i) = v };
                        }
                    }
                }
            }
        }
    });
}

fn check_shapes(
    rows: usize,
    k: usize,
    tokens: usize,
    w: usize,
    x: usize,
    y: usize,
) -> Result<(), QuantError> {
    check_len("weights", elements(rows, k)?, w)?;
    check_len("activations", elements(tokens, k)?, x)?;
    check_len("output", elements(tokens, rows)?, y)
}

/// Splits rows over `par` and calls `tile(r, t0, tn, out)` for tiles of `tn` tokens from `t0`
/// (`TOKENS`, then single tokens), storing `out[..tn]`.
fn drive(
    rows: usize,
    k: usize,
    tokens: usize,
    y: &mut [f32],
    par: Par,
    tile: impl Fn(usize, usize, usize, &mut [f32; TOKENS]) + Sync,
) {
    if rows == 0 || tokens == 0 {
        return;
    }
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes((rows * k * 2).saturating_mul(tokens));
    par.for_each_range(rows, 16, |range| {
        for r in range {
            let full = tokens / TOKENS * TOKENS;
            let starts = (0..full).step_by(TOKENS).map(|t0| (t0, TOKENS));
            for (t0, tn) in starts.chain((full..tokens).map(|t| (t, 1))) {
                let mut res = [0f32; TOKENS];
                tile(r, t0, tn, &mut res);
                for (i, &v) in res[..tn].iter().enumerate() {
                    // SAFETY: (t0 + i, r) is inside y (tokens x rows, checked by the callers);
                    // this task owns row r.
                    unsafe { *out.at((t0 + i) * rows + r) = v };
                }
            }
        }
    });
}

/// [`gemm_f16_on`] (`BF16` false) and [`gemm_bf16_f32_on`] (`BF16` true) on the weights' bits.
#[allow(clippy::too_many_arguments)]
fn gemm_w16_f32<const BF16: bool>(
    path: ConvertPath,
    bits: &[u16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    check_shapes(rows, k, tokens, bits.len(), x.len(), y.len())?;
    path.check()?;
    drive_f32::<BF16>(path, bits, rows, k, x, tokens, y, par);
    Ok(())
}

/// The 16-bit weights `bits` (bf16 if `BF16`, else f16) against f32 activations on a checked
/// path.
#[allow(clippy::too_many_arguments)]
fn drive_f32<const BF16: bool>(
    path: ConvertPath,
    bits: &[u16],
    rows: usize,
    k: usize,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) {
    #[cfg(target_arch = "x86_64")]
    if matches!(path, ConvertPath::Avx512 | ConvertPath::Avx512Bf16)
        && tokens >= PACKED_WIDE_MIN_TOKENS
    {
        // SAFETY: the path was checked: AVX-512 F/BW/VL with F16C exists.
        unsafe { packed::gemm::<packed::Wide<BF16>>(bits, rows, k, x, tokens, y, par) };
        return;
    }
    drive(rows, k, tokens, y, par, |r, t0, tn, out| {
        let row = &bits[r * k..(r + 1) * k];
        if tn == TOKENS {
            let xs = core::array::from_fn(|i| &x[(t0 + i) * k..][..k]);
            *out = row_dots::<TOKENS, BF16>(path, row, xs);
        } else {
            [out[0]] = row_dots::<1, BF16>(path, row, [&x[t0 * k..][..k]]);
        }
    });
}

/// The f32 value of 16-bit weight bits.
#[inline(always)]
fn widen<const BF16: bool>(bits: u16) -> f32 {
    if BF16 {
        bf16::from_bits(bits).to_f32()
    } else {
        f16::from_bits(bits).to_f32()
    }
}

/// One row of 16-bit weights against `NT` f32 token rows.
fn row_dots<const NT: usize, const BF16: bool>(
    path: ConvertPath,
    row: &[u16],
    xs: [&[f32]; NT],
) -> [f32; NT] {
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        // SAFETY: the path was checked: its level's features exist (AVX-512 F/BW/VL, or AVX2 +
        // FMA + F16C).
        return unsafe {
            match path {
                ConvertPath::Avx2 => x86::row_dots_avx2::<NT, BF16>(row, xs),
                _ => x86::row_dots_avx512::<NT, BF16>(row, xs),
            }
        };
    }
    let _ = path;
    xs.map(|x| {
        row.iter()
            .zip(x)
            .fold(0f32, |s, (&w, &v)| widen::<BF16>(w).mul_add(v, s))
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::widen;

    /// 16 weights from `p` (f16 or bf16 bits) as f32.
    ///
    /// # Safety
    /// `p` valid for the lanes of `m` (16 × 2 bytes when all set).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    unsafe fn weights16<const BF16: bool>(p: *const u16, m: __mmask16) -> __m512 {
        // SAFETY: the lanes of m (caller).
        let h = unsafe { _mm256_maskz_loadu_epi16(m, p.cast()) };
        if BF16 {
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        } else {
            _mm512_cvtph_ps(h)
        }
    }

    /// One row (f16 or bf16 bits) against `NT` f32 tokens, 16 values per step, four
    /// accumulators per token.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    pub(super) fn row_dots_avx512<const NT: usize, const BF16: bool>(
        row: &[u16],
        xs: [&[f32]; NT],
    ) -> [f32; NT] {
        let k = row.len();
        assert!(xs.iter().all(|x| x.len() == k));
        let mut acc = [[_mm512_setzero_ps(); NT]; 4];
        let steps = k / 16;
        for s in 0..steps {
            // SAFETY: 16 s + 16 <= k values of the row and of every token.
            unsafe {
                // Software prefetch 2 KiB ahead: with long rows (k = 6912) it lifted the one-core
                // GEMV from DRAM from 22 to 27 GB/s and two cores from 36 to 42 GB/s.
                _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(16 * s + 1024).cast());
                let w = weights16::<BF16>(row.as_ptr().add(16 * s), u16::MAX);
                for t in 0..NT {
                    let x = _mm512_loadu_ps(xs[t].as_ptr().add(16 * s));
                    acc[s % 4][t] = _mm512_fmadd_ps(w, x, acc[s % 4][t]);
                }
            }
        }
        let done = steps * 16;
        if done < k {
            let m = ((1u32 << (k - done)) - 1) as __mmask16;
            // SAFETY: only the k - done present values are read (masks).
            unsafe {
                let w = weights16::<BF16>(row.as_ptr().add(done), m);
                for t in 0..NT {
                    let x = _mm512_maskz_loadu_ps(m, xs[t].as_ptr().add(done));
                    acc[0][t] = _mm512_fmadd_ps(w, x, acc[0][t]);
                }
            }
        }
        core::array::from_fn(|t| {
            let s = _mm512_add_ps(
                _mm512_add_ps(acc[0][t], acc[1][t]),
                _mm512_add_ps(acc[2][t], acc[3][t]),
            );
            _mm512_reduce_add_ps(s)
        })
    }

    /// One row (f16 or bf16 bits) against `NT` f32 tokens, 8 values per step, four
    /// accumulators per token.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn row_dots_avx2<const NT: usize, const BF16: bool>(
        row: &[u16],
        xs: [&[f32]; NT],
    ) -> [f32; NT] {
        let k = row.len();
        assert!(xs.iter().all(|x| x.len() == k));
        let mut acc = [[_mm256_setzero_ps(); NT]; 4];
        let steps = k / 8;
        for s in 0..steps {
            // SAFETY: 8 s + 8 <= k values of the row and of every token.
            unsafe {
                if s % 2 == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(8 * s + 1024).cast());
                }
                let h = _mm_loadu_si128(row.as_ptr().add(8 * s).cast());
                let w = if BF16 {
                    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
                } else {
                    _mm256_cvtph_ps(h)
                };
                for t in 0..NT {
                    let x = _mm256_loadu_ps(xs[t].as_ptr().add(8 * s));
                    acc[s % 4][t] = _mm256_fmadd_ps(w, x, acc[s % 4][t]);
                }
            }
        }
        let done = steps * 8;
        core::array::from_fn(|t| {
            let s = _mm256_add_ps(
                _mm256_add_ps(acc[0][t], acc[1][t]),
                _mm256_add_ps(acc[2][t], acc[3][t]),
            );
            let lo = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            let lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
            let lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
            let tail: f32 = row[done..]
                .iter()
                .zip(&xs[t][done..])
                .map(|(&w, &x)| widen::<BF16>(w) * x)
                .sum();
            _mm_cvtss_f32(lo) + tail
        })
    }

    /// Four bf16 rows against `NT` bf16 tokens with `vdpbf16ps`: per step 32 values of each row
    /// and token, `4 · NT` dot instructions on `4 + NT` loads, one accumulator per (row, token);
    /// the tail under a mask (absent lanes are zeros). `out[t][r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) fn dpbf16_tile<const NT: usize>(
        ws: [&[u16]; 4],
        xs: [&[u16]; NT],
    ) -> [[f32; 4]; NT] {
        let k = ws[0].len();
        assert!(ws.iter().all(|w| w.len() == k) && xs.iter().all(|x| x.len() == k));
        let mut acc = [[_mm512_setzero_ps(); 4]; NT];
        let bh = |v: __m512i| -> __m512bh {
            // SAFETY: __m512i and __m512bh are both 512 bits of plain data.
            unsafe { core::mem::transmute::<__m512i, __m512bh>(v) }
        };
        let mut step = |at: usize, m: __mmask32| {
            for w in &ws {
                _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(at + 1024).cast());
            }
            // SAFETY: the lanes of m from `at` are inside every row and token (callers below).
            let (w, x) = unsafe {
                let w: [__m512bh; 4] = core::array::from_fn(|r| {
                    bh(_mm512_maskz_loadu_epi16(m, ws[r].as_ptr().add(at).cast()))
                });
                let x: [__m512bh; NT] = core::array::from_fn(|t| {
                    bh(_mm512_maskz_loadu_epi16(m, xs[t].as_ptr().add(at).cast()))
                });
                (w, x)
            };
            for t in 0..NT {
                for r in 0..4 {
                    acc[t][r] = _mm512_dpbf16_ps(acc[t][r], w[r], x[t]);
                }
            }
        };
        let steps = k / 32;
        for s in 0..steps {
            step(32 * s, u32::MAX);
        }
        if steps * 32 < k {
            step(steps * 32, ((1u64 << (k - steps * 32)) - 1) as __mmask32);
        }
        acc.map(|a| a.map(|v| _mm512_reduce_add_ps(v)))
    }
}
