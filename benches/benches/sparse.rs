//! Sparse kernels (`bitnet_quant::sparse`) against the dense kernels of the same shape, at
//! 50 %, 90 % and 99 % sparsity (the fraction of exact zeros), in one run, on one core (`_1t`)
//! and on all (`_all`). Every rate is dense-equivalent GFLOP/s (2 flops per entry of the dense
//! matrix, whatever is stored), so the columns compare by time, and each sparse row reports
//! its speedup over the dense row of the same sparsity: the crossover (the sparsity from which
//! the sparse kernel wins) reads off each table. No machine limit applies to a
//! dense-equivalent rate, so none is shown.
//!
//! - `sparse/spmv_*`: 4096 × 4096, CSR `spmv` vs bitnet-gemm's dense `gemv`, each iteration on
//!   the next of enough copies of the matrix (CSR or dense) to exceed 2 GiB: both from DRAM, as
//!   a layer's weights are in a model.
//! - `sparse/spmm_*`: 1024 × 1024 times 1024 × 64 (in cache), CSR `spmm` vs bitnet-gemm's
//!   dense `gemm`.
//! - `sparse/activation_*`: 4096 × 4096 weights times an activation vector with that
//!   sparsity, `CompressedActivation::gemv_t` (transposed weights, one AXPY per nonzero) vs the
//!   dense `gemv`. Each iteration takes the next of enough weight copies to exceed 2 GiB and
//!   the next of 16 activation patterns, so the weight rows a pattern touches come from DRAM,
//!   as they do when the pattern changes per token.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_gemm::{MatMut, MatRef, gemm, gemv};
use bitnet_quant::Par;
use bitnet_quant::sparse::{CompressedActivation, Csr};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ROTATION_BYTES: usize = 2200 << 20;

const SPARSITY: [f64; 3] = [0.5, 0.9, 0.99];

/// `n` values of which a fraction `sparsity` are zero, spread evenly (a hash of the index and
/// `seed`).
fn with_zeros(n: usize, sparsity: f64, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 40;
            if (h as f64) / ((1u64 << 24) as f64) < sparsity {
                0.0
            } else {
                ((i * 7919 % 1000) as f32 - 500.0) * 0.002
            }
        })
        .collect()
}

fn label(s: f64) -> String {
    format!("{}% zeros", (s * 100.0).round())
}

/// How many copies of `bytes` exceed [`ROTATION_BYTES`].
fn copies(bytes: usize) -> usize {
    ROTATION_BYTES.div_ceil(bytes).max(2)
}

/// `(Par, "1t" | "all")`.
fn cores(all: bool) -> (Par, &'static str) {
    if all {
        (Par::default(), "all")
    } else {
        (Par::Seq, "1t")
    }
}

/// Records the dense and sparse rows of one sparsity.
fn meta(group: &str, s: f64, flops: f64, (sparse, sparse_note): (&str, &str), dense_note: &str) {
    RowMeta::new(group, "dense", &label(s))
        .throughput("GFLOP/s", flops)
        .note(format!("{dense_note}; 2 flops per matrix entry"))
        .record();
    RowMeta::new(group, sparse, &label(s))
        .throughput("GFLOP/s", flops)
        .speedup_over("dense")
        .note(format!(
            "{sparse_note}; dense-equivalent flops (2 per matrix entry)"
        ))
        .record();
}

fn spmv(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("sparse/spmv_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let (rows, cols) = (4096, 4096);
    let flops = 2.0 * (rows * cols) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let x = with_zeros(cols, 0.0, 1);
    let mut y = vec![0f32; rows];
    for s in SPARSITY {
        let a = with_zeros(rows * cols, s, 0);
        let m = Csr::from_dense(&a, rows, cols, 0.0).unwrap();
        meta(
            &name,
            s,
            flops,
            ("csr", "Csr::spmv from DRAM"),
            "bitnet_gemm::gemv on the dense matrix from DRAM",
        );
        let sparse: Vec<Csr> = vec![m.clone(); copies(8 * (m.nnz() + rows + 1))];
        let mut i = 0;
        g.bench_function(BenchmarkId::new("csr", label(s)), |b| {
            b.iter(|| {
                i = (i + 1) % sparse.len();
                sparse[i].spmv(black_box(&x), &mut y, par).unwrap()
            })
        });
        drop(sparse);
        let n = copies(4 * a.len());
        let dense = a.repeat(n);
        g.bench_function(BenchmarkId::new("dense", label(s)), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                let a = MatRef::row_major(&dense[i * a.len()..][..a.len()], rows, cols).unwrap();
                gemv(1.0, a, black_box(&x), 0.0, &mut y, par).unwrap()
            })
        });
    }
    g.finish();
}

fn spmm(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("sparse/spmm_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let (rows, cols, n) = (1024, 1024, 64);
    let flops = 2.0 * (rows * cols * n) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let bm = with_zeros(cols * n, 0.0, 1);
    let mut cm = vec![0f32; rows * n];
    for s in SPARSITY {
        let a = with_zeros(rows * cols, s, 0);
        let m = Csr::from_dense(&a, rows, cols, 0.0).unwrap();
        meta(
            &name,
            s,
            flops,
            ("csr", "Csr::spmm"),
            "bitnet_gemm::gemm on the dense matrix",
        );
        g.bench_function(BenchmarkId::new("csr", label(s)), |b| {
            b.iter(|| m.spmm(black_box(&bm), n, &mut cm, par).unwrap())
        });
        g.bench_function(BenchmarkId::new("dense", label(s)), |b| {
            b.iter(|| {
                let am = MatRef::row_major(&a, rows, cols).unwrap();
                let bv = MatRef::row_major(&bm, cols, n).unwrap();
                let cv = MatMut::new(&mut cm, rows, n, n, 1).unwrap();
                gemm(1.0, am, bv, 0.0, cv, par).unwrap()
            })
        });
    }
    g.finish();
}

fn activation(c: &mut Criterion, all: bool) {
    let (par, t) = cores(all);
    let name = format!("sparse/activation_{t}");
    let mut g = c.benchmark_group(&name);
    g.sample_size(10);
    let (rows, k) = (4096, 4096);
    let flops = 2.0 * (rows * k) as f64;
    g.throughput(Throughput::Elements(flops as u64));
    let w = with_zeros(rows * k, 0.0, 2);
    let n = copies(4 * w.len());
    let wt: Vec<f32> = (0..k * rows)
        .map(|i| w[(i % rows) * k + i / rows])
        .collect::<Vec<f32>>()
        .repeat(n);
    let w = w.repeat(n);
    let len = rows * k;
    let mut y = vec![0f32; rows];
    for s in SPARSITY {
        let xs: Vec<Vec<f32>> = (0..16).map(|p| with_zeros(k, s, 100 + p)).collect();
        let cas: Vec<CompressedActivation> = xs
            .iter()
            .map(|x| CompressedActivation::from_dense(x, 0.0).unwrap())
            .collect();
        meta(
            &name,
            s,
            flops,
            (
                "compressed_gemv_t",
                "CompressedActivation::gemv_t (transposed weights from DRAM, a new pattern per iteration)",
            ),
            "bitnet_gemm::gemv with the dense activations, weights from DRAM",
        );
        let mut i = 0;
        g.bench_function(BenchmarkId::new("compressed_gemv_t", label(s)), |b| {
            b.iter(|| {
                i += 1;
                let wt = &wt[i % n * len..][..len];
                cas[i % 16]
                    .gemv_t(black_box(wt), rows, &mut y, par)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("dense", label(s)), |b| {
            b.iter(|| {
                i += 1;
                let a = MatRef::row_major(&w[i % n * len..][..len], rows, k).unwrap();
                gemv(1.0, a, black_box(&xs[i % 16]), 0.0, &mut y, par).unwrap()
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for all in [false, true] {
        spmv(c, all);
        spmm(c, all);
        activation(c, all);
    }
}

criterion_group! {
    name = sparse;
    config = criterion_config();
    targets = benches
}
criterion_main!(sparse);
