//! The fast binary kernels on every path this machine can run (under every ceiling), against the
//! scalar reference: bit-identical outputs for XNOR-popcount and for int8 × binary.

use bitnet_quant::binary::kernels::{self, BinaryKernel, BinaryPath};
use bitnet_quant::binary::{self, BinaryActivations, BinaryMatrix};
use bitnet_quant::{ActScale, Int8Activations, Par, ScaleGroup};
use bitnet_simd::isa::{Ceiling, Isa, testable_isas, with_ceiling};
use proptest::prelude::*;

/// Each testable level with its extensions, and AVX-512 without them.
fn ceilings() -> Vec<Ceiling> {
    let isas = testable_isas().unwrap();
    let mut v: Vec<Ceiling> = isas.iter().copied().map(Ceiling::at).collect();
    if isas.contains(&Isa::Avx512) {
        v.push(Ceiling::plain(Isa::Avx512));
    }
    v
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 20001) as f32 / 10000.0 - 1.0
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every (ceiling, path) run of both kernels, labelled, with the two references.
fn check_all(w: &BinaryMatrix, xb: &BinaryActivations, xq: &Int8Activations, par: Par) {
    let (rows, tokens) = (w.rows(), xb.tokens());
    let mut want_xnor = vec![f32::NAN; rows * tokens];
    binary::gemm_xnor(w, xb, &mut want_xnor).unwrap();
    let mut want_int8 = vec![f32::NAN; rows * tokens];
    binary::gemm_int8(w, xq, &mut want_int8).unwrap();
    for c in ceilings() {
        for path in BinaryPath::ALL {
            for kernel in [BinaryKernel::Xnor, BinaryKernel::Int8] {
                if !with_ceiling(c, || path.available(kernel).unwrap()).unwrap() {
                    continue;
                }
                let mut y = vec![f32::NAN; rows * tokens];
                with_ceiling(c, || match kernel {
                    BinaryKernel::Xnor => kernels::gemm_xnor_on(path, w, xb, &mut y, par),
                    BinaryKernel::Int8 => kernels::gemm_int8_on(path, w, xq, &mut y, par),
                })
                .unwrap()
                .unwrap();
                let want = match kernel {
                    BinaryKernel::Xnor => &want_xnor,
                    BinaryKernel::Int8 => &want_int8,
                };
                assert_eq!(bits(&y), bits(want), "{c:?} {path:?} {kernel:?}");
            }
        }
    }
}

fn case(rows: usize, tokens: usize, k: usize, seed: u64, par: Par) {
    let w = BinaryMatrix::binarize(&values(rows * k, seed), rows, k, ScaleGroup::Row).unwrap();
    let x = values(tokens * k, seed.rotate_left(21));
    let xb = BinaryActivations::binarize(&x, tokens, k).unwrap();
    let xq = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
    check_all(&w, &xb, &xq, par);
}

proptest! {
    #[test]
    fn every_path_is_bit_identical_to_the_reference(
        rows in 0usize..14,
        tokens in 1usize..10,
        k in 0usize..1200,
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let par = if threads == 1 { Par::Seq } else { Par::Threads(threads.try_into().unwrap()) };
        case(rows, tokens, k, seed, par);
    }
}

/// Rows long enough for the AVX2 byte counters to be widened several times (31 steps of 4 words),
/// with a ragged last word.
#[test]
fn long_rows_are_exact() {
    case(6, 5, 64 * 400 + 37, 9, Par::Seq);
    case(5, 9, 64 * 131, 10, Par::Threads(2.try_into().unwrap()));
}

/// Saturated inputs: every weight +1 against activations of ±1 (int8 ±127), including a token
/// whose every bit differs from every weight's over a long row (the AVX2 byte counters reach
/// 8 per step, 248 before they are widened).
#[test]
fn extreme_inputs_are_exact() {
    for (k, negative_every) in [(777, 3), (64 * 300 + 5, 1)] {
        let (rows, tokens) = (5, 4);
        let w = BinaryMatrix::binarize(&vec![1.0; rows * k], rows, k, ScaleGroup::Tensor).unwrap();
        let x: Vec<f32> = (0..tokens * k)
            .map(|i| if i % negative_every == 0 { -1.0 } else { 1.0 })
            .collect();
        let xb = BinaryActivations::binarize(&x, tokens, k).unwrap();
        let xq = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
        check_all(&w, &xb, &xq, Par::Seq);
    }
}

/// Which paths run here; a forced path beyond the ceiling is an error.
#[test]
fn paths_are_reported_and_checked() {
    for kernel in [BinaryKernel::Xnor, BinaryKernel::Int8] {
        let (runnable, absent): (Vec<BinaryPath>, Vec<BinaryPath>) = BinaryPath::ALL
            .into_iter()
            .partition(|p| p.available(kernel).unwrap());
        eprintln!("binary {kernel:?} paths tested: {runnable:?}; absent here: {absent:?}");
        assert!(runnable.contains(&BinaryPath::best(kernel).unwrap()));
    }
    let w = BinaryMatrix::binarize(&values(64, 1), 1, 64, ScaleGroup::Tensor).unwrap();
    let xb = BinaryActivations::binarize(&values(64, 2), 1, 64).unwrap();
    let mut y = [0f32];
    for path in BinaryPath::ALL {
        let got = with_ceiling(Ceiling::at(Isa::Scalar), || {
            kernels::gemm_xnor_on(path, &w, &xb, &mut y, Par::Seq)
        })
        .unwrap();
        assert_eq!(got.is_ok(), path == BinaryPath::Scalar, "{path:?}");
    }
    // Mismatched k and output length are errors.
    let xb2 = BinaryActivations::binarize(&values(65, 2), 1, 65).unwrap();
    assert!(kernels::gemm_xnor(&w, &xb2, &mut y, Par::Seq).is_err());
    assert!(kernels::gemm_xnor(&w, &xb, &mut [0f32; 2], Par::Seq).is_err());
}
