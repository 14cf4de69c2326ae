//! Every GEMM variant against the f64 reference, on every level this machine has, over random
//! shapes, layouts, offsets, alpha and beta.

mod common;

use bitnet_gemm::blocked::{gemm_blocked, gemm_multilevel};
use bitnet_gemm::oblivious::gemm_oblivious;
use bitnet_gemm::packed::{BlockingRequest, gemm_packed, with_blocking};
use bitnet_gemm::reference::{gemm_ikj, gemm_naive_f64};
use bitnet_gemm::small_m::gemm_small_m;
use bitnet_gemm::strassen::gemm_strassen;
use bitnet_gemm::{GemmError, MatMut, MatRef, Par, gemm};
use bitnet_simd::isa::testable_isas;
use bitnet_simd::with_isa;
use common::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    a: Stored,
    b: Stored,
    c: Stored,
    alpha: f32,
    beta: f32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        dim(),
        dim(),
        dim(),
        layout(),
        layout(),
        layout(),
        0usize..3,
        any::<u64>(),
        scalar(),
        scalar(),
    )
        .prop_map(|(m, n, k, la, lb, lc, off, seed, alpha, beta)| {
            let mut c = Stored::new(m, n, lc, off, seed ^ 3);
            if beta == 0.0 {
                // beta = 0 must overwrite: poison C to prove nothing of it leaks.
                c.data.iter_mut().skip(off).for_each(|v| *v = f32::NAN);
            }
            Case {
                a: Stored::new(m, k, la, off, seed),
                b: Stored::new(k, n, lb, 2 - off, seed ^ 1),
                c,
                alpha,
                beta,
            }
        })
}

type Variant = fn(f32, MatRef<'_>, MatRef<'_>, f32, MatMut<'_>) -> Result<(), GemmError>;

fn run(
    case: &Case,
    name: &str,
    f: impl Fn(f32, MatRef<'_>, MatRef<'_>, f32, MatMut<'_>) -> Result<(), GemmError>,
) -> Result<(), TestCaseError> {
    let mut got = case.c.clone();
    f(
        case.alpha,
        case.a.view(),
        case.b.view(),
        case.beta,
        got.view_mut(),
    )
    .unwrap();
    assert_within_bound(case.alpha, &case.a, &case.b, case.beta, &case.c, &got, name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn packed_on_every_level_and_par(case in case()) {
        for isa in testable_isas().unwrap() {
            for (pname, par) in [("seq", Par::Seq), ("all cores", Par::default())] {
                let name = format!("packed/{isa}/{pname}");
                with_isa(isa, || run(&case, &name, |al, a, b, be, c| gemm_packed(al, a, b, be, c, par))).unwrap()?;
                let name = format!("strassen(cutoff 512)/{isa}/{pname}");
                with_isa(isa, || run(&case, &name, |al, a, b, be, c| gemm_strassen(al, a, b, be, c, par))).unwrap()?;
                let name = format!("small_m/{isa}/{pname}");
                with_isa(isa, || run(&case, &name, |al, a, b, be, c| gemm_small_m(al, a, b, be, c, par))).unwrap()?;
            }
        }
    }

    #[test]
    fn packed_with_tiny_blocks(case in case(), kc in 1usize..20, mc in 1usize..200, nc in 1usize..40) {
        // Several depth blocks (beta' = 1 after the first) and several column blocks, whose
        // last panels are clipped, on small matrices.
        let request = BlockingRequest { kc: Some(kc), mc: Some(mc), nc: Some(nc) };
        for isa in testable_isas().unwrap() {
            for (pname, par) in [("seq", Par::Seq), ("all cores", Par::default())] {
                let name = format!("packed kc={kc} mc={mc} nc={nc}/{isa}/{pname}");
                with_isa(isa, || with_blocking(request, || run(&case, &name, |al, a, b, be, c| gemm_packed(al, a, b, be, c, par)))).unwrap()?;
            }
        }
    }

    #[test]
    fn references_and_entry(case in case()) {
        let variants: [(&str, Variant); 2] = [("naive_f64", gemm_naive_f64), ("ikj", gemm_ikj)];
        for (name, f) in variants {
            run(&case, name, f)?;
        }
        let blocked: [(&str, Variant); 3] =
            [("blocked", gemm_blocked), ("multilevel", gemm_multilevel), ("oblivious", gemm_oblivious)];
        for isa in testable_isas().unwrap() {
            for (name, f) in blocked {
                with_isa(isa, || run(&case, &format!("{name}/{isa}"), f)).unwrap()?;
            }
        }
        run(&case, "gemm", |al, a, b, be, c| gemm(al, a, b, be, c, Par::default()))?;
    }
}

#[test]
fn shape_mismatch_is_an_error() {
    let (a, b) = (vec![0f32; 6], vec![0f32; 8]);
    let mut c = vec![0f32; 8];
    let err = gemm(
        1.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&b, 2, 4).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 2, 4).unwrap(),
        Par::Seq,
    );
    assert!(matches!(
        err,
        Err(GemmError::ShapeMismatch {
            a_cols: 3,
            b_rows: 2,
            ..
        })
    ));
}

#[test]
fn tile_edges_exactly() {
    // Every m, n around the tile sizes of every level (MR 4/16/64, NR 4/6), k around 256.
    for isa in testable_isas().unwrap() {
        for m in [1usize, 3, 4, 5, 15, 16, 17, 31, 32, 33, 65] {
            for n in [1usize, 5, 6, 7, 11, 12, 13, 25] {
                for k in [1usize, 2, 255, 257] {
                    let a = Stored::new(m, k, Layout::RowMajor { pad: 0 }, 0, (m * 31 + n) as u64);
                    let b = Stored::new(k, n, Layout::ColMajor { pad: 1 }, 0, (k * 7 + n) as u64);
                    let c0 = Stored::new(m, n, Layout::ColMajor { pad: 0 }, 0, 5);
                    let mut got = c0.clone();
                    with_isa(isa, || {
                        gemm_packed(0.5, a.view(), b.view(), 2.0, got.view_mut(), Par::default())
                    })
                    .unwrap()
                    .unwrap();
                    assert_within_bound(
                        0.5,
                        &a,
                        &b,
                        2.0,
                        &c0,
                        &got,
                        &format!("{isa} m={m} n={n} k={k}"),
                    )
                    .unwrap();
                }
            }
        }
    }
}

#[test]
fn alpha_zero_reads_neither_a_nor_b() {
    let a = vec![f32::NAN; 6];
    let b = vec![f32::INFINITY; 12];
    let mut c = vec![2.0f32; 8];
    gemm(
        0.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&b, 3, 4).unwrap(),
        0.5,
        MatMut::row_major(&mut c, 2, 4).unwrap(),
        Par::default(),
    )
    .unwrap();
    assert!(c.iter().all(|&v| v == 1.0));
    let mut y = vec![f32::NAN; 2];
    bitnet_gemm::gemv(
        0.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        &[1.0; 3],
        0.0,
        &mut y,
        Par::Seq,
    )
    .unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
}
