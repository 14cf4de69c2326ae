//! The scalar GEMV/GEMM of the group formats, and the oracle of the SIMD kernels.
//!
//! Integer parts are exact; the float part, per 32-value activation block `j` (32-value
//! formats) or per 256-value super-block (K-quants), accumulated in f32 in block order:
//!
//! - symmetric groups: `y += (d_w · d_a,j) · f32(Σ code·q − offset · Σ q)`;
//! - groups with a minimum: `y += (d_w · d_a,j) · f32(Σ code·q) + m_w · (d_a,j · Σ q)`;
//! - Q8_0: `y += (d_w · d_a,j) · f32(Σ q_w·q)`;
//! - Q4_K × Q8_K: `y += (d_a · d) · f32(Σ_s sc_s Σ code·q) − (d_a · dmin) · f32(Σ_s m_s Σ q)`;
//! - Q6_K × Q8_K: `y += (d_a · d) · f32(Σ_s sc_s Σ (code − 32)·q)`.
//!
//! Error: with `T` the sum of the absolute values of the block terms above (each integer sum
//! taken over `|code|·|q|`, offsets and minimums included) and `n` the number of blocks,
//! `|y − y_exact| ≤ (n + 4) · ε · T` (ε = `f32::EPSILON`), `y_exact` the product of the stored
//! weights and activations in exact arithmetic. The SIMD kernels meet the same bound.

use super::act::{Q8x32Activations, QK8};
use super::codec::{f16_at, group_codes};
use super::k_quants::{q4_k_codes, q6_k_codes, scale_min_k4};
use super::{ActivationKind, GroupFormat, GroupWeights};
use crate::error::{QuantError, check_len, elements};
use crate::formats::q8_k::{BlockQ8K, Q8KActivations};

/// The activations a group format dots with ([`GroupFormat::activation`]).
#[derive(Clone, Copy, Debug)]
pub enum GroupActivations<'a> {
    /// Blocks of 32 with an f32 scale: the 32-value formats.
    Q8x32(&'a Q8x32Activations),
    /// ggml's Q8_K: the K-quants.
    Q8K(&'a Q8KActivations),
}

impl GroupActivations<'_> {
    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        match self {
            GroupActivations::Q8x32(a) => a.tokens(),
            GroupActivations::Q8K(a) => a.tokens(),
        }
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        match self {
            GroupActivations::Q8x32(a) => a.k(),
            GroupActivations::Q8K(a) => a.k(),
        }
    }
}

/// Checks that `x` pairs with `w`'s format, has `w.k()` values per token, and that `y` holds
/// `tokens x rows` outputs.
pub(crate) fn check_call(
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    y: &[f32],
) -> Result<(), QuantError> {
    let pairs = matches!(
        (w.format().activation(), x),
        (ActivationKind::Q8x32, GroupActivations::Q8x32(_))
            | (ActivationKind::Q8K, GroupActivations::Q8K(_))
    );
    if !pairs {
        return Err(QuantError::Invalid {
            what: "activations",
            reason: format!(
                "{} weights pair with {:?} activations",
                w.format(),
                w.format().activation()
            ),
        });
    }
    if x.k() != w.k() {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.k(),
            right: x.k(),
        });
    }
    check_len("output", elements(x.tokens(), w.rows())?, y.len())
}

/// Row `r` of `w` dotted with token `t` of `x` (the pair checked by the caller).
pub(crate) fn dot_checked(
    w: &GroupWeights<'_>,
    r: usize,
    x: GroupActivations<'_>,
    t: usize,
) -> f32 {
    let row = w.row(r);
    match x {
        GroupActivations::Q8x32(a) => dot_32(w.format(), row, a, t),
        GroupActivations::Q8K(a) => match w.format() {
            GroupFormat::Q4K => dot_q4_k(row, a.row(t)),
            _ => dot_q6_k(row, a.row(t)),
        },
    }
}

/// A 32-value format's row × token `t`, per activation block.
fn dot_32(format: GroupFormat, row: &[u8], a: &Q8x32Activations, t: usize) -> f32 {
    let (q, d, s, ds) = (a.row(t), a.scales(t), a.sums(t), a.scaled_sums(t));
    let (bs, bb) = (format.block(), format.block_bytes());
    let mut y = 0f32;
    let mut codes = [0i32; 128];
    for (b, block) in row.chunks_exact(bb).enumerate() {
        let codes = &mut codes[..bs];
        let dw = f16_at(block, 0);
        match format {
            GroupFormat::Grouped(spec) => {
                let mut raw = [0u8; 128];
                group_codes(spec, block, &mut raw[..bs]);
                for (c, &r) in codes.iter_mut().zip(&raw) {
                    *c = i32::from(r);
                }
            }
            _ => {
                for (c, &v) in codes.iter_mut().zip(&block[2..]) {
                    *c = i32::from(v as i8);
                }
            }
        }
        for (sub, cs) in codes.chunks_exact(QK8).enumerate() {
            let j = b * (bs / QK8) + sub;
            let isum: i32 = cs
                .iter()
                .zip(&q[QK8 * j..QK8 * j + QK8])
                .map(|(&c, &v)| c * i32::from(v))
                .sum();
            y += match format {
                GroupFormat::Grouped(spec) if spec.with_min() => {
                    (dw * d[j]) * isum as f32 + f16_at(block, 2) * ds[j]
                }
                GroupFormat::Grouped(spec) => (dw * d[j]) * (isum - spec.offset() * s[j]) as f32,
                _ => (dw * d[j]) * isum as f32,
            };
        }
    }
    y
}

/// A Q4_K row × a Q8_K token.
fn dot_q4_k(row: &[u8], x: &[BlockQ8K]) -> f32 {
    let mut y = 0f32;
    let mut codes = [0u8; 256];
    for (block, a) in row.chunks_exact(super::k_quants::Q4K_BYTES).zip(x) {
        q4_k_codes(block, &mut codes);
        let (mut sumi, mut summs) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &block[4..16]);
            let dot: i32 = codes[32 * j..32 * j + 32]
                .iter()
                .zip(&a.q[32 * j..32 * j + 32])
                .map(|(&c, &v)| i32::from(c) * i32::from(v))
                .sum();
            sumi += i32::from(sc) * dot;
            summs += i32::from(m) * (i32::from(a.bsums[2 * j]) + i32::from(a.bsums[2 * j + 1]));
        }
        y += (a.d * f16_at(block, 0)) * sumi as f32 - (a.d * f16_at(block, 2)) * summs as f32;
    }
    y
}

/// A Q6_K row × a Q8_K token.
fn dot_q6_k(row: &[u8], x: &[BlockQ8K]) -> f32 {
    let mut y = 0f32;
    let mut codes = [0u8; 256];
    for (block, a) in row.chunks_exact(super::k_quants::Q6K_BYTES).zip(x) {
        q6_k_codes(block, &mut codes);
        let mut sumi = 0i32;
        for j in 0..16 {
            let dot: i32 = codes[16 * j..16 * j + 16]
                .iter()
                .zip(&a.q[16 * j..16 * j + 16])
                .map(|(&c, &v)| (i32::from(c) - 32) * i32::from(v))
                .sum();
            sumi += i32::from(block[192 + j] as i8) * dot;
        }
        y += (a.d * f16_at(block, 208)) * sumi as f32;
    }
    y
}

/// `y[t * rows + r] = W[r] · x[t]` for every token (`Y = X Wᵀ`, token-major), one thread.
pub fn gemm(
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    y: &mut [f32],
) -> Result<(), QuantError> {
    check_call(w, x, y)?;
    for t in 0..x.tokens() {
        for r in 0..w.rows() {
            y[t * w.rows() + r] = dot_checked(w, r, x, t);
        }
    }
    Ok(())
}
