//! bitnet-nn: elementwise operations, activations, softmax and norms.
//!
//! - `nn/elementwise_l2_1t`: the cheap in-place operations on 64 Ki f32 (256 KiB, in L2),
//!   against `l2_copy/1t`; the rate is copy-equivalent bytes, `(read + written) / 2` (a copy of
//!   `b` bytes reads and writes `b`), so a unary in-place op on `n` values moves `4n`.
//! - `nn/elementwise_dram_{1t,all}`: the same on 64 MiB slices of a 2.2 GiB buffer, the next
//!   slice each iteration, against `dram_copy`.
//! - `nn/reduce_dram_{1t,all}`: sum, compensated sum, dot and max over 64 MiB slices of the
//!   same buffer: bytes read per second against `dram_read`.
//! - `nn/activations_1t`: every activation on 64 Ki values in L2, elements per second, next to
//!   the naive scalar form (`std` math, one value at a time) of the same function.
//!   The log's lookup-table forms (sigmoid and GELU from a 1025-entry table over [−8, 8] with
//!   linear interpolation, `*_lut`) run here too, with their largest error measured at setup in
//!   the row's note; they are not part of the library (module docs of `bitnet_nn::act`).
//! - `nn/softmax_1t`: softmax rows of 4096 (64 rows, in L2) and one row of 128256 (the logits
//!   of a BitNet b1.58 vocabulary), exact and fast `exp`, against the naive scalar form.
//! - `nn/norm_l2_1t`, `nn/norm_dram_{1t,all}`: RMSNorm, residual add + RMSNorm, LayerNorm and
//!   RMSNorm + int8 quantization on rows of 2560 (BitNet b1.58's hidden size), 16 rows in L2 or
//!   rotating 64 MiB slices from DRAM: copy-equivalent bytes per second against `l2_copy` /
//!   `dram_copy`.
//! - `nn/attention_decode_{1t,all}`: one query against a KV cache of 512, 2048 and 4096
//!   positions, BitNet b1.58's 20 query / 5 KV heads of 128, f32 and f16 caches, flash-style;
//!   each iteration on the next of enough caches to exceed 1 GiB (a layer's cache is not in
//!   cache when its turn comes): KV bytes read per second against `dram_read`.
//! - `nn/attention_prefill_{1t,all}`: 512 causal queries on an empty-then-filled f32 cache,
//!   flash-style against naive: GFLOP/s (4 · head_dim flops per query-key pair) against the
//!   f32 FMA peak.
//! - `nn/rope_1t`: RoPE of 64 tokens × 20 heads × 128, both styles: values per second.
//! - `nn/conv3x3_{1t,all}`: 3×3 convolutions, padding 1, batch 1, on common CNN layer sizes
//!   (64 channels at 56², 128 at 28², 256 at 14²): Winograd F(2×2, 3×3), im2col + GEMM and
//!   direct; direct-equivalent GFLOP/s (2·O·C·9 per output pixel) against the f32 FMA peak.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_nn::act::{self, Activation, ExpKind};
use bitnet_nn::attention::{self, KvCache, KvStorage};
use bitnet_nn::conv::{self, Conv2d};
use bitnet_nn::rope::{Rope, RopeStyle};
use bitnet_nn::{Par, norm, reduce, softmax};
use bitnet_quant::Int8Activations;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ROTATION_BYTES: usize = 2200 << 20;
/// Values per DRAM slice (64 MiB).
const SLICE: usize = 16 << 20;

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.01)
        .collect()
}

/// `(Par, "1t" | "all")`.
fn cores(all: bool) -> (Par, &'static str) {
    if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    }
}

/// The cheap in-place operations: name, note, call on `(x, other)`.
type Cheap = (&'static str, &'static str, fn(&mut [f32], &[f32], Par));

fn cheap_ops() -> [Cheap; 6] {
    [
        ("relu", "Activation::Relu.apply", |x, _, p| {
            Activation::Relu.apply(x, p).unwrap()
        }),
        (
            "squared_relu",
            "Activation::SquaredRelu.apply",
            |x, _, p| Activation::SquaredRelu.apply(x, p).unwrap(),
        ),
        ("scale", "act::scale", |x, _, p| {
            act::scale(x, 0.999, p).unwrap()
        }),
        ("clamp", "act::clamp(-4, 4)", |x, _, p| {
            act::clamp(x, -4.0, 4.0, p).unwrap()
        }),
        (
            "add_assign",
            "act::add_assign (residual add; reads two arrays)",
            |x, b, p| act::add_assign(x, b, p).unwrap(),
        ),
        (
            "add_relu_assign",
            "act::add_relu_assign (fused; reads two arrays)",
            |x, b, p| act::add_relu_assign(x, b, p).unwrap(),
        ),
    ]
}

/// Copy-equivalent bytes, `(read + written) / 2`, per call of an op on `n` f32: a unary op
/// reads and writes `4n`, an add reads `8n` and writes `4n`.
fn copy_bytes(name: &str, n: usize) -> f64 {
    let (read, written) = match name {
        "add_assign" | "add_relu_assign" => (8 * n, 4 * n),
        // Reads the residual and delta, writes the residual and y.
        "add_rms_norm" => (8 * n, 8 * n),
        // Reads f32, writes int8.
        "rms_norm_quantize" => (4 * n, n),
        _ => (4 * n, 4 * n),
    };
    (read + written) as f64 / 2.0
}

fn elementwise_l2(c: &mut Criterion) {
    let name = "nn/elementwise_l2_1t";
    let mut g = c.benchmark_group(name);
    let n = 64 << 10;
    let mut x = values(n);
    let b = values(n);
    for (f, note, op) in cheap_ops() {
        let bytes = copy_bytes(f, n);
        g.throughput(Throughput::Bytes(bytes as u64));
        RowMeta::new(name, f, "64Ki")
            .throughput("GB/s", bytes)
            .limit("l2_copy/1t")
            .note(format!(
                "{note}, in place, 64 Ki f32 in L2; copy-equivalent bytes"
            ))
            .record();
        g.bench_function(BenchmarkId::new(f, "64Ki"), |bch| {
            bch.iter(|| op(black_box(&mut x), &b, Par::Seq))
        });
    }
    g.finish();
}

fn elementwise_dram(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("nn/elementwise_dram_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let slices = ROTATION_BYTES.div_ceil(4 * SLICE);
    let mut x = values(slices * SLICE);
    let b = values(SLICE);
    for (f, note, op) in cheap_ops() {
        let bytes = copy_bytes(f, SLICE);
        g.throughput(Throughput::Bytes(bytes as u64));
        RowMeta::new(&name, f, "64MiB")
            .throughput("GB/s", bytes)
            .limit(&format!("dram_copy/{t}"))
            .note(format!(
                "{note}, in place on the next 64 MiB of a 2.2 GiB buffer; copy-equivalent bytes"
            ))
            .record();
        let mut i = 0;
        g.bench_function(BenchmarkId::new(f, "64MiB"), |bch| {
            bch.iter(|| {
                i = (i + 1) % slices;
                op(black_box(&mut x[i * SLICE..(i + 1) * SLICE]), &b, par)
            })
        });
    }
    g.finish();
}

/// The naive scalar form of each activation: `std` math on one value at a time.
fn naive(a: Activation, x: f32) -> f32 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::SquaredRelu => x.max(0.0) * x.max(0.0),
        Activation::GeluErf => {
            // No erf in std: the f64 libm one, as a naive port would call it.
            (0.5 * f64::from(x) * (1.0 + libm::erf(f64::from(x) / std::f64::consts::SQRT_2))) as f32
        }
        Activation::GeluTanh | Activation::GeluFast => {
            0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh())
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Mish => x * x.exp().ln_1p().tanh(),
    }
}

/// The log's lookup-table activation: `f` tabulated at 1025 points over [−8, 8], linearly
/// interpolated; below and above, the limits `below(x)` and `above(x)`.
struct Lut {
    table: Vec<f32>,
    below: fn(f32) -> f32,
    above: fn(f32) -> f32,
}

const LUT_LO: f32 = -8.0;
const LUT_HI: f32 = 8.0;
const LUT_STEPS: usize = 1024;

impl Lut {
    fn new(f: fn(f64) -> f64, below: fn(f32) -> f32, above: fn(f32) -> f32) -> Lut {
        let h = f64::from(LUT_HI - LUT_LO) / LUT_STEPS as f64;
        let table = (0..=LUT_STEPS)
            .map(|i| f(f64::from(LUT_LO) + i as f64 * h) as f32)
            .collect();
        Lut {
            table,
            below,
            above,
        }
    }

    #[inline]
    fn eval(&self, x: f32) -> f32 {
        if x < LUT_LO {
            return (self.below)(x);
        }
        if x >= LUT_HI {
            return (self.above)(x);
        }
        let pos = (x - LUT_LO) * (LUT_STEPS as f32 / (LUT_HI - LUT_LO));
        let i = (pos as usize).min(LUT_STEPS - 1);
        let frac = pos - i as f32;
        let (a, b) = (self.table[i], self.table[i + 1]);
        frac.mul_add(b - a, a)
    }

    /// The largest absolute and relative error against `f` over 2^20 points of [−10, 10].
    fn max_error(&self, f: fn(f64) -> f64) -> (f64, f64) {
        let n = 1 << 20;
        (0..=n).fold((0f64, 0f64), |(ea, er), i| {
            let x = -10.0 + 20.0 * i as f32 / n as f32;
            let (got, want) = (f64::from(self.eval(x)), f(f64::from(x)));
            let e = (got - want).abs();
            (
                ea.max(e),
                if want.abs() > 1e-30 {
                    er.max(e / want.abs())
                } else {
                    er
                },
            )
        })
    }
}

fn activations(c: &mut Criterion) {
    let name = "nn/activations_1t";
    let mut g = c.benchmark_group(name);
    let n = 64 << 10;
    let x = values(n);
    let mut y = vec![0f32; n];
    g.throughput(Throughput::Elements(n as u64));
    for a in Activation::ALL {
        let f = format!("{a:?}").to_lowercase();
        RowMeta::new(name, &f, "64Ki")
            .throughput("Gelem/s", n as f64)
            .note(format!("Activation::{a:?}.apply_to, 64 Ki f32 in L2"))
            .record();
        g.bench_function(BenchmarkId::new(&f, "64Ki"), |b| {
            b.iter(|| a.apply_to(black_box(&x), &mut y, Par::Seq).unwrap())
        });
        let naive_name = format!("{f}_naive");
        RowMeta::new(name, &naive_name, "64Ki")
            .throughput("Gelem/s", n as f64)
            .note(format!(
                "{a:?} in scalar std math, one value at a time (the naive form)"
            ))
            .record();
        g.bench_function(BenchmarkId::new(&naive_name, "64Ki"), |b| {
            b.iter(|| {
                for (y, &x) in y.iter_mut().zip(black_box(&x)) {
                    *y = naive(a, x);
                }
            })
        });
    }
    let sigmoid = |x: f64| bitnet_nn::reference::activation(Activation::Sigmoid, x);
    let gelu = |x: f64| bitnet_nn::reference::activation(Activation::GeluErf, x);
    let luts = [
        (
            "sigmoid_lut",
            Activation::Sigmoid,
            Lut::new(sigmoid, |_| 0.0, |_| 1.0),
            sigmoid as fn(f64) -> f64,
        ),
        (
            "geluerf_lut",
            Activation::GeluErf,
            Lut::new(gelu, |_| 0.0, |x| x),
            gelu as fn(f64) -> f64,
        ),
    ];
    for (f, a, lut, exact) in luts {
        let (abs, rel) = lut.max_error(exact);
        RowMeta::new(name, f, "64Ki")
            .throughput("Gelem/s", n as f64)
            .note(format!(
                "the log's LUT {a:?}: 1025 entries over [-8, 8], linear interpolation, scalar; measured over 2^20 points of [-10, 10]: max abs error {abs:.2e}, max rel error {rel:.2e} (not in the library)"
            ))
            .record();
        g.bench_function(BenchmarkId::new(f, "64Ki"), |b| {
            b.iter(|| {
                for (y, &x) in y.iter_mut().zip(black_box(&x)) {
                    *y = lut.eval(x);
                }
            })
        });
    }
    for kind in [ExpKind::Exact, ExpKind::Fast] {
        let f = format!("exp_{kind:?}").to_lowercase();
        RowMeta::new(name, &f, "64Ki")
            .throughput("Gelem/s", n as f64)
            .note(format!("act::exp_in_place(ExpKind::{kind:?})"))
            .record();
        let mut z = values(n);
        g.bench_function(BenchmarkId::new(&f, "64Ki"), |b| {
            b.iter(|| {
                z.copy_from_slice(&x);
                act::exp_in_place(black_box(&mut z), kind, Par::Seq).unwrap()
            })
        });
    }
    RowMeta::new(name, "exp_naive", "64Ki")
        .throughput("Gelem/s", n as f64)
        .note("f32::exp one value at a time")
        .record();
    g.bench_function(BenchmarkId::new("exp_naive", "64Ki"), |b| {
        b.iter(|| {
            for (y, &x) in y.iter_mut().zip(black_box(&x)) {
                *y = x.exp();
            }
        })
    });
    g.finish();
}

fn softmax_naive(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut s = 0.0;
        for v in row.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        for v in row.iter_mut() {
            *v /= s;
        }
    }
}

fn softmax_bench(c: &mut Criterion) {
    let name = "nn/softmax_1t";
    let mut g = c.benchmark_group(name);
    for (rows, cols) in [(64usize, 4096usize), (1, 128_256)] {
        let label = format!("{rows}x{cols}");
        let n = rows * cols;
        let x = values(n);
        let mut y = x.clone();
        g.throughput(Throughput::Elements(n as u64));
        for (f, kind) in [
            ("exact", Some(ExpKind::Exact)),
            ("fast", Some(ExpKind::Fast)),
            ("naive", None),
        ] {
            let note = match kind {
                Some(k) => format!("softmax::softmax_rows(ExpKind::{k:?})"),
                None => "scalar max, f32::exp and divide, one value at a time".to_owned(),
            };
            RowMeta::new(name, f, &label)
                .throughput("Gelem/s", n as f64)
                .note(note)
                .record();
            g.bench_function(BenchmarkId::new(f, &label), |b| {
                b.iter(|| {
                    y.copy_from_slice(&x);
                    match kind {
                        Some(k) => {
                            softmax::softmax_rows(black_box(&mut y), cols, k, Par::Seq).unwrap()
                        }
                        None => softmax_naive(black_box(&mut y), cols),
                    }
                })
            });
        }
    }
    g.finish();
}

/// The norms: name, note, call on `(x, delta, gamma, beta, y)`.
type NormOp = (
    &'static str,
    &'static str,
    fn(&mut [f32], &[f32], &[f32], &[f32], &mut [f32], Par),
);

fn norm_ops() -> [NormOp; 4] {
    [
        ("rms_norm", "norm::rms_norm (x -> y)", |x, _, g, _, y, p| {
            norm::rms_norm(x, g, 1e-5, y, p).unwrap()
        }),
        (
            "add_rms_norm",
            "norm::add_rms_norm (residual += delta, y = RMSNorm; reads two arrays)",
            |x, d, g, _, y, p| norm::add_rms_norm(x, d, g, 1e-5, y, p).unwrap(),
        ),
        (
            "layer_norm",
            "norm::layer_norm (x -> y)",
            |x, _, g, b, y, p| norm::layer_norm(x, g, b, 1e-5, y, p).unwrap(),
        ),
        (
            "rms_norm_quantize",
            "norm::rms_norm_quantize_into (x -> int8 per token, into a reused buffer)",
            |x, _, g, _, _, p| {
                thread_local! {
                    static OUT: std::cell::RefCell<Int8Activations> = Default::default();
                }
                OUT.with_borrow_mut(|out| {
                    norm::rms_norm_quantize_into(x, g, 1e-5, out, p).unwrap();
                    black_box(out);
                });
            },
        ),
    ]
}

fn norms(c: &mut Criterion, dram: bool, all: bool) {
    let (par, t) = cores(all);
    let where_ = if dram { "dram" } else { "l2" };
    let name = format!("nn/norm_{where_}_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let cols = 2560;
    // In L2: 16 rows, 160 KiB of x and of y.
    let n = if dram { SLICE / cols * cols } else { 16 * cols };
    let slices = if dram {
        ROTATION_BYTES.div_ceil(4 * n)
    } else {
        1
    };
    let mut x = values(slices * n);
    let d = values(n);
    let gamma = values(cols);
    let beta = values(cols);
    let mut y = vec![0f32; n];
    let label = format!("{}x{cols}", n / cols);
    for (f, note, op) in norm_ops() {
        let bytes = copy_bytes(f, n);
        g.throughput(Throughput::Bytes(bytes as u64));
        let limit = if dram {
            format!("dram_copy/{t}")
        } else {
            format!("l2_copy/{t}")
        };
        RowMeta::new(&name, f, &label)
            .throughput("GB/s", bytes)
            .limit(&limit)
            .note(format!("{note}; rows of 2560; copy-equivalent bytes"))
            .record();
        let mut i = 0;
        g.bench_function(BenchmarkId::new(f, &label), |b| {
            b.iter(|| {
                i = (i + 1) % slices;
                op(
                    black_box(&mut x[i * n..(i + 1) * n]),
                    &d,
                    &gamma,
                    &beta,
                    &mut y,
                    par,
                )
            })
        });
    }
    g.finish();
}

fn reductions(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("nn/reduce_dram_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let slices = ROTATION_BYTES.div_ceil(4 * SLICE);
    let x = values(slices * SLICE);
    type Reduce = fn(&[f32], &[f32], Par) -> f32;
    let ops: [(&str, &str, Reduce); 4] = [
        ("sum", "reduce::sum (blocked pairwise)", |x, _, p| {
            reduce::sum(x, p).unwrap()
        }),
        (
            "sum_compensated",
            "reduce::sum_compensated (Neumaier)",
            |x, _, p| reduce::sum_compensated(x, p).unwrap(),
        ),
        ("dot", "reduce::dot (two slices)", |x, y, p| {
            reduce::dot(x, y, p).unwrap()
        }),
        ("max", "reduce::max (NaN-propagating)", |x, _, p| {
            reduce::max(x, p).unwrap()
        }),
    ];
    for (f, note, op) in ops {
        let bytes = if f == "dot" { 8 * SLICE } else { 4 * SLICE } as f64;
        g.throughput(Throughput::Bytes(bytes as u64));
        RowMeta::new(&name, f, "64MiB")
            .throughput("GB/s", bytes)
            .limit(&format!("dram_read/{t}"))
            .note(format!(
                "{note} of the next 64 MiB of a 2.2 GiB buffer; bytes read"
            ))
            .record();
        let mut i = 0;
        g.bench_function(BenchmarkId::new(f, "64MiB"), |b| {
            b.iter(|| {
                i = (i + 2) % slices;
                let j = (i + 1) % slices;
                black_box(op(&x[i * SLICE..][..SLICE], &x[j * SLICE..][..SLICE], par))
            })
        });
    }
    g.finish();
}

const HEADS: usize = 20;
const KV_HEADS: usize = 5;
const HEAD_DIM: usize = 128;

/// A cache of `len` positions filled with fixed values.
fn filled_cache(len: usize, storage: KvStorage) -> KvCache {
    let mut cache = KvCache::new(KV_HEADS, HEAD_DIM, len, storage).unwrap();
    let kv = values(len * KV_HEADS * HEAD_DIM);
    cache.append(&kv, &kv).unwrap();
    cache
}

fn attention_decode(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("nn/attention_decode_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let q = values(HEADS * HEAD_DIM);
    let mut out = vec![0f32; q.len()];
    for len in [512usize, 2048, 4096] {
        for (f, storage) in [("flash_f32", KvStorage::F32), ("flash_f16", KvStorage::F16)] {
            let one = filled_cache(len, storage);
            let bytes = 2 * len * KV_HEADS * HEAD_DIM * one.element_bytes();
            let copies = (1usize << 30).div_ceil(bytes).max(2);
            let caches: Vec<KvCache> = vec![one; copies];
            let label = format!("ctx{len}");
            g.throughput(Throughput::Bytes(bytes as u64));
            RowMeta::new(&name, f, &label)
                .throughput("GB/s", bytes as f64)
                .limit(&format!("dram_read/{t}"))
                .note(format!(
                    "attention::attention, 1 query, 20/5 heads of 128, {storage:?} cache; K and V bytes read per second, rotating {copies} caches"
                ))
                .record();
            let mut i = 0;
            g.bench_function(BenchmarkId::new(f, &label), |b| {
                b.iter(|| {
                    i = (i + 1) % copies;
                    attention::attention(&q, 1, HEADS, &caches[i], true, black_box(&mut out), par)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn attention_prefill(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("nn/attention_prefill_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let tokens = 512;
    let cache = filled_cache(tokens, KvStorage::F32);
    let q = values(tokens * HEADS * HEAD_DIM);
    let mut out = vec![0f32; q.len()];
    let pairs = (tokens * (tokens + 1) / 2 * HEADS) as f64;
    let flops = 4.0 * HEAD_DIM as f64 * pairs;
    g.throughput(Throughput::Elements(flops as u64));
    for (f, naive) in [("flash", false), ("naive", true)] {
        RowMeta::new(&name, f, "512 tokens")
            .throughput("GFLOP/s", flops)
            .limit(&bitnet_benches::fma_peak(t))
            .note(format!(
                "attention::attention{}, 512 causal queries, 20/5 heads of 128; 4 x 128 flops per query-key pair",
                if naive { "_naive (materialised scores)" } else { " (flash-style)" }
            ))
            .record();
        g.bench_function(BenchmarkId::new(f, "512 tokens"), |b| {
            b.iter(|| {
                if naive {
                    attention::attention_naive(&q, tokens, HEADS, &cache, true, &mut out, par)
                } else {
                    attention::attention(&q, tokens, HEADS, &cache, true, &mut out, par)
                }
                .unwrap()
            })
        });
    }
    g.finish();
}

fn rope(c: &mut Criterion) {
    let name = "nn/rope_1t";
    let mut g = c.benchmark_group(name);
    let n = 64 * HEADS * HEAD_DIM;
    let mut x = values(n);
    g.throughput(Throughput::Elements(n as u64));
    for (f, style, table) in [
        ("half_split", RopeStyle::HalfSplit, false),
        ("interleaved", RopeStyle::Interleaved, false),
        ("half_split_cached", RopeStyle::HalfSplit, true),
        ("interleaved_cached", RopeStyle::Interleaved, true),
    ] {
        let mut r = Rope::new(HEAD_DIM, 500_000.0, style).unwrap();
        let how = if table {
            r = r.cached(4096).unwrap();
            "cos/sin from a table of 4096 positions (Rope::cached)"
        } else {
            "cos/sin computed per token in f64"
        };
        RowMeta::new(name, f, "64x20x128")
            .throughput("Gelem/s", n as f64)
            .note(format!(
                "Rope::apply ({style:?}), theta 500000, positions 1000..; {how}"
            ))
            .record();
        g.bench_function(BenchmarkId::new(f, "64x20x128"), |b| {
            b.iter(|| r.apply(black_box(&mut x), HEADS, 1000, Par::Seq).unwrap())
        });
    }
    g.finish();
}

fn conv3x3(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("nn/conv3x3_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    for (ch, hw) in [(64usize, 56usize), (128, 28), (256, 14)] {
        let shape = Conv2d {
            batch: 1,
            in_ch: ch,
            height: hw,
            width: hw,
            out_ch: ch,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        };
        let (xl, wl, yl) = shape.lens().unwrap();
        let (x, w, b) = (values(xl), values(wl), values(ch));
        let mut y = vec![0f32; yl];
        let flops = 2.0 * (ch * ch * 9 * hw * hw) as f64;
        let label = format!("{ch}ch {hw}x{hw}");
        g.throughput(Throughput::Elements(flops as u64));
        type ConvFn = fn(
            &Conv2d,
            &[f32],
            &[f32],
            Option<&[f32]>,
            &mut [f32],
            Par,
        ) -> Result<(), bitnet_nn::NnError>;
        let kinds: [(&str, &str, ConvFn); 3] = [
            (
                "winograd",
                "conv::conv2d_winograd (F(2x2,3x3), 16 GEMMs)",
                conv::conv2d_winograd,
            ),
            (
                "im2col",
                "conv::conv2d_im2col (patches + one GEMM)",
                conv::conv2d_im2col,
            ),
            (
                "direct",
                "conv::conv2d_direct (the loops)",
                conv::conv2d_direct,
            ),
        ];
        for (f, note, run) in kinds {
            RowMeta::new(&name, f, &label)
                .throughput("GFLOP/s", flops)
                .limit(&bitnet_benches::fma_peak(t))
                .note(format!(
                    "{note}; direct-equivalent flops, 2 x O x C x 9 per output pixel"
                ))
                .record();
            g.bench_function(BenchmarkId::new(f, &label), |bch| {
                bch.iter(|| run(&shape, &x, &w, Some(&b), black_box(&mut y), par).unwrap())
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    elementwise_l2(c);
    activations(c);
    softmax_bench(c);
    norms(c, false, false);
    rope(c);
    for all in [false, true] {
        elementwise_dram(c, all);
        reductions(c, all);
        norms(c, true, all);
        attention_decode(c, all);
        attention_prefill(c, all);
        conv3x3(c, all);
    }
}

criterion_group! {
    name = nn;
    config = criterion_config();
    targets = benches
}
criterion_main!(nn);
