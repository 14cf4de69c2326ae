//! GEMV against the f64 reference on every level, layout and thread setting.

mod common;

use bitnet_gemm::{GemmError, Par, gemv};
use bitnet_simd::isa::testable_isas;
use bitnet_simd::with_isa;
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gemv_within_bound(m in dim(), k in dim(), la in layout(), off in 0usize..3, seed: u64,
                         alpha in scalar(), beta in scalar()) {
        let a = Stored::new(m, k, la, off, seed);
        let x = Stored::new(k, 1, Layout::ColMajor { pad: 0 }, 0, seed ^ 9);
        let mut y0 = Stored::new(m, 1, Layout::ColMajor { pad: 0 }, 0, seed ^ 5);
        if beta == 0.0 {
            y0.data.iter_mut().for_each(|v| *v = f32::NAN);
        }
        for isa in testable_isas().unwrap() {
            for par in [Par::Seq, Par::default()] {
                let mut y = y0.clone();
                with_isa(isa, || gemv(alpha, a.view(), &x.data, beta, &mut y.data, par)).unwrap().unwrap();
                assert_within_bound(alpha, &a, &x, beta, &y0, &y, &format!("gemv/{isa}/{par:?}"))?;
            }
        }
    }
}

#[test]
fn gemv_checks_lengths() {
    let a = vec![0f32; 12];
    let view = bitnet_gemm::MatRef::row_major(&a, 3, 4).unwrap();
    let mut y = vec![0f32; 3];
    assert!(matches!(
        gemv(1.0, view, &[0.0; 3], 0.0, &mut y, Par::Seq),
        Err(GemmError::ShapeMismatch { .. })
    ));
    assert!(gemv(1.0, view, &[0.0; 4], 0.0, &mut y[..2], Par::Seq).is_err());
    assert!(gemv(1.0, view, &[0.0; 4], 0.0, &mut y, Par::Seq).is_ok());
}
