//! Helpers shared by the integration tests (each test file includes this module and uses what
//! it needs).
#![allow(dead_code)]

use bitnet_nn::Activation;
use bitnet_simd::isa::{Ceiling, testable_isas};

/// `f32::EPSILON` in f64.
pub const EPS: f64 = f32::EPSILON as f64;

/// Every level this machine can run.
pub fn ceilings() -> Vec<Ceiling> {
    testable_isas()
        .unwrap()
        .into_iter()
        .map(Ceiling::at)
        .collect()
}

/// `n` values from a xorshift of `seed`, uniform in `(−scale, scale)`, with specials (±0, ±inf,
/// NaN, a subnormal, a huge value) mixed in when `specials`.
pub fn values(n: usize, seed: u64, scale: f32, specials: bool) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if specials && s.is_multiple_of(11) {
                [
                    0.0,
                    -0.0,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    f32::NAN,
                    1e-40,
                    -3e38,
                ][i % 7]
            } else {
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            }
        })
        .collect()
}

/// The same value, both NaN, or within `bound` of the reference; a finite reference past the
/// f32 range must give the infinity it rounds to.
pub fn close(got: f32, want: f64, bound: f64) -> bool {
    let g = f64::from(got);
    if want.is_finite() && (want as f32).is_infinite() {
        return got == want as f32;
    }
    (g.is_nan() && want.is_nan()) || g == want || (g - want).abs() <= bound
}

/// The stated error bound of each activation at `x` with reference value `r` (see
/// `bitnet_nn::act`): ulps of the result (with the rounding of the `exp` argument `v` amplified
/// by `exp`, `|v|` ulps), plus an absolute part where a form drops a tail.
pub fn activation_bound(a: Activation, x: f64, r: f64) -> f64 {
    let ulps = |u: f64| u * EPS * r.abs();
    let two_u = (2.0 * 0.797_884_6 * (x + 0.044_715 * x * x * x)).abs();
    let tiny = 1e-43;
    match a {
        Activation::Relu => 0.0,
        Activation::SquaredRelu => ulps(0.5) + tiny,
        Activation::GeluErf => ulps(16.0) + 2.0 * EPS * x.abs() + tiny,
        Activation::GeluTanh => ulps(8.0 + 3.0 * two_u) + tiny,
        Activation::GeluFast => ulps(128.0 + 3.0 * two_u) + 2e-38 * x.abs() + tiny,
        Activation::Sigmoid | Activation::Silu | Activation::Mish => ulps(8.0) + tiny,
    }
}
