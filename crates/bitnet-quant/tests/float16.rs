//! The f16/bf16 conversions on every path this machine can run (forced through the per-call
//! ceiling) against the `half` crate bit for bit: exhaustively over the 65,536 16-bit values,
//! on f32 edge cases (zeros, infinities, NaN payloads, ties, subnormals, overflow) and on random
//! f32 bits, at every length and address; `vcvtne2ps2bf16` against its stated flushing.

mod common;

use bitnet_quant::float16::{self, ConvertPath};
use bitnet_simd::isa::{Ceiling, with_ceiling};
use common::ceilings;
use half::{bf16, f16};
use proptest::prelude::*;

/// Every (ceiling, path) pair this machine can run.
fn runnable() -> Vec<(Ceiling, ConvertPath)> {
    let mut out = Vec::new();
    for c in ceilings() {
        for p in ConvertPath::ALL {
            if with_ceiling(c, || p.available().unwrap()).unwrap() {
                out.push((c, p));
            }
        }
    }
    out
}

fn f32_to_f16_on(c: Ceiling, p: ConvertPath, x: &[f32]) -> Vec<u16> {
    let mut out = vec![f16::from_bits(0x5555); x.len()];
    with_ceiling(c, || float16::f32_to_f16_on(p, x, &mut out))
        .unwrap()
        .unwrap();
    out.iter().map(|h| h.to_bits()).collect()
}

fn f32_to_bf16_on(c: Ceiling, p: ConvertPath, x: &[f32]) -> Vec<u16> {
    let mut out = vec![bf16::from_bits(0x5555); x.len()];
    with_ceiling(c, || float16::f32_to_bf16_on(p, x, &mut out))
        .unwrap()
        .unwrap();
    out.iter().map(|h| h.to_bits()).collect()
}

/// f32 inputs a conversion must get right: signed zeros, infinities, quiet and signaling NaNs
/// with payloads, f32 subnormals, exact bf16 and f16 rounding ties with even and odd last bits,
/// the f16 overflow threshold, the f16 subnormal range, the largest f32.
fn edge_cases() -> Vec<f32> {
    let mut v: Vec<f32> = [
        0x0000_0000u32,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0xFFC0_0001,
        0x7F80_0001,
        0xFF80_0001,
        0x7FBF_FFFF,
        0x7F81_2345,
        0x0000_0001,
        0x8000_0001,
        0x007F_FFFF,
        0x0040_0000,
        0x0080_0000,
        0x3F80_8000,
        0x3F81_8000,
        0x3F80_8001,
        0x3F80_7FFF,
        0x7F7F_FFFF,
        0xFF7F_FFFF,
        0x7F7F_8000,
        0x0000_8000,
        0x0001_8000,
    ]
    .map(f32::from_bits)
    .to_vec();
    v.extend([
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        1e9,
        6.1e-5,
        5.96e-8,
        2.98e-8,
        2.99e-8,
        1e-10,
        1.0 + f32::EPSILON,
        1.0 / 3.0,
        -2.5,
        0.1,
    ]);
    // Every f16 and every bf16 value as f32, and the midpoints between neighbours.
    for h in 0..=u16::MAX {
        v.push(f16::from_bits(h).to_f32());
        v.push(bf16::from_bits(h).to_f32());
        let next = f16::from_bits(h.wrapping_add(1)).to_f32();
        v.push((f16::from_bits(h).to_f32() + next) / 2.0);
        v.push(f32::from_bits((u32::from(h) << 16) | 0x8000));
    }
    v
}

fn random_bits(n: usize, seed: u64) -> Vec<f32> {
    common::xorshift(n, seed)
        .map(|s| f32::from_bits(s as u32))
        .collect()
}

#[test]
fn sixteen_bit_values_widen_exactly() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let f16s: Vec<f16> = all.iter().map(|&b| f16::from_bits(b)).collect();
    let bf16s: Vec<bf16> = all.iter().map(|&b| bf16::from_bits(b)).collect();
    for (c, p) in runnable() {
        // Whole, and from an odd element (an address that is 2 mod 4) with a ragged length.
        for (lo, hi) in [(0, all.len()), (1, all.len() - 6)] {
            let mut out = vec![0f32; hi - lo];
            with_ceiling(c, || float16::f16_to_f32_on(p, &f16s[lo..hi], &mut out))
                .unwrap()
                .unwrap();
            for (i, (o, h)) in out.iter().zip(&f16s[lo..hi]).enumerate() {
                assert_eq!(
                    o.to_bits(),
                    h.to_f32().to_bits(),
                    "{p:?} {c:?} f16 {:#06x}",
                    lo + i
                );
            }
            with_ceiling(c, || float16::bf16_to_f32_on(p, &bf16s[lo..hi], &mut out))
                .unwrap()
                .unwrap();
            for (i, (o, h)) in out.iter().zip(&bf16s[lo..hi]).enumerate() {
                assert_eq!(
                    o.to_bits(),
                    h.to_f32().to_bits(),
                    "{p:?} {c:?} bf16 {:#06x}",
                    lo + i
                );
            }
        }
    }
}

/// Whether `vcvtne2ps2bf16` flushes this conversion: a subnormal input or a subnormal result.
fn flushed_by_hardware(x: f32, exact: u16) -> bool {
    x.is_subnormal() || bf16::from_bits(exact).to_f32().is_subnormal()
}

#[test]
fn narrowing_matches_half() {
    let mut inputs = edge_cases();
    inputs.extend(random_bits(1 << 20, 42));
    let want_f16: Vec<u16> = inputs.iter().map(|&x| f16::from_f32(x).to_bits()).collect();
    let want_bf16: Vec<u16> = inputs
        .iter()
        .map(|&x| bf16::from_f32(x).to_bits())
        .collect();
    let mut paths_seen = Vec::new();
    for (c, p) in runnable() {
        paths_seen.push(p);
        let got = f32_to_f16_on(c, p, &inputs);
        for (i, (&g, &w)) in got.iter().zip(&want_f16).enumerate() {
            assert_eq!(g, w, "{p:?} {c:?} f16({:#010x})", inputs[i].to_bits());
        }
        let got = f32_to_bf16_on(c, p, &inputs);
        for (i, (&g, &w)) in got.iter().zip(&want_bf16).enumerate() {
            let x = inputs[i];
            if p == ConvertPath::Avx512Bf16 && flushed_by_hardware(x, w) {
                // Flushed to zero of the same sign (module docs of float16).
                assert_eq!(
                    g,
                    w & 0x8000,
                    "{p:?} {c:?} flushes bf16({:#010x})",
                    x.to_bits()
                );
            } else {
                assert_eq!(g, w, "{p:?} {c:?} bf16({:#010x})", x.to_bits());
            }
        }
    }
    eprintln!("conversion paths run: {paths_seen:?}");
    let absent: Vec<_> = ConvertPath::ALL
        .iter()
        .filter(|p| !paths_seen.contains(p))
        .collect();
    eprintln!("conversion paths this machine cannot run: {absent:?}");
}

#[test]
fn best_path_is_exact_and_bad_calls_are_errors() {
    let best = ConvertPath::best().unwrap();
    assert_ne!(best, ConvertPath::Avx512Bf16);
    let x = [1.0f32, 2.0, 3.0];
    let mut short = [f16::ZERO; 2];
    let err = float16::f32_to_f16(&x, &mut short).unwrap_err();
    assert!(err.to_string().contains("dst"), "{err}");
    let mut short = [0f32; 2];
    assert!(float16::bf16_to_f32(&[bf16::ONE; 3], &mut short).is_err());
    // A path above the ceiling is an error, not a silent fallback.
    let scalar = Ceiling::at(bitnet_simd::Isa::Scalar);
    for p in [
        ConvertPath::Avx2,
        ConvertPath::Avx512,
        ConvertPath::Avx512Bf16,
    ] {
        let mut out = [bf16::ZERO; 3];
        let r = with_ceiling(scalar, || float16::f32_to_bf16_on(p, &x, &mut out)).unwrap();
        assert!(r.is_err(), "{p:?} under a scalar ceiling");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every length (ragged against 8, 16 and 32 lanes) from every offset.
    #[test]
    fn any_length_and_offset(seed in any::<u64>(), len in 0usize..100, off in 0usize..4) {
        let x = random_bits(len + off, seed);
        let x = &x[off..];
        let want: Vec<u16> = x.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let want16: Vec<u16> = x.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
        for (c, p) in runnable() {
            let got = f32_to_bf16_on(c, p, x);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let ok = g == w
                    || (p == ConvertPath::Avx512Bf16 && flushed_by_hardware(x[i], w) && g == w & 0x8000);
                prop_assert!(ok, "{:?} {:?} bf16 at {}", p, c, i);
            }
            prop_assert_eq!(&f32_to_f16_on(c, p, x), &want16);
        }
    }
}

/// Which weight/activation kinds a GEMM check runs.
#[derive(Clone, Copy, Debug)]
enum Kind {
    F16,
    Bf16F32,
    Bf16,
}

/// The GEMM of `kind` on every path against the f64 product within the path's stated bound.
fn check_gemm(kind: Kind, rows: usize, k: usize, tokens: usize, seed: u64) {
    let wv = common::gaussian(rows * k, seed);
    let xv = common::values(tokens * k, seed ^ 3, 2.0);
    let w16: Vec<f16> = wv.iter().map(|&v| f16::from_f32(v)).collect();
    let wb: Vec<bf16> = wv.iter().map(|&v| bf16::from_f32(v)).collect();
    let xb: Vec<bf16> = xv.iter().map(|&v| bf16::from_f32(v)).collect();
    // The exact operands: the 16-bit values as f32.
    let (w, x): (Vec<f32>, Vec<f32>) = match kind {
        Kind::F16 => (w16.iter().map(|v| v.to_f32()).collect(), xv.clone()),
        Kind::Bf16F32 => (wb.iter().map(|v| v.to_f32()).collect(), xv.clone()),
        Kind::Bf16 => (
            wb.iter().map(|v| v.to_f32()).collect(),
            xb.iter().map(|v| v.to_f32()).collect(),
        ),
    };
    let par = bitnet_quant::Par::threads_or_seq(2);
    for (c, p) in runnable() {
        let mut y = vec![f32::NAN; rows * tokens];
        with_ceiling(c, || match kind {
            Kind::F16 => float16::gemm_f16_on(p, &w16, rows, k, &xv, tokens, &mut y, par),
            Kind::Bf16F32 => float16::gemm_bf16_f32_on(p, &wb, rows, k, &xv, tokens, &mut y, par),
            Kind::Bf16 => float16::gemm_bf16_on(p, &wb, rows, k, &xb, tokens, &mut y, par),
        })
        .unwrap()
        .unwrap();
        for t in 0..tokens {
            for r in 0..rows {
                let (mut dot, mut mag) = (0f64, 0f64);
                for i in 0..k {
                    let prod = f64::from(w[r * k + i]) * f64::from(x[t * k + i]);
                    dot += prod;
                    mag += prod.abs();
                }
                let terms = match (kind, p) {
                    (_, ConvertPath::Scalar) => k as f64,
                    // The packed GEMMs (16 tokens and more for bf16 x bf16, 8 for f32
                    // activations on AVX-512): one lane per output.
                    (Kind::Bf16, ConvertPath::Avx512Bf16) if tokens >= 16 => k as f64 + 1.0,
                    (Kind::Bf16, ConvertPath::Avx512Bf16) => k.div_ceil(16) as f64 + 16.0,
                    (_, ConvertPath::Avx512 | ConvertPath::Avx512Bf16) if tokens >= 8 => {
                        k as f64 + 1.0
                    }
                    _ => k.div_ceil(32) as f64 + 16.0,
                };
                let bound = terms * f64::from(f32::EPSILON) * mag;
                let got = f64::from(y[t * rows + r]);
                assert!(
                    (got - dot).abs() <= bound,
                    "{kind:?} {p:?} {c:?} r{r} t{t} k{k}: {got} vs {dot}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gemms_meet_their_bound(
        kind in 0usize..3, rows in 0usize..70, k in 0usize..100, tokens in 0usize..20,
        seed in any::<u64>()
    ) {
        let kind = [Kind::F16, Kind::Bf16F32, Kind::Bf16][kind];
        check_gemm(kind, rows, k, tokens, seed);
    }
}

#[test]
fn gemms_on_long_rows_and_bad_shapes() {
    for kind in [Kind::F16, Kind::Bf16F32, Kind::Bf16] {
        check_gemm(kind, 5, 2560 + 3, 1, 7);
        check_gemm(kind, 3, 6912, 5, 8);
        // More tokens than one block of the vdpbf16ps GEMM (64), ragged against its tiles.
        check_gemm(kind, 6, 77, 70, 9);
        // The packed bf16 GEMM: rows ragged against its 64-row panels, odd k, token tiles of 6.
        check_gemm(kind, 130, 77, 19, 10);
        check_gemm(kind, 65, 2561, 16, 11);
        check_gemm(kind, 1, 1, 17, 12);
    }
    let w = vec![f16::ONE; 6];
    let x = vec![1f32; 3];
    let mut y = vec![0f32; 2];
    assert!(float16::gemm_f16(&w, 2, 3, &x, 1, &mut y, bitnet_quant::Par::Seq).is_ok());
    assert_eq!(y, [3.0, 3.0]);
    let err = float16::gemm_f16(&w, 3, 3, &x, 1, &mut y, bitnet_quant::Par::Seq).unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
    let err = float16::gemm_f16(&w, 2, 3, &x, 2, &mut y, bitnet_quant::Par::Seq).unwrap_err();
    assert!(err.to_string().contains("activations"), "{err}");
    let wb = vec![bf16::ONE; 6];
    let err = float16::gemm_bf16(
        &wb,
        2,
        3,
        &[bf16::ONE; 3],
        1,
        &mut [0f32; 3],
        bitnet_quant::Par::Seq,
    )
    .unwrap_err();
    assert!(err.to_string().contains("output"), "{err}");
}

/// `vdpbf16ps` treats subnormal bf16 inputs as zero (module docs); the exact paths do not.
#[test]
fn dpbf16_flushes_subnormal_inputs() {
    let tiny = bf16::from_bits(0x0001); // the smallest subnormal bf16
    let w = vec![tiny; 32];
    let x = vec![bf16::from_f32(1.0); 32];
    for (c, p) in runnable() {
        let mut y = [f32::NAN];
        with_ceiling(c, || {
            float16::gemm_bf16_on(p, &w, 1, 32, &x, 1, &mut y, bitnet_quant::Par::Seq)
        })
        .unwrap()
        .unwrap();
        let exact = 32.0 * tiny.to_f32();
        let want = if p == ConvertPath::Avx512Bf16 {
            0.0
        } else {
            exact
        };
        assert_eq!(y[0], want, "{p:?} {c:?}");
    }
}
