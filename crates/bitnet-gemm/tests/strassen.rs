//! Strassen against Higham's normwise bound, with small cutoffs so that several levels of
//! recursion and every odd-edge fix-up run on small matrices.

mod common;

use bitnet_gemm::Par;
use bitnet_gemm::strassen::{gemm_strassen_with_cutoff, strassen_levels};
use bitnet_simd::isa::testable_isas;
use bitnet_simd::with_isa;
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn strassen_within_higham_bound(m in 0usize..70, n in 0usize..70, k in 0usize..70, cutoff in 2usize..20,
                                    la in layout(), lb in layout(), lc in layout(), seed: u64,
                                    alpha in scalar(), beta in scalar()) {
        let a = Stored::new(m, k, la, 1, seed);
        let b = Stored::new(k, n, lb, 0, seed ^ 1);
        let mut c0 = Stored::new(m, n, lc, 2, seed ^ 2);
        if beta == 0.0 {
            c0.data.iter_mut().skip(2).for_each(|v| *v = f32::NAN);
        }
        let levels = strassen_levels(m, n, k, cutoff);
        let k0 = k.div_ceil(1 << levels) as f64;
        let eps = f32::EPSILON as f64;
        let max_a = a.data.iter().fold(0f32, |x, v| x.max(v.abs())) as f64;
        let max_b = b.data.iter().fold(0f32, |x, v| x.max(v.abs())) as f64;
        let max_c = if beta == 0.0 { 0.0 } else { c0.data.iter().fold(0f32, |x, v| x.max(v.abs())) as f64 };
        let bound = 12f64.powi(levels as i32) * (k0 * k0 + 5.0 * k0 + 2.0) * eps * alpha.abs() as f64 * max_a * max_b
            + 2.0 * eps * beta.abs() as f64 * max_c + 1e-30;
        for isa in testable_isas().unwrap() {
            for par in [Par::Seq, Par::default()] {
                let mut got = c0.clone();
                with_isa(isa, || gemm_strassen_with_cutoff(alpha, a.view(), b.view(), beta, got.view_mut(), par, cutoff))
                    .unwrap()
                    .unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 = (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum();
                        let prior = if beta == 0.0 { 0.0 } else { beta as f64 * c0.at(i, j) as f64 };
                        let expect = alpha as f64 * exact + prior;
                        let v = got.at(i, j) as f64;
                        prop_assert!((v - expect).abs() <= bound,
                            "{isa}: C[{i},{j}] = {v}, expected {expect} ± {bound} (levels {levels}, cutoff {cutoff})");
                    }
                }
            }
        }
    }
}

#[test]
fn levels_count() {
    assert_eq!(strassen_levels(100, 100, 100, 512), 0);
    assert_eq!(strassen_levels(1024, 1024, 1024, 512), 2);
    assert_eq!(strassen_levels(1024, 600, 1024, 512), 1);
}
