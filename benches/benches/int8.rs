//! The exact int8 GEMM (`bitnet_quant::int8`) on BitNet b1.58 2B4T shapes, next to the native
//! I2_S ternary kernel of the same shape. `C = A · Bᵀ`, A `m × k` activations, B `n × k`
//! weights; 2 ops per multiply-add, against the int8 dot peak of the instructions used.
//!
//! Functions: `u8s8` / `s8s8` (A unsigned or signed, best path), `u8s8_avx2` (forced onto the
//! AVX2 `vpmaddwd` path, against the AVX2 peak), `u8s8_ymm_vnni` (forced onto the 256-bit
//! `vpdpbusd` kernel: VEX AVX-VNNI where the CPU has it, against the AVX-VNNI peak, else its EVEX
//! twin, against the zmm peak), `ternary_i2_s` (`kernels::gemm_native` on I2_S
//! repacked: 2-bit weights instead of 8).

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, int8_peak};
use bitnet_quant::formats::native::NativeTernary;
use bitnet_quant::int8::{self, Int8Path, Operand};
use bitnet_quant::reference::Activations;
use bitnet_quant::{ActScale, Int8Activations, PackedTernary, Par, TernaryFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bytes(n: usize, salt: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7919 + salt) % 251) as u8).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    U8S8,
    S8S8,
    U8S8Avx2,
    U8S8YmmVnni,
    Ternary,
}

/// The 256-bit VNNI path this machine runs: VEX AVX-VNNI, else the EVEX twin, else none.
fn ymm_vnni_path() -> Option<Int8Path> {
    [Int8Path::AvxVnni, Int8Path::Avx512VnniYmm]
        .into_iter()
        .find(|p| p.available().unwrap())
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::U8S8,
        Kind::S8S8,
        Kind::U8S8Avx2,
        Kind::U8S8YmmVnni,
        Kind::Ternary,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::U8S8 => "u8s8",
            Kind::S8S8 => "s8s8",
            Kind::U8S8Avx2 => "u8s8_avx2",
            Kind::U8S8YmmVnni => "u8s8_ymm_vnni",
            Kind::Ternary => "ternary_i2_s",
        }
    }

    fn note(self) -> String {
        match self {
            Kind::U8S8 => format!("int8::gemm, u8 A x i8 B, {:?}", Int8Path::best().unwrap()),
            Kind::S8S8 => format!("int8::gemm, i8 A x i8 B, {:?}", Int8Path::best().unwrap()),
            Kind::U8S8Avx2 => "int8::gemm_on(Int8Path::Avx2), u8 A x i8 B".into(),
            Kind::U8S8YmmVnni => format!(
                "int8::gemm_on(Int8Path::{:?}), u8 A x i8 B",
                ymm_vnni_path().unwrap()
            ),
            Kind::Ternary => "kernels::gemm_native, I2_S repacked x per-token int8".into(),
        }
    }
}

fn group(c: &mut Criterion, all: bool) {
    let (par, t) = if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    };
    let name = format!("int8/gemm_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    for (n, k, m) in [
        (2560usize, 2560usize, 1usize),
        (2560, 2560, 64),
        (2560, 2560, 256),
        (6912, 2560, 256),
    ] {
        let label = format!("{n}x{k} m{m}");
        let a = bytes(m * k, 1);
        let a_i8: Vec<i8> = a.iter().map(|&v| v as i8).collect();
        let b: Vec<i8> = bytes(n * k, 2).into_iter().map(|v| v as i8).collect();
        let wv: Vec<f32> = b.iter().map(|&v| f32::from(v) / 127.0).collect();
        let native = NativeTernary::repack(
            &PackedTernary::quantize(TernaryFormat::I2s, &wv, n, k)
                .unwrap()
                .view(),
        )
        .unwrap();
        let xv: Vec<f32> = a_i8.iter().map(|&v| f32::from(v)).collect();
        let x = Int8Activations::quantize(&xv, m, k, ActScale::PerToken).unwrap();
        let mut out = vec![0i32; m * n];
        let mut y = vec![0f32; m * n];
        let ops = 2.0 * (m * n * k) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        let avx2 = Int8Path::Avx2.available().unwrap();
        let ymm = ymm_vnni_path();
        for kind in Kind::ALL.into_iter().filter(|&k| match k {
            Kind::U8S8Avx2 => avx2,
            Kind::U8S8YmmVnni => ymm.is_some(),
            _ => true,
        }) {
            let limit = match (kind, ymm) {
                (Kind::U8S8Avx2, _) => format!("int8_dot_avx2/{t}"),
                (Kind::U8S8YmmVnni, Some(Int8Path::AvxVnni)) => format!("int8_dot_avxvnni/{t}"),
                _ => int8_peak(t),
            };
            RowMeta::new(&name, kind.name(), &label)
                .throughput("GOPS", ops)
                .limit(&limit)
                .note(format!("{}; 2 ops per multiply-add", kind.note()))
                .record();
            g.bench_function(BenchmarkId::new(kind.name(), &label), |bench| {
                bench.iter(|| match kind {
                    Kind::U8S8 => {
                        int8::gemm(Operand::U8(&a), &b, m, n, k, black_box(&mut out), par).unwrap()
                    }
                    Kind::S8S8 => {
                        int8::gemm(Operand::I8(&a_i8), &b, m, n, k, black_box(&mut out), par)
                            .unwrap()
                    }
                    Kind::U8S8Avx2 => int8::gemm_on(
                        Int8Path::Avx2,
                        Operand::U8(&a),
                        &b,
                        m,
                        n,
                        k,
                        black_box(&mut out),
                        par,
                    )
                    .unwrap(),
                    Kind::U8S8YmmVnni => int8::gemm_on(
                        ymm.unwrap(),
                        Operand::U8(&a),
                        &b,
                        m,
                        n,
                        k,
                        black_box(&mut out),
                        par,
                    )
                    .unwrap(),
                    Kind::Ternary => bitnet_quant::kernels::gemm_native(
                        &native,
                        Activations::Int8(&x),
                        black_box(&mut y),
                        par,
                    )
                    .unwrap(),
                })
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for all in [false, true] {
        group(c, all);
    }
}

criterion_group! {
    name = int8;
    config = criterion_config();
    targets = benches
}
criterion_main!(int8);
