//! Reference kernels: integer parts exact (checked against an independent integer computation
//! with the documented float steps, bit for bit) and the f32 result within the stated bound of
//! an f64 computation on the dequantized operands.

use bitnet_quant::reference::{self, Activations};
use bitnet_quant::{
    ActScale, Int8Activations, PackedTernary, Q8KActivations, QuantError, TernaryFormat,
};
use proptest::prelude::*;

fn values(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 20001) as f32 / 10000.0 - 1.0) * spread
        })
        .collect()
}

/// Checks every output of `gemm` for `format` on the given operands.
fn check(format: TernaryFormat, w: &[f32], rows: usize, x: &[f32], tokens: usize, k: usize) {
    let packed = PackedTernary::quantize(format, w, rows, k).unwrap();
    let view = packed.view();
    let eps = f64::from(f32::EPSILON);
    let mut y = vec![f32::NAN; tokens * rows];
    match format {
        TernaryFormat::I2s => {
            let acts = Int8Activations::quantize(x, tokens, k, ActScale::PerToken).unwrap();
            reference::gemm(&view, Activations::Int8(&acts), &mut y).unwrap();
            let s = view.tensor_scale().unwrap();
            for t in 0..tokens {
                for r in 0..rows {
                    let (codes, _) = view.row_codes(r);
                    let sumi: i64 = codes
                        .iter()
                        .zip(acts.row(t))
                        .map(|(&c, &q)| (i64::from(c) - 1) * i64::from(q))
                        .sum();
                    let a = acts.scales()[t];
                    let got = y[t * rows + r];
                    assert_eq!(
                        got.to_bits(),
                        (sumi as f32 / a * s).to_bits(),
                        "{format} t{t} r{r}"
                    );
                    let exact = sumi as f64 * f64::from(s) / f64::from(a);
                    assert!(
                        (f64::from(got) - exact).abs() <= 3.0 * eps * exact.abs(),
                        "{format} bound"
                    );
                }
            }
        }
        _ => {
            let acts = Q8KActivations::quantize(x, tokens, k).unwrap();
            reference::gemm(&view, Activations::Q8K(&acts), &mut y).unwrap();
            let nb = k / 256;
            for t in 0..tokens {
                for r in 0..rows {
                    let (codes, scales) = view.row_codes(r);
                    let (mut sumf, mut exact, mut magnitude) = (0f32, 0f64, 0f64);
                    for (b, blk) in acts.row(t).iter().enumerate() {
                        let sumi: i64 = codes[b * 256..(b + 1) * 256]
                            .iter()
                            .zip(&blk.q)
                            .map(|(&c, &q)| (i64::from(c) - 1) * i64::from(q))
                            .sum();
                        sumf += sumi as f32 * (blk.d * scales[b]);
                        let term = sumi as f64 * f64::from(blk.d) * f64::from(scales[b]);
                        exact += term;
                        magnitude += term.abs();
                    }
                    let got = y[t * rows + r];
                    assert_eq!(got.to_bits(), sumf.to_bits(), "{format} t{t} r{r}");
                    let bound = (nb as f64 + 2.0) * eps * magnitude;
                    assert!((f64::from(got) - exact).abs() <= bound, "{format} bound");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn gemm_is_exact_and_within_bound(
        rows in 0usize..5,
        tokens in 1usize..4,
        blocks in 1usize..4,
        seed in any::<u64>(),
        spread in prop_oneof![Just(1e-3f32), Just(1.0f32), Just(300.0f32)],
    ) {
        let k = blocks * 256;
        let w = values(rows * k, seed, spread);
        let x = values(tokens * k, seed.rotate_left(17), spread);
        for format in TernaryFormat::ALL {
            check(format, &w, rows, &x, tokens, k);
        }
    }
}

#[test]
fn i2_s_with_k_in_blocks_of_128() {
    let (rows, tokens, k) = (3, 2, 384);
    check(
        TernaryFormat::I2s,
        &values(rows * k, 5, 1.0),
        rows,
        &values(tokens * k, 6, 2.0),
        tokens,
        k,
    );
}

#[test]
fn extreme_activations_are_exact() {
    // Weights all +1, activations all 127 or all -128: sums at the edges of the int8 range.
    let k = 1024;
    let w = PackedTernary::quantize(TernaryFormat::I2s, &vec![1.0; 2 * k], 2, k).unwrap();
    for q in [127i8, -128] {
        let acts = Int8Activations::from_parts(1, k, vec![q; k], vec![1.0]).unwrap();
        let mut y = [0f32; 2];
        reference::gemv(&w.view(), Activations::Int8(&acts), &mut y).unwrap();
        assert_eq!(y, [f32::from(q) * k as f32; 2]);
    }
}

#[test]
fn bad_calls_are_errors() {
    let k = 256;
    let w = PackedTernary::quantize(TernaryFormat::Tq2_0, &vec![0.5; 2 * k], 2, k).unwrap();
    let q8k = Q8KActivations::quantize(&vec![1.0; 2 * k], 2, k).unwrap();
    let int8 = Int8Activations::quantize(&vec![1.0; k], 1, k, ActScale::PerToken).unwrap();
    let mut y = vec![0f32; 4];
    // Format and activations that do not pair.
    assert!(matches!(
        reference::gemm(&w.view(), Activations::Int8(&int8), &mut y[..2]),
        Err(QuantError::Invalid { .. })
    ));
    // Output of the wrong length.
    assert!(matches!(
        reference::gemm(&w.view(), Activations::Q8K(&q8k), &mut y[..3]),
        Err(QuantError::Length {
            expected: 4,
            got: 3,
            ..
        })
    ));
    // A GEMV needs one token.
    assert!(matches!(
        reference::gemv(&w.view(), Activations::Q8K(&q8k), &mut y),
        Err(QuantError::Mismatch { .. })
    ));
    // k mismatch.
    let short = Q8KActivations::quantize(&vec![1.0; 512], 1, 512).unwrap();
    assert!(matches!(
        reference::gemm(&w.view(), Activations::Q8K(&short), &mut y[..2]),
        Err(QuantError::Mismatch {
            left: 256,
            right: 512,
            ..
        })
    ));
    assert!(reference::dot(&w.view(), 2, Activations::Q8K(&q8k), 0).is_err());
    assert!(reference::gemm(&w.view(), Activations::Q8K(&q8k), &mut y).is_ok());
}
