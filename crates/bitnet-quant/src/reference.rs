//! Scalar reference kernels for the packed ternary formats: dot product, GEMV and GEMM of
//! int8-quantized activations with packed weights, every scale applied.
//!
//! These are what a machine without a faster path runs (any x86-64 or aarch64 CPU) and the
//! oracle of the fast kernels. The integer part of each is exact; the float part:
//!
//! - **TQ2_0 / TQ1_0 × Q8_K** (as ggml's `vec_dot_tq*_q8_K`): per 256-block `b`, the exact
//!   `sumi_b = Σ (code - 1) · q` (|sumi_b| ≤ 256 · 127, exact in f32), then
//!   `y = Σ_b f32(sumi_b) · (d_x,b · d_w,b)` accumulated in f32 in block order. With
//!   `nb = k / 256` and ε = `f32::EPSILON`: `|y − y_exact| ≤ (nb + 2) ε Σ_b |sumi_b · d_x,b · d_w,b|`.
//! - **I2_S × per-token int8** (as bitnet.cpp): `sumi = Σ code · q − Σ q = Σ (code − 1) · q`
//!   exactly in i32, then `y = f32(sumi) / a · s` (`a` the activation multiplier, `s` the tensor
//!   scale): `|y − y_exact| ≤ 3 ε |y_exact|`.
//!
//! `y_exact` is the product of the dequantized weights and dequantized activations (computed in
//! f64 by the tests). The bounds assume no intermediate result leaves the normal f32 range (a
//! scale product below ~1.2e-38 loses relative precision to underflow; a product above ~3.4e38
//! is infinite). The integer sums are exact because activations have at most
//! [`crate::MAX_K`] values per row.

use crate::activations::Int8Activations;
use crate::error::QuantError;
use crate::formats::q8_k::{BlockQ8K, Q8KActivations};
use crate::formats::{TernaryFormat, TernaryWeights, i2_s, tq1_0, tq2_0};

/// The activations a ternary format pairs with.
#[derive(Clone, Copy, Debug)]
pub enum Activations<'a> {
    /// Q8_K blocks, for TQ2_0 and TQ1_0.
    Q8K(&'a Q8KActivations),
    /// Per-token int8 with its scale and sum, for I2_S.
    Int8(&'a Int8Activations),
}

impl Activations<'_> {
    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        match self {
            Activations::Q8K(a) => a.tokens(),
            Activations::Int8(a) => a.tokens(),
        }
    }

    /// Values per token.
    pub fn k(&self) -> usize {
        match self {
            Activations::Q8K(a) => a.k(),
            Activations::Int8(a) => a.k(),
        }
    }
}

/// Output `r` of token `t`: row `r` of `w` dotted with token `t` of `x`, every scale applied.
/// The caller has checked that the format and activations pair and that `k` matches.
pub(crate) fn dot_checked(w: &TernaryWeights<'_>, r: usize, x: Activations<'_>, t: usize) -> f32 {
    match x {
        Activations::Q8K(x) => dot_tq(w.format(), w.row(r), x.row(t)),
        Activations::Int8(x) => {
            let s = w.tensor_scale().expect("I2_S pairs with Int8");
            dot_i2s(w.row(r), x.row(t), x.sums()[t], x.scales()[t], s)
        }
    }
}

/// TQ2_0 / TQ1_0 row × Q8_K row, ggml's order of operations.
fn dot_tq(format: TernaryFormat, row: &[u8], x: &[BlockQ8K]) -> f32 {
    let bb = format.block_bytes();
    let mut sumf = 0f32;
    for (block, y) in row.chunks_exact(bb).zip(x) {
        let (codes, d) = match format {
            TernaryFormat::Tq2_0 => tq2_0::decode_block(block.try_into().expect("66 bytes")),
            _ => tq1_0::decode_block(block.try_into().expect("54 bytes")),
        };
        let sumi: i32 = codes
            .iter()
            .zip(&y.q)
            .map(|(&c, &q)| (i32::from(c) - 1) * i32::from(q))
            .sum();
        sumf += sumi as f32 * (y.d * d.to_f32());
    }
    sumf
}

/// I2_S row × int8 token: `(Σ code·q − Σ q) / a · s`.
fn dot_i2s(row: &[u8], q: &[i8], q_sum: i32, a: f32, s: f32) -> f32 {
    let mut sumi = 0i32;
    for (block, qb) in row
        .chunks_exact(i2_s::BLOCK_BYTES)
        .zip(q.chunks_exact(i2_s::QK))
    {
        let codes = i2_s::decode_block(block.try_into().expect("32 bytes"));
        sumi += codes
            .iter()
            .zip(qb)
            .map(|(&c, &v)| i32::from(c) * i32::from(v))
            .sum::<i32>();
    }
    finish_i2s(sumi, q_sum, a, s)
}

/// The float steps of an I2_S output from its exact integer part: `(Σ code·q − Σ q) / a · s`.
/// Every I2_S path ends here, which is what makes them bit-identical to this reference.
#[inline]
pub(crate) fn finish_i2s(sumi: i32, q_sum: i32, a: f32, s: f32) -> f32 {
    (sumi - q_sum) as f32 / a * s
}

/// Checks that `x` pairs with `w`'s format and has `w.k()` values per token.
pub(crate) fn check_pair(w: &TernaryWeights<'_>, x: Activations<'_>) -> Result<(), QuantError> {
    let pairs = matches!(
        (w.format(), x),
        (TernaryFormat::I2s, Activations::Int8(_))
            | (
                TernaryFormat::Tq2_0 | TernaryFormat::Tq1_0,
                Activations::Q8K(_)
            )
    );
    if !pairs {
        return Err(QuantError::Invalid {
            what: "activations",
            reason: format!(
                "{} weights pair with {} activations",
                w.format(),
                if w.format() == TernaryFormat::I2s {
                    "per-token int8 (Int8Activations)"
                } else {
                    "Q8_K (Q8KActivations)"
                }
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
    Ok(())
}

/// Row `r` of `w` dotted with token `t` of `x`, every scale applied.
pub fn dot(
    w: &TernaryWeights<'_>,
    r: usize,
    x: Activations<'_>,
    t: usize,
) -> Result<f32, QuantError> {
    check_pair(w, x)?;
    if r >= w.rows() || t >= x.tokens() {
        return Err(QuantError::Invalid {
            what: "index",
            reason: format!(
                "row {r} of {} or token {t} of {} is out of range",
                w.rows(),
                x.tokens()
            ),
        });
    }
    Ok(dot_checked(w, r, x, t))
}

/// `y[r] = W[r] · x` for the one token of `x` (decode).
pub fn gemv(w: &TernaryWeights<'_>, x: Activations<'_>, y: &mut [f32]) -> Result<(), QuantError> {
    if x.tokens() != 1 {
        return Err(QuantError::Mismatch {
            what: "tokens of a GEMV",
            left: 1,
            right: x.tokens(),
        });
    }
    gemm(w, x, y)
}

/// `y[t * rows + r] = W[r] · x[t]` for every token (prefill): `Y = X W^T`, token-major.
pub fn gemm(w: &TernaryWeights<'_>, x: Activations<'_>, y: &mut [f32]) -> Result<(), QuantError> {
    check_pair(w, x)?;
    crate::error::check_len(
        "output",
        crate::error::elements(x.tokens(), w.rows())?,
        y.len(),
    )?;
    for t in 0..x.tokens() {
        for r in 0..w.rows() {
            y[t * w.rows() + r] = dot_checked(w, r, x, t);
        }
    }
    Ok(())
}
