//! f32 GEMV, the decode case: ours against gemm, faer (and matrixmultiply on one thread), on
//! row-major matrices `A (m x k)` times `x`.
//!
//! - `gemv/dram_*`: each iteration uses the next of enough copies of A to exceed 2 GiB, so A
//!   comes from DRAM every time (one 64 MiB matrix would stay in a 32 MiB+ last-level cache
//!   after a few iterations on some machines); measured against `dram_read`.
//! - `gemv/cache_*`: one 640 x 2560 matrix (6.25 MiB) read again and again from the last-level
//!   cache; measured against `llc_read`.
//!
//! Throughput is bytes of A per second (x and y are negligible next to A).

use std::cell::Cell;
use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config, quick};
use bitnet_gemm::{MatRef, Par, gemv};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct Set {
    m: usize,
    k: usize,
    mats: Vec<Vec<f32>>,
    x: Vec<f32>,
    y: Vec<f32>,
    next: Cell<usize>,
}

impl Set {
    fn new(m: usize, k: usize, total_bytes: usize) -> Set {
        let bytes = m * k * 4;
        let count = total_bytes.div_ceil(bytes).max(1);
        let mats = (0..count)
            .map(|c| {
                (0..m * k)
                    .map(|i| ((i + c) % 11) as f32 * 0.1 - 0.5)
                    .collect()
            })
            .collect();
        Set {
            m,
            k,
            mats,
            x: vec![0.25; k],
            y: vec![0.0; m],
            next: Cell::new(0),
        }
    }

    /// The index of the next matrix of the rotation.
    fn advance(&self) -> usize {
        let i = self.next.get();
        self.next.set((i + 1) % self.mats.len());
        i
    }
}

fn ours(s: &mut Set, par: Par) {
    let (m, k) = (s.m, s.k);
    let a = &s.mats[s.advance()];
    gemv(
        1.0,
        MatRef::row_major(a, m, k).unwrap(),
        &s.x,
        0.0,
        &mut s.y,
        par,
    )
    .unwrap();
}

fn gemm_crate(s: &mut Set, threads: usize) {
    let (m, k) = (s.m, s.k);
    let a = s.mats[s.advance()].as_ptr();
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // SAFETY: A (m x k, row-major), x (k x 1), y (m x 1) are live buffers of these sizes.
    unsafe {
        gemm::gemm(
            m,
            1,
            k,
            s.y.as_mut_ptr(),
            1,
            1,
            false,
            a,
            1,
            k as isize,
            s.x.as_ptr(),
            1,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn faer_crate(s: &mut Set, threads: usize) {
    let (m, k) = (s.m, s.k);
    let a = faer::MatRef::from_row_major_slice(&s.mats[s.advance()], m, k);
    let x = faer::MatRef::from_column_major_slice(&s.x, k, 1);
    let y = faer::MatMut::from_column_major_slice_mut(&mut s.y, m, 1);
    let par = if threads == 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    };
    faer::linalg::matmul::matmul(y, faer::Accum::Replace, a, x, 1.0f32, par);
}

fn matrixmultiply(s: &mut Set) {
    let (m, k) = (s.m, s.k);
    let a = s.mats[s.advance()].as_ptr();
    // SAFETY: A (m x k, row-major), x, y are live buffers of these sizes.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            1,
            1.0,
            a,
            k as isize,
            1,
            s.x.as_ptr(),
            1,
            1,
            0.0,
            s.y.as_mut_ptr(),
            1,
            1,
        );
    }
}

fn group(c: &mut Criterion, name: &str, set: &mut Set, label: &str, limit: &str, all_cores: bool) {
    let threads = if all_cores {
        bitnet_simd::affinity::core_count()
    } else {
        1
    };
    let par = if all_cores { Par::default() } else { Par::Seq };
    let bytes = (set.m * set.k * 4) as f64;
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes as u64));
    let row = |f: &str| {
        RowMeta::new(name, f, label)
            .throughput("GB/s", bytes)
            .limit(limit)
    };
    row("bitnet_gemv")
        .note(format!("gemv, Par::{par:?}"))
        .record();
    g.bench_function(BenchmarkId::new("bitnet_gemv", label), |b| {
        b.iter(|| ours(black_box(set), par))
    });
    if !all_cores {
        row("matrixmultiply")
            .peer()
            .note("matrixmultiply 0.3 sgemm with n = 1 (single-threaded)")
            .record();
        g.bench_function(BenchmarkId::new("matrixmultiply", label), |b| {
            b.iter(|| matrixmultiply(black_box(set)))
        });
    }
    row("gemm")
        .peer()
        .note(format!(
            "gemm 0.19 (x86-v4) with n = 1, {threads} thread(s)"
        ))
        .record();
    g.bench_function(BenchmarkId::new("gemm", label), |b| {
        b.iter(|| gemm_crate(black_box(set), threads))
    });
    row("faer")
        .peer()
        .note(format!("faer 0.24 matmul with n = 1, {threads} thread(s)"))
        .record();
    g.bench_function(BenchmarkId::new("faer", label), |b| {
        b.iter(|| faer_crate(black_box(set), threads))
    });
    g.finish();
}

fn dram(c: &mut Criterion) {
    let total = if quick() { 2usize << 30 } else { 5 << 29 };
    for (m, k) in [(4096usize, 4096usize), (2560, 6912)] {
        let mut set = Set::new(m, k, total + 1);
        let label = format!("{m}x{k}");
        group(c, "gemv/dram_1t", &mut set, &label, "dram_read/1t", false);
        group(c, "gemv/dram_all", &mut set, &label, "dram_read/all", true);
    }
}

fn cache(c: &mut Criterion) {
    let mut set = Set::new(640, 2560, 0);
    group(
        c,
        "gemv/cache_1t",
        &mut set,
        "640x2560",
        "llc_read/1t",
        false,
    );
    group(
        c,
        "gemv/cache_all",
        &mut set,
        "640x2560",
        "llc_read/all",
        true,
    );
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = cache, dram
}
criterion_main!(benches);
