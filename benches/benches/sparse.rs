//! Sparse kernels (`bitnet_quant::sparse`) against the dense kernels of the same shape, at
//! 50 %, 90 % and 99 % sparsity (the fraction of exact zeros), in one run, so the crossover
//! (the sparsity from which the sparse kernel wins) reads off each table.
//!
//! - `sparse/spmv_1t`: 4096 × 4096, CSR `spmv` vs bitnet-gemm's dense `gemv`; 2 flops per
//!   stored entry, reported as dense-equivalent GFLOP/s (2 · rows · cols per call) so the
//!   columns compare by time.
//! - `sparse/spmm_1t`: 1024 × 1024 times 1024 × 64, CSR `spmm` vs bitnet-gemm's dense `gemm`;
//!   dense-equivalent GFLOP/s.
//! - `sparse/activation_1t`: 4096 × 4096 weights times an activation vector with that
//!   sparsity: `CompressedActivation::gemv_t` (transposed weights, one AXPY per nonzero) vs the
//!   dense `gemv`; dense-equivalent GFLOP/s. The same activation runs every iteration, so the
//!   weight rows it touches (64 MiB × density) stay in the last-level cache once they fit; a
//!   pattern that changes per token reads them from DRAM.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, fma_peak};
use bitnet_gemm::{MatMut, MatRef, gemm, gemv};
use bitnet_quant::Par;
use bitnet_quant::sparse::{CompressedActivation, Csr};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// `n` values of which a fraction `sparsity` are zero, spread evenly (a fixed hash).
fn with_zeros(n: usize, sparsity: f64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            if (h as f64) / ((1u64 << 24) as f64) < sparsity {
                0.0
            } else {
                ((i * 7919 % 1000) as f32 - 500.0) * 0.002
            }
        })
        .collect()
}

const SPARSITY: [f64; 3] = [0.5, 0.9, 0.99];

fn label(s: f64) -> String {
    format!("{}% zeros", (s * 100.0).round())
}

fn spmv(c: &mut Criterion) {
    let name = "sparse/spmv_1t";
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let (rows, cols) = (4096, 4096);
    let flops = 2.0 * (rows * cols) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let x = with_zeros(cols, 0.0);
    let mut y = vec![0f32; rows];
    for s in SPARSITY {
        let a = with_zeros(rows * cols, s);
        let m = Csr::from_dense(&a, rows, cols, 0.0).unwrap();
        for (f, note) in [
            ("csr_spmv", "Csr::spmv"),
            ("dense_gemv", "bitnet_gemm::gemv on the dense matrix"),
        ] {
            RowMeta::new(name, f, &label(s))
                .throughput("GFLOP/s", flops)
                .limit(&fma_peak("1t"))
                .note(format!(
                    "{note}; dense-equivalent flops (2 per matrix entry)"
                ))
                .record();
            g.bench_function(BenchmarkId::new(f, label(s)), |b| {
                b.iter(|| {
                    if f == "csr_spmv" {
                        m.spmv(black_box(&x), &mut y, Par::Seq).unwrap()
                    } else {
                        let a = MatRef::row_major(&a, rows, cols).unwrap();
                        gemv(1.0, a, black_box(&x), 0.0, &mut y, bitnet_gemm::Par::Seq).unwrap()
                    }
                })
            });
        }
    }
    g.finish();
}

fn spmm(c: &mut Criterion) {
    let name = "sparse/spmm_1t";
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let (rows, cols, n) = (1024, 1024, 64);
    let flops = 2.0 * (rows * cols * n) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let bm = with_zeros(cols * n, 0.0);
    let mut cm = vec![0f32; rows * n];
    for s in SPARSITY {
        let a = with_zeros(rows * cols, s);
        let m = Csr::from_dense(&a, rows, cols, 0.0).unwrap();
        for (f, note) in [
            ("csr_spmm", "Csr::spmm"),
            ("dense_gemm", "bitnet_gemm::gemm on the dense matrix"),
        ] {
            RowMeta::new(name, f, &label(s))
                .throughput("GFLOP/s", flops)
                .limit(&fma_peak("1t"))
                .note(format!("{note}; dense-equivalent flops"))
                .record();
            g.bench_function(BenchmarkId::new(f, label(s)), |b| {
                b.iter(|| {
                    if f == "csr_spmm" {
                        m.spmm(black_box(&bm), n, &mut cm, Par::Seq).unwrap()
                    } else {
                        let am = MatRef::row_major(&a, rows, cols).unwrap();
                        let bv = MatRef::row_major(&bm, cols, n).unwrap();
                        let cv = MatMut::new(&mut cm, rows, n, n, 1).unwrap();
                        gemm(1.0, am, bv, 0.0, cv, bitnet_gemm::Par::Seq).unwrap()
                    }
                })
            });
        }
    }
    g.finish();
}

fn activation(c: &mut Criterion) {
    let name = "sparse/activation_1t";
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let (rows, k) = (4096, 4096);
    let flops = 2.0 * (rows * k) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let w = with_zeros(rows * k, 0.0);
    let wt: Vec<f32> = (0..k * rows)
        .map(|i| w[(i % rows) * k + i / rows])
        .collect();
    let mut y = vec![0f32; rows];
    for s in SPARSITY {
        let x = with_zeros(k, s);
        let ca = CompressedActivation::from_dense(&x, 0.0).unwrap();
        for (f, note) in [
            (
                "compressed_gemv_t",
                "CompressedActivation::gemv_t (transposed weights)",
            ),
            ("dense_gemv", "bitnet_gemm::gemv with the dense activations"),
        ] {
            RowMeta::new(name, f, &label(s))
                .throughput("GFLOP/s", flops)
                .limit(&fma_peak("1t"))
                .note(format!("{note}; dense-equivalent flops"))
                .record();
            g.bench_function(BenchmarkId::new(f, label(s)), |b| {
                b.iter(|| {
                    if f == "compressed_gemv_t" {
                        ca.gemv_t(black_box(&wt), rows, &mut y).unwrap()
                    } else {
                        let a = MatRef::row_major(&w, rows, k).unwrap();
                        gemv(1.0, a, black_box(&x), 0.0, &mut y, bitnet_gemm::Par::Seq).unwrap()
                    }
                })
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    spmv(c);
    spmm(c);
    activation(c);
}

criterion_group! {
    name = sparse;
    config = criterion_config();
    targets = benches
}
criterion_main!(sparse);
