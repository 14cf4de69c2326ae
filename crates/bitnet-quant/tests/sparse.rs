//! CSR, SpMV, SpMM and `CompressedActivation` against the dense f64 products, on every ISA
//! level this machine can run, over random shapes (0 and 1 included) and densities; the
//! conversions round-trip; malformed parts are errors.

mod common;

use bitnet_quant::Par;
use bitnet_quant::sparse::{CompressedActivation, Csr};
use bitnet_simd::isa::{Ceiling, testable_isas, with_ceiling};
use proptest::prelude::*;

/// `rows × cols` values of which about `density` are nonzero (the others exactly 0).
fn sparse_values(rows: usize, cols: usize, density: f64, seed: u64) -> Vec<f32> {
    let v = common::values(rows * cols, seed, 2.0);
    let u = common::values(rows * cols, seed ^ 0x9E37, 1.0);
    v.iter()
        .zip(&u)
        .map(|(&v, &u)| if f64::from(u.abs()) < density { v } else { 0.0 })
        .collect()
}

/// Checks `got[i]` against `Σ_j a[i][j] b[j]` (f64) within `m · ε · Σ |products|`.
fn assert_products(
    got: &[f32],
    a: &[f32],
    b: &[f32],
    rows: usize,
    inner: usize,
    n: usize,
    what: &str,
) {
    for i in 0..rows {
        for c in 0..n {
            let (mut dot, mut mag, mut m) = (0f64, 0f64, 0usize);
            for j in 0..inner {
                let p = f64::from(a[i * inner + j]) * f64::from(b[j * n + c]);
                if a[i * inner + j] != 0.0 {
                    m += 1;
                }
                dot += p;
                mag += p.abs();
            }
            let bound = (m as f64 + 2.0) * f64::from(f32::EPSILON) * mag;
            let g = f64::from(got[i * n + c]);
            assert!((g - dot).abs() <= bound, "{what} ({i}, {c}): {g} vs {dot}");
        }
    }
}

fn ceilings() -> Vec<Ceiling> {
    testable_isas()
        .unwrap()
        .into_iter()
        .map(Ceiling::at)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn csr_kernels_match_dense(
        rows in 0usize..9, cols in 0usize..40, n in 0usize..150,
        density in prop::sample::select(vec![0.0, 0.01, 0.1, 0.5, 0.9, 1.0]),
        seed in any::<u64>(), threads in 1usize..3,
    ) {
        let a = sparse_values(rows, cols, density, seed);
        let m = Csr::from_dense(&a, rows, cols, 0.0).unwrap();
        prop_assert_eq!(m.to_dense(), a.clone());
        prop_assert_eq!(m.nnz(), a.iter().filter(|&&v| v != 0.0).count());
        let x = common::values(cols, seed ^ 1, 1.0);
        let b = common::values(cols * n, seed ^ 2, 1.0);
        let par = Par::threads_or_seq(threads);
        for c in ceilings() {
            let mut y = vec![f32::NAN; rows];
            with_ceiling(c, || m.spmv(&x, &mut y, par)).unwrap().unwrap();
            assert_products(&y, &a, &x, rows, cols, 1, "spmv");
            let mut cm = vec![f32::NAN; rows * n];
            with_ceiling(c, || m.spmm(&b, n, &mut cm, par)).unwrap().unwrap();
            assert_products(&cm, &a, &b, rows, cols, n, "spmm");
        }
    }

    #[test]
    fn compressed_activation_matches_dense(
        rows in 0usize..600, k in 0usize..60,
        density in prop::sample::select(vec![0.0, 0.01, 0.1, 0.5, 1.0]),
        seed in any::<u64>(), threads in 1usize..3,
    ) {
        let par = Par::threads_or_seq(threads);
        let x = sparse_values(1, k, density, seed);
        let ca = CompressedActivation::from_dense(&x, 0.0).unwrap();
        prop_assert_eq!(ca.to_dense(), x.clone());
        let w = common::values(rows * k, seed ^ 5, 1.0);
        let wt: Vec<f32> = (0..k * rows).map(|i| w[(i % rows) * k + i / rows]).collect();
        for c in ceilings() {
            let mut y = vec![f32::NAN; rows];
            with_ceiling(c, || ca.gemv(&w, rows, &mut y, par)).unwrap().unwrap();
            assert_products(&y, &w, &x, rows, k, 1, "gemv");
            let mut y = vec![f32::NAN; rows];
            with_ceiling(c, || ca.gemv_t(&wt, rows, &mut y, par)).unwrap().unwrap();
            assert_products(&y, &w, &x, rows, k, 1, "gemv_t");
        }
    }
}

#[test]
fn threshold_keeps_large_and_non_finite_values() {
    let a = [
        0.5f32,
        -0.05,
        0.1,
        f32::NAN,
        -f32::INFINITY,
        0.0,
        -0.2,
        0.1000001,
    ];
    let m = Csr::from_dense(&a, 2, 4, 0.1).unwrap();
    let (ptr, cols, vals) = m.parts();
    assert_eq!(ptr, &[0, 2, 5]);
    assert_eq!(cols, &[0, 3, 0, 2, 3]);
    assert_eq!(vals[0], 0.5);
    assert!(vals[1].is_nan());
    assert_eq!(&vals[2..], &[-f32::INFINITY, -0.2, 0.1000001]);
    for t in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(Csr::from_dense(&a, 2, 4, t).is_err(), "threshold {t}");
    }
}

#[test]
fn malformed_parts_and_shapes_are_errors() {
    let ok = Csr::from_parts(2, 3, vec![0, 1, 2], vec![2, 0], vec![1.0, 2.0]).unwrap();
    assert_eq!(ok.to_dense(), vec![0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    for (ptr, cols, vals) in [
        (vec![0, 1], vec![0u32], vec![1.0f32]), // row_ptr too short
        (vec![1, 1, 1], vec![0], vec![1.0]),    // does not start at 0
        (vec![0, 2, 1], vec![0], vec![1.0]),    // decreasing / wrong end
        (vec![0, 1, 1], vec![3], vec![1.0]),    // column out of range
        (vec![0, 2, 2], vec![1, 1], vec![1.0, 2.0]), // repeated column
        (vec![0, 1, 2], vec![0], vec![1.0, 2.0]), // lengths differ
    ] {
        assert!(
            Csr::from_parts(2, 3, ptr.clone(), cols, vals).is_err(),
            "{ptr:?}"
        );
    }
    let mut y = vec![0f32; 2];
    assert!(ok.spmv(&[1.0, 2.0], &mut y, Par::Seq).is_err());
    assert!(ok.spmm(&[1.0; 5], 2, &mut [0.0; 4], Par::Seq).is_err());
    let ca = CompressedActivation::from_dense(&[0.0, 1.0, 0.0], 0.0).unwrap();
    assert_eq!((ca.len(), ca.nnz()), (3, 1));
    assert!(ca.gemv(&[1.0; 5], 2, &mut y, Par::Seq).is_err());
    assert!(ca.gemv_t(&[1.0; 6], 2, &mut [0.0; 3], Par::Seq).is_err());
}
