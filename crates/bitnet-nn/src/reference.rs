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

/// RoPE in f64 (see [`crate::rope`]): `x` is `tokens × heads × head_dim`, token `t` at `pos0 + t`.
pub fn rope(
    x: &[f32],
    heads: usize,
    head_dim: usize,
    pos0: usize,
    theta: f32,
    style: crate::rope::RopeStyle,
) -> Vec<f64> {
    let half = head_dim / 2;
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for (n, head) in y.chunks_exact_mut(head_dim).enumerate() {
        let pos = (pos0 + n / heads) as f64;
        for i in 0..half {
            let a = pos * f64::from(theta).powf(-2.0 * i as f64 / head_dim as f64);
            // The kernels round cos and sin to f32; so does the reference.
            let (c, s) = (f64::from(a.cos() as f32), f64::from(a.sin() as f32));
            let (p, q) = match style {
                crate::rope::RopeStyle::HalfSplit => (i, i + half),
                crate::rope::RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x1, x2) = (head[p], head[q]);
            head[p] = x1 * c - x2 * s;
            head[q] = x2 * c + x1 * s;
        }
    }
    y
}

/// Attention in f64 (see [`crate::attention`]) of `tokens` queries against `len` cached
/// positions: `q` is `tokens × heads × d`, `k` and `v` are `len × kv_heads × d` (as appended,
/// already rounded to the cache's storage). Returns per output element `(ô, Σⱼ pⱼ |vⱼ|)` and
/// the largest `scale · Σ |q k|` of any score.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    tokens: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    k: &[f32],
    v: &[f32],
    causal: bool,
) -> (Vec<(f64, f64)>, f64) {
    let len = k.len() / (kv_heads * d);
    let group = heads / kv_heads;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![(0.0, 0.0); tokens * heads * d];
    let mut max_mag = 0f64;
    for t in 0..tokens {
        let n = if causal { len - tokens + t + 1 } else { len };
        for h in 0..heads {
            let g = h / group;
            let qv = &q[(t * heads + h) * d..][..d];
            let key = |j: usize| &k[(j * kv_heads + g) * d..][..d];
            let val = |j: usize| &v[(j * kv_heads + g) * d..][..d];
            let s: Vec<f64> = (0..n)
                .map(|j| {
                    let kj = key(j);
                    let mag: f64 = qv
                        .iter()
                        .zip(kj)
                        .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                        .sum();
                    max_mag = max_mag.max(mag * scale);
                    qv.iter()
                        .zip(kj)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = s.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let e: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
            let l: f64 = e.iter().sum();
            for i in 0..d {
                let (mut o, mut w) = (0.0, 0.0);
                for (j, &ej) in e.iter().enumerate() {
                    let vj = f64::from(val(j)[i]);
                    o += ej / l * vj;
                    w += ej / l * vj.abs();
                }
                out[(t * heads + h) * d + i] = (o, w);
            }
        }
    }
    (out, max_mag)
}

/// 2-D convolution in f64 (see [`crate::conv`]): per output `(ŷ, Σ |w x|)`.
pub fn conv2d(
    shape: &crate::conv::Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<(f64, f64)> {
    let (oh, ow) = shape.output_hw().expect("a valid shape");
    let crate::conv::Conv2d {
        batch,
        in_ch: c,
        height: h,
        width: wd,
        out_ch: o,
        kh,
        kw,
        stride: s,
        pad: p,
    } = *shape;
    let mut y = Vec::with_capacity(batch * o * oh * ow);
    for n in 0..batch {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| f64::from(b[oc]));
                    let mut mag = acc.abs();
                    for ic in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let (r, q) = (i * s + u, j * s + v);
                                if r < p || q < p || r - p >= h || q - p >= wd {
                                    continue;
                                }
                                let xv = f64::from(x[((n * c + ic) * h + r - p) * wd + q - p]);
                                let wv = f64::from(w[((oc * c + ic) * kh + u) * kw + v]);
                                acc += wv * xv;
                                mag += (wv * xv).abs();
                            }
                        }
                    }
                    y.push((acc, mag));
                }
            }
        }
    }
    y
}
