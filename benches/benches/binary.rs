//! Binary (1-bit) GEMV and GEMM (bitnet-quant's `binary::kernels`) on BitNet b1.58 2B4T shapes,
//! every path side by side with the native I2_S ternary kernel of the same shape.
//!
//! - `binary/gemv_*`: one token; `binary/gemm_*`: `m` tokens. One matrix read again and again
//!   (in L2 or the last-level cache).
//! - Work: 2 ops per weight and token (XNOR and count for a bit pair; multiply and add for int8
//!   and ternary). XNOR rows are fractions of the XNOR-popcount peak of their instructions
//!   (`xnor_popcount_avx2` for the forced AVX2 path; the best one for the best path and for the
//!   scalar `count_ones` loop, which has no peak of its own), int8 × binary and ternary rows of
//!   the int8 dot peak.
//!
//! Functions: `xnor` / `xnor_avx2` / `xnor_scalar` (sign-binarized activations, best path and
//! forced ones), `int8` / `int8_avx2` / `int8_scalar` (int8 activations × binary weights),
//! `ternary_i2_s` (the native I2_S ternary layout × int8: 2 bits per weight instead of 1).

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, int8_peak};
use bitnet_quant::binary::kernels::{self, BinaryKernel, BinaryPath};
use bitnet_quant::binary::{BinaryActivations, BinaryMatrix};
use bitnet_quant::formats::native::NativeTernary;
use bitnet_quant::reference::Activations;
use bitnet_quant::{ActScale, Int8Activations, PackedTernary, Par, ScaleGroup, TernaryFormat};
use bitnet_simd::CpuFeatures;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + salt) % 2003) as f32 / 1001.5 - 1.0)
        .collect()
}

/// The XNOR-popcount peak of `path` (the best one for the best path and for scalar code, which
/// has no peak of its own).
fn popcount_peak(path: Option<BinaryPath>, threads: &str) -> String {
    let isa = if path != Some(BinaryPath::Avx2) && CpuFeatures::get().avx512vpopcntdq {
        "avx512"
    } else {
        "avx2"
    };
    format!("xnor_popcount_{isa}/{threads}")
}

/// One column of a group.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Xnor(Option<BinaryPath>),
    Int8(Option<BinaryPath>),
    Ternary,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Xnor(None),
        Kind::Xnor(Some(BinaryPath::Avx2)),
        Kind::Xnor(Some(BinaryPath::Scalar)),
        Kind::Int8(None),
        Kind::Int8(Some(BinaryPath::Avx2)),
        Kind::Int8(Some(BinaryPath::Scalar)),
        Kind::Ternary,
    ];

    fn name(self) -> String {
        let path = |p: Option<BinaryPath>| match p {
            None => String::new(),
            Some(p) => format!("_{}", format!("{p:?}").to_lowercase()),
        };
        match self {
            Kind::Xnor(p) => format!("xnor{}", path(p)),
            Kind::Int8(p) => format!("int8{}", path(p)),
            Kind::Ternary => "ternary_i2_s".into(),
        }
    }

    /// Whether this machine runs the column.
    fn runs(self) -> bool {
        match self {
            Kind::Xnor(Some(p)) => p.available(BinaryKernel::Xnor).unwrap(),
            Kind::Int8(Some(p)) => p.available(BinaryKernel::Int8).unwrap(),
            _ => true,
        }
    }

    fn note(self) -> String {
        let path = |p: Option<BinaryPath>, k| match p {
            None => format!("best path ({:?})", BinaryPath::best(k).unwrap()),
            Some(p) => format!("forced {p:?}"),
        };
        match self {
            Kind::Xnor(p) => format!(
                "binary::kernels::gemm_xnor, sign-binarized activations, {}",
                path(p, BinaryKernel::Xnor)
            ),
            Kind::Int8(p) => format!(
                "binary::kernels::gemm_int8, per-token int8 activations, {}",
                path(p, BinaryKernel::Int8)
            ),
            Kind::Ternary => "kernels::gemm_native on I2_S repacked to the native layout x \
                              per-token int8 (2 bits per weight)"
                .into(),
        }
    }
}

struct Case {
    w: BinaryMatrix,
    native: NativeTernary,
    xb: BinaryActivations,
    xq: Int8Activations,
}

impl Case {
    fn new(rows: usize, k: usize, tokens: usize) -> Case {
        let wv = values(rows * k, 1);
        let x = values(tokens * k, 2);
        let packed = PackedTernary::quantize(TernaryFormat::I2s, &wv, rows, k).unwrap();
        Case {
            w: BinaryMatrix::binarize(&wv, rows, k, ScaleGroup::Row).unwrap(),
            native: NativeTernary::repack(&packed.view()).unwrap(),
            xb: BinaryActivations::binarize(&x, tokens, k).unwrap(),
            xq: Int8Activations::quantize(&x, tokens, k, ActScale::PerToken).unwrap(),
        }
    }

    fn run(&self, kind: Kind, y: &mut [f32], par: Par) {
        match kind {
            Kind::Xnor(None) => kernels::gemm_xnor(&self.w, &self.xb, y, par).unwrap(),
            Kind::Xnor(Some(p)) => kernels::gemm_xnor_on(p, &self.w, &self.xb, y, par).unwrap(),
            Kind::Int8(None) => kernels::gemm_int8(&self.w, &self.xq, y, par).unwrap(),
            Kind::Int8(Some(p)) => kernels::gemm_int8_on(p, &self.w, &self.xq, y, par).unwrap(),
            Kind::Ternary => {
                let x = Activations::Int8(&self.xq);
                bitnet_quant::kernels::gemm_native(&self.native, x, y, par).unwrap()
            }
        }
    }
}

fn group(c: &mut Criterion, all: bool, gemm: bool) {
    let (par, t) = if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    };
    let name = format!("binary/{}_{t}", if gemm { "gemm" } else { "gemv" });
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let shapes: &[(usize, usize, usize)] = if gemm {
        &[(2560, 2560, 64), (2560, 2560, 256), (6912, 2560, 256)]
    } else {
        &[(2560, 2560, 1), (6912, 2560, 1), (2560, 6912, 1)]
    };
    for &(rows, k, m) in shapes {
        let label = if gemm {
            format!("{rows}x{k} m{m}")
        } else {
            format!("{rows}x{k}")
        };
        let case = Case::new(rows, k, m);
        let mut y = vec![0f32; rows * m];
        let ops = 2.0 * (rows * k * m) as f64;
        g.throughput(Throughput::Elements(ops as u64));
        // The scalar columns only where they take less than a second per iteration.
        let scalar = |k: &Kind| {
            matches!(
                k,
                Kind::Xnor(Some(BinaryPath::Scalar)) | Kind::Int8(Some(BinaryPath::Scalar))
            )
        };
        for kind in Kind::ALL
            .into_iter()
            .filter(|k| k.runs() && (m <= 64 || !scalar(k)))
        {
            let limit = match kind {
                Kind::Xnor(p) => popcount_peak(p, t),
                _ => int8_peak(t),
            };
            RowMeta::new(&name, &kind.name(), &label)
                .throughput("GOPS", ops)
                .limit(&limit)
                .note(format!("{}; 2 ops per weight and token", kind.note()))
                .record();
            g.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter(|| case.run(kind, black_box(&mut y), par))
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for all in [false, true] {
        group(c, all, false);
        group(c, all, true);
    }
}

criterion_group! {
    name = binary;
    config = criterion_config();
    targets = benches
}
criterion_main!(binary);
