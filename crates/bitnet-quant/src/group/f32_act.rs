//! Group-format weights against f32 activations (no activation quantization): each row is
//! dequantized once into an L1-sized buffer, exactly as `gguf-py` dequantizes it, and dotted
//! with every token by an f32 FMA kernel written once over `pulp` (AVX-512, AVX2+FMA, NEON or
//! scalar: the active level). On AVX2 and AVX-512 levels the dequantization is the same code
//! compiled with AVX2 enabled, so the compiler widens its per-value loops to 8 lanes (it stays
//! bit-identical: Rust never contracts a multiply and an add into an FMA).
//!
//! Error: `|y − Σ w_i x_i| ≤ (⌈k / 64⌉ + 70) · ε · Σ |w_i x_i|` (ε = `f32::EPSILON`) with `w_i`
//! the dequantized f32 weights (four accumulators of up to 16 lanes, a tree reduction, a scalar
//! tail of fewer than 16 values). Non-finite activations propagate to the outputs.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use super::{GroupFormat, GroupWeights};
use crate::error::{QuantError, check_len, elements};

/// `Σ a_i b_i` with four vector accumulators.
struct Dot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl WithSimd for Dot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let (av, at) = S::as_simd_f32s(self.a);
        let (bv, bt) = S::as_simd_f32s(self.b);
        let mut acc = [simd.splat_f32s(0.0); 4];
        let mut quads = av.chunks_exact(4).zip(bv.chunks_exact(4));
        for (a, b) in &mut quads {
            for i in 0..4 {
                acc[i] = simd.mul_add_e_f32s(a[i], b[i], acc[i]);
            }
        }
        let done = av.len() / 4 * 4;
        for (i, (&a, &b)) in av[done..].iter().zip(&bv[done..]).enumerate() {
            acc[i] = simd.mul_add_e_f32s(a, b, acc[i]);
        }
        let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
        let tail: f32 = at.iter().zip(bt).map(|(a, b)| a * b).sum();
        simd.reduce_sum_f32s(sum) + tail
    }
}

/// `y[t * rows + r] = W[r] · x[t]` for row-major f32 activations `x` (`tokens x k`), on the
/// active ISA level and every core `par` allows.
pub fn gemm_f32(
    w: &GroupWeights<'_>,
    x: &[f32],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    let (rows, k) = (w.rows(), w.k());
    check_len("activations", elements(tokens, k)?, x.len())?;
    check_len("output", elements(tokens, rows)?, y.len())?;
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    let level = Level::active()?;
    let format = w.format();
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes(w.bytes().len().saturating_mul(tokens));
    par.for_each_range(rows, 16, |range| {
        let mut buf = vec![0f32; k];
        for r in range {
            dequantize_row(level, format, w.row(r), &mut buf);
            for t in 0..tokens {
                let v = level.run(Dot {
                    a: &buf,
                    b: &x[t * k..(t + 1) * k],
                });
                // SAFETY: (t, r) is inside y (tokens x rows, checked) and this task owns row r.
                unsafe { *out.at(t * rows + r) = v };
            }
        }
    });
    Ok(())
}

/// Dequantizes one row into `out` on `level` (module docs).
fn dequantize_row(level: Level, format: GroupFormat, row: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if matches!(level, Level::Avx2(_) | Level::Avx512(_)) {
        // SAFETY: these levels exist only where the CPU has AVX2 and FMA.
        return unsafe { dequantize_row_avx2(format, row, out) };
    }
    let _ = level;
    dequantize_row_portable(format, row, out);
}

/// [`dequantize_row_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dequantize_row_avx2(format: GroupFormat, row: &[u8], out: &mut [f32]) {
    dequantize_row_portable(format, row, out);
}

#[inline(always)]
fn dequantize_row_portable(format: GroupFormat, row: &[u8], out: &mut [f32]) {
    let (bs, bb) = (format.block(), format.block_bytes());
    for (o, block) in out.chunks_exact_mut(bs).zip(row.chunks_exact(bb)) {
        format.dequantize_block(block, o);
    }
}
