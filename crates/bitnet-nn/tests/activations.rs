//! Every activation and both `exp`s against the f64 references on every ISA level this machine
//! can run, over a sweep of the f32 range (every 4099th bit pattern of both signs, about 1 M
//! values) and the special values; prints the largest error seen per function and level.

mod common;

use bitnet_nn::act::{self, Activation, ExpKind};
use bitnet_nn::{Par, reference};
use bitnet_simd::isa::with_ceiling;
use common::{activation_bound, ceilings, close};

/// The size of one ulp of an f32 result near `r` (subnormal spacing at the bottom).
fn ulp(r: f64) -> f64 {
    let a = r.abs().max(f64::from(f32::MIN_POSITIVE));
    2f64.powi(a.log2().floor() as i32 - 23)
}

/// Every 4099th bit pattern, the specials included.
fn sweep() -> Vec<f32> {
    let mut v: Vec<f32> = (0..=u32::MAX / 4099)
        .map(|i| f32::from_bits(i * 4099))
        .collect();
    v.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ]);
    v
}

/// The stated bounds of `exp`, in ulps of normal results.
const EXP_ULPS: f64 = 1.0;
const EXP_FAST_ULPS: f64 = 128.0;

#[test]
fn exp_meets_its_bounds() {
    let x = sweep();
    for c in ceilings() {
        for (kind, bound) in [(ExpKind::Exact, EXP_ULPS), (ExpKind::Fast, EXP_FAST_ULPS)] {
            let mut y = x.clone();
            with_ceiling(c, || act::exp_in_place(&mut y, kind, Par::Seq))
                .unwrap()
                .unwrap();
            let mut worst = 0f64;
            for (&x, &y) in x.iter().zip(&y) {
                let r = f64::from(x).exp();
                let ok = match kind {
                    _ if x.is_nan() => y.is_nan(),
                    // Fast: 0 below −87, +inf above 88.
                    ExpKind::Fast if x < -87.0 => y == 0.0,
                    ExpKind::Fast if x > 88.0 => y == f32::INFINITY,
                    // Overflow, and subnormal results (one extra rounding).
                    _ if r > f64::from(f32::MAX) => y == f32::INFINITY,
                    _ if r < f64::from(f32::MIN_POSITIVE) => {
                        (f64::from(y) - r).abs() <= 2.0 * ulp(r)
                    }
                    _ => {
                        let e = (f64::from(y) - r).abs() / ulp(r);
                        worst = worst.max(e);
                        e <= bound
                    }
                };
                assert!(ok, "{c:?} {kind:?} exp({x}) = {y}, want {r}");
            }
            println!("{c:?} exp {kind:?}: at most {worst:.2} ulp");
        }
    }
}

#[test]
fn activations_meet_their_bounds() {
    let x = sweep();
    for c in ceilings() {
        for a in Activation::ALL {
            let mut y = vec![0f32; x.len()];
            with_ceiling(c, || a.apply_to(&x, &mut y, Par::Seq))
                .unwrap()
                .unwrap();
            let mut worst = 0f64;
            for (&x, &y) in x.iter().zip(&y) {
                let r = reference::activation(a, f64::from(x));
                let bound = activation_bound(a, f64::from(x), r);
                assert!(close(y, r, bound), "{c:?} {a:?}({x}) = {y}, want {r}");
                if x.abs() <= 8.0 && r.abs() >= f64::from(f32::MIN_POSITIVE) {
                    worst = worst.max((f64::from(y) - r).abs() / ulp(r));
                }
            }
            println!("{c:?} {a:?}: at most {worst:.2} ulp for |x| <= 8 (normal results)");
        }
    }
}
