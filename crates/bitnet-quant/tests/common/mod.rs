//! Helpers shared by the integration tests (each test file includes this module and uses what
//! it needs).
#![allow(dead_code)]

use bitnet_quant::kernels::Path;
use bitnet_simd::isa::{Ceiling, Isa, testable_isas, with_ceiling};

/// Every ceiling to run under: each testable level with its extensions, and AVX-512 without
/// them (which takes the AVX2 kernels).
pub fn ceilings() -> Vec<Ceiling> {
    let isas = testable_isas().unwrap();
    let mut v: Vec<Ceiling> = isas.iter().copied().map(Ceiling::at).collect();
    if isas.contains(&Isa::Avx512) {
        v.push(Ceiling::plain(Isa::Avx512));
    }
    v
}

/// The kernel paths that may run under ceiling `c`.
pub fn paths_under(c: Ceiling) -> Vec<Path> {
    with_ceiling(c, || {
        Path::ALL
            .into_iter()
            .filter(|p| p.available().unwrap())
            .collect()
    })
    .unwrap()
}

/// `n` xorshift64 states from `seed` (the generator of every test input here).
pub fn xorshift(n: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut s = seed | 1;
    (0..n).map(move |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    })
}

/// `n` xorshift values, uniform in `[-spread, spread]`.
pub fn values(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    xorshift(n, seed)
        .map(|s| ((s % 20001) as f32 / 10000.0 - 1.0) * spread)
        .collect()
}

/// `n` standard normal values (Box-Muller on xorshift uniforms).
pub fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let u = values(2 * n, seed, 1.0);
    (0..n)
        .map(|i| {
            let (a, b) = ((u[2 * i] + 1.0) / 2.0, (u[2 * i + 1] + 1.0) / 2.0);
            let r = (-2.0 * (a.max(1e-7) as f64).ln()).sqrt();
            (r * (2.0 * std::f64::consts::PI * b as f64).cos()) as f32
        })
        .collect()
}

/// `n` heavy-tailed values: Student's t with 2 degrees of freedom (normal / sqrt(χ²₂ / 2)),
/// whose variance is infinite: outliers dominate each block's scale.
pub fn heavy_tailed(n: usize, seed: u64) -> Vec<f32> {
    let z = gaussian(n, seed);
    let c = gaussian(2 * n, seed ^ 0x9e37_79b9);
    (0..n)
        .map(|i| {
            let chi2 = f64::from(c[2 * i]).powi(2) + f64::from(c[2 * i + 1]).powi(2);
            (f64::from(z[i]) / (chi2 / 2.0).max(1e-12).sqrt()) as f32
        })
        .collect()
}
