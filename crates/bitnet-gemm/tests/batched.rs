//! Batched GEMM against the per-product bound, across and inside the batch.

mod common;

use bitnet_gemm::batched::{Batch, BatchMut, gemm_batched};
use bitnet_gemm::{GemmError, Operand, Par};
use bitnet_simd::isa::testable_isas;
use bitnet_simd::with_isa;
use common::*;
use proptest::prelude::*;

/// `batch` matrices stored one after another (`gap` elements apart), or one shared matrix.
fn stack(mats: &[Stored], shared: bool) -> (Vec<f32>, usize) {
    let span = mats[0].data.len();
    if shared {
        return (mats[0].data.clone(), 0);
    }
    let stride = span + 3;
    let mut data = vec![7.0; stride * mats.len()];
    for (i, m) in mats.iter().enumerate() {
        data[i * stride..i * stride + span].copy_from_slice(&m.data);
    }
    (data, stride)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn batched_within_bound(batch in 0usize..5, m in 0usize..40, n in 0usize..40, k in 0usize..40,
                            la in layout(), lb in layout(), lc in layout(), shared_b: bool, seed: u64,
                            alpha in scalar(), beta in scalar()) {
        let a: Vec<Stored> = (0..batch.max(1)).map(|i| Stored::new(m, k, la, 0, seed ^ i as u64)).collect();
        let b: Vec<Stored> = (0..batch.max(1)).map(|i| Stored::new(k, n, lb, 0, seed ^ (i as u64 + 100))).collect();
        let c0: Vec<Stored> = (0..batch.max(1)).map(|i| Stored::new(m, n, lc, 0, seed ^ (i as u64 + 200))).collect();
        let (ad, a_stride) = stack(&a[..batch.max(1)], false);
        let (bd, b_stride) = stack(&b[..batch.max(1)], shared_b);
        let (cd0, c_stride) = stack(&c0[..batch.max(1)], false);
        for isa in testable_isas().unwrap() {
            for par in [Par::Seq, Par::default()] {
                let mut cd = cd0.clone();
                let (a0, b0, cc) = (&a[0], &b[0], &c0[0]);
                with_isa(isa, || {
                    gemm_batched(
                        alpha,
                        Batch::new(Operand::A, &ad, batch, a_stride, m, k, a0.rs, a0.cs).unwrap(),
                        Batch::new(Operand::B, &bd, batch, b_stride, k, n, b0.rs, b0.cs).unwrap(),
                        beta,
                        BatchMut::new(&mut cd, batch, c_stride, m, n, cc.rs, cc.cs).unwrap(),
                        par,
                    )
                }).unwrap().unwrap();
                for i in 0..batch {
                    let span = c0[i].data.len();
                    let got = Stored { data: cd[i * c_stride..i * c_stride + span].to_vec(), ..c0[i].clone() };
                    let bi = if shared_b { &b[0] } else { &b[i] };
                    assert_within_bound(alpha, &a[i], bi, beta, &c0[i], &got, &format!("batched/{isa}/{par:?}/{i}"))?;
                }
            }
        }
    }
}

#[test]
fn batch_errors() {
    let a = vec![0f32; 8];
    let mut c = vec![0f32; 8];
    // Two 2x2 outputs 3 apart overlap.
    assert!(matches!(
        BatchMut::new(&mut c, 2, 3, 2, 2, 2, 1),
        Err(GemmError::Batch(_))
    ));
    // Too short.
    assert!(matches!(
        Batch::new(Operand::A, &a, 3, 4, 2, 2, 2, 1),
        Err(GemmError::Batch(msg)) if msg.starts_with("A:")
    ));
    // Overflowing batch stride.
    assert!(matches!(
        Batch::new(Operand::B, &a, 3, usize::MAX, 2, 2, 2, 1),
        Err(GemmError::Batch(msg)) if msg.starts_with("B:")
    ));
    // Empty batches and empty matrices are fine.
    assert!(BatchMut::new(&mut [], 0, 0, 2, 2, 2, 1).is_ok());
    let mut c6 = vec![0f32; 24];
    let r = gemm_batched(
        1.0,
        Batch::new(Operand::A, &[], 2, 1, 3, 0, 0, 1).unwrap(),
        Batch::new(Operand::B, &[], 2, 1, 0, 4, 1, 1).unwrap(),
        0.0,
        BatchMut::new(&mut c6, 2, 12, 3, 4, 4, 1).unwrap(),
        Par::Seq,
    );
    assert!(r.is_ok() && c6.iter().all(|&v| v == 0.0));
    // Batch sizes differ.
    let r = gemm_batched(
        1.0,
        Batch::new(Operand::A, &a, 2, 4, 2, 2, 2, 1).unwrap(),
        Batch::new(Operand::B, &a, 1, 4, 2, 2, 2, 1).unwrap(),
        0.0,
        BatchMut::new(&mut c, 2, 4, 2, 2, 2, 1).unwrap(),
        Par::Seq,
    );
    assert!(matches!(r, Err(GemmError::Batch(_))));
}
