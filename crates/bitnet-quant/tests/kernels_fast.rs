//! The fast kernels on every path this machine can run (forced through the per-call ceiling),
//! against the reference: I2_S bit-identical, TQ2_0 and TQ1_0 exact in their integer parts and
//! within their stated bound.

use bitnet_quant::formats::native::NativeTernary;
use bitnet_quant::formats::{q8_k::BlockQ8K, tq1_0, tq2_0};
use bitnet_quant::kernels::{self, Path};
use bitnet_quant::reference::{self, Activations};
use bitnet_quant::{
    ActScale, Int8Activations, PackedTernary, Par, Q8KActivations, TernaryFormat, TernaryWeights,
};
use bitnet_simd::isa::{Ceiling, Isa, testable_isas, with_ceiling};
use half::f16;
use proptest::prelude::*;

/// Every ceiling to run under: each testable level with its extensions, and AVX-512 without them
/// (which takes the AVX2 kernels).
fn ceilings() -> Vec<Ceiling> {
    let isas = testable_isas().unwrap();
    let mut v: Vec<Ceiling> = isas.iter().copied().map(Ceiling::at).collect();
    if isas.contains(&Isa::Avx512) {
        v.push(Ceiling::plain(Isa::Avx512));
    }
    v
}

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

/// The paths that may run under ceiling `c`.
fn paths_under(c: Ceiling) -> Vec<Path> {
    with_ceiling(c, || {
        Path::ALL
            .into_iter()
            .filter(|p| p.available().unwrap())
            .collect()
    })
    .unwrap()
}

/// One run of the public layout (and of the native one, when given) per ceiling and per path
/// that ceiling allows, labelled.
fn all_runs(
    w: &TernaryWeights<'_>,
    native: Option<&NativeTernary>,
    x: Activations<'_>,
    par: Par,
) -> Vec<(String, Vec<f32>)> {
    let mut runs = Vec::new();
    for c in ceilings() {
        for path in paths_under(c) {
            let mut y = vec![f32::NAN; x.tokens() * w.rows()];
            with_ceiling(c, || kernels::gemm_on(path, w, x, &mut y, par))
                .unwrap()
                .unwrap();
            runs.push((format!("{c:?} {path:?} public"), y));
            if let Some(n) = native {
                let mut y = vec![f32::NAN; x.tokens() * w.rows()];
                with_ceiling(c, || kernels::gemm_native_on(path, n, x, &mut y, par))
                    .unwrap()
                    .unwrap();
                runs.push((format!("{c:?} {path:?} native"), y));
            }
        }
    }
    runs
}

fn reference_of(w: &TernaryWeights<'_>, x: Activations<'_>) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.tokens() * w.rows()];
    reference::gemm(w, x, &mut y).unwrap();
    y
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #[test]
    fn every_path_matches_the_reference(
        rows in 0usize..14,
        tokens in 1usize..10,
        blocks128 in 1usize..7,
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let par = if threads == 1 { Par::Seq } else { Par::Threads(threads.try_into().unwrap()) };
        for format in TernaryFormat::ALL {
            let k = if format == TernaryFormat::I2s { 128 * blocks128 } else { 256 * blocks128.div_ceil(2) };
            let w = values(rows * k, seed, 1.0);
            let x = values(tokens * k, seed.rotate_left(29), 3.0);
            let packed = PackedTernary::quantize(format, &w, rows, k).unwrap();
            let view = packed.view();
            let int8 = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
            let q8k = (k % 256 == 0).then(|| Q8KActivations::quantize(&x, tokens, k).unwrap());
            let acts = match (format, &q8k) {
                (TernaryFormat::I2s, _) => Activations::Int8(&int8),
                (_, Some(q)) => Activations::Q8K(q),
                _ => unreachable!(),
            };
            let want = reference_of(&view, acts);
            let native = (format != TernaryFormat::Tq1_0 && k % 256 == 0)
                .then(|| NativeTernary::repack(&view).unwrap());
            let runs = all_runs(&view, native.as_ref(), acts, par);
            for (label, got) in runs {
                if format != TernaryFormat::I2s {
                    let q8k = q8k.as_ref().unwrap();
                    let worst = worst_bound_ratio(&view, q8k, &got);
                    prop_assert!(worst <= 1.0, "{} error {} x the bound", label, worst);
                } else {
                    prop_assert_eq!(bits(&got), bits(&want), "{} {}", label, format);
                }
            }
        }
    }
}

/// The largest `|got − exact| / ((nb + 6) ε Σ|w||x|)` over all outputs of a TQ product: at
/// most 1 when every output is within the stated bound.
fn worst_bound_ratio(view: &TernaryWeights<'_>, q8k: &Q8KActivations, got: &[f32]) -> f64 {
    let (rows, k) = (view.rows(), view.k());
    let wd = view.dequantize();
    let mut worst = 0f64;
    for t in 0..q8k.tokens() {
        for r in 0..rows {
            let (mut exact, mut mag) = (0f64, 0f64);
            for (b, blk) in q8k.row(t).iter().enumerate() {
                for j in 0..256 {
                    let p =
                        f64::from(wd[r * k + b * 256 + j]) * f64::from(blk.d) * f64::from(blk.q[j]);
                    exact += p;
                    mag += p.abs();
                }
            }
            let bound = (k as f64 / 256.0 + 6.0) * f64::from(f32::EPSILON) * mag;
            let err = (f64::from(got[t * rows + r]) - exact).abs();
            worst = worst.max(if err == 0.0 { 0.0 } else { err / bound });
        }
    }
    worst
}

/// Long TQ rows through the GEMM tiles (which take the scales of 16 blocks at a time): 37
/// blocks are two full runs and a partial one; 9 tokens are two tiles and a single token.
#[test]
fn long_tq_gemm_is_within_bound() {
    let (rows, tokens, k) = (6, 9, 37 * 256);
    let w = values(rows * k, 41, 1.0);
    let x = values(tokens * k, 42, 3.0);
    let q8k = Q8KActivations::quantize(&x, tokens, k).unwrap();
    for format in [TernaryFormat::Tq2_0, TernaryFormat::Tq1_0] {
        let packed = PackedTernary::quantize(format, &w, rows, k).unwrap();
        let view = packed.view();
        let native = NativeTernary::repack(&view).ok();
        for (label, got) in all_runs(&view, native.as_ref(), Activations::Q8K(&q8k), Par::Seq) {
            let worst = worst_bound_ratio(&view, &q8k, &got);
            assert!(worst <= 1.0, "{label} {format}: {worst} x the bound");
        }
    }
}

/// With unit scales every float step of TQ2_0 and TQ1_0 is exact, so the fast paths must equal
/// the reference bit for bit: their integer parts are exact.
#[test]
fn tq_integer_parts_are_exact() {
    for format in [TernaryFormat::Tq2_0, TernaryFormat::Tq1_0] {
        unit_scale_blocks_are_exact(format);
    }
}

fn unit_scale_blocks_are_exact(format: TernaryFormat) {
    let (rows, tokens, nb) = (7, 6, 3);
    let k = nb * 256;
    let mut data = Vec::new();
    for i in 0..rows * nb {
        let codes: [u8; 256] = std::array::from_fn(|j| ((i * 31 + j * 7) % 3) as u8);
        if format == TernaryFormat::Tq2_0 {
            data.extend_from_slice(&tq2_0::encode_block(&codes, f16::ONE).unwrap());
        } else {
            data.extend_from_slice(&tq1_0::encode_block(&codes, f16::ONE).unwrap());
        }
    }
    let view = TernaryWeights::new(format, &data, rows, k).unwrap();
    let blocks: Vec<BlockQ8K> = (0..tokens * nb)
        .map(|i| {
            let q: [i8; 256] = std::array::from_fn(|j| {
                if (i + j) % 5 == 0 {
                    -128
                } else {
                    ((i * j * 37 + 11) % 256) as u8 as i8
                }
            });
            let mut bytes = [0u8; 292];
            bytes[..4].copy_from_slice(&1.0f32.to_le_bytes());
            for (o, &v) in bytes[4..260].iter_mut().zip(&q) {
                *o = v as u8;
            }
            for (s, c) in bytes[260..].chunks_exact_mut(2).zip(q.chunks_exact(16)) {
                s.copy_from_slice(&c.iter().map(|&v| i16::from(v)).sum::<i16>().to_le_bytes());
            }
            BlockQ8K::from_bytes(&bytes).unwrap()
        })
        .collect();
    let x = Q8KActivations::from_blocks(tokens, k, blocks).unwrap();
    let want = reference_of(&view, Activations::Q8K(&x));
    let native = NativeTernary::repack(&view).ok();
    for (label, got) in all_runs(&view, native.as_ref(), Activations::Q8K(&x), Par::Seq) {
        assert_eq!(bits(&got), bits(&want), "{label} {format}");
    }
}

/// Which paths this machine runs (the tests above cover each of them) and which it cannot.
#[test]
fn report_paths() {
    let runnable = paths_under(Ceiling::at(*testable_isas().unwrap().last().unwrap()));
    let absent: Vec<Path> = Path::ALL
        .into_iter()
        .filter(|p| !runnable.contains(p))
        .collect();
    eprintln!("ternary kernel paths tested: {runnable:?}; absent here: {absent:?}");
    assert!(runnable.contains(&Path::Reference));
    assert!(runnable.contains(&Path::for_format(TernaryFormat::I2s).unwrap()));
}

/// A forced path the ceiling does not allow is an error, not a silent fallback.
#[test]
fn forced_paths_beyond_the_ceiling_are_errors() {
    let packed = PackedTernary::quantize(TernaryFormat::I2s, &values(256, 3, 1.0), 1, 256).unwrap();
    let x = values(256, 4, 1.0);
    let int8 = Int8Activations::quantize(&x, 1, 256, ActScale::PerToken).unwrap();
    let mut y = [0f32];
    for path in Path::ALL {
        let got = with_ceiling(Ceiling::at(Isa::Scalar), || {
            kernels::gemm_on(
                path,
                &packed.view(),
                Activations::Int8(&int8),
                &mut y,
                Par::Seq,
            )
        })
        .unwrap();
        assert_eq!(got.is_ok(), path == Path::Reference, "{path:?}");
    }
}

#[test]
fn paths_follow_the_ceiling() {
    // Levels this run may use (BITNET_ISA can lower the ceiling for the whole process).
    let testable = testable_isas().unwrap();
    if testable.contains(&Isa::Avx2) {
        let p = with_ceiling(Ceiling::at(Isa::Avx2), || {
            Path::for_format(TernaryFormat::I2s)
        })
        .unwrap();
        let avx_vnni = paths_under(Ceiling::at(Isa::Avx2)).contains(&Path::AvxVnni);
        assert_eq!(
            p.unwrap(),
            if avx_vnni { Path::AvxVnni } else { Path::Avx2 }
        );
    }
    let p = with_ceiling(Ceiling::at(Isa::Scalar), || {
        Path::for_format(TernaryFormat::I2s)
    })
    .unwrap();
    assert_eq!(p.unwrap(), Path::Reference);
    let vnni = bitnet_simd::dispatch::Avx512VnniToken::get()
        .unwrap()
        .is_some();
    if vnni {
        for f in TernaryFormat::ALL {
            assert_eq!(Path::for_format(f).unwrap(), Path::Avx512Vnni);
        }
    }
    // AVX-512 without its extensions runs the AVX2 kernels, TQ1_0's included.
    if testable.contains(&Isa::Avx512) {
        for f in TernaryFormat::ALL {
            let p = with_ceiling(Ceiling::plain(Isa::Avx512), || Path::for_format(f)).unwrap();
            assert_eq!(p.unwrap(), Path::Avx2);
        }
    }
}

#[test]
fn native_rejects_what_it_cannot_hold() {
    let w = PackedTernary::quantize(TernaryFormat::Tq1_0, &[0.5; 256], 1, 256).unwrap();
    assert!(NativeTernary::repack(&w.view()).is_err());
    let w = PackedTernary::quantize(TernaryFormat::I2s, &[0.5; 384], 1, 384).unwrap();
    assert!(NativeTernary::repack(&w.view()).is_err());
    let w = PackedTernary::quantize(TernaryFormat::I2s, &[0.5; 512], 2, 256).unwrap();
    let n = NativeTernary::repack(&w.view()).unwrap();
    let q8k = Q8KActivations::quantize(&[1.0; 256], 1, 256).unwrap();
    let mut y = [0f32; 2];
    assert!(kernels::gemm_native(&n, Activations::Q8K(&q8k), &mut y, Par::Seq).is_err());
}

/// A long native GEMV (k = 10496, more than L1 holds of activations next to the weight stream):
/// I2_S bit-identical, TQ2_0 within its bound, on every level and with two threads.
#[test]
fn long_native_gemv_is_exact_and_within_bound() {
    let (rows, k) = (9, 256 * 41);
    let w = values(rows * k, 7, 1.0);
    let x = values(k, 8, 2.0);
    for format in [TernaryFormat::I2s, TernaryFormat::Tq2_0] {
        let packed = PackedTernary::quantize(format, &w, rows, k).unwrap();
        let native = NativeTernary::repack(&packed.view()).unwrap();
        let int8 = Int8Activations::quantize(&x, 1, k, ActScale::PerToken).unwrap();
        let q8k = Q8KActivations::quantize(&x, 1, k).unwrap();
        let acts = if format == TernaryFormat::I2s {
            Activations::Int8(&int8)
        } else {
            Activations::Q8K(&q8k)
        };
        let want = reference_of(&packed.view(), acts);
        for par in [Par::Seq, Par::Threads(2.try_into().unwrap())] {
            for (label, got) in all_runs(&packed.view(), Some(&native), acts, par) {
                if format == TernaryFormat::I2s {
                    assert_eq!(bits(&got), bits(&want), "{label}");
                } else {
                    let worst = worst_bound_ratio(&packed.view(), &q8k, &got);
                    assert!(worst <= 1.0, "{label}: {worst} x the bound");
                }
            }
        }
    }
}

/// Empty rows (k = 0) on every path, with enough tokens for the GEMM tiles: all outputs are 0.
#[test]
fn zero_depth_is_zero_everywhere() {
    let (rows, tokens) = (5, 6);
    let packed = PackedTernary::quantize(TernaryFormat::I2s, &[], rows, 0).unwrap();
    let native = NativeTernary::repack(&packed.view()).unwrap();
    let int8 = Int8Activations::quantize(&[], tokens, 0, ActScale::PerToken).unwrap();
    let acts = Activations::Int8(&int8);
    for (label, got) in all_runs(&packed.view(), Some(&native), acts, Par::Seq) {
        assert!(got.iter().all(|&v| v == 0.0), "{label}");
    }
}
