//! f16/bf16 conversions and the f16 GEMV (`bitnet_quant::float16`).
//!
//! - `float16/convert_l2_1t`: 64 Ki values converted again and again (in L2); bytes read plus
//!   bytes written per second against `l2_read/1t`. Functions: each direction on the best path,
//!   `f32_to_bf16` also on AVX-512 BF16's `vcvtne2ps2bf16` (where present) and on AVX2, and the
//!   `half` crate's one-value conversions (the scalar path) as the naive form.
//! - `float16/gemv_dram_*`: the f16 GEMV (f16 weights, f32 activations and sums) on the BitNet
//!   b1.58 2B4T shapes and its tied output head 128256 x 2560 (an F16 matrix in the official
//!   file), each iteration on the next of enough copies to exceed 2 GiB; weight bytes read per
//!   second against `dram_read`. `f16_avx2` forces the AVX2 + F16C path.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_quant::Par;
use bitnet_quant::float16::{self, ConvertPath};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::{bf16, f16};

const ROTATION_BYTES: usize = 2200 << 20;

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.013)
        .collect()
}

fn convert(c: &mut Criterion) {
    let name = "float16/convert_l2_1t";
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let n = 64 << 10;
    let x = values(n);
    let (mut h, mut b, mut y) = (vec![f16::ZERO; n], vec![bf16::ZERO; n], vec![0f32; n]);
    let label = format!("{n}");
    let bytes = (n * 6) as f64;
    g.throughput(Throughput::Bytes(bytes as u64));
    let best = ConvertPath::best().unwrap();
    let mut paths = vec![(best, "best"), (ConvertPath::Scalar, "half")];
    if ConvertPath::Avx2.available().unwrap() && best != ConvertPath::Avx2 {
        paths.push((ConvertPath::Avx2, "avx2"));
    }
    if ConvertPath::Avx512Bf16.available().unwrap() {
        paths.push((ConvertPath::Avx512Bf16, "avx512bf16"));
    }
    for (path, tag) in paths {
        for dir in ["f32_to_bf16", "bf16_to_f32", "f32_to_f16", "f16_to_f32"] {
            if path == ConvertPath::Avx512Bf16 && dir != "f32_to_bf16" {
                continue;
            }
            let f = format!("{dir}_{tag}");
            RowMeta::new(name, &f, &label)
                .throughput("GB/s", bytes)
                .limit("l2_read/1t")
                .note(format!(
                    "float16::{dir}_on({path:?}); 4 bytes read or written per f32, 2 per 16-bit value"
                ))
                .record();
            g.bench_function(BenchmarkId::new(&f, &label), |bch| {
                bch.iter(|| {
                    match dir {
                        "f32_to_bf16" => float16::f32_to_bf16_on(path, black_box(&x), &mut b),
                        "bf16_to_f32" => float16::bf16_to_f32_on(path, black_box(&b), &mut y),
                        "f32_to_f16" => float16::f32_to_f16_on(path, black_box(&x), &mut h),
                        _ => float16::f16_to_f32_on(path, black_box(&h), &mut y),
                    }
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn gemv_dram(c: &mut Criterion, all: bool) {
    let (par, t) = if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    };
    let name = format!("float16/gemv_dram_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    for (rows, k) in [(6912usize, 2560usize), (2560, 6912), (128256, 2560)] {
        let label = format!("{rows}x{k}");
        let one = rows * k * 2;
        let copies = ROTATION_BYTES.div_ceil(one).max(2);
        let pattern: Vec<f16> = values(1 << 16).iter().map(|&v| f16::from_f32(v)).collect();
        let w: Vec<Vec<f16>> = (0..copies)
            .map(|_| pattern.iter().cycle().take(rows * k).copied().collect())
            .collect();
        let x = values(k);
        let mut y = vec![0f32; rows];
        g.throughput(Throughput::Bytes(one as u64));
        let mut paths = vec![(ConvertPath::best().unwrap(), "f16")];
        if ConvertPath::Avx2.available().unwrap() && paths[0].0 != ConvertPath::Avx2 {
            paths.push((ConvertPath::Avx2, "f16_avx2"));
        }
        for (path, f) in paths {
            RowMeta::new(&name, f, &label)
                .throughput("GB/s", one as f64)
                .limit(&format!("dram_read/{t}"))
                .note(format!(
                    "float16::gemm_f16_on({path:?}), 1 token; weight bytes read per second, rotating {copies} copies ({:.1} GiB)",
                    (copies * one) as f64 / (1u64 << 30) as f64
                ))
                .record();
            let mut i = 0;
            g.bench_function(BenchmarkId::new(f, &label), |b| {
                b.iter(|| {
                    i = (i + 1) % copies;
                    float16::gemm_f16_on(path, &w[i], rows, k, &x, 1, black_box(&mut y), par)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    convert(c);
    gemv_dram(c, false);
    gemv_dram(c, true);
}

criterion_group! {
    name = float16;
    config = criterion_config();
    targets = benches
}
criterion_main!(float16);
