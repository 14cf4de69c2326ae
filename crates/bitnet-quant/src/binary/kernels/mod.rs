//! Fast binary GEMV/GEMM on every core: XNOR-popcount for sign-binarized activations
//! ([`gemm_xnor`]) and int8 activations × binary weights ([`gemm_int8`]), each bit-identical to
//! the scalar reference of [`super`] (the integer dot is exact and the float steps are the same).
//!
//! | [`BinaryPath`] | XNOR-popcount | int8 × binary |
//! |---|---|---|
//! | `Avx512` (`avx512.rs`) | `vpopcntq` zmm, 4 rows × 4 tokens per tile (needs VPOPCNTDQ) | `vpmaskmovb` + `vpsadbw` zmm (AVX-512 BW) |
//! | `Avx2` (`avx2.rs`) | nibble-table `vpshufb` popcount, 4 rows per activation load | bits spread to byte masks, `vpsadbw` |
//! | `Scalar` | u64 `count_ones`, 4 rows per activation word (the log's row batching) | 4 rows per activation byte |
//!
//! The optimisation log's `matmul_1bit_*` variants, as they exist here: `_packed` (64 weights
//! per word: the format itself), `_optimized` (row batching: every path), `_parallel` / `_thread`
//! (`Par`), `_avx512` (`vpopcntq`, with 64-bit rather than 32-bit lanes), `_ultra` (word-level
//! popcount: the scalar path); `_neon` is not written (no aarch64 toolchain here).
//!
//! Rows go to threads in groups of four ([`Par::for_each_range`]), each writing its own outputs;
//! int8 activations are biased to unsigned once per call, in scratch from the pool.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, ScratchPool};

use super::{BinaryActivations, BinaryMatrix, words_per_row};
use crate::activations::Int8Activations;
use crate::error::{QuantError, check_len, elements};

/// Rows that share each activation load.
const ROWS: usize = 4;
/// Tokens per XNOR tile on AVX-512.
const TOKENS: usize = 4;

/// Which of the two binary products a path runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKernel {
    /// Sign-binarized activations: XNOR-popcount.
    Xnor,
    /// int8 activations.
    Int8,
}

/// The instruction family a binary call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryPath {
    /// AVX-512: VPOPCNTDQ for XNOR, BW for int8.
    Avx512,
    /// AVX2.
    Avx2,
    /// Portable Rust (`u64::count_ones`).
    Scalar,
}

impl BinaryPath {
    /// Every path, fastest first.
    pub const ALL: [BinaryPath; 3] = [BinaryPath::Avx512, BinaryPath::Avx2, BinaryPath::Scalar];

    /// The fastest path `kernel` may run on under the active ceiling.
    pub fn best(kernel: BinaryKernel) -> Result<BinaryPath, QuantError> {
        for path in BinaryPath::ALL {
            if path.available(kernel)? {
                return Ok(path);
            }
        }
        Ok(BinaryPath::Scalar)
    }

    /// Whether this CPU, under the active ceiling, may run `kernel` on this path.
    pub fn available(self, kernel: BinaryKernel) -> Result<bool, QuantError> {
        let level = Level::active()?;
        let _ = (level, kernel);
        #[cfg(target_arch = "x86_64")]
        {
            use bitnet_simd::dispatch::Avx512VpopcntdqToken;
            return Ok(match (self, kernel) {
                (BinaryPath::Avx512, BinaryKernel::Xnor) => Avx512VpopcntdqToken::get()?.is_some(),
                (BinaryPath::Avx512, BinaryKernel::Int8) => matches!(level, Level::Avx512(_)),
                (BinaryPath::Avx2, _) => matches!(level, Level::Avx2(_) | Level::Avx512(_)),
                (BinaryPath::Scalar, _) => true,
            });
        }
        #[allow(unreachable_code)]
        Ok(self == BinaryPath::Scalar)
    }

    fn check(self, kernel: BinaryKernel) -> Result<(), QuantError> {
        if self.available(kernel)? {
            Ok(())
        } else {
            Err(QuantError::Invalid {
                what: "kernel path",
                reason: format!(
                    "{self:?} ({kernel:?}) needs CPU features this machine or the ISA ceiling \
                     does not allow"
                ),
            })
        }
    }
}

fn check_k(w: &BinaryMatrix, k: usize) -> Result<(), QuantError> {
    if w.cols() != k {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.cols(),
            right: k,
        });
    }
    Ok(())
}

/// `y[t * rows + r] = β_w(r) β_x(t) (W_b[r] · x_b[t])` (as [`super::gemm_xnor`], bit-identical)
/// on the fastest path and every core `par` allows.
pub fn gemm_xnor(
    w: &BinaryMatrix,
    x: &BinaryActivations,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_xnor_on(BinaryPath::best(BinaryKernel::Xnor)?, w, x, y, par)
}

/// [`gemm_xnor`] on the given path; an error where it may not run.
pub fn gemm_xnor_on(
    path: BinaryPath,
    w: &BinaryMatrix,
    x: &BinaryActivations,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    path.check(BinaryKernel::Xnor)?;
    check_k(w, x.k())?;
    let (rows, tokens, k) = (w.rows(), x.tokens(), w.cols());
    check_len("output", elements(tokens, rows)?, y.len())?;
    let words = words_per_row(k);
    let par = par.for_bytes((rows * words * 8).saturating_mul(tokens));
    drive(rows, tokens, y, par, |r0, n, t0, tn| {
        let rows4: [&[u64]; ROWS] = std::array::from_fn(|i| w.row(r0 + i.min(n - 1)));
        // differ[i][j]: bits where row r0 + i and token t0 + j differ.
        let mut differ = [[0u32; TOKENS]; ROWS];
        match path {
            #[cfg(target_arch = "x86_64")]
            BinaryPath::Avx512 if tn == TOKENS => {
                let xs: [&[u64]; TOKENS] = std::array::from_fn(|j| x.row(t0 + j));
                // SAFETY: checked above: VPOPCNTDQ (with AVX-512 F/BW/VL) may run.
                differ = unsafe { avx512::xnor_tile(rows4, xs, words) };
            }
            _ => {
                for j in 0..tn {
                    let xt = x.row(t0 + j);
                    let d = match path {
                        #[cfg(target_arch = "x86_64")]
                        BinaryPath::Avx512 => {
                            // SAFETY: as above.
                            unsafe { avx512::xnor_tile(rows4, [xt], words) }.map(|[v]| v)
                        }
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: checked above: the AVX2 level may run.
                        BinaryPath::Avx2 => unsafe { avx2::xnor_rows(rows4, xt, words) },
                        _ => xnor_rows(rows4, xt, words),
                    };
                    for (i, d) in d.into_iter().enumerate() {
                        differ[i][j] = d;
                    }
                }
            }
        }
        // The reference's float steps: bit-identical.
        std::array::from_fn(|j| {
            std::array::from_fn(|i| {
                let (r, t) = ((r0 + i).min(rows - 1), (t0 + j).min(tokens - 1));
                let dot = k as i32 - 2 * differ[i][j] as i32;
                dot as f32 * (w.scale(r) * x.scale(t))
            })
        })
    });
    Ok(())
}

/// `y[t * rows + r] = β_w(r) (W_b[r] · q[t]) / a_t` for int8 activations (as
/// [`super::gemm_int8`], bit-identical) on the fastest path and every core `par` allows.
pub fn gemm_int8(
    w: &BinaryMatrix,
    x: &Int8Activations,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_int8_on(BinaryPath::best(BinaryKernel::Int8)?, w, x, y, par)
}

/// [`gemm_int8`] on the given path; an error where it may not run.
pub fn gemm_int8_on(
    path: BinaryPath,
    w: &BinaryMatrix,
    x: &Int8Activations,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    path.check(BinaryKernel::Int8)?;
    check_k(w, x.k())?;
    let (rows, tokens, k) = (w.rows(), x.tokens(), w.cols());
    check_len("output", elements(tokens, rows)?, y.len())?;
    let words = words_per_row(k);
    // The activations biased to unsigned (q + 128 = q ^ 0x80), padded with zeros to whole words.
    let stride = words * 64;
    let mut biased = ScratchPool::global().take::<u8>(tokens * stride);
    for t in 0..tokens {
        let dst = &mut biased[t * stride..(t + 1) * stride];
        for (b, &q) in dst.iter_mut().zip(x.row(t)) {
            *b = q as u8 ^ 0x80;
        }
        dst[k..].fill(0);
    }
    let biased = &biased[..];
    let par = par.for_bytes((rows * words * 8).saturating_mul(tokens));
    drive(rows, tokens, y, par, |r0, n, t0, tn| {
        let rows4: [&[u64]; ROWS] = std::array::from_fn(|i| w.row(r0 + i.min(n - 1)));
        // Weights +1 per row: Σ_{bit=1} q = Σ_{bit=1} (q + 128) − 128 · ones.
        let ones: [i64; ROWS] = std::array::from_fn(|i| i64::from(w.ones(r0 + i.min(n - 1))));
        let mut res = [[0f32; ROWS]; TOKENS];
        for (j, res_t) in res.iter_mut().enumerate().take(tn) {
            let t = t0 + j;
            let qb = &biased[t * stride..(t + 1) * stride];
            let sums = match path {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: checked above: the AVX-512 level (F/BW/VL) may run.
                BinaryPath::Avx512 => unsafe { avx512::int8_rows(rows4, qb, words) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: checked above: the AVX2 level may run.
                BinaryPath::Avx2 => unsafe { avx2::int8_rows(rows4, qb, words) },
                _ => int8_rows(rows4, qb, words),
            };
            for (i, o) in res_t.iter_mut().enumerate().take(n) {
                let plus = (sums[i] as i64 - 128 * ones[i]) as i32;
                let dot = 2 * plus - x.sums()[t];
                // The reference's float steps: bit-identical.
                *o = dot as f32 / x.scales()[t] * w.scale(r0 + i);
            }
        }
        res
    });
    Ok(())
}

/// The scalar XNOR kernel: each activation word serves four rows.
fn xnor_rows(rows: [&[u64]; ROWS], x: &[u64], words: usize) -> [u32; ROWS] {
    let mut differ = [0u32; ROWS];
    for (i, &xv) in x[..words].iter().enumerate() {
        for (d, row) in differ.iter_mut().zip(&rows) {
            *d += (row[i] ^ xv).count_ones();
        }
    }
    differ
}

/// The scalar int8 kernel: `Σ_{bit=1} (q + 128)` of four rows, each activation byte read once.
fn int8_rows(rows: [&[u64]; ROWS], qb: &[u8], words: usize) -> [u64; ROWS] {
    let mut sums = [0u64; ROWS];
    for (i, chunk) in qb[..words * 64].chunks_exact(64).enumerate() {
        for (s, row) in sums.iter_mut().zip(&rows) {
            let bits = row[i];
            // Branch-free: byte j of the selection is 0xFF where bit j is set.
            let mut picked = 0u32;
            for (j, &q) in chunk.iter().enumerate() {
                picked += u32::from(q & 0u8.wrapping_sub((bits >> j & 1) as u8));
            }
            *s += u64::from(picked);
        }
    }
    sums
}

/// Splits `rows` across `par`'s threads in groups of [`ROWS`]; for each group and tile of up to
/// [`TOKENS`] tokens, `f(r0, n, t0, tn)` returns the outputs `[token t0 + j][row r0 + i]`
/// (`i < n`, `j < tn` are stored).
fn drive(
    rows: usize,
    tokens: usize,
    y: &mut [f32],
    par: Par,
    f: impl Fn(usize, usize, usize, usize) -> [[f32; ROWS]; TOKENS] + Sync,
) {
    debug_assert_eq!(y.len(), rows * tokens);
    let y = SharedOut::new(y.as_mut_ptr());
    par.for_each_range(rows.div_ceil(ROWS), 4, |groups| {
        for g in groups {
            let (r0, n) = (g * ROWS, ROWS.min(rows - g * ROWS));
            for t0 in (0..tokens).step_by(TOKENS) {
                let tn = TOKENS.min(tokens - t0);
                let res = f(r0, n, t0, tn);
                for (j, res_t) in res.iter().enumerate().take(tn) {
                    for (i, &v) in res_t.iter().enumerate().take(n) {
                        // SAFETY: (t0 + j, r0 + i) is inside y (rows × tokens, checked by the
                        // callers), and this task owns row group g: no other thread writes it.
                        unsafe { *y.at((t0 + j) * rows + r0 + i) = v };
                    }
                }
            }
        }
    });
}
