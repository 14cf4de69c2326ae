//! bitnet-quant's scalar reference kernels and quantizers: the baseline the SIMD kernels of the
//! following issues are measured against (same shapes, same report).
//!
//! - `quant/ternary_reference`: `reference::gemm` of every ternary format on the BitNet b1.58 2B4T
//!   shape 2560 x 2560 (rows x k) with one token (GEMV) and 8 tokens; ops = 2 per weight and
//!   token (a multiply-add), as a fraction of the int8 multiply-add peak of `cargo xtask limits`.
//! - `quant/binary_reference`: XNOR-popcount GEMV of the same shape, binary ops = 2 per bit pair.
//! - `quant/quantize`: the activation quantizers on one 2560-wide token and on 512 tokens (f32
//!   values per second), and absmean weight quantization of a 2560 x 2560 matrix.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_quant::binary::{self, BinaryActivations, BinaryMatrix};
use bitnet_quant::reference::{self, Activations};
use bitnet_quant::{
    ActScale, Int8Activations, PackedTernary, Q8KActivations, ScaleGroup, TernaryFormat,
    TernaryMatrix,
};
use bitnet_simd::CpuFeatures;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + salt) % 2003) as f32 / 1001.5 - 1.0)
        .collect()
}

fn int8_peak_key() -> &'static str {
    let f = CpuFeatures::get();
    if f.avx512vnni {
        "int8_dot_avx512vnni/1t"
    } else {
        "int8_dot_avx2/1t"
    }
}

fn ternary_reference(c: &mut Criterion) {
    let name = "quant/ternary_reference";
    let (rows, k) = (2560, 2560);
    let w = values(rows * k, 1);
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for tokens in [1usize, 8] {
        let x = values(tokens * k, 2);
        let q8k = Q8KActivations::quantize(&x, tokens, k).unwrap();
        let int8 = Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap();
        let mut y = vec![0f32; tokens * rows];
        let ops = 2.0 * (rows * k * tokens) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        let label = format!("{rows}x{k} m{tokens}");
        for format in TernaryFormat::ALL {
            let packed = PackedTernary::quantize(format, &w, rows, k).unwrap();
            let view = packed.view();
            let acts = match format {
                TernaryFormat::I2s => Activations::Int8(&int8),
                _ => Activations::Q8K(&q8k),
            };
            let f = format!("{}_ref", format.name().to_lowercase());
            RowMeta::new(name, &f, &label)
                .throughput("GOPS", ops)
                .limit(int8_peak_key())
                .note(format!(
                    "reference::gemm, {} x {} activations, plain Rust loops (no intrinsics; the compiler may vectorise them under -C target-cpu), one thread ({:.4} bits per weight)",
                    format.name(),
                    if format == TernaryFormat::I2s { "per-token int8" } else { "Q8_K" },
                    format.bits_per_weight()
                ))
                .record();
            g.bench_function(BenchmarkId::new(&f, &label), |b| {
                b.iter(|| reference::gemm(&view, acts, black_box(&mut y)).unwrap())
            });
        }
    }
    g.finish();
}

fn binary_reference(c: &mut Criterion) {
    let name = "quant/binary_reference";
    let (rows, k) = (2560, 2560);
    let w = BinaryMatrix::binarize(&values(rows * k, 3), rows, k, ScaleGroup::Row).unwrap();
    let x = BinaryActivations::binarize(&values(k, 4), 1, k).unwrap();
    let mut y = vec![0f32; rows];
    let ops = 2.0 * (rows * k) as f64;
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(ops as u64));
    let label = format!("{rows}x{k} m1");
    RowMeta::new(name, "xnor_ref", &label)
        .throughput("GOPS", ops)
        .note("binary::gemm_xnor (u64 XOR + count_ones), one thread; 2 ops per bit pair")
        .record();
    g.bench_function(BenchmarkId::new("xnor_ref", &label), |b| {
        b.iter(|| binary::gemm_xnor(&w, &x, black_box(&mut y)).unwrap())
    });
    g.finish();
}

fn quantize(c: &mut Criterion) {
    let name = "quant/quantize";
    let k = 2560;
    let mut g = c.benchmark_group(name);
    for tokens in [1usize, 512] {
        let x = values(tokens * k, 5);
        let n = (tokens * k) as f64;
        g.throughput(Throughput::Elements(n as u64));
        let label = format!("{tokens}x{k}");
        RowMeta::new(name, "int8_per_token", &label)
            .throughput("Gelem/s", n)
            .note("Int8Activations::quantize, per token (absmax, round half even, sums)")
            .record();
        g.bench_function(BenchmarkId::new("int8_per_token", &label), |b| {
            b.iter(|| {
                Int8Activations::quantize(black_box(&x), tokens, k, ActScale::PerToken).unwrap()
            })
        });
        RowMeta::new(name, "q8_k", &label)
            .throughput("Gelem/s", n)
            .note("Q8KActivations::quantize (ggml's Q8_K reference: 256-blocks, block sums)")
            .record();
        g.bench_function(BenchmarkId::new("q8_k", &label), |b| {
            b.iter(|| Q8KActivations::quantize(black_box(&x), tokens, k).unwrap())
        });
    }
    let w = values(k * k, 6);
    let n = (k * k) as f64;
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    let label = format!("{k}x{k}");
    RowMeta::new(name, "absmean_weights", &label)
        .throughput("Gelem/s", n)
        .note("TernaryMatrix::quantize_absmean, one scale per tensor")
        .record();
    g.bench_function(BenchmarkId::new("absmean_weights", &label), |b| {
        b.iter(|| TernaryMatrix::quantize_absmean(black_box(&w), k, k, ScaleGroup::Tensor).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = ternary_reference, binary_reference, quantize
}
criterion_main!(benches);
