//! Activations and the cheap elementwise operations, in place and out of place, on the active
//! level (see [`crate`] for the error bounds).
//!
//! | [`Activation`] | formula | vector form |
//! |---|---|---|
//! | `Relu` | `max(x, 0)` | select: NaN stays NaN, `−0` stays `−0` |
//! | `SquaredRelu` | `max(x, 0)²` (BitNet b1.58's FFN) | the same, squared |
//! | `GeluErf` | `x/2 · (1 + erf(x/√2))` | `math.rs`'s `1 + erf`: no cancellation for `x < −√2` |
//! | `GeluTanh` | `x/2 · (1 + tanh(√(2/π)(x + 0.044715x³)))` | `x · sigmoid(2u)`, the same function |
//! | `GeluFast` | the tanh form | with the fast `exp` |
//! | `Sigmoid` | `1 / (1 + e^(−x))` | stable: `t = e^(−|x|)`, `1/(1+t)` or `t/(1+t)` |
//! | `Silu` | `x · sigmoid(x)` | the stable sigmoid |
//! | `Mish` | `x · tanh(softplus(x))` | `x · n / (n + 2)`, `n = e^x (e^x + 2)`; `x` above 20 |
//!
//! `x · g(x)` forms return `−0` at `x = −inf` (their limit) and `+inf` at `+inf`.
//!
//! Error bounds against the f64 functions (`tests/activations.rs` asserts them on every level
//! over a sweep of the f32 range; ε = `f32::EPSILON`, `r` the exact result, `v = 2u` the tanh
//! form's `exp` argument, whose rounding `exp` amplifies), with the largest error measured for
//! `|x| ≤ 8` and normal results on AVX-512 (the scalar level differs only where it does not fuse
//! multiply-adds):
//!
//! | function | bound | measured |
//! |---|---|---:|
//! | `Relu` | exact | 0 |
//! | `SquaredRelu` | 0.5 ulp | 0.5 ulp |
//! | `GeluErf` | `16 ε·|r| + 2 ε·|x|` | `erfc(3.92) < 3·10⁻⁸` is dropped below `x = −5.54` (as the f32 `1 + erf` form rounds it away); 1.0 ε·|x| |
//! | `GeluTanh` | `(8 + 3|v|) ε·|r|` | 65 ulp (at `x ≈ −8`; 2 ulp near 0) |
//! | `GeluFast` | `(128 + 3|v|) ε·|r| + 2·10⁻³⁸·|x|` | 125 ulp |
//! | `Sigmoid` | `8 ε·|r|` | 2.3 ulp |
//! | `Silu` | `8 ε·|r|` | 2.9 ulp |
//! | `Mish` | `8 ε·|r|` | 3.3 ulp |
//!
//! **Lookup tables (the log's sigmoid and GELU LUTs) are not provided: they lose on both
//! counts.** Measured by `nn/activations_1t` (`*_lut` rows; tables of 1025 entries over
//! [−8, 8], linear interpolation): largest error 3.4·10⁻⁴ for sigmoid (the clamp at ±8) and
//! 2.4·10⁻⁵ for GELU, against a few ulps here. One core, 64 Ki values in L2: 105 µs for
//! either, against 19 µs for `Sigmoid` and 38 µs for `GeluErf` (pulp vectors on AVX-512).
//!
//! Results in the subnormal range may be off by up to `10⁻⁴³` more. `exp` ([`ExpKind::Exact`]):
//! 1 ulp for normal results (0.95 measured), 2 subnormal ulps below; [`ExpKind::Fast`]: 128 ulp
//! (69 measured with FMA, 108 on the scalar level without).

use bitnet_simd::Par;
use pulp::Simd;

use crate::error::NnError;
use crate::map::{self, Binary, Unary};
use crate::math::{self, exp, exp_fast, neg_inf_to_zero};

/// An elementwise activation function (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `max(x, 0)²`: the activation of BitNet b1.58's gated FFN.
    SquaredRelu,
    /// GELU, erf form.
    GeluErf,
    /// GELU, tanh form.
    GeluTanh,
    /// GELU, tanh form on the fast `exp`.
    GeluFast,
    /// The logistic function.
    Sigmoid,
    /// SiLU (swish): `x · sigmoid(x)`.
    Silu,
    /// Mish: `x · tanh(ln(1 + e^x))`.
    Mish,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 8] = [
        Activation::Relu,
        Activation::SquaredRelu,
        Activation::GeluErf,
        Activation::GeluTanh,
        Activation::GeluFast,
        Activation::Sigmoid,
        Activation::Silu,
        Activation::Mish,
    ];

    /// `x[i] = f(x[i])` on the active level and the cores `par` allows.
    pub fn apply(self, x: &mut [f32], par: Par) -> Result<(), NnError> {
        map::unary_in_place(self, x, par)
    }

    /// `y[i] = f(x[i])`; an error unless `y.len() == x.len()`.
    pub fn apply_to(self, x: &[f32], y: &mut [f32], par: Par) -> Result<(), NnError> {
        map::unary_to(self, x, y, par)
    }
}

/// `√(2/π)`.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// GELU's cubic coefficient.
const GELU_CUBIC: f32 = 0.044_715;

#[inline(always)]
fn relu<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    let zero = simd.splat_f32s(0.0);
    simd.select_f32s(simd.less_than_f32s(x, zero), zero, x)
}

/// `sigmoid(v) = 1 / (1 + e^(−v))` in the stable form: with `t = e^(−|v|)` (never overflows),
/// `1 / (1 + t)` for `v ≥ 0` and `t / (1 + t)` below, so that tiny results keep their relative
/// accuracy instead of flushing to zero through `1 / inf`.
#[inline(always)]
fn sigmoid<S: Simd>(simd: S, v: S::f32s, kind: ExpKind) -> S::f32s {
    let t = kind.eval(simd, simd.neg_f32s(simd.abs_f32s(v)));
    let r = simd.div_f32s(simd.splat_f32s(1.0), simd.add_f32s(simd.splat_f32s(1.0), t));
    let nonneg = simd.greater_than_or_equal_f32s(v, simd.splat_f32s(0.0));
    simd.select_f32s(nonneg, r, simd.mul_f32s(t, r))
}

/// `x · sigmoid(v)`, `−0` at `x = −inf`.
#[inline(always)]
fn x_sigmoid<S: Simd>(simd: S, x: S::f32s, v: S::f32s, kind: ExpKind) -> S::f32s {
    neg_inf_to_zero(simd, x, simd.mul_f32s(x, sigmoid(simd, v, kind)))
}

/// `2u` of the tanh-form GELU: `2√(2/π)(x + 0.044715x³)` (`1 + tanh(u) = 2 sigmoid(2u)`).
#[inline(always)]
fn gelu_2u<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    let c0 = simd.splat_f32s(2.0 * SQRT_2_OVER_PI);
    let c1 = simd.splat_f32s(2.0 * SQRT_2_OVER_PI * GELU_CUBIC);
    simd.mul_f32s(x, simd.mul_add_e_f32s(simd.mul_f32s(x, x), c1, c0))
}

impl Unary for Activation {
    #[inline(always)]
    fn vec<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s {
        match self {
            Activation::Relu => relu(simd, x),
            Activation::SquaredRelu => {
                let r = relu(simd, x);
                simd.mul_f32s(r, r)
            }
            Activation::GeluErf => {
                let z = simd.mul_f32s(x, simd.splat_f32s(std::f32::consts::FRAC_1_SQRT_2));
                let v = simd.mul_f32s(
                    simd.mul_f32s(x, simd.splat_f32s(0.5)),
                    math::one_plus_erf(simd, z),
                );
                neg_inf_to_zero(simd, x, v)
            }
            Activation::GeluTanh => x_sigmoid(simd, x, gelu_2u(simd, x), ExpKind::Exact),
            Activation::GeluFast => x_sigmoid(simd, x, gelu_2u(simd, x), ExpKind::Fast),
            Activation::Sigmoid => sigmoid(simd, x, ExpKind::Exact),
            Activation::Silu => x_sigmoid(simd, x, x, ExpKind::Exact),
            Activation::Mish => {
                let e = exp(simd, x);
                let n = simd.mul_f32s(e, simd.add_f32s(e, simd.splat_f32s(2.0)));
                let v = simd.div_f32s(simd.mul_f32s(x, n), simd.add_f32s(n, simd.splat_f32s(2.0)));
                let big = simd.greater_than_f32s(x, simd.splat_f32s(20.0));
                neg_inf_to_zero(simd, x, simd.select_f32s(big, x, v))
            }
        }
    }
}

/// Which `exp` an operation uses (see [`crate`] for their error bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpKind {
    /// Accurate over the whole f32 range, subnormal results included.
    Exact,
    /// A shorter polynomial: `0` below −87, `+inf` above 88.
    Fast,
}

impl ExpKind {
    /// `e^x` on a vector.
    #[inline(always)]
    pub(crate) fn eval<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s {
        match self {
            ExpKind::Exact => exp(simd, x),
            ExpKind::Fast => exp_fast(simd, x),
        }
    }
}

impl Unary for ExpKind {
    #[inline(always)]
    fn vec<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s {
        self.eval(simd, x)
    }
}

/// `x[i] = e^x[i]`.
pub fn exp_in_place(x: &mut [f32], kind: ExpKind, par: Par) -> Result<(), NnError> {
    map::unary_in_place(kind, x, par)
}

/// `min(max(x, lo), hi)` with NaN kept (a select, no branch).
#[derive(Clone, Copy)]
struct Clamp {
    lo: f32,
    hi: f32,
}

impl Unary for Clamp {
    #[inline(always)]
    fn vec<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s {
        let (lo, hi) = (simd.splat_f32s(self.lo), simd.splat_f32s(self.hi));
        let v = simd.select_f32s(simd.less_than_f32s(x, lo), lo, x);
        simd.select_f32s(simd.greater_than_f32s(v, hi), hi, v)
    }
}

fn clamp_op(lo: f32, hi: f32) -> Result<Clamp, NnError> {
    if lo <= hi {
        Ok(Clamp { lo, hi })
    } else {
        Err(NnError::Invalid {
            what: "clamp bounds",
            reason: format!("lo = {lo} is not ≤ hi = {hi}"),
        })
    }
}

/// `x[i] = clamp(x[i], lo, hi)` (NaN stays NaN); an error unless `lo ≤ hi`.
pub fn clamp(x: &mut [f32], lo: f32, hi: f32, par: Par) -> Result<(), NnError> {
    map::unary_in_place(clamp_op(lo, hi)?, x, par)
}

/// `y[i] = clamp(x[i], lo, hi)`.
pub fn clamp_to(x: &[f32], lo: f32, hi: f32, y: &mut [f32], par: Par) -> Result<(), NnError> {
    map::unary_to(clamp_op(lo, hi)?, x, y, par)
}

/// `s · x`.
#[derive(Clone, Copy)]
struct Scale(f32);

impl Unary for Scale {
    #[inline(always)]
    fn vec<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s {
        simd.mul_f32s(x, simd.splat_f32s(self.0))
    }
}

/// `x[i] *= s`.
pub fn scale(x: &mut [f32], s: f32, par: Par) -> Result<(), NnError> {
    map::unary_in_place(Scale(s), x, par)
}

/// `y[i] = s · x[i]`.
pub fn scale_to(x: &[f32], s: f32, y: &mut [f32], par: Par) -> Result<(), NnError> {
    map::unary_to(Scale(s), x, y, par)
}

/// `a + b`, or `relu(a + b)` (the log's `fused_add_relu`).
#[derive(Clone, Copy)]
struct Add {
    relu: bool,
}

impl Binary for Add {
    #[inline(always)]
    fn vec<S: Simd>(self, simd: S, a: S::f32s, b: S::f32s) -> S::f32s {
        let s = simd.add_f32s(a, b);
        if self.relu { relu(simd, s) } else { s }
    }
}

/// `acc[i] += b[i]` (the residual add).
pub fn add_assign(acc: &mut [f32], b: &[f32], par: Par) -> Result<(), NnError> {
    map::binary_in_place(Add { relu: false }, acc, b, par)
}

/// `out[i] = a[i] + b[i]`.
pub fn add_to(a: &[f32], b: &[f32], out: &mut [f32], par: Par) -> Result<(), NnError> {
    map::binary_to(Add { relu: false }, a, b, out, par)
}

/// `acc[i] = relu(acc[i] + b[i])`, one pass.
pub fn add_relu_assign(acc: &mut [f32], b: &[f32], par: Par) -> Result<(), NnError> {
    map::binary_in_place(Add { relu: true }, acc, b, par)
}

/// `out[i] = relu(a[i] + b[i])`, one pass.
pub fn add_relu_to(a: &[f32], b: &[f32], out: &mut [f32], par: Par) -> Result<(), NnError> {
    map::binary_to(Add { relu: true }, a, b, out, par)
}

/// `y += a · x` on `level` (used by the attention kernels).
pub(crate) fn axpy(level: bitnet_simd::Level, a: f32, x: &[f32], y: &mut [f32]) {
    struct Axpy<'a> {
        a: f32,
        x: &'a [f32],
        y: &'a mut [f32],
    }
    impl pulp::WithSimd for Axpy<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let av = simd.splat_f32s(self.a);
            let (xv, xt) = S::as_simd_f32s(self.x);
            let (yv, yt) = S::as_mut_simd_f32s(self.y);
            for (y, &x) in yv.iter_mut().zip(xv) {
                *y = simd.mul_add_e_f32s(av, x, *y);
            }
            for (y, &x) in yt.iter_mut().zip(xt) {
                *y = self.a.mul_add(x, *y);
            }
        }
    }
    level.run(Axpy { a, x, y });
}
