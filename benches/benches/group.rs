//! Group-quantized GEMV and GEMM (`bitnet_quant::group`) on the BitNet b1.58 2B4T shapes and its
//! output head (128256 x 2560: the tied token embedding, which GGUF files store as Q4_K, Q6_K or
//! Q8_0), next to the native I2_S ternary kernel of the same shape.
//!
//! - `group/gemv_dram_*`: each iteration uses the next of enough copies of the weights to exceed
//!   2 GiB, so they come from DRAM; packed bytes read per second against `dram_read`.
//! - `group/gemv_cache_*`: one 2560 x 2560 matrix read again and again; 2 ops per weight
//!   against the int8 multiply-add peak.
//! - `group/gemm_*`: `m` tokens; 2 ops per weight and token against the int8 peak.
//!
//! Functions: `q4_0`, `q4_1`, `q8_0` (x Q8x32 activations), `q4_k`, `q6_k` (x Q8_K), the log's
//! `b4_g128` and `b2_g64` (x Q8x32), `q4_0_f32act` (`group::gemm_f32`: f32 activations),
//! `q4_0_avx2` / `q4_k_avx2` (forced onto the AVX2 path, against the AVX2 int8 peak), and
//! `native_i2_s` (the ternary kernel on the same shape).

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, fma_peak, int8_peak};
use bitnet_quant::formats::native::NativeTernary;
use bitnet_quant::group::kernels as gk;
use bitnet_quant::group::reference::GroupActivations;
use bitnet_quant::kernels::{self, Path};
use bitnet_quant::reference::Activations;
use bitnet_quant::{
    ActScale, GroupFormat, GroupSpec, GroupWeights, Int8Activations, PackedGroup, PackedTernary,
    Par, Q8KActivations, Q8x32Activations, TernaryFormat,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ROTATION_BYTES: usize = 2200 << 20;

/// Rows quantized once and repeated to fill a tall matrix (quantizing 328 M weights of the
/// output head with the K-quant search would take longer than the benchmark).
const PATTERN_ROWS: usize = 256;

fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + salt) % 2003) as f32 / 1001.5 - 1.0)
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int8Acts(GroupFormat),
    F32Acts(GroupFormat),
    Avx2(GroupFormat),
    NativeI2s,
}

fn log_format(bits: u32, size: usize) -> GroupFormat {
    GroupFormat::Grouped(GroupSpec::new(bits, size, false).unwrap())
}

impl Kind {
    fn all() -> Vec<Kind> {
        vec![
            Kind::Int8Acts(GroupFormat::Q4_0),
            Kind::Int8Acts(GroupFormat::Q4_1),
            Kind::Int8Acts(GroupFormat::Q8_0),
            Kind::Int8Acts(GroupFormat::Q4K),
            Kind::Int8Acts(GroupFormat::Q6K),
            Kind::Int8Acts(log_format(4, 128)),
            Kind::Int8Acts(log_format(2, 64)),
            Kind::F32Acts(GroupFormat::Q4_0),
            Kind::NativeI2s,
        ]
    }

    const AVX2: [Kind; 2] = [Kind::Avx2(GroupFormat::Q4_0), Kind::Avx2(GroupFormat::Q4K)];

    fn name(self) -> String {
        match self {
            Kind::Int8Acts(f) => f.name().to_lowercase(),
            Kind::F32Acts(f) => format!("{}_f32act", f.name().to_lowercase()),
            Kind::Avx2(f) => format!("{}_avx2", f.name().to_lowercase()),
            Kind::NativeI2s => "native_i2_s".into(),
        }
    }

    fn runs(self) -> bool {
        match self {
            Kind::Avx2(_) => Path::Avx2.available().unwrap(),
            _ => true,
        }
    }

    fn note(self) -> String {
        let acts = |f: GroupFormat| match f {
            GroupFormat::Q4K | GroupFormat::Q6K => "Q8_K",
            _ => "Q8x32 (int8, f32 scale per 32)",
        };
        match self {
            Kind::Int8Acts(f) => format!(
                "group::kernels::gemm ({:?}), {f} ({:.4} bits/weight) x {}",
                gk::best_path().unwrap(),
                f.bits_per_weight(),
                acts(f)
            ),
            Kind::F32Acts(f) => format!("group::gemm_f32, {f} x f32 activations"),
            Kind::Avx2(f) => format!("group::kernels::gemm_on(Path::Avx2), {f} x {}", acts(f)),
            Kind::NativeI2s => "kernels::gemm_native, I2_S repacked x per-token int8".into(),
        }
    }

    fn format(self) -> GroupFormat {
        match self {
            Kind::Int8Acts(f) | Kind::F32Acts(f) | Kind::Avx2(f) => f,
            Kind::NativeI2s => GroupFormat::Q4_0,
        }
    }
}

/// `copies` copies of one kind's weights.
enum Weights {
    Group(Vec<Vec<u8>>, GroupFormat),
    Native(Vec<NativeTernary>),
}

impl Weights {
    fn new(kind: Kind, rows: usize, k: usize, copies: usize) -> Weights {
        let pattern = rows.min(PATTERN_ROWS);
        let w = values(pattern * k, 1);
        match kind {
            Kind::NativeI2s => {
                let p = PackedTernary::quantize(TernaryFormat::I2s, &values(rows * k, 1), rows, k)
                    .unwrap();
                let n = NativeTernary::repack(&p.view()).unwrap();
                Weights::Native((0..copies).map(|_| n.clone()).collect())
            }
            _ => {
                let f = kind.format();
                let p = PackedGroup::quantize(f, &w, pattern, k).unwrap();
                let one: Vec<u8> = p
                    .bytes()
                    .iter()
                    .copied()
                    .cycle()
                    .take(f.data_len(rows, k).unwrap())
                    .collect();
                Weights::Group((0..copies).map(|_| one.clone()).collect(), f)
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Weights::Group(v, _) => v[0].len(),
            Weights::Native(v) => v[0].code_bytes(),
        }
    }
}

struct Acts {
    int8: Int8Activations,
    q8k: Q8KActivations,
    q8x32: Q8x32Activations,
    x: Vec<f32>,
}

impl Acts {
    fn new(tokens: usize, k: usize) -> Acts {
        let x = values(tokens * k, 2);
        Acts {
            int8: Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap(),
            q8k: Q8KActivations::quantize(&x, tokens, k).unwrap(),
            q8x32: Q8x32Activations::quantize(&x, tokens, k).unwrap(),
            x,
        }
    }

    fn for_format(&self, f: GroupFormat) -> GroupActivations<'_> {
        match f {
            GroupFormat::Q4K | GroupFormat::Q6K => GroupActivations::Q8K(&self.q8k),
            _ => GroupActivations::Q8x32(&self.q8x32),
        }
    }
}

/// The views of the copies (validated once, here, not per call).
fn views(w: &Weights, rows: usize, k: usize) -> Vec<GroupWeights<'_>> {
    match w {
        Weights::Group(copies, f) => copies
            .iter()
            .map(|c| GroupWeights::new(*f, c, rows, k).unwrap())
            .collect(),
        Weights::Native(_) => Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    kind: Kind,
    w: &Weights,
    views: &[GroupWeights<'_>],
    i: usize,
    a: &Acts,
    y: &mut [f32],
    par: Par,
) {
    match (kind, w) {
        (Kind::NativeI2s, Weights::Native(copies)) => {
            kernels::gemm_native(&copies[i], Activations::Int8(&a.int8), y, par).unwrap()
        }
        (Kind::F32Acts(_), _) => {
            bitnet_quant::group::gemm_f32(&views[i], &a.x, a.int8.tokens(), y, par).unwrap()
        }
        (Kind::Avx2(f), _) => gk::gemm_on(Path::Avx2, &views[i], a.for_format(f), y, par).unwrap(),
        (Kind::Int8Acts(f), _) => gk::gemm(&views[i], a.for_format(f), y, par).unwrap(),
        _ => unreachable!("native weights go with NativeI2s"),
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
    let name = format!("group/gemv_dram_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    for (rows, k) in [(6912usize, 2560usize), (2560, 6912), (128256, 2560)] {
        let label = format!("{rows}x{k}");
        let acts = Acts::new(1, k);
        let mut y = vec![0f32; rows];
        for kind in Kind::all() {
            let one = match kind {
                Kind::NativeI2s => rows * k / 4,
                _ => kind.format().data_len(rows, k).unwrap(),
            };
            let copies = ROTATION_BYTES.div_ceil(one).max(2);
            let w = Weights::new(kind, rows, k, copies);
            let v = views(&w, rows, k);
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
                    run(kind, &w, &v, i, &acts, black_box(&mut y), par)
                })
            });
        }
    }
    g.finish();
}

/// The in-cache GEMV (`m` = 1) and the GEMM groups.
fn compute(c: &mut Criterion, all: bool, gemv: bool) {
    let (par, t) = threads_of(all);
    let name = if gemv {
        format!("group/gemv_cache_{t}")
    } else {
        format!("group/gemm_{t}")
    };
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let shapes: &[(usize, usize, usize)] = if gemv {
        &[(2560, 2560, 1)]
    } else {
        &[(2560, 2560, 64), (2560, 2560, 256), (6912, 2560, 256)]
    };
    for &(rows, k, m) in shapes {
        let label = if gemv {
            format!("{rows}x{k}")
        } else {
            format!("{rows}x{k} m{m}")
        };
        let acts = Acts::new(m, k);
        let mut y = vec![0f32; m * rows];
        let ops = 2.0 * (rows * k * m) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        for kind in Kind::all()
            .into_iter()
            .chain(Kind::AVX2)
            .filter(|k| k.runs())
        {
            let w = Weights::new(kind, rows, k, 1);
            let v = views(&w, rows, k);
            let (unit, limit) = match kind {
                Kind::Avx2(_) => ("GOPS", format!("int8_dot_avx2/{t}")),
                Kind::F32Acts(_) => ("GFLOP/s", fma_peak(t)),
                _ => ("GOPS", int8_peak(t)),
            };
            RowMeta::new(&name, &kind.name(), &label)
                .throughput(unit, ops)
                .limit(&limit)
                .note(format!("{}; 2 ops per weight and token", kind.note()))
                .record();
            g.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter(|| run(kind, &w, &v, 0, &acts, black_box(&mut y), par))
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for all in [false, true] {
        compute(c, all, true);
        compute(c, all, false);
        gemv_dram(c, all);
    }
}

criterion_group! {
    name = group;
    config = criterion_config();
    targets = benches
}
criterion_main!(group);
