//! Ternary GEMV and GEMM (bitnet-quant's `kernels`) on the BitNet b1.58 2B4T shapes, every
//! format side by side with the f32 GEMV/GEMM of bitnet-gemm on the same shape.
//!
//! - `ternary/gemv_dram_*`: each iteration uses the next of enough copies of the weights to
//!   exceed 2 GiB, so they come from DRAM; packed bytes read per second against `dram_read`.
//! - `ternary/gemv_cache_*`: one matrix read again and again (in L2 or the last-level cache);
//!   2 ops per weight against the int8 multiply-add peak.
//! - `ternary/gemm_*`: `m` tokens; ops (2 per weight and token) against the int8 peak.
//!
//! Functions: `i2_s`, `tq2_0`, `tq1_0` (public layouts as GGUF stores them), `native_i2_s` and
//! `native_tq2_0` (repacked into the four-row interleaved layout of `formats::native`), `lut`
//! (I2_S repacked for the lookup-table kernel of `lut`), `f32` (bitnet-gemm on f32 weights: 16x
//! the bytes); in the cache and GEMM groups also `native_i2_s_avx2` and `lut_avx2`, both forced
//! onto AVX2 (what a CPU without VNNI runs), against the AVX2 int8 peak, and `lut_tq2_0` (the LUT
//! kernel on TQ2_0, block scales and all).

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, fma_peak, int8_peak};
use bitnet_gemm::{MatMut, MatRef};
use bitnet_quant::formats::native::NativeTernary;
use bitnet_quant::kernels::{self, Path};
use bitnet_quant::lut::{self, LutPath, LutTernary};
use bitnet_quant::reference::Activations;
use bitnet_quant::{ActScale, Int8Activations, PackedTernary, Par, Q8KActivations, TernaryFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ROTATION_BYTES: usize = 2200 << 20;

fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + salt) % 2003) as f32 / 1001.5 - 1.0)
        .collect()
}

/// The functions of a group, in column order.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Public(TernaryFormat),
    Native(TernaryFormat),
    /// Native I2_S forced onto the AVX2 (`vpmaddubsw`) path.
    NativeAvx2,
    /// The LUT layout repacked from a format, on the best path or a forced one.
    Lut(TernaryFormat, Option<LutPath>),
    F32,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Public(TernaryFormat::I2s),
        Kind::Public(TernaryFormat::Tq2_0),
        Kind::Public(TernaryFormat::Tq1_0),
        Kind::Native(TernaryFormat::I2s),
        Kind::Native(TernaryFormat::Tq2_0),
        Kind::Lut(TernaryFormat::I2s, None),
        Kind::F32,
    ];

    /// The AVX2 comparison of the LUT and multiply-based kernels (machines without VNNI run
    /// these paths).
    const AVX2: [Kind; 2] = [
        Kind::NativeAvx2,
        Kind::Lut(TernaryFormat::I2s, Some(LutPath::Avx2)),
    ];

    /// The LUT kernel on TQ2_0 (block scales), for the cache and GEMM groups.
    const LUT_TQ: [Kind; 1] = [Kind::Lut(TernaryFormat::Tq2_0, None)];

    fn name(self) -> String {
        match self {
            Kind::Public(f) => f.name().to_lowercase(),
            Kind::Native(f) => format!("native_{}", f.name().to_lowercase()),
            Kind::NativeAvx2 => "native_i2_s_avx2".into(),
            Kind::Lut(TernaryFormat::I2s, None) => "lut".into(),
            Kind::Lut(TernaryFormat::I2s, Some(p)) => {
                format!("lut_{}", format!("{p:?}").to_lowercase())
            }
            Kind::Lut(f, _) => format!("lut_{}", f.name().to_lowercase()),
            Kind::F32 => "f32".into(),
        }
    }

    /// Whether this machine runs the column.
    fn runs(self) -> bool {
        match self {
            Kind::NativeAvx2 => Path::Avx2.available().unwrap(),
            Kind::Lut(_, Some(p)) => p.available().unwrap(),
            _ => true,
        }
    }

    fn note(self) -> String {
        match self {
            Kind::Public(f) => format!(
                "kernels::gemm, {f} as GGUF stores it ({:.4} bits/weight) x {}",
                f.bits_per_weight(),
                acts_name(f)
            ),
            Kind::Native(f) => format!(
                "kernels::gemm_native, {f} repacked to the 4-row interleaved layout x {}",
                acts_name(f)
            ),
            Kind::NativeAvx2 => "kernels::gemm_native_on(Path::Avx2), I2_S repacked to the 4-row \
                                 interleaved layout x per-token int8"
                .into(),
            Kind::Lut(f, p) => format!(
                "lut::gemm{}, {f} repacked to the LUT2 layout x tables of {}",
                p.map_or(String::new(), |p| format!("_on(LutPath::{p:?})")),
                acts_name(f)
            ),
            Kind::F32 => "bitnet_gemm (gemv / gemm) on f32 weights of the same shape".into(),
        }
    }
}

fn acts_name(f: TernaryFormat) -> &'static str {
    if f == TernaryFormat::I2s {
        "per-token int8"
    } else {
        "Q8_K"
    }
}

/// Weights of one kind, `copies` times (copies of the same bytes at different addresses).
enum Weights {
    Public(Vec<PackedTernary>),
    Native(Vec<NativeTernary>),
    Lut(Vec<LutTernary>),
    F32(Vec<Vec<f32>>),
}

impl Weights {
    fn new(kind: Kind, rows: usize, k: usize, copies: usize) -> Weights {
        let w = values(rows * k, 1);
        match kind {
            Kind::Public(f) => {
                let p = PackedTernary::quantize(f, &w, rows, k).unwrap();
                Weights::Public((0..copies).map(|_| p.clone()).collect())
            }
            Kind::Native(_) | Kind::NativeAvx2 => {
                let f = match kind {
                    Kind::Native(f) => f,
                    _ => TernaryFormat::I2s,
                };
                let p = PackedTernary::quantize(f, &w, rows, k).unwrap();
                let n = NativeTernary::repack(&p.view()).unwrap();
                Weights::Native((0..copies).map(|_| n.clone()).collect())
            }
            Kind::Lut(f, _) => {
                let p = PackedTernary::quantize(f, &w, rows, k).unwrap();
                let l = LutTernary::repack(&p.view()).unwrap();
                Weights::Lut((0..copies).map(|_| l.clone()).collect())
            }
            Kind::F32 => Weights::F32((0..copies).map(|_| w.clone()).collect()),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Weights::Public(v) => v[0].bytes().len(),
            Weights::Native(v) => v[0].code_bytes(),
            Weights::Lut(v) => v[0].code_bytes(),
            Weights::F32(v) => v[0].len() * 4,
        }
    }
}

struct Acts {
    int8: Int8Activations,
    q8k: Q8KActivations,
    x: Vec<f32>,
}

impl Acts {
    fn new(tokens: usize, k: usize) -> Acts {
        let x = values(tokens * k, 2);
        Acts {
            int8: Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap(),
            q8k: Q8KActivations::quantize(&x, tokens, k).unwrap(),
            x,
        }
    }

    fn for_format(&self, f: TernaryFormat) -> Activations<'_> {
        if f == TernaryFormat::I2s {
            Activations::Int8(&self.int8)
        } else {
            Activations::Q8K(&self.q8k)
        }
    }
}

/// Runs copy `i` of the weights on all tokens of `a` into `y`.
#[allow(clippy::too_many_arguments)]
fn run(
    kind: Kind,
    w: &Weights,
    i: usize,
    a: &Acts,
    rows: usize,
    k: usize,
    y: &mut [f32],
    par: Par,
) {
    let tokens = a.int8.tokens();
    match w {
        Weights::Public(copies) => {
            // The view of an owned PackedTernary is free (validated when packed).
            let view = copies[i].view();
            kernels::gemm(&view, a.for_format(view.format()), y, par).unwrap();
        }
        Weights::Native(copies) => {
            let n = &copies[i];
            let x = a.for_format(n.source());
            match kind {
                Kind::NativeAvx2 => kernels::gemm_native_on(Path::Avx2, n, x, y, par).unwrap(),
                _ => kernels::gemm_native(n, x, y, par).unwrap(),
            }
        }
        Weights::Lut(copies) => {
            let (l, x) = (&copies[i], a.for_format(copies[i].source()));
            match kind {
                Kind::Lut(_, Some(p)) => lut::gemm_on(p, l, x, y, par).unwrap(),
                _ => lut::gemm(l, x, y, par).unwrap(),
            }
        }
        Weights::F32(copies) => {
            let w = MatRef::new(&copies[i], k, rows, 1, k).unwrap();
            if tokens == 1 {
                let a_mat = MatRef::row_major(&copies[i], rows, k).unwrap();
                bitnet_gemm::gemv(1.0, a_mat, &a.x, 0.0, y, par).unwrap();
            } else {
                let x = MatRef::row_major(&a.x, tokens, k).unwrap();
                let out = MatMut::row_major(y, tokens, rows).unwrap();
                bitnet_gemm::gemm(1.0, x, w, 0.0, out, par).unwrap();
            }
        }
    }
}

fn threads_of(all: bool) -> (Par, &'static str) {
    if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    }
}

fn gemv_dram(c: &mut Criterion, all: bool) {
    let (par, t) = threads_of(all);
    let name = format!("ternary/gemv_dram_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    for (rows, k) in [(6912usize, 2560usize), (2560, 6912), (4096, 14336)] {
        let label = format!("{rows}x{k}");
        let acts = Acts::new(1, k);
        let mut y = vec![0f32; rows];
        for kind in Kind::ALL {
            let one = Weights::new(kind, rows, k, 1).bytes();
            let copies = ROTATION_BYTES.div_ceil(one).max(2);
            let w = Weights::new(kind, rows, k, copies);
            let bytes = w.bytes() as f64;
            g.throughput(Throughput::Bytes(bytes as u64));
            RowMeta::new(&name, &kind.name(), &label)
                .throughput("GB/s", bytes)
                .limit(&format!("dram_read/{t}"))
                .note(format!(
                    "{}; bytes of weights read per second, rotating {copies} copies ({:.1} GiB)",
                    kind.note(),
                    (copies as f64 * bytes) / (1u64 << 30) as f64
                ))
                .record();
            let mut i = 0;
            g.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter(|| {
                    i = (i + 1) % copies;
                    run(kind, &w, i, &acts, rows, k, black_box(&mut y), par)
                })
            });
        }
    }
    g.finish();
}

fn gemv_cache(c: &mut Criterion, all: bool) {
    let (par, t) = threads_of(all);
    let name = format!("ternary/gemv_cache_{t}");
    let mut g = c.benchmark_group(&name);
    for (rows, k) in [(640usize, 2560usize), (2560, 2560)] {
        let label = format!("{rows}x{k}");
        let acts = Acts::new(1, k);
        let mut y = vec![0f32; rows];
        let ops = 2.0 * (rows * k) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        for kind in Kind::ALL
            .into_iter()
            .chain(Kind::AVX2)
            .chain(Kind::LUT_TQ)
            .filter(|k| k.runs())
        {
            let w = Weights::new(kind, rows, k, 1);
            let (unit, limit) = match kind {
                Kind::F32 => ("GFLOP/s", fma_peak(t)),
                Kind::NativeAvx2 | Kind::Lut(_, Some(LutPath::Avx2)) => {
                    ("GOPS", format!("int8_dot_avx2/{t}"))
                }
                _ => ("GOPS", int8_peak(t)),
            };
            RowMeta::new(&name, &kind.name(), &label)
                .throughput(unit, ops)
                .limit(&limit)
                .note(format!(
                    "{}; one matrix of {} KiB, 2 ops per weight",
                    kind.note(),
                    w.bytes() >> 10
                ))
                .record();
            g.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter(|| run(kind, &w, 0, &acts, rows, k, black_box(&mut y), par))
            });
        }
    }
    g.finish();
}

fn gemm(c: &mut Criterion, all: bool) {
    let (par, t) = threads_of(all);
    let name = format!("ternary/gemm_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let shapes = [
        (2560usize, 2560usize, 8usize),
        (2560, 2560, 64),
        (2560, 2560, 256),
        (2560, 2560, 512),
        (6912, 2560, 256),
        (2560, 6912, 256),
        (640, 2560, 64),
    ];
    for (rows, k, m) in shapes {
        let label = format!("{rows}x{k} m{m}");
        let acts = Acts::new(m, k);
        let mut y = vec![0f32; m * rows];
        let ops = 2.0 * (rows * k * m) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        for kind in Kind::ALL
            .into_iter()
            .chain(Kind::AVX2)
            .chain(Kind::LUT_TQ)
            .filter(|k| k.runs())
        {
            let w = Weights::new(kind, rows, k, 1);
            let (unit, limit) = match kind {
                Kind::F32 => ("GFLOP/s", fma_peak(t)),
                Kind::NativeAvx2 | Kind::Lut(_, Some(LutPath::Avx2)) => {
                    ("GOPS", format!("int8_dot_avx2/{t}"))
                }
                _ => ("GOPS", int8_peak(t)),
            };
            RowMeta::new(&name, &kind.name(), &label)
                .throughput(unit, ops)
                .limit(&limit)
                .note(format!("{}; 2 ops per weight and token", kind.note()))
                .record();
            g.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter(|| run(kind, &w, 0, &acts, rows, k, black_box(&mut y), par))
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for all in [false, true] {
        gemv_cache(c, all);
        gemm(c, all);
        gemv_dram(c, all);
    }
}

criterion_group! {
    name = ternary;
    config = criterion_config();
    targets = benches
}
criterion_main!(ternary);
