//! Elementwise operations, reductions, softmax and norms against the f64 references on every
//! ISA level this machine can run, over random lengths (0, 1, ragged tails, large), special
//! values and one or two threads; bad shapes are errors.

mod common;

use bitnet_nn::act::{self, Activation, ExpKind};
use bitnet_nn::{NnError, Par, norm, reduce, reference, softmax};
use bitnet_quant::{ActScale, Int8Activations};
use bitnet_simd::isa::{Ceiling, with_ceiling};
use common::{EPS, activation_bound, ceilings, close, values};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn activations_in_place_and_to(len in 0usize..300, seed in any::<u64>(), threads in 1usize..3) {
        let x = values(len, seed, 30.0, true);
        let par = Par::threads_or_seq(threads);
        for c in ceilings() {
            for a in Activation::ALL {
                let mut y = vec![f32::NAN; len];
                with_ceiling(c, || a.apply_to(&x, &mut y, par)).unwrap().unwrap();
                let mut z = x.clone();
                with_ceiling(c, || a.apply(&mut z, par)).unwrap().unwrap();
                for i in 0..len {
                    let r = reference::activation(a, f64::from(x[i]));
                    let b = activation_bound(a, f64::from(x[i]), r);
                    prop_assert!(close(y[i], r, b), "{:?} {:?} x={} got {} want {}", c, a, x[i], y[i], r);
                    prop_assert_eq!(y[i].to_bits(), z[i].to_bits());
                }
            }
        }
    }

    #[test]
    fn cheap_elementwise_ops(len in 0usize..300, seed in any::<u64>(), threads in 1usize..3) {
        let a = values(len, seed, 10.0, true);
        let b = values(len, seed ^ 7, 10.0, true);
        let par = Par::threads_or_seq(threads);
        for c in ceilings() {
            let mut out = vec![0f32; len];
            with_ceiling(c, || act::add_to(&a, &b, &mut out, par)).unwrap().unwrap();
            let mut acc = a.clone();
            with_ceiling(c, || act::add_assign(&mut acc, &b, par)).unwrap().unwrap();
            let mut relu = vec![0f32; len];
            with_ceiling(c, || act::add_relu_to(&a, &b, &mut relu, par)).unwrap().unwrap();
            let mut relu_acc = a.clone();
            with_ceiling(c, || act::add_relu_assign(&mut relu_acc, &b, par)).unwrap().unwrap();
            let mut clamped = vec![0f32; len];
            with_ceiling(c, || act::clamp_to(&a, -2.5, 3.0, &mut clamped, par)).unwrap().unwrap();
            let mut scaled = a.clone();
            with_ceiling(c, || act::scale(&mut scaled, -1.5, par)).unwrap().unwrap();
            for i in 0..len {
                let s = a[i] + b[i];
                prop_assert_eq!(out[i].to_bits(), s.to_bits());
                prop_assert_eq!(acc[i].to_bits(), s.to_bits());
                let r = if s < 0.0 { 0.0 } else { s };
                prop_assert_eq!(relu[i].to_bits(), r.to_bits());
                prop_assert_eq!(relu_acc[i].to_bits(), r.to_bits());
                let cl = a[i].clamp(-2.5, 3.0);
                prop_assert_eq!(clamped[i].to_bits(), cl.to_bits());
                prop_assert_eq!(scaled[i].to_bits(), (a[i] * -1.5).to_bits());
            }
        }
    }

    #[test]
    fn reductions_meet_their_bounds(len in 0usize..5000, seed in any::<u64>(), threads in 1usize..3) {
        let x = values(len, seed, 100.0, false);
        let y = values(len, seed ^ 9, 3.0, false);
        let par = Par::threads_or_seq(threads);
        let exact: f64 = x.iter().map(|&v| f64::from(v)).sum();
        let mag: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
        let dot: f64 = x.iter().zip(&y).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
        let dmag: f64 = x.iter().zip(&y).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
        let logn = (len as f64 + 1.0).log2().ceil();
        for c in ceilings() {
            let s = with_ceiling(c, || reduce::sum(&x, par)).unwrap().unwrap();
            prop_assert!((f64::from(s) - exact).abs() <= (40.0 + logn) * EPS * mag, "{:?} sum", c);
            let s = with_ceiling(c, || reduce::sum_compensated(&x, par)).unwrap().unwrap();
            let bound = EPS * exact.abs() + 2.0 * len as f64 * EPS * EPS * mag;
            prop_assert!((f64::from(s) - exact).abs() <= bound, "{:?} compensated {} vs {}", c, s, exact);
            let d = with_ceiling(c, || reduce::dot(&x, &y, par)).unwrap().unwrap();
            prop_assert!((f64::from(d) - dot).abs() <= (41.0 + logn) * EPS * dmag, "{:?} dot", c);
            let m = with_ceiling(c, || reduce::max(&x, par)).unwrap().unwrap();
            prop_assert_eq!(f64::from(m), reference::max(&x));
        }
    }

    #[test]
    fn softmax_rows_meet_their_bounds(
        rows in 0usize..6, cols in 1usize..300, seed in any::<u64>(), scale in 0.1f32..60.0,
        threads in 1usize..3,
    ) {
        let x = values(rows * cols, seed, scale, false);
        let par = Par::threads_or_seq(threads);
        for c in ceilings() {
            let lanes = lanes_under(c);
            // The exp's ulps, and what it flushes (fast: e^(x − m) below e^−87 becomes 0).
            for (kind, e, flush) in [(ExpKind::Exact, 4.0, 1e-44), (ExpKind::Fast, 128.0, 2e-38)] {
                let mut y = x.clone();
                with_ceiling(c, || softmax::softmax_rows(&mut y, cols, kind, par)).unwrap().unwrap();
                let mut l = x.clone();
                with_ceiling(c, || softmax::log_softmax_rows(&mut l, cols, kind, par)).unwrap().unwrap();
                let sum_terms = (cols as f64 / (4.0 * lanes)).ceil() + lanes + 4.0;
                for r in 0..rows {
                    let row = &x[r * cols..(r + 1) * cols];
                    let p = reference::softmax(row);
                    let lp = reference::log_softmax(row);
                    let m = reference::max(row);
                    for i in 0..cols {
                        let d = (f64::from(row[i]) - m).abs();
                        let b = (d + e + sum_terms) * EPS * p[i] + flush;
                        prop_assert!(close(y[r * cols + i], p[i], b), "{:?} {:?} softmax", c, kind);
                        let b = 4.0 * EPS * lp[i].abs() + (e + sum_terms) * EPS;
                        prop_assert!(close(l[r * cols + i], lp[i], b), "{:?} {:?} log_softmax {} vs {}", c, kind, l[r * cols + i], lp[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn norms_meet_their_bounds(
        rows in 0usize..6, cols in 1usize..300, seed in any::<u64>(), offset in -50f32..50.0,
        threads in 1usize..3,
    ) {
        let x: Vec<f32> = values(rows * cols, seed, 4.0, false).iter().map(|v| v + offset).collect();
        let d = values(rows * cols, seed ^ 3, 1.0, false);
        let gamma = values(cols, seed ^ 5, 2.0, false);
        let beta = values(cols, seed ^ 6, 1.0, false);
        let par = Par::threads_or_seq(threads);
        let eps = 1e-5f32;
        for c in ceilings() {
            let lanes = lanes_under(c);
            let k = (cols as f64 / (4.0 * lanes)).ceil() + lanes + 8.0;
            let mut y = vec![0f32; x.len()];
            with_ceiling(c, || norm::rms_norm(&x, &gamma, eps, &mut y, par)).unwrap().unwrap();
            let mut res = x.clone();
            let mut y2 = vec![0f32; x.len()];
            with_ceiling(c, || norm::add_rms_norm(&mut res, &d, &gamma, eps, &mut y2, par)).unwrap().unwrap();
            let mut ln = vec![0f32; x.len()];
            with_ceiling(c, || norm::layer_norm(&x, &gamma, &beta, eps, &mut ln, par)).unwrap().unwrap();
            // In place: the same arithmetic, so the same bits.
            let mut y_in = x.clone();
            with_ceiling(c, || norm::rms_norm_in_place(&mut y_in, &gamma, eps, par)).unwrap().unwrap();
            prop_assert_eq!(&y_in, &y);
            let mut ln_in = x.clone();
            with_ceiling(c, || norm::layer_norm_in_place(&mut ln_in, &gamma, &beta, eps, par)).unwrap().unwrap();
            prop_assert_eq!(&ln_in, &ln);
            let q = with_ceiling(c, || norm::rms_norm_quantize(&x, &gamma, eps, par)).unwrap().unwrap();
            let q_ref = Int8Activations::quantize(&y, rows, cols, ActScale::PerToken).unwrap();
            prop_assert_eq!(&q, &q_ref);
            // Into a reused buffer of another shape.
            let mut reused = Int8Activations::quantize(&[1.0; 6], 2, 3, ActScale::PerToken).unwrap();
            with_ceiling(c, || norm::rms_norm_quantize_into(&x, &gamma, eps, &mut reused, par)).unwrap().unwrap();
            prop_assert_eq!(reused, q_ref);
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                let want = reference::rms_norm(&x[s.clone()], &gamma, eps);
                let summed: Vec<f32> = x[s.clone()].iter().zip(&d[s.clone()]).map(|(a, b)| a + b).collect();
                prop_assert_eq!(&res[s.clone()], &summed[..]);
                let want2 = reference::rms_norm(&summed, &gamma, eps);
                let (lw, mean, sd) = reference::layer_norm(&x[s.clone()], &gamma, &beta, eps);
                for i in 0..cols {
                    prop_assert!(close(y[r * cols + i], want[i], k * EPS * want[i].abs()), "{:?} rms", c);
                    prop_assert!(close(y2[r * cols + i], want2[i], k * EPS * want2[i].abs()), "{:?} add_rms", c);
                    let b = k * EPS * ((lw[i] - f64::from(beta[i])).abs()
                        + f64::from(gamma[i]).abs() * (1.0 + mean.abs() / sd))
                        + EPS * f64::from(beta[i]).abs();
                    prop_assert!(close(ln[r * cols + i], lw[i], b), "{:?} layer {} vs {}", c, ln[r * cols + i], lw[i]);
                }
            }
        }
    }
}

/// f32 lanes of the level under `c`.
fn lanes_under(c: Ceiling) -> f64 {
    use bitnet_simd::Level;
    let level = with_ceiling(c, Level::active).unwrap().unwrap();
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512(_) => 16.0,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2(_) => 8.0,
        _ => 4.0,
    }
}

#[test]
fn bad_shapes_and_parameters_are_errors() {
    let mut x = vec![1f32; 6];
    let mut y = vec![0f32; 5];
    assert!(matches!(
        Activation::Relu.apply_to(&x, &mut y, Par::Seq),
        Err(NnError::Length { .. })
    ));
    assert!(matches!(
        act::clamp(&mut x, 2.0, 1.0, Par::Seq),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        softmax::softmax_rows(&mut x, 4, ExpKind::Exact, Par::Seq),
        Err(NnError::Rows { .. })
    ));
    assert!(matches!(
        softmax::softmax_rows(&mut x, 0, ExpKind::Exact, Par::Seq),
        Err(NnError::Rows { .. })
    ));
    assert!(matches!(
        norm::rms_norm_in_place(&mut x, &[1.0; 4], 1e-5, Par::Seq),
        Err(NnError::Rows { .. })
    ));
    assert!(matches!(
        norm::rms_norm_in_place(&mut x, &[1.0; 3], -1.0, Par::Seq),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        norm::layer_norm_in_place(&mut x, &[1.0; 3], &[0.0; 2], 1e-5, Par::Seq),
        Err(NnError::Length { .. })
    ));
    assert!(matches!(
        reduce::dot(&x, &y, Par::Seq),
        Err(NnError::Length { .. })
    ));
    let mut nan = vec![f32::NAN; 3];
    assert!(matches!(
        norm::rms_norm_quantize(&nan, &[1.0; 3], 1e-5, Par::Seq),
        Err(NnError::Quant(_))
    ));
    softmax::softmax_rows(&mut nan, 3, ExpKind::Exact, Par::Seq).unwrap();
    assert!(nan.iter().all(|v| v.is_nan()));
    assert_eq!(reduce::max(&[], Par::Seq).unwrap(), f32::NEG_INFINITY);
    assert_eq!(reduce::sum(&[], Par::Seq).unwrap(), 0.0);
}
