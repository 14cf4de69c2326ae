//! The scalar GEMV/GEMM of the group formats, and the oracle of the SIMD kernels.
//!
//! Integer parts are exact; the float part, per 32-value activation block `j` (32-value
//! formats) or per 256-value super-block (K-quants), accumulated in f32 in block order:
//!
//! - symmetric groups: `y += (d_w · d_a,j) · f32(Σ code·q − offset · Σ q)`;
//! - groups with a minimum: `y += (d_w · d_a,j) · f32(Σ code·q) + (m_w · d_a,j) · f32(Σ q)`;
//! - Q8_0: `y += (d_w · d_a,j) · f32(Σ q_w·q)`;
//! - Q4_K × Q8_K: `y += (d · d_a) · f32(Σ_s sc_s Σ code·q) + (dmin · d_a) · f32(−Σ_s m_s Σ q)`;
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
    let mut y = 0f32;
    terms(w, r, x, t, |sw, sa, i, _| y += (sw * sa) * i as f32);
    y
}

/// Row `r` of `w` dotted with token `t` of `x` in exact arithmetic (f64: every term is a product
/// of an f16, an f32 and an integer below 2^31, exact in f64), and the magnitude `T` of the
/// error bound (module docs): `|dot − exact| ≤ (n + 4) · ε · T` for every path.
pub fn exact(
    w: &GroupWeights<'_>,
    r: usize,
    x: GroupActivations<'_>,
    t: usize,
) -> Result<(f64, f64), QuantError> {
    check_call(w, x, &vec![0.0; x.tokens() * w.rows()])?;
    if r >= w.rows() || t >= x.tokens() {
        return Err(QuantError::Invalid {
            what: "index",
            reason: format!("row {r} of {} or token {t} of {}", w.rows(), x.tokens()),
        });
    }
    let (mut y, mut mag) = (0f64, 0f64);
    terms(w, r, x, t, |sw, sa, i, m| {
        let s = f64::from(sw) * f64::from(sa);
        y += s * f64::from(i);
        mag += s.abs() * m as f64;
    });
    Ok((y, mag))
}

/// Calls `f(s_w, s_a, sum, magnitude)` for every term `s_w · s_a · sum` of the dot of row `r`
/// and token `t`, in block order (module docs; `magnitude` is the sum over `|code|·|q|`).
fn terms(
    w: &GroupWeights<'_>,
    r: usize,
    x: GroupActivations<'_>,
    t: usize,
    f: impl FnMut(f32, f32, i32, i64),
) {
    let row = w.row(r);
    match x {
        GroupActivations::Q8x32(a) => terms_32(w.format(), row, a, t, f),
        GroupActivations::Q8K(a) => match w.format() {
            GroupFormat::Q4K => terms_q4_k(row, a.row(t), f),
            _ => terms_q6_k(row, a.row(t), f),
        },
    }
}

/// `(Σ c·q, Σ |c|·|q|)` over paired values.
fn int_dot(c: impl Iterator<Item = i32>, q: &[i8]) -> (i32, i64) {
    c.zip(q).fold((0, 0), |(s, m), (c, &q)| {
        let q = i32::from(q);
        (s + c * q, m + i64::from((c * q).abs()))
    })
}

/// A 32-value format's row × token `t`, per activation block.
fn terms_32(
    format: GroupFormat,
    row: &[u8],
    a: &Q8x32Activations,
    t: usize,
    mut f: impl FnMut(f32, f32, i32, i64),
) {
    let (q, d, s) = (a.row(t), a.scales(t), a.sums(t));
    let (bs, bb) = (format.block(), format.block_bytes());
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
            let qs = &q[QK8 * j..QK8 * j + QK8];
            let (isum, mag) = int_dot(cs.iter().copied(), qs);
            let abs_q: i64 = qs.iter().map(|&v| i64::from(v).abs()).sum();
            match format {
                GroupFormat::Grouped(spec) if spec.with_min() => {
                    f(dw, d[j], isum, mag);
                    f(f16_at(block, 2), d[j], s[j], abs_q);
                }
                GroupFormat::Grouped(spec) => f(
                    dw,
                    d[j],
                    isum - spec.offset() * s[j],
                    mag + i64::from(spec.offset()) * abs_q,
                ),
                _ => f(dw, d[j], isum, mag),
            }
        }
    }
}

/// A Q4_K row × a Q8_K token: per super-block, `(d, d_a, Σ sc·dot)` and `(dmin, d_a, −Σ m·Σq)`.
fn terms_q4_k(row: &[u8], x: &[BlockQ8K], mut f: impl FnMut(f32, f32, i32, i64)) {
    let mut codes = [0u8; 256];
    for (block, a) in row.chunks_exact(super::k_quants::Q4K_BYTES).zip(x) {
        q4_k_codes(block, &mut codes);
        let (mut sumi, mut summs, mut mag, mut mag_m) = (0i32, 0i32, 0i64, 0i64);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &block[4..16]);
            let qs = &a.q[32 * j..32 * j + 32];
            let (dot, dmag) = int_dot(codes[32 * j..32 * j + 32].iter().map(|&c| i32::from(c)), qs);
            sumi += i32::from(sc) * dot;
            mag += i64::from(sc) * dmag;
            summs += i32::from(m) * (i32::from(a.bsums[2 * j]) + i32::from(a.bsums[2 * j + 1]));
            mag_m += i64::from(m) * qs.iter().map(|&v| i64::from(v).abs()).sum::<i64>();
        }
        f(f16_at(block, 0), a.d, sumi, mag);
        f(f16_at(block, 2), a.d, -summs, mag_m);
    }
}

/// A Q6_K row × a Q8_K token: per super-block, `(d, d_a, Σ sc·Σ (code − 32)·q)`.
fn terms_q6_k(row: &[u8], x: &[BlockQ8K], mut f: impl FnMut(f32, f32, i32, i64)) {
    let mut codes = [0u8; 256];
    for (block, a) in row.chunks_exact(super::k_quants::Q6K_BYTES).zip(x) {
        q6_k_codes(block, &mut codes);
        let (mut sumi, mut mag) = (0i32, 0i64);
        for j in 0..16 {
            let (dot, dmag) = int_dot(
                codes[16 * j..16 * j + 16]
                    .iter()
                    .map(|&c| i32::from(c) - 32),
                &a.q[16 * j..16 * j + 16],
            );
            let sc = i32::from(block[192 + j] as i8);
            sumi += sc * dot;
            mag += i64::from(sc.abs()) * dmag;
        }
        f(f16_at(block, 208), a.d, sumi, mag);
    }
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
