//! The group formats' GEMV/GEMM on every path this machine can run (forced through the
//! per-call ceiling) against the exact result within the stated bound, the exact result against
//! the gguf-verified dequantization, the quantization error on random and heavy-tailed data, and
//! the errors of bad calls.

mod common;

use bitnet_quant::group::kernels;
use bitnet_quant::group::reference::{self, GroupActivations};
use bitnet_quant::kernels::Path;
use bitnet_quant::{
    GroupFormat, GroupSpec, GroupWeights, PackedGroup, Par, Q8KActivations, Q8x32Activations,
};
use bitnet_simd::isa::with_ceiling;
use common::{ceilings, gaussian, heavy_tailed, paths_under, values};
use proptest::prelude::*;

/// Activations of `format`'s kind for `tokens x k` values `a`.
enum Acts {
    Q8x32(Q8x32Activations),
    Q8K(Q8KActivations),
}

impl Acts {
    fn new(format: GroupFormat, a: &[f32], tokens: usize, k: usize) -> Acts {
        match format.activation() {
            bitnet_quant::group::ActivationKind::Q8K => {
                Acts::Q8K(Q8KActivations::quantize(a, tokens, k).unwrap())
            }
            _ => Acts::Q8x32(Q8x32Activations::quantize(a, tokens, k).unwrap()),
        }
    }

    fn view(&self) -> GroupActivations<'_> {
        match self {
            Acts::Q8x32(a) => GroupActivations::Q8x32(a),
            Acts::Q8K(a) => GroupActivations::Q8K(a),
        }
    }
}

/// Every path under every ceiling against `exact` within `(n + 4) ε T`.
fn check_all_paths(w: &GroupWeights<'_>, x: GroupActivations<'_>, par: Par) {
    let (rows, tokens) = (w.rows(), x.tokens());
    let n_blocks = (w.k() / 32).max(1) as f64 * 2.0;
    for c in ceilings() {
        for path in paths_under(c) {
            let mut y = vec![f32::NAN; rows * tokens];
            with_ceiling(c, || kernels::gemm_on(path, w, x, &mut y, par))
                .unwrap()
                .unwrap();
            for t in 0..tokens {
                for r in 0..rows {
                    let (exact, mag) = reference::exact(w, r, x, t).unwrap();
                    let got = f64::from(y[t * rows + r]);
                    let bound = (n_blocks + 4.0) * f64::from(f32::EPSILON) * mag;
                    assert!(
                        (got - exact).abs() <= bound,
                        "{} {c:?} {path:?} r{r} t{t}: {got} vs {exact} (bound {bound})",
                        w.format()
                    );
                }
            }
        }
    }
}

fn format_strategy() -> impl Strategy<Value = GroupFormat> {
    (0..GroupFormat::ALL.len()).prop_map(|i| GroupFormat::ALL[i])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_path_meets_the_bound(
        format in format_strategy(),
        rows in 0usize..7,
        blocks in 0usize..5,
        tokens in 0usize..7,
        seed in any::<u64>(),
        heavy in any::<bool>(),
        threads in 1usize..3,
    ) {
        // k: whole blocks of the format, and for the 32-value formats also lengths that are not
        // a multiple of 256 (ragged against the activation and vector widths).
        let k = blocks * format.block();
        let w = if heavy { heavy_tailed(rows * k, seed) } else { gaussian(rows * k, seed) };
        let packed = PackedGroup::quantize(format, &w, rows, k).unwrap();
        let a = values(tokens * k, seed ^ 7, 3.0);
        let acts = Acts::new(format, &a, tokens, k);
        check_all_paths(&packed.view(), acts.view(), Par::threads_or_seq(threads));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// GEMVs over long rows: the single-token kernels work in chunks of up to 16 blocks and
    /// groups of four rows, so every chunk remainder and row-group remainder occurs.
    #[test]
    fn long_gemv_rows_meet_the_bound(
        format in format_strategy(),
        rows in 1usize..10,
        blocks in 0usize..40,
        seed in any::<u64>(),
    ) {
        let k = blocks * 32 / format.block() * format.block();
        let w = gaussian(rows * k, seed);
        let packed = PackedGroup::quantize(format, &w, rows, k).unwrap();
        let a = values(k, seed ^ 7, 3.0);
        let acts = Acts::new(format, &a, 1, k);
        check_all_paths(&packed.view(), acts.view(), Par::Seq);
    }
}

/// Random code bytes (every byte value, extreme scales) on every path: a file's tensors are not
/// all written by our quantizer.
#[test]
fn arbitrary_bytes_meet_the_bound() {
    for format in GroupFormat::ALL {
        let (rows, k, tokens) = (5, 2 * 256, 5);
        let mut bytes: Vec<u8> = values(format.data_len(rows, k).unwrap(), 99, 1.0)
            .iter()
            .map(|v| ((v + 1.0) * 127.9) as u8)
            .collect();
        // Finite f16 scales: overwrite the scale fields with small values of both signs.
        let bb = format.block_bytes();
        let offsets: &[usize] = match format {
            GroupFormat::Q6K => &[208],
            GroupFormat::Q4K => &[0, 2],
            GroupFormat::Grouped(s) if s.with_min() => &[0, 2],
            _ => &[0],
        };
        for (b, block) in bytes.chunks_exact_mut(bb).enumerate() {
            for &o in offsets {
                let v = half::f16::from_f32(((b % 7) as f32 - 3.0) * 0.01);
                block[o..o + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        // Extreme activations: every block reaches ±127.
        let a: Vec<f32> = (0..tokens * k)
            .map(|i| if i % 3 == 0 { 5.0 } else { -5.0 })
            .collect();
        let w = GroupWeights::new(format, &bytes, rows, k).unwrap();
        let acts = Acts::new(format, &a, tokens, k);
        check_all_paths(&w, acts.view(), Par::threads_or_seq(2));
    }
}

/// `exact` is the product of the gguf-verified dequantized weights and the dequantized
/// activations (which ties the kernels' decoding to the conformance fixtures).
#[test]
fn exact_is_the_dequantized_product() {
    for format in GroupFormat::ALL {
        let (rows, k, tokens) = (3, 512, 2);
        let packed = PackedGroup::quantize(format, &heavy_tailed(rows * k, 5), rows, k).unwrap();
        let deq_w = packed.dequantize();
        let a = gaussian(tokens * k, 11);
        let acts = Acts::new(format, &a, tokens, k);
        let deq_a = match &acts {
            Acts::Q8x32(x) => x.dequantize(),
            Acts::Q8K(x) => x
                .blocks()
                .iter()
                .flat_map(|b| b.q.map(|q| b.d * f32::from(q)))
                .collect(),
        };
        for t in 0..tokens {
            for r in 0..rows {
                let (exact, mag) = reference::exact(&packed.view(), r, acts.view(), t).unwrap();
                let (mut dot, mut abs) = (0f64, 0f64);
                for i in 0..k {
                    let p = f64::from(deq_w[r * k + i]) * f64::from(deq_a[t * k + i]);
                    dot += p;
                    abs += p.abs();
                }
                // The f32 dequantization rounds each value (relative 2^-24), and the activation
                // blocks' d·q rounds too.
                let tol = 4.0 * f64::from(f32::EPSILON) * (abs + mag);
                assert!(
                    (dot - exact).abs() <= tol,
                    "{format} r{r} t{t}: {dot} vs {exact}"
                );
            }
        }
    }
}

/// Relative RMS error of quantize → dequantize, per format, on gaussian and heavy-tailed
/// (Student t, 2 degrees of freedom) weights; the numbers FORMATS.md states (run with
/// `--nocapture` to see them).
#[test]
fn quantization_error_is_as_stated() {
    let n = 256 * 256;
    for (label, x) in [("gaussian", gaussian(n, 3)), ("t2", heavy_tailed(n, 4))] {
        for format in GroupFormat::ALL {
            let deq = PackedGroup::quantize(format, &x, 256, 256)
                .unwrap()
                .dequantize();
            let (mut err, mut sig) = (0f64, 0f64);
            for (a, b) in x.iter().zip(&deq) {
                err += (f64::from(*a) - f64::from(*b)).powi(2);
                sig += f64::from(*a).powi(2);
            }
            let rel = (err / sig).sqrt();
            println!(
                "{label:8} {:9} {:6.3} bits/weight  relative RMS error {rel:.4}",
                format.name(),
                format.bits_per_weight()
            );
            // Loose ceilings per bit width (the measured values are in FORMATS.md).
            let limit = match format {
                GroupFormat::Q8_0 => 0.02,
                GroupFormat::Q6K => 0.05,
                GroupFormat::Grouped(s) if s.bits() == 2 => 1.2,
                _ => 0.3,
            };
            assert!(rel < limit, "{label} {format}: {rel}");
        }
    }
}

#[test]
fn paths_are_reported_and_bad_calls_are_errors() {
    for path in Path::ALL {
        println!(
            "group kernels, path {path:?}: {}",
            if path.available().unwrap() {
                "runs"
            } else {
                "absent on this machine"
            }
        );
    }
    let packed = PackedGroup::quantize(GroupFormat::Q4_0, &gaussian(2 * 64, 1), 2, 64).unwrap();
    let q8k = Q8KActivations::quantize(&gaussian(256, 2), 1, 256).unwrap();
    let mut y = [0f32; 2];
    // Q4_0 pairs with Q8x32, not Q8_K.
    assert!(
        kernels::gemm(
            &packed.view(),
            GroupActivations::Q8K(&q8k),
            &mut y,
            Par::Seq
        )
        .is_err()
    );
    // k mismatch.
    let x = Q8x32Activations::quantize(&gaussian(96, 2), 1, 96).unwrap();
    assert!(
        kernels::gemm(
            &packed.view(),
            GroupActivations::Q8x32(&x),
            &mut y,
            Par::Seq
        )
        .is_err()
    );
    // Output length.
    let x = Q8x32Activations::quantize(&gaussian(64, 2), 1, 64).unwrap();
    assert!(
        kernels::gemm(
            &packed.view(),
            GroupActivations::Q8x32(&x),
            &mut y[..1],
            Par::Seq
        )
        .is_err()
    );
    // Shapes and specs.
    assert!(PackedGroup::quantize(GroupFormat::Q4K, &[0.0; 128], 1, 128).is_err());
    assert!(GroupSpec::new(3, 32, false).is_err() && GroupSpec::new(4, 48, false).is_err());
    assert!(Q8x32Activations::quantize(&[f32::NAN; 32], 1, 32).is_err());
    assert!(
        PackedGroup::quantize(GroupFormat::Q8_0, &[1e30; 32], 1, 32).is_err(),
        "scale beyond f16"
    );
    assert!(GroupWeights::new(GroupFormat::Q8_0, &[0u8; 33], 1, 32).is_err());
    // A path this machine lacks is an error, not a silent fallback.
    for path in Path::ALL {
        if !path.available().unwrap() {
            assert!(
                kernels::gemm_on(
                    path,
                    &packed.view(),
                    GroupActivations::Q8x32(&x),
                    &mut y,
                    Par::Seq
                )
                .is_err()
            );
        }
    }
}

/// f32 activations: every ISA level against the f64 product of the dequantized weights, within
/// the bound of `gemm_f32`.
#[test]
fn f32_activations_meet_their_bound() {
    use bitnet_simd::isa::testable_isas;
    for format in GroupFormat::ALL {
        for (rows, blocks, tokens) in [(5, 3, 3), (1, 1, 1), (0, 2, 2), (3, 0, 2)] {
            let k = blocks * format.block();
            let packed =
                PackedGroup::quantize(format, &heavy_tailed(rows * k, 9), rows, k).unwrap();
            let deq = packed.dequantize();
            let x = gaussian(tokens * k, 10);
            for isa in testable_isas().unwrap() {
                let ceiling = bitnet_simd::isa::Ceiling::at(isa);
                let mut y = vec![f32::NAN; rows * tokens];
                with_ceiling(ceiling, || {
                    bitnet_quant::group::gemm_f32(
                        &packed.view(),
                        &x,
                        tokens,
                        &mut y,
                        Par::threads_or_seq(2),
                    )
                })
                .unwrap()
                .unwrap();
                for t in 0..tokens {
                    for r in 0..rows {
                        let (mut dot, mut abs) = (0f64, 0f64);
                        for i in 0..k {
                            let p = f64::from(deq[r * k + i]) * f64::from(x[t * k + i]);
                            dot += p;
                            abs += p.abs();
                        }
                        let bound =
                            ((k as f64 / 64.0).ceil() + 70.0) * f64::from(f32::EPSILON) * abs;
                        let got = f64::from(y[t * rows + r]);
                        assert!(
                            (got - dot).abs() <= bound,
                            "{format} {isa:?} r{r} t{t}: {got} vs {dot}"
                        );
                    }
                }
            }
        }
    }
}
