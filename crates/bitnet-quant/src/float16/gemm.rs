//! f16 weights against f32 activations (f16 storage, f32 arithmetic): `y[t·rows + r] =
//! Σ_i f32(W[r][i]) · x[t][i]`, the GEMV of an f16 output head and its GEMM.
//!
//! Loop order: rows split over threads (`Par`, weighted by the bytes read); per row, tiles of
//! up to four tokens; per tile, the row's values 16 (AVX-512) or 8 (AVX2) at a time: each
//! weight vector is widened once (`vcvtph2ps` from memory) and multiplied into every token of
//! the tile, four accumulators per token taking vectors in turn. A GEMV therefore streams the
//! matrix once, row after row — one sequential stream the hardware prefetchers follow — against
//! activations that stay in L1 (10 KiB at k = 2560).
//!
//! Error: `|y − Σ w_i x_i| ≤ (⌈k / 32⌉ + 16) · ε · Σ |w_i x_i|` on the SIMD paths (ε =
//! `f32::EPSILON`; `w_i` the exact f32 values of the f16 weights): FMAs into lanes holding at
//! most `⌈k / 32⌉` terms (8 lanes × 4 accumulators on AVX2, 16 × 4 on AVX-512), a tree of adds
//! and a tail of fewer than 8 values. The scalar path sums in one f32 FMA chain: `k · ε ·
//! Σ |w_i x_i|`. Tests check each path against its bound. Non-finite values propagate as in
//! IEEE arithmetic.

use bitnet_simd::Par;
use bitnet_simd::par::SharedOut;
use half::f16;
use half::slice::HalfFloatSliceExt;

use super::ConvertPath;
use crate::error::{QuantError, check_len, elements};

/// Tokens per tile.
const TOKENS: usize = 4;

/// `y[t * rows + r] = W[r] · x[t]` for the row-major f16 matrix `w` (`rows × k`) and the
/// row-major f32 activations `x` (`tokens × k`), on the best conversion path and the cores
/// `par` allows.
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
    check_len("weights", elements(rows, k)?, w.len())?;
    check_len("activations", elements(tokens, k)?, x.len())?;
    check_len("output", elements(tokens, rows)?, y.len())?;
    path.check()?;
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    let bits: &[u16] = w.reinterpret_cast();
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes((rows * k * 2).saturating_mul(tokens));
    par.for_each_range(rows, 16, |range| {
        for r in range {
            let row = &bits[r * k..(r + 1) * k];
            let full = tokens / TOKENS * TOKENS;
            for t0 in (0..full).step_by(TOKENS) {
                let xs: [&[f32]; TOKENS] = core::array::from_fn(|i| &x[(t0 + i) * k..][..k]);
                for (i, v) in row_dots(path, row, xs).into_iter().enumerate() {
                    // SAFETY: (t0 + i, r) is inside y (tokens x rows, checked); this task owns
                    // row r.
                    unsafe { *out.at((t0 + i) * rows + r) = v };
                }
            }
            // The last tokens (all of a GEMV's) one at a time.
            for t in full..tokens {
                let [v] = row_dots(path, row, [&x[t * k..][..k]]);
                // SAFETY: as above.
                unsafe { *out.at(t * rows + r) = v };
            }
        }
    });
    Ok(())
}

/// One f16 row against `NT` token rows.
fn row_dots<const NT: usize>(path: ConvertPath, row: &[u16], xs: [&[f32]; NT]) -> [f32; NT] {
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        // SAFETY: the path was checked: its level's features exist (AVX-512 F/BW/VL, or AVX2 +
        // FMA + F16C).
        return unsafe {
            match path {
                ConvertPath::Avx2 => x86::row_dots_avx2::<NT>(row, xs),
                _ => x86::row_dots_avx512::<NT>(row, xs),
            }
        };
    }
    let _ = path;
    xs.map(|x| {
        row.iter()
            .zip(x)
            .fold(0f32, |s, (&w, &v)| f16::from_bits(w).to_f32().mul_add(v, s))
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use half::f16;

    /// One row (f16 bits) against `NT` tokens, 16 values per step, four accumulators per token.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    pub(super) fn row_dots_avx512<const NT: usize>(row: &[u16], xs: [&[f32]; NT]) -> [f32; NT] {
        let k = row.len();
        assert!(xs.iter().all(|x| x.len() == k));
        let mut acc = [[_mm512_setzero_ps(); NT]; 4];
        let steps = k / 16;
        for s in 0..steps {
            // SAFETY: 16 s + 16 <= k values of the row and of every token.
            unsafe {
                let w = _mm512_cvtph_ps(_mm256_loadu_si256(row.as_ptr().add(16 * s).cast()));
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
                let w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row.as_ptr().add(done).cast()));
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

    /// One row (f16 bits) against `NT` tokens, 8 values per step, four accumulators per token.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn row_dots_avx2<const NT: usize>(row: &[u16], xs: [&[f32]; NT]) -> [f32; NT] {
        let k = row.len();
        assert!(xs.iter().all(|x| x.len() == k));
        let mut acc = [[_mm256_setzero_ps(); NT]; 4];
        let steps = k / 8;
        for s in 0..steps {
            // SAFETY: 8 s + 8 <= k values of the row and of every token.
            unsafe {
                let w = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(8 * s).cast()));
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
                .map(|(&w, &x)| f16::from_bits(w).to_f32() * x)
                .sum();
            _mm_cvtss_f32(lo) + tail
        })
    }
}
