//! The plain f64 references every kernel of this crate is tested against.

use crate::act::Activation;

/// `f(x)` in f64: each activation in a form without cancellation (`erfc` for GELU's negative
/// tail, `x / (1 + e^(−2u))` for its tanh form), `−0` at `x = −inf` for the `x · g(x)` forms.
pub fn activation(a: Activation, x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let neg_inf = x == f64::NEG_INFINITY;
    let u = |x: f64| (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    match a {
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::SquaredRelu => {
            let r = if x < 0.0 { 0.0 } else { x };
            r * r
        }
        _ if neg_inf && a != Activation::Sigmoid => -0.0,
        Activation::GeluErf => 0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2),
        Activation::GeluTanh | Activation::GeluFast => x / (1.0 + (-2.0 * u(x)).exp()),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Mish => x * x.exp().ln_1p().tanh(),
    }
}

/// Softmax of one row in f64 (`max`-subtracted).
pub fn softmax(row: &[f32]) -> Vec<f64> {
    let m = max(row);
    let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Log-softmax of one row in f64.
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = max(row);
    let s: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
    row.iter().map(|&v| (f64::from(v) - m) - s.ln()).collect()
}

/// `max`, NaN if any value is NaN, `−inf` for none.
pub fn max(x: &[f32]) -> f64 {
    x.iter().fold(f64::NEG_INFINITY, |m, &v| {
        if m.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            m.max(f64::from(v))
        }
    })
}

/// RMSNorm of one row in f64.
pub fn rms_norm(row: &[f32], gamma: &[f32], eps: f32) -> Vec<f64> {
    let n = row.len() as f64;
    let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
    let r = 1.0 / (ms + f64::from(eps)).sqrt();
    row.iter()
        .zip(gamma)
        .map(|(&v, &g)| f64::from(v) * r * f64::from(g))
        .collect()
}

/// LayerNorm of one row in f64: `(ŷ, μ, √(σ² + eps))`.
pub fn layer_norm(row: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> (Vec<f64>, f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = row
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = (var + f64::from(eps)).sqrt();
    let y = row
        .iter()
        .zip(gamma)
        .zip(beta)
        .map(|((&v, &g), &b)| (f64::from(v) - mean) / sd * f64::from(g) + f64::from(b))
        .collect();
    (y, mean, sd)
}
