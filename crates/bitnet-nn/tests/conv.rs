//! Direct, im2col and Winograd convolutions against the f64 reference over random shapes
//! (stride, padding, ragged output sizes, 1×1 images), on every ISA level this machine can
//! run; bad shapes are errors.

mod common;

use bitnet_nn::conv::{self, Conv2d, winograd};
use bitnet_nn::{NnError, Par, reference};
use bitnet_simd::isa::with_ceiling;
use common::{EPS, ceilings, close, values};
use proptest::prelude::*;

fn check(shape: Conv2d, seed: u64, with_bias: bool, threads: usize) {
    let (xl, wl, yl) = shape.lens().unwrap();
    let x = values(xl, seed, 2.0, false);
    let w = values(wl, seed ^ 1, 1.0, false);
    let b = values(shape.out_ch, seed ^ 2, 1.0, false);
    let bias = with_bias.then_some(&b[..]);
    let want = reference::conv2d(&shape, &x, &w, bias);
    let n = shape.terms() as f64;
    let max = |v: &[f32]| v.iter().fold(0f64, |m, &a| m.max(f64::from(a.abs())));
    let wino_mag = 9.0 * shape.in_ch as f64 * max(&w) * max(&x) + max(&b);
    let par = Par::threads_or_seq(threads);
    let winograd_ok = (shape.kh, shape.kw, shape.stride) == (3, 3, 1);
    for c in ceilings() {
        for (kind, bound) in [
            ("direct", (n + 2.0) * EPS),
            ("im2col", (n + 2.0) * EPS),
            ("winograd", 0.0),
        ] {
            if kind == "winograd" && !winograd_ok {
                continue;
            }
            let mut y = vec![f32::NAN; yl];
            with_ceiling(c, || match kind {
                "direct" => conv::conv2d_direct(&shape, &x, &w, bias, &mut y, par),
                "im2col" => conv::conv2d_im2col(&shape, &x, &w, bias, &mut y, par),
                _ => conv::conv2d_winograd(&shape, &x, &w, bias, &mut y, par),
            })
            .unwrap()
            .unwrap();
            for (i, (&got, &(v, mag))) in y.iter().zip(&want).enumerate() {
                let b = if kind == "winograd" {
                    (4.0 * n + 64.0) * EPS * wino_mag
                } else {
                    bound * mag
                };
                assert!(
                    close(got, v, b),
                    "{c:?} {kind} {shape:?} at {i}: {got} vs {v}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn convolutions_match_the_reference(
        batch in 1usize..3, in_ch in 1usize..5, out_ch in 1usize..5,
        height in 1usize..12, width in 1usize..12, k in 1usize..4, stride in 1usize..3,
        pad in 0usize..3, seed in any::<u64>(), with_bias in any::<bool>(), threads in 1usize..3,
    ) {
        let shape = Conv2d { batch, in_ch, height, width, out_ch, kh: k, kw: k, stride, pad };
        prop_assume!(shape.output_hw().is_ok());
        check(shape, seed, with_bias, threads);
    }

    #[test]
    fn winograd_on_3x3_layers(
        in_ch in 1usize..9, out_ch in 1usize..9, height in 1usize..20, width in 1usize..20,
        pad in 0usize..2, seed in any::<u64>(),
    ) {
        let shape = Conv2d { batch: 1, in_ch, height, width, out_ch, kh: 3, kw: 3, stride: 1, pad };
        prop_assume!(shape.output_hw().is_ok());
        check(shape, seed, true, 2);
    }
}

#[test]
fn a_cnn_layer_and_the_transforms() {
    // 32 channels in and out, 28×28, padding 1 (a ResNet-style layer, small).
    let shape = Conv2d {
        batch: 1,
        in_ch: 32,
        height: 28,
        width: 28,
        out_ch: 32,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    check(shape, 5, true, 2);
    // The transforms of a delta kernel and a constant tile.
    let mut g = [0f32; 9];
    g[4] = 1.0;
    let u = winograd::kernel_transform(&g, 1, 1).unwrap();
    assert_eq!(u.len(), 16);
    let ones = [1f32; 16];
    let v = winograd::input_transform(&ones);
    let m: [f32; 16] = core::array::from_fn(|i| u[i] * v[i]);
    // A delta kernel on a constant image gives the constant.
    assert_eq!(winograd::output_transform(&m), [1.0; 4]);
}

#[test]
fn bad_shapes_are_errors() {
    let shape = Conv2d {
        batch: 1,
        in_ch: 1,
        height: 2,
        width: 2,
        out_ch: 1,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 0,
    };
    assert!(matches!(shape.output_hw(), Err(NnError::Invalid { .. })));
    let ok = Conv2d { pad: 1, ..shape };
    let mut y = vec![0f32; 4];
    assert!(matches!(
        conv::conv2d_direct(&ok, &[0.0; 3], &[0.0; 9], None, &mut y, Par::Seq),
        Err(NnError::Length { .. })
    ));
    let strided = Conv2d { stride: 2, ..ok };
    assert!(matches!(
        conv::conv2d_winograd(
            &strided,
            &[0.0; 4],
            &[0.0; 9],
            None,
            &mut [0.0; 1],
            Par::Seq
        ),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        conv::conv2d_im2col(&ok, &[0.0; 4], &[0.0; 9], Some(&[0.0; 2]), &mut y, Par::Seq),
        Err(NnError::Length { .. })
    ));
}
