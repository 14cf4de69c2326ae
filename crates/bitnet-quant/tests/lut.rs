//! The LUT kernel on every path this machine can run (under every ceiling), bit-identical to the
//! reference on the tensor it was repacked from (I2_S, TQ2_0 and TQ1_0).

use bitnet_quant::lut::{self, LutPath, LutTernary};
use bitnet_quant::reference::{self, Activations};
use bitnet_quant::{ActScale, Int8Activations, PackedTernary, Par, Q8KActivations, TernaryFormat};
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

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs every (ceiling, path) on `packed` and `x` and compares with the reference.
fn check(packed: &PackedTernary, x: Activations<'_>, par: Par) {
    let view = packed.view();
    let lut = LutTernary::repack(&view).unwrap();
    let mut want = vec![f32::NAN; x.tokens() * view.rows()];
    reference::gemm(&view, x, &mut want).unwrap();
    for c in ceilings() {
        for path in LutPath::ALL {
            if !with_ceiling(c, || path.available().unwrap()).unwrap() {
                continue;
            }
            let mut y = vec![f32::NAN; want.len()];
            with_ceiling(c, || lut::gemm_on(path, &lut, x, &mut y, par))
                .unwrap()
                .unwrap();
            assert_eq!(bits(&y), bits(&want), "{c:?} {path:?} {}", view.format());
        }
    }
}

proptest! {
    #[test]
    fn every_path_is_bit_identical_to_the_reference(
        rows in 0usize..150,
        tokens in 1usize..5,
        blocks128 in 1usize..10,
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let par = if threads == 1 { Par::Seq } else { Par::Threads(threads.try_into().unwrap()) };
        for format in TernaryFormat::ALL {
            let k = if format == TernaryFormat::I2s { 128 * blocks128 } else { 256 * blocks128.div_ceil(2) };
            let packed = PackedTernary::quantize(format, &values(rows * k, seed, 1.0), rows, k).unwrap();
            let x = values(tokens * k, seed.rotate_left(17), 2.0);
            if format == TernaryFormat::I2s {
                let x = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
                check(&packed, Activations::Int8(&x), par);
            } else {
                let x = Q8KActivations::quantize(&x, tokens, k).unwrap();
                check(&packed, Activations::Q8K(&x), par);
            }
        }
    }
}

/// Every lookup at the table's extremes (|T| = 256 with q = −128, 254 with ±127) for long rows:
/// the i16 sums reach their largest before each widening.
#[test]
fn extreme_sums_are_exact() {
    let (rows, k) = (70, 128 * 9);
    for w in [1.0f32, -1.0] {
        let packed =
            PackedTernary::quantize(TernaryFormat::I2s, &vec![w; rows * k], rows, k).unwrap();
        for q in [127i8, -127, -128] {
            let x = Int8Activations::from_parts(2, k, vec![q; 2 * k], vec![1.0, 0.5]).unwrap();
            check(&packed, Activations::Int8(&x), Par::Seq);
        }
    }
}

/// Which paths run here; bad calls are errors.
#[test]
fn paths_are_reported_and_bad_calls_are_errors() {
    let (runnable, absent): (Vec<LutPath>, Vec<LutPath>) = LutPath::ALL
        .into_iter()
        .partition(|p| p.available().unwrap());
    eprintln!("LUT paths tested: {runnable:?}; absent here: {absent:?}");
    assert!(runnable.contains(&LutPath::best().unwrap()));
    let k = 256;
    let packed = PackedTernary::quantize(TernaryFormat::I2s, &values(3 * k, 1, 1.0), 3, k).unwrap();
    let lut = LutTernary::repack(&packed.view()).unwrap();
    let x = Int8Activations::quantize(&values(k, 2, 1.0), 1, k, ActScale::PerToken).unwrap();
    let mut y = [0f32; 3];
    for path in LutPath::ALL {
        let got = with_ceiling(Ceiling::at(Isa::Scalar), || {
            lut::gemm_on(path, &lut, Activations::Int8(&x), &mut y, Par::Seq)
        })
        .unwrap();
        assert_eq!(got.is_ok(), path == LutPath::Scalar, "{path:?}");
    }
    assert!(lut::gemm(&lut, Activations::Int8(&x), &mut [0f32; 2], Par::Seq).is_err());
    let x2 = Int8Activations::quantize(&values(128, 2, 1.0), 1, 128, ActScale::PerToken).unwrap();
    assert!(lut::gemm(&lut, Activations::Int8(&x2), &mut y, Par::Seq).is_err());
    // TQ weights pair with Q8_K activations only, I2_S with int8 only.
    let tq = PackedTernary::quantize(TernaryFormat::Tq2_0, &values(3 * k, 1, 1.0), 3, k).unwrap();
    let tq = LutTernary::repack(&tq.view()).unwrap();
    assert!(lut::gemm(&tq, Activations::Int8(&x), &mut y, Par::Seq).is_err());
    let q8k = Q8KActivations::quantize(&values(k, 2, 1.0), 1, k).unwrap();
    assert!(lut::gemm(&lut, Activations::Q8K(&q8k), &mut y, Par::Seq).is_err());
    assert!(lut::gemm(&tq, Activations::Q8K(&q8k), &mut y, Par::Seq).is_ok());
}

/// The worked example of `docs/FORMATS.md` (LUT2).
#[test]
fn formats_md_example() {
    let k = 128;
    let mut w = vec![0f32; k];
    w[..4].copy_from_slice(&[-1.0, 0.0, 1.0, 1.0]);
    let packed = PackedTernary::quantize(TernaryFormat::I2s, &w, 1, k).unwrap();
    let lut = LutTernary::repack(&packed.view()).unwrap();
    let tile = lut.tile(0);
    assert_eq!(tile[0], 0x81);
    assert!(tile[1..64].iter().all(|&b| b == 0x44));
    let mut q = vec![0i8; k];
    q[..2].copy_from_slice(&[5, -3]);
    let mut tables = vec![0u8; k / 2 * 32];
    lut::build_tables(&q, &mut tables);
    assert_eq!(
        tables[..16],
        [
            0xfe, 0xfb, 0xf8, 0x03, 0x00, 0xfd, 0x08, 0x05, 0x02, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    assert_eq!(
        tables[16..32],
        [0xff, 0xff, 0xff, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

/// A GEMM with more tokens than one chunk of tables holds (k = 2560: 80 KiB of AVX-512 tables a
/// token, three tokens a chunk), for I2_S and TQ2_0.
#[test]
fn many_tokens_go_in_chunks() {
    let (rows, tokens, k) = (70, 8, 2560);
    for format in [TernaryFormat::I2s, TernaryFormat::Tq2_0] {
        let packed = PackedTernary::quantize(format, &values(rows * k, 5, 1.0), rows, k).unwrap();
        let x = values(tokens * k, 6, 2.0);
        if format == TernaryFormat::I2s {
            let x = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
            check(
                &packed,
                Activations::Int8(&x),
                Par::Threads(2.try_into().unwrap()),
            );
        } else {
            let x = Q8KActivations::quantize(&x, tokens, k).unwrap();
            check(&packed, Activations::Q8K(&x), Par::Seq);
        }
    }
}

/// The AVX-512 kernel's doubled i16 tables hold the byte tables' entries twice. (The kernels
/// build both kinds with AVX2; the path tests above, bit-exact against the reference, check
/// those builders.)
#[test]
fn doubled_tables_repeat_the_byte_tables() {
    let q: Vec<i8> = (0..512).map(|i| (i * 37 % 256) as u8 as i8).collect();
    let mut a = vec![0u8; 256 * 32];
    let mut b = vec![0u8; 256 * 64];
    lut::build_tables(&q, &mut a);
    lut::build_tables_i16(&q, &mut b);
    for (pair, (lo_hi, doubled)) in a.chunks_exact(32).zip(b.chunks_exact(64)).enumerate() {
        for c in 0..16 {
            let entry = [lo_hi[c], lo_hi[16 + c]];
            assert_eq!(doubled[2 * c..2 * c + 2], entry, "pair {pair} entry {c}");
            assert_eq!(
                doubled[32 + 2 * c..32 + 2 * c + 2],
                entry,
                "pair {pair} entry {c}"
            );
        }
    }
}
