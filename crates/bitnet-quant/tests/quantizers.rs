//! Quantizers against their definitions (recomputed here from the docs), extremes and errors;
//! binary packing and XNOR-popcount kernels against plain ±1 arithmetic.

use bitnet_quant::binary::{self, BinaryActivations, BinaryMatrix};
use bitnet_quant::ternary::MIN_SCALE;
use bitnet_quant::{ActScale, Int8Activations, QuantError, ScaleGroup, TernaryMatrix};
use proptest::prelude::*;

fn matrix(max_rows: usize, max_cols: usize) -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (0..=max_rows, 0..=max_cols).prop_flat_map(|(r, c)| {
        let value = prop_oneof![
            8 => -10f32..10f32,
            1 => Just(0f32),
            1 => prop_oneof![Just(1e30f32), Just(-1e30f32), Just(1e-30f32)],
        ];
        (Just(r), Just(c), proptest::collection::vec(value, r * c))
    })
}

proptest! {
    #[test]
    fn absmean_follows_its_definition((rows, cols, w) in matrix(5, 70), per in 0usize..3) {
        let group = match per {
            0 => ScaleGroup::Tensor,
            1 => ScaleGroup::Row,
            _ => ScaleGroup::Block(if cols == 0 { 1 } else { (1..=cols).rev().find(|b| cols % b == 0 && *b <= 8).unwrap() }),
        };
        let m = TernaryMatrix::quantize_absmean(&w, rows, cols, group).unwrap();
        let glen = match group {
            ScaleGroup::Tensor => rows * cols,
            ScaleGroup::Row => cols,
            ScaleGroup::Block(b) => b,
        };
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                let g0 = i / glen.max(1) * glen;
                let mean = w[g0..g0 + glen].iter().map(|v| f64::from(v.abs())).sum::<f64>() / glen as f64;
                let s = (mean as f32).max(MIN_SCALE);
                prop_assert_eq!(m.scale_at(r, c), s);
                let code = (w[i] / s).round_ties_even().clamp(-1.0, 1.0) as i8;
                prop_assert_eq!(m.codes()[i], code);
            }
        }
    }

    #[test]
    fn activations_follow_their_definition((tokens, k, x) in matrix(4, 90), per_tensor in any::<bool>()) {
        let scale = if per_tensor { ActScale::PerTensor } else { ActScale::PerToken };
        let a = Int8Activations::quantize(&x, tokens, k, scale).unwrap();
        let absmax = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
        for t in 0..tokens {
            let row = &x[t * k..(t + 1) * k];
            let m = if per_tensor { absmax(&x) } else { absmax(row) };
            let mult = 127.0 / m.max(1e-5);
            prop_assert_eq!(a.scales()[t], mult);
            let mut sum = 0i32;
            for (j, &v) in row.iter().enumerate() {
                let q = (v * mult).round_ties_even().clamp(-128.0, 127.0) as i8;
                prop_assert_eq!(a.row(t)[j], q);
                sum += i32::from(q);
            }
            prop_assert_eq!(a.sums()[t], sum);
            // The largest magnitude of a non-zero token maps to ±127 (per token).
            if !per_tensor && m >= 1e-5 {
                prop_assert_eq!(a.row(t).iter().map(|q| q.unsigned_abs()).max(), Some(127));
            }
        }
        if !per_tensor {
            // Rows produced one at a time quantize identically.
            let rows = Int8Activations::quantize_rows_with(tokens, k, |t, row| {
                row.copy_from_slice(&x[t * k..(t + 1) * k])
            })
            .unwrap();
            prop_assert_eq!(&rows, &a);
        }
        if k > 0 && k % 2 == 0 {
            let halves = a.block_sums(k / 2).unwrap();
            for t in 0..tokens {
                prop_assert_eq!(halves[2 * t] + halves[2 * t + 1], a.sums()[t]);
            }
        }
    }

    #[test]
    fn xnor_dot_is_the_pm1_dot(n in 0usize..300, seed in any::<u64>()) {
        let a: Vec<f32> = (0..n).map(|i| if (seed >> (i % 64)) & 1 == 1 { 1.0 } else { -1.0 }).collect();
        let b: Vec<f32> = (0..n).map(|i| if ((seed.rotate_left(23) >> (i % 64)) & 1 == 1) ^ (i % 3 == 0) { 1.0 } else { -1.0 }).collect();
        let (pa, pb) = (binary::pack_bits_word_level(&a), binary::pack_bits_word_level(&b));
        prop_assert_eq!(pa.len(), n.div_ceil(64));
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        prop_assert_eq!(binary::xnor_dot(&pa, &pb, n).unwrap(), plain as i32);
    }

    #[test]
    fn binary_gemms_match_f64((rows, k, w) in matrix(4, 150), tokens in 1usize..3, per_row in any::<bool>(), seed in any::<u32>()) {
        let group = if per_row { ScaleGroup::Row } else { ScaleGroup::Tensor };
        let bm = BinaryMatrix::binarize(&w, rows, k, group).unwrap();
        let x: Vec<f32> = (0..tokens * k).map(|i| ((i as u32 ^ seed) % 17) as f32 - 8.0).collect();
        let wd = bm.dequantize();
        let eps = f64::from(f32::EPSILON);

        let bx = BinaryActivations::binarize(&x, tokens, k).unwrap();
        let mut y = vec![0f32; tokens * rows];
        binary::gemm_xnor(&bm, &bx, &mut y).unwrap();
        for t in 0..tokens {
            for r in 0..rows {
                let exact: f64 = (0..k)
                    .map(|j| f64::from(wd[r * k + j]) * if x[t * k + j] >= 0.0 { f64::from(bx.scale(t)) } else { -f64::from(bx.scale(t)) })
                    .sum();
                prop_assert!((f64::from(y[t * rows + r]) - exact).abs() <= 2.0 * eps * exact.abs());
            }
        }

        let qx = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
        binary::gemm_int8(&bm, &qx, &mut y).unwrap();
        for t in 0..tokens {
            for r in 0..rows {
                // Products of an f32 and an int8 and their sum are exact in f64; divide last.
                let exact = (0..k)
                    .map(|j| f64::from(wd[r * k + j]) * f64::from(qx.row(t)[j]))
                    .sum::<f64>()
                    / f64::from(qx.scales()[t]);
                prop_assert!((f64::from(y[t * rows + r]) - exact).abs() <= 3.0 * eps * exact.abs());
            }
        }
    }
}

#[test]
fn all_zero_and_extreme_inputs() {
    let m = TernaryMatrix::quantize_absmean(&[0.0; 12], 3, 4, ScaleGroup::Row).unwrap();
    assert!(m.codes().iter().all(|&c| c == 0));
    assert_eq!(m.scales(), &[MIN_SCALE; 3]);
    let a = Int8Activations::quantize(&[0.0; 8], 2, 4, ActScale::PerToken).unwrap();
    assert!(a.values().iter().all(|&q| q == 0));
    assert_eq!(a.sums(), &[0, 0]);
    let m =
        TernaryMatrix::quantize_absmean(&[-3.0, 3.0, -3.0, 3.0], 1, 4, ScaleGroup::Tensor).unwrap();
    assert_eq!(m.codes(), &[-1, 1, -1, 1]);
    let a = Int8Activations::quantize(&[-1.0, 1.0, 0.5, -0.25], 1, 4, ActScale::PerToken).unwrap();
    assert_eq!(a.values(), &[-127, 127, 64, -32]);
}

#[test]
fn bad_input_is_an_error() {
    let err = Int8Activations::quantize_rows_with(2, 3, |t, row| {
        row.fill(if t == 1 { f32::NAN } else { 1.0 })
    });
    assert!(err.is_err());
    assert!(matches!(
        TernaryMatrix::quantize_absmean(&[0.0; 5], 2, 3, ScaleGroup::Tensor),
        Err(QuantError::Length {
            expected: 6,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        TernaryMatrix::quantize_absmean(&[0.0, f32::INFINITY], 1, 2, ScaleGroup::Tensor),
        Err(QuantError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        TernaryMatrix::quantize_absmean(&[0.0; 6], 1, 6, ScaleGroup::Block(4)),
        Err(QuantError::NotMultiple { .. })
    ));
    assert!(TernaryMatrix::quantize_absmean(&[0.0; 6], 1, 6, ScaleGroup::Block(0)).is_err());
    assert!(TernaryMatrix::from_parts(1, 2, ScaleGroup::Tensor, vec![2, 0], vec![1.0]).is_err());
    assert!(TernaryMatrix::from_parts(1, 2, ScaleGroup::Tensor, vec![1, 0], vec![-1.0]).is_err());
    assert!(Int8Activations::quantize(&[f32::NAN], 1, 1, ActScale::PerToken).is_err());
    assert!(Int8Activations::from_parts(1, 1, vec![1], vec![0.0]).is_err());
    let a = Int8Activations::quantize(&[1.0; 6], 1, 6, ActScale::PerToken).unwrap();
    assert!(a.block_sums(4).is_err());
    // Binary: padding bits set, a block scale group, mismatched k.
    assert!(BinaryMatrix::from_parts(1, 3, vec![0b1000], vec![1.0]).is_err());
    assert!(BinaryMatrix::from_parts(1, 3, vec![0b0101], vec![1.0]).is_ok());
    assert!(BinaryMatrix::binarize(&[1.0; 4], 1, 4, ScaleGroup::Block(2)).is_err());
    let w = BinaryMatrix::binarize(&[1.0; 4], 1, 4, ScaleGroup::Tensor).unwrap();
    let x = BinaryActivations::binarize(&[1.0; 3], 1, 3).unwrap();
    assert!(matches!(
        binary::gemm_xnor(&w, &x, &mut [0.0]),
        Err(QuantError::Mismatch { .. })
    ));
}

#[test]
fn empty_rows_binarize() {
    // Rows of zero columns (a proptest case that once indexed past the per-row means).
    let m = BinaryMatrix::binarize(&[], 3, 0, ScaleGroup::Row).unwrap();
    assert_eq!((m.rows(), m.cols()), (3, 0));
    assert!(m.dequantize().is_empty());
}

#[test]
fn limits_and_huge_counts_are_errors() {
    use bitnet_quant::{MAX_K, Q8KActivations};
    // Rows longer than MAX_K would overflow the i32 sums.
    let k = MAX_K + 256;
    assert!(Int8Activations::from_parts(1, k, vec![-128; k], vec![1.0]).is_err());
    assert!(Q8KActivations::quantize(&vec![0.0; k], 1, k).is_err());
    // An allocation that cannot happen is an error, not an abort.
    assert!(Int8Activations::quantize(&[], usize::MAX, 0, ActScale::PerToken).is_err());
    assert!(BinaryMatrix::binarize(&[], usize::MAX, 0, ScaleGroup::Row).is_err());
    let m = BinaryMatrix::binarize(&[], usize::MAX, 0, ScaleGroup::Tensor).unwrap();
    assert!(m.dequantize().is_empty());
    // xnor_dot checks its slices.
    assert!(binary::xnor_dot(&[], &[], 1).is_err());
}

#[test]
fn q8_k_scales_are_checked_and_tiny_blocks_quantize() {
    use bitnet_quant::BlockQ8K;
    let mut bytes = BlockQ8K::quantize(&[1.0; 256]).unwrap().to_bytes();
    bytes[..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    assert!(BlockQ8K::from_bytes(&bytes).is_err());
    // |max| so small that -127 / max overflows f32: still 127 steps, d = max / -127.
    let mut x = [0f32; 256];
    x[0] = 1e-38;
    x[1] = -5e-39;
    let b = BlockQ8K::quantize(&x).unwrap();
    assert_eq!((b.q[0], b.q[1]), (-127, 64));
    assert!(b.d < 0.0 && (f64::from(b.d) * -127.0 - 1e-38).abs() < 1e-43);
}

proptest! {
    /// The SIMD quantizers give the scalar definition's values on every level (the scalar level
    /// is checked against the definition above).
    #[test]
    fn quantizers_agree_on_every_level((tokens, k, x) in matrix(3, 300), per_tensor in any::<bool>()) {
        use bitnet_quant::Q8KActivations;
        use bitnet_simd::isa::{Ceiling, Isa, testable_isas, with_ceiling};
        let scale = if per_tensor { ActScale::PerTensor } else { ActScale::PerToken };
        let scalar = with_ceiling(Ceiling::at(Isa::Scalar), || Int8Activations::quantize(&x, tokens, k, scale).unwrap()).unwrap();
        let k256 = k / 256 * 256;
        let x256: Vec<f32> = (0..tokens).flat_map(|t| x[t * k..t * k + k256].to_vec()).collect();
        let q8k_scalar = with_ceiling(Ceiling::at(Isa::Scalar), || Q8KActivations::quantize(&x256, tokens, k256).unwrap()).unwrap();
        for isa in testable_isas().unwrap() {
            let got = with_ceiling(Ceiling::at(isa), || Int8Activations::quantize(&x, tokens, k, scale).unwrap()).unwrap();
            prop_assert_eq!(&got, &scalar, "{:?}", isa);
            let got = with_ceiling(Ceiling::at(isa), || Q8KActivations::quantize(&x256, tokens, k256).unwrap()).unwrap();
            prop_assert_eq!(&got, &q8k_scalar, "{:?}", isa);
        }
    }
}

proptest! {
    /// `quantize_rows_into` (parallel, into a reused buffer that grows and shrinks) gives what
    /// `quantize` per token gives, on every level and thread count; a non-finite row is an error.
    #[test]
    fn rows_into_a_reused_buffer_match((tokens, k, x) in matrix(70, 40), threads in 1usize..3, block in 1usize..6, nan_at in any::<prop::sample::Index>()) {
        use bitnet_simd::Par;
        use bitnet_simd::isa::{Ceiling, testable_isas, with_ceiling};
        let want = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
        let par = Par::threads_or_seq(threads);
        for isa in testable_isas().unwrap() {
            // A buffer first used for another shape.
            let mut got = Int8Activations::quantize(&[1.0; 12], 3, 4, ActScale::PerToken).unwrap();
            with_ceiling(Ceiling::at(isa), || {
                got.quantize_rows_into(tokens, k, par, |t, row| row.copy_from_slice(&x[t * k..(t + 1) * k]))
            }).unwrap().unwrap();
            prop_assert_eq!(&got, &want, "{:?}", isa);
            // Blocks of rows at a time.
            with_ceiling(Ceiling::at(isa), || {
                got.quantize_blocks_into(tokens, k, block, par, |t0, rows| {
                    rows.copy_from_slice(&x[t0 * k..t0 * k + rows.len()])
                })
            }).unwrap().unwrap();
            prop_assert_eq!(&got, &want, "{:?} blocks of {}", isa, block);
        }
        if !x.is_empty() {
            let bad = nan_at.index(x.len());
            let mut got = Int8Activations::default();
            let r = got.quantize_rows_into(tokens, k, par, |t, row| {
                row.copy_from_slice(&x[t * k..(t + 1) * k]);
                if bad / k == t {
                    row[bad % k] = f32::NAN;
                }
            });
            prop_assert!(r.is_err());
        }
    }
}
