//! f16/bf16 conversions and the f16 GEMV (`bitnet_quant::float16`).
//!
//! - `float16/convert_l2_1t`: 64 Ki values converted again and again (in L2); bytes read plus
//!   bytes written per second against `l2_read/1t`. Functions: each direction on the best path,
//!   `f32_to_bf16` also on AVX-512 BF16's `vcvtne2ps2bf16` (where present) and on AVX2, and the
//!   `half` crate's one-value conversions (the scalar path) as the naive form.
//! - `float16/gemv_dram_*`: the f16 GEMV (f16 weights, f32 activations and sums) on the BitNet
//!   b1.58 2B4T shapes and its tied output head 128256 x 2560 (an F16 matrix in the official
//!   file), each iteration on the next of enough copies to exceed 2 GiB; weight bytes read per
//!   second against `dram_read`. `f16_avx2` forces the AVX2 + F16C path; `bf16` is
//!   `gemm_bf16` (bf16 activations: `vdpbf16ps` where AVX-512 BF16 exists), `bf16_f32` is
//!   `gemm_bf16_f32` (f32 activations). `read` sums the same bytes (`bitnet_nn::reduce::sum`)
//!   in the same rotation: each row's speedup over it is its fraction of this minute's
//!   bandwidth.
//! - `float16/gemm_*`: `m` tokens on 2560 x 2560 and 6912 x 2560; 2 flops per weight and
//!   token, `bf16` against the `vdpbf16ps` peak (`bf16_dot_avx512`, where present), the others
//!   against the f32 FMA peak; `f32_packed` is the
//!   same product on f32 weights by bitnet-gemm's packed GEMM (the peer).

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_gemm::packed::gemm_packed;
use bitnet_gemm::{MatMut, MatRef};
use bitnet_quant::Par;
use bitnet_quant::float16::{self, ConvertPath};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
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
        let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let best = ConvertPath::best().unwrap();
        let mut kinds = vec![
            (Kind::F16, best, "f16"),
            (Kind::Bf16, best, "bf16"),
            (Kind::Bf16F32, best, "bf16_f32"),
        ];
        if ConvertPath::Avx2.available().unwrap() && best != ConvertPath::Avx2 {
            kinds.push((Kind::F16, ConvertPath::Avx2, "f16_avx2"));
        }
        // The same-minute reference: a plain read of the same bytes. The host's DRAM bandwidth
        // drifts by tens of percent between minutes, so the limit measured at the start of the
        // run is not always what these rows met.
        RowMeta::new(&name, "read", &label)
            .throughput("GB/s", one as f64)
            .limit(&format!("dram_read/{t}"))
            .note("bitnet_nn::reduce::sum over the same weight bytes (as f32), same rotation: the bandwidth of this minute")
            .record();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("read", &label), |b| {
            b.iter(|| {
                i = (i + 1) % copies;
                let bytes = &w[i];
                assert!((bytes.as_ptr() as usize).is_multiple_of(4));
                // SAFETY: the copy's rows*k f16 (an even count) are rows*k/2 f32 of plain bits at
                // a 4-byte aligned address (asserted), borrowed for the call.
                let as_f32 = unsafe {
                    std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 2)
                };
                black_box(bitnet_nn::reduce::sum(as_f32, par).unwrap())
            })
        });
        for (kind, path, f) in kinds {
            RowMeta::new(&name, f, &label)
                .throughput("GB/s", one as f64)
                .limit(&format!("dram_read/{t}"))
                .speedup_over("read")
                .note(format!(
                    "{}, 1 token; weight bytes read per second, rotating {copies} copies ({:.1} GiB)",
                    kind.call(path),
                    (copies * one) as f64 / (1u64 << 30) as f64
                ))
                .record();
            let mut i = 0;
            g.bench_function(BenchmarkId::new(f, &label), |b| {
                b.iter(|| {
                    i = (i + 1) % copies;
                    // The f16 copies' bits read as bf16 for the bf16 kinds: same bytes.
                    let bits: &[u16] = w[i].reinterpret_cast();
                    let wb: &[bf16] = bits.reinterpret_cast();
                    kind.run(path, &w[i], wb, rows, k, &x, &xb, 1, black_box(&mut y), par)
                })
            });
        }
    }
    g.finish();
}

/// The three GEMMs of `bitnet_quant::float16`.
#[derive(Clone, Copy)]
enum Kind {
    F16,
    Bf16,
    Bf16F32,
}

impl Kind {
    fn call(self, path: ConvertPath) -> String {
        match self {
            Kind::F16 => format!("float16::gemm_f16_on({path:?})"),
            Kind::Bf16F32 => format!("float16::gemm_bf16_f32_on({path:?})"),
            Kind::Bf16 => "float16::gemm_bf16 (vdpbf16ps where AVX-512 BF16 exists)".to_owned(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        self,
        path: ConvertPath,
        w16: &[f16],
        wb: &[bf16],
        rows: usize,
        k: usize,
        x: &[f32],
        xb: &[bf16],
        m: usize,
        y: &mut [f32],
        par: Par,
    ) {
        match self {
            Kind::F16 => float16::gemm_f16_on(path, w16, rows, k, x, m, y, par),
            Kind::Bf16F32 => float16::gemm_bf16_f32_on(path, wb, rows, k, x, m, y, par),
            Kind::Bf16 => float16::gemm_bf16(wb, rows, k, xb, m, y, par),
        }
        .unwrap()
    }
}

fn gemm(c: &mut Criterion, all: bool) {
    let (par, t) = if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    };
    let name = format!("float16/gemm_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let bf16_peak = ConvertPath::Avx512Bf16.available().unwrap();
    for (rows, k, m) in [
        (2560usize, 2560usize, 64usize),
        (2560, 2560, 256),
        (6912, 2560, 256),
    ] {
        let label = format!("{rows}x{k} m{m}");
        let w16: Vec<f16> = values(rows * k)
            .iter()
            .map(|&v| f16::from_f32(v * 0.1))
            .collect();
        let wb: Vec<bf16> = values(rows * k)
            .iter()
            .map(|&v| bf16::from_f32(v * 0.1))
            .collect();
        let x = values(m * k);
        let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut y = vec![0f32; m * rows];
        let flops = 2.0 * (rows * k * m) as f64;
        g.throughput(Throughput::Elements(flops as u64));
        let best = ConvertPath::best().unwrap();
        for (kind, f) in [
            (Kind::Bf16, "bf16"),
            (Kind::F16, "f16"),
            (Kind::Bf16F32, "bf16_f32"),
        ] {
            let limit = match kind {
                Kind::Bf16 if bf16_peak => format!("bf16_dot_avx512/{t}"),
                _ => bitnet_benches::fma_peak(t),
            };
            RowMeta::new(&name, f, &label)
                .throughput("GFLOP/s", flops)
                .limit(&limit)
                .note(format!("{}; 2 flops per weight and token", kind.call(best)))
                .record();
            g.bench_function(BenchmarkId::new(f, &label), |b| {
                b.iter(|| kind.run(best, &w16, &wb, rows, k, &x, &xb, m, black_box(&mut y), par))
            });
        }
        // The peer: the same product in f32 (twice the weight bytes) on bitnet-gemm's packed
        // GEMM, W (row-major rows x k) read as the k x rows B with strides (1, k).
        let wf: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let limit = bitnet_benches::fma_peak(t);
        RowMeta::new(&name, "f32_packed", &label)
            .throughput("GFLOP/s", flops)
            .limit(&limit)
            .note("bitnet_gemm::packed::gemm_packed on f32 weights (the peer); 2 flops per weight and token")
            .record();
        g.bench_function(BenchmarkId::new("f32_packed", &label), |b| {
            b.iter(|| {
                let a = MatRef::new(&x, m, k, k, 1).unwrap();
                let bm = MatRef::new(&wf, k, rows, 1, k).unwrap();
                let c = MatMut::new(black_box(&mut y), m, rows, rows, 1).unwrap();
                gemm_packed(1.0, a, bm, 0.0, c, par).unwrap()
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    convert(c);
    for all in [false, true] {
        gemm(c, all);
        gemv_dram(c, all);
    }
}

criterion_group! {
    name = float16;
    config = criterion_config();
    targets = benches
}
criterion_main!(float16);
