//! INT8 quantizers (rounding, clamping, zero points) and the exact int8 GEMM on every path this
//! machine can run, against the scalar reference.

use bitnet_quant::int8::{
    self, Codes, Int8Matmul, Int8Path, Int8Scheme, MAX_K_I8, Operand, QuantI8,
};
use bitnet_quant::{Par, ScaleGroup};
use bitnet_simd::isa::{Ceiling, Isa, testable_isas, with_ceiling};
use proptest::prelude::*;

fn ceilings() -> Vec<Ceiling> {
    let isas = testable_isas().unwrap();
    let mut v: Vec<Ceiling> = isas.iter().copied().map(Ceiling::at).collect();
    if isas.contains(&Isa::Avx512) {
        v.push(Ceiling::plain(Isa::Avx512));
    }
    v
}

fn values(n: usize, seed: u64, spread: f32, offset: f32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 20001) as f32 / 10000.0 - 1.0) * spread + offset
        })
        .collect()
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Every (ceiling, path) against the reference, for both kinds of A.
fn check_gemm(a_bytes: &[u8], b: &[i8], m: usize, n: usize, k: usize, par: Par) {
    let a_i8: Vec<i8> = a_bytes.iter().map(|&v| v as i8).collect();
    for a in [Operand::U8(a_bytes), Operand::I8(&a_i8)] {
        let mut want = vec![0i32; m * n];
        int8::gemm_reference(a, b, m, n, k, &mut want).unwrap();
        for c in ceilings() {
            for path in Int8Path::ALL {
                if !with_ceiling(c, || path.available().unwrap()).unwrap() {
                    continue;
                }
                let mut got = vec![i32::MIN; m * n];
                with_ceiling(c, || int8::gemm_on(path, a, b, m, n, k, &mut got, par))
                    .unwrap()
                    .unwrap();
                assert_eq!(got, want, "{c:?} {path:?} {a:?}");
            }
        }
    }
}

proptest! {
    #[test]
    fn gemm_is_exact_on_every_path(
        m in 0usize..40,
        n in 0usize..80,
        k in 0usize..300,
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let par = if threads == 1 { Par::Seq } else { Par::Threads(threads.try_into().unwrap()) };
        let a = bytes(m * k, seed);
        let b: Vec<i8> = bytes(n * k, seed.rotate_left(9)).into_iter().map(|v| v as i8).collect();
        check_gemm(&a, &b, m, n, k, par);
    }

    #[test]
    fn quantizers_round_clamp_and_invert(
        rows in 1usize..6,
        cols in 1usize..70,
        seed in any::<u64>(),
        spread in 0.0f32..100.0,
        offset in -50.0f32..50.0,
        per_row in any::<bool>(),
        asymmetric in any::<bool>(),
    ) {
        let x = values(rows * cols, seed, spread, offset);
        let scheme = if asymmetric { Int8Scheme::Asymmetric } else { Int8Scheme::Symmetric };
        let group = if per_row { ScaleGroup::Row } else { ScaleGroup::Tensor };
        let q = QuantI8::quantize(&x, rows, cols, scheme, group).unwrap();
        let back = q.dequantize();
        for r in 0..rows {
            let (s, z) = q.params(r);
            let row = &x[r * cols..(r + 1) * cols];
            // Within half a step (plus the rounding of s, x / s and (q − z) · s) of the input.
            for (j, (&v, &d)) in row.iter().zip(&back[r * cols..(r + 1) * cols]).enumerate() {
                let tol = 0.5 * f64::from(s) * (1.0 + 1e-5) + 4.0 * f64::from(f32::EPSILON) * f64::from(v.abs());
                prop_assert!((f64::from(v) - f64::from(d)).abs() <= tol, "row {} col {}: {} -> {} (s {}, z {})", r, j, v, d, s, z);
            }
            // quantize_with_scale with the same parameters writes the same codes.
            let again = int8::quantize_with_scale(row, s, z, scheme).unwrap();
            let same = match (&again, q.codes()) {
                (Codes::I8(a), Codes::I8(b)) => a[..] == b[r * cols..(r + 1) * cols],
                (Codes::U8(a), Codes::U8(b)) => a[..] == b[r * cols..(r + 1) * cols],
                _ => false,
            };
            prop_assert!(same);
            if asymmetric {
                // 0 is exact.
                prop_assert_eq!(int8::quantize_with_scale(&[0.0], s, z, scheme).unwrap(), Codes::U8(vec![z as u8]));
            }
        }
        if let Codes::I8(c) = q.codes() {
            prop_assert!(c.iter().all(|&v| v >= -127));
        }
    }
}

/// The bound of the i32 sums: k = MAX_K_I8 with the extreme bytes (255 or −128 against −128).
#[test]
fn extreme_sums_at_max_k_are_exact() {
    let k = MAX_K_I8;
    let b = vec![-128i8; 2 * k];
    for fill in [255u8, 0x80, 0x7f] {
        let a = vec![fill; 2 * k];
        check_gemm(&a, &b, 2, 2, k, Par::Seq);
    }
    // The packed path, at 16 rows.
    let a = vec![255u8; 16 * k];
    check_gemm(&a, &b, 16, 2, k, Par::Seq);
}

#[test]
fn half_way_values_round_to_even_and_clamp() {
    // s = 1 (max |x| = 127): 0.5 → 0, 1.5 → 2, 2.5 → 2, −2.5 → −2; 200 clamps at the scale's own
    // range only through quantize_with_scale.
    let c = int8::quantize_with_scale(
        &[0.5, 1.5, 2.5, -2.5, 200.0, -200.0],
        1.0,
        0,
        Int8Scheme::Symmetric,
    )
    .unwrap();
    assert_eq!(c, Codes::I8(vec![0, 2, 2, -2, 127, -127]));
    let c = int8::quantize_with_scale(&[0.5, -3.0, 300.0], 1.0, 3, Int8Scheme::Asymmetric).unwrap();
    assert_eq!(c, Codes::U8(vec![3, 0, 255]));
    // An all-zero row: scale 0, codes at the zero point, dequantized to 0.
    let q = QuantI8::quantize(&[0.0; 4], 1, 4, Int8Scheme::Asymmetric, ScaleGroup::Tensor).unwrap();
    assert_eq!(q.params(0), (0.0, 0));
    assert_eq!(q.dequantize(), vec![0.0; 4]);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(int8::quantize_with_scale(&[1.0], f32::NAN, 0, Int8Scheme::Symmetric).is_err());
    assert!(int8::quantize_with_scale(&[1.0], 1.0, 3, Int8Scheme::Symmetric).is_err());
    assert!(int8::quantize_with_scale(&[1.0], 1.0, 256, Int8Scheme::Asymmetric).is_err());
    assert!(int8::quantize_with_scale(&[f32::INFINITY], 1.0, 0, Int8Scheme::Symmetric).is_err());
    assert!(QuantI8::quantize(&[1.0; 4], 2, 3, Int8Scheme::Symmetric, ScaleGroup::Row).is_err());
    assert!(
        QuantI8::quantize(&[1.0; 4], 2, 2, Int8Scheme::Symmetric, ScaleGroup::Block(2)).is_err()
    );
    let mut c = [0i32; 4];
    assert!(int8::gemm(Operand::U8(&[0; 5]), &[0; 6], 2, 2, 3, &mut c, Par::Seq).is_err());
    assert!(
        int8::gemm(
            Operand::U8(&[0; 6]),
            &[0; 5],
            2,
            2,
            3,
            &mut c[..4],
            Par::Seq
        )
        .is_err()
    );
    let big = vec![0u8; MAX_K_I8 + 1];
    let mut one = [0i32];
    assert!(
        int8::gemm(
            Operand::U8(&big),
            &vec![0i8; MAX_K_I8 + 1],
            1,
            1,
            MAX_K_I8 + 1,
            &mut one,
            Par::Seq
        )
        .is_err()
    );
    for path in Int8Path::ALL {
        let got = with_ceiling(Ceiling::at(Isa::Scalar), || {
            int8::gemm_on(
                path,
                Operand::U8(&[1; 3]),
                &[1; 3],
                1,
                1,
                3,
                &mut one,
                Par::Seq,
            )
        })
        .unwrap();
        assert_eq!(got.is_ok(), path == Int8Path::Scalar, "{path:?}");
    }
    // Asymmetric weights are refused by the f32 product.
    let a = QuantI8::quantize(&[1.0; 4], 2, 2, Int8Scheme::Symmetric, ScaleGroup::Row).unwrap();
    let b = QuantI8::quantize(&[1.0; 4], 2, 2, Int8Scheme::Asymmetric, ScaleGroup::Row).unwrap();
    assert!(Int8Matmul::run(&a, &b, &mut [0.0; 4], Par::Seq).is_err());
}

/// The f32 product against f64 arithmetic on the dequantized operands.
#[test]
fn matmul_matches_the_dequantized_product() {
    let (m, n, k) = (5, 7, 300);
    let x = values(m * k, 3, 2.0, 0.7);
    let w = values(n * k, 4, 1.0, 0.0);
    let b = QuantI8::quantize(&w, n, k, Int8Scheme::Symmetric, ScaleGroup::Row).unwrap();
    for scheme in [Int8Scheme::Symmetric, Int8Scheme::Asymmetric] {
        let a = QuantI8::quantize(&x, m, k, scheme, ScaleGroup::Row).unwrap();
        let mut y = vec![0f32; m * n];
        Int8Matmul::run(&a, &b, &mut y, Par::Seq).unwrap();
        let (ad, bd) = (a.dequantize(), b.dequantize());
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| f64::from(ad[i * k + p]) * f64::from(bd[j * k + p]))
                    .sum();
                let mag: f64 = (0..k)
                    .map(|p| (f64::from(ad[i * k + p]) * f64::from(bd[j * k + p])).abs())
                    .sum();
                let got = f64::from(y[i * n + j]);
                assert!(
                    (got - exact).abs() <= 4.0 * f64::from(f32::EPSILON) * mag,
                    "{scheme:?} ({i}, {j}): {got} vs {exact}"
                );
            }
        }
    }
}

/// Which paths this machine runs (the tests above cover each of them) and which it cannot; the
/// EVEX twin of the AVX-VNNI kernel runs wherever the zmm kernel does.
#[test]
fn report_paths() {
    let (runnable, absent): (Vec<Int8Path>, Vec<Int8Path>) = Int8Path::ALL
        .into_iter()
        .partition(|p| p.available().unwrap());
    eprintln!("int8 GEMM paths tested: {runnable:?}; absent here: {absent:?}");
    assert!(runnable.contains(&Int8Path::best().unwrap()));
    assert_eq!(
        Int8Path::Avx512Vnni.available().unwrap(),
        Int8Path::Avx512VnniYmm.available().unwrap()
    );
    assert_ne!(Int8Path::best().unwrap(), Int8Path::Avx512VnniYmm);
}

/// Rows long enough for many full vector steps of every kernel, with ragged tails, and row
/// counts that leave partial 4 × 4 and 2 × 4 tiles.
#[test]
fn long_rows_with_ragged_tails_are_exact() {
    for (m, n, k) in [
        (1, 5, 1000),
        (3, 7, 1031),
        (5, 9, 2079),
        (6, 4, 64),
        (2, 3, 33),
        // The packed path (16 rows and more): partial 6-row tiles and 64-column panels.
        (16, 64, 256),
        (23, 130, 1031),
        (17, 65, 3),
        (40, 1, 7),
    ] {
        let a = bytes(m * k, (m * 31 + k) as u64);
        let b: Vec<i8> = bytes(n * k, (n * 17 + k) as u64)
            .into_iter()
            .map(|v| v as i8)
            .collect();
        check_gemm(&a, &b, m, n, k, Par::Seq);
    }
}
