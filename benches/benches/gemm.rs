//! f32 GEMM: ours against matrixmultiply, gemm and faer on the same shapes and thread counts,
//! and the log's 512x512x512 table of every variant.
//!
//! Layouts: square products are all row-major; LLM products are `X (m x k, row-major) · W^T`
//! with the weight `W` stored `n x k` row-major (so B is a column-major `k x n` view), as a
//! linear layer computes them.
//!
//! Threads: the `_1t` groups run everyone on one thread; the `_all` groups on every core (ours
//! on `Par::default()`, gemm and faer on rayon with the same count). matrixmultiply is in the
//! `_1t` groups only: its threading reads `MATMUL_NUM_THREADS` once per process, so it cannot be
//! switched between rows of one run.

use std::hint::black_box;

use bitnet_benches::{RowMeta, criterion_config};
use bitnet_gemm::batched::{Batch, BatchMut};
use bitnet_gemm::blocked::{gemm_blocked, gemm_multilevel};
use bitnet_gemm::oblivious::gemm_oblivious;
use bitnet_gemm::packed::gemm_packed;
use bitnet_gemm::reference::{gemm_ikj, gemm_naive_f64};
use bitnet_gemm::strassen::gemm_strassen;
use bitnet_gemm::{MatMut, MatRef, Par};
use bitnet_simd::{CpuFeatures, Isa, with_isa};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// One product: sizes and strides of A (m x k), B (k x n), C (m x n, row-major).
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    /// B stored as `W (n x k)` row-major, i.e. a column-major `k x n` view.
    b_col_major: bool,
}

impl Shape {
    fn b_strides(&self) -> (usize, usize) {
        if self.b_col_major {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }
    fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }
}

struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

fn operands(s: Shape) -> Operands {
    let fill = |n: usize, salt: usize| {
        (0..n)
            .map(|i| ((i * 7 + salt) % 13) as f32 * 0.1 - 0.6)
            .collect()
    };
    Operands {
        a: fill(s.m * s.k, 1),
        b: fill(s.k * s.n, 2),
        c: vec![0.0; s.m * s.n],
    }
}

fn peak_key(threads: &str) -> String {
    let f = CpuFeatures::get();
    let isa = if f.x86_64_v4 { "avx512" } else { "avx2" };
    format!("fma_f32_{isa}/{threads}")
}

fn ours(s: Shape, o: &mut Operands, par: Par) {
    let (rsb, csb) = s.b_strides();
    bitnet_gemm::gemm(
        1.0,
        MatRef::new(&o.a, s.m, s.k, s.k, 1).unwrap(),
        MatRef::new(&o.b, s.k, s.n, rsb, csb).unwrap(),
        0.0,
        MatMut::new(&mut o.c, s.m, s.n, s.n, 1).unwrap(),
        par,
    )
    .unwrap();
}

fn matrixmultiply(s: Shape, o: &mut Operands) {
    let (rsb, csb) = s.b_strides();
    // SAFETY: the pointers and strides describe the three buffers, sized for these shapes.
    unsafe {
        matrixmultiply::sgemm(
            s.m,
            s.k,
            s.n,
            1.0,
            o.a.as_ptr(),
            s.k as isize,
            1,
            o.b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            o.c.as_mut_ptr(),
            s.n as isize,
            1,
        );
    }
}

fn gemm_crate(s: Shape, o: &mut Operands, threads: usize) {
    let (rsb, csb) = s.b_strides();
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // SAFETY: as above; gemm's convention is dst = alpha * dst + beta * lhs * rhs, and
    // read_dst = false ignores dst.
    unsafe {
        gemm::gemm(
            s.m,
            s.n,
            s.k,
            o.c.as_mut_ptr(),
            1,
            s.n as isize,
            false,
            o.a.as_ptr(),
            1,
            s.k as isize,
            o.b.as_ptr(),
            csb as isize,
            rsb as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn faer_crate(s: Shape, o: &mut Operands, threads: usize) {
    let a = faer::MatRef::from_row_major_slice(&o.a, s.m, s.k);
    let b = if s.b_col_major {
        faer::MatRef::from_column_major_slice(&o.b, s.k, s.n)
    } else {
        faer::MatRef::from_row_major_slice(&o.b, s.k, s.n)
    };
    let c = faer::MatMut::from_row_major_slice_mut(&mut o.c, s.m, s.n);
    let par = if threads == 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    };
    faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0f32, par);
}

/// Checks that every peer computes the same product as ours on this shape (so the rows compare
/// like with like): relative difference below 1e-4 of the largest |C|.
fn verify_peers(s: Shape, par: Par, threads: usize) {
    let mut o = operands(s);
    ours(s, &mut o, par);
    let reference = o.c.clone();
    let scale = reference.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let mut check = |name: &str, run: &dyn Fn(&mut Operands)| {
        o.c.iter_mut().for_each(|v| *v = f32::NAN);
        run(&mut o);
        let worst =
            o.c.iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{name} disagrees with bitnet on {}x{}x{}: {worst}",
            s.m,
            s.n,
            s.k
        );
    };
    check("matrixmultiply", &|o| matrixmultiply(s, o));
    check("gemm", &|o| gemm_crate(s, o, threads));
    check("faer", &|o| faer_crate(s, o, threads));
}

/// One group: every implementation on every shape, at one thread count.
fn group(c: &mut Criterion, name: &str, shapes: &[(String, Shape)], all_cores: bool) {
    let threads = if all_cores {
        bitnet_simd::affinity::core_count()
    } else {
        1
    };
    let tkey = if all_cores { "all" } else { "1t" };
    let limit = peak_key(tkey);
    let mut g = c.benchmark_group(name);
    for (label, s) in shapes {
        let s = *s;
        let mut o = operands(s);
        g.throughput(Throughput::Elements(s.flops() as u64));
        if s.flops() > 4e9 {
            g.sample_size(10);
        }
        let par = if all_cores { Par::default() } else { Par::Seq };
        verify_peers(s, par, threads);
        let row = |f: &str| {
            RowMeta::new(name, f, label)
                .throughput("GFLOP/s", s.flops())
                .limit(&limit)
        };
        row("bitnet_gemm")
            .note(format!(
                "bitnet_gemm::gemm (small_m for m <= {} times W^T, packed otherwise), Par::{par:?}",
                bitnet_gemm::small_m::MAX_ROWS
            ))
            .record();
        g.bench_function(BenchmarkId::new("bitnet_gemm", label), |b| {
            b.iter(|| ours(s, black_box(&mut o), par))
        });
        if !all_cores {
            row("matrixmultiply")
                .peer()
                .note("matrixmultiply 0.3 sgemm (avx512 feature, single-threaded)")
                .record();
            g.bench_function(BenchmarkId::new("matrixmultiply", label), |b| {
                b.iter(|| matrixmultiply(s, black_box(&mut o)))
            });
        }
        row("gemm")
            .peer()
            .note(format!("gemm 0.19 (x86-v4), {threads} thread(s)"))
            .record();
        g.bench_function(BenchmarkId::new("gemm", label), |b| {
            b.iter(|| gemm_crate(s, black_box(&mut o), threads))
        });
        row("faer")
            .peer()
            .note(format!(
                "faer 0.24 matmul (nightly = AVX-512), {threads} thread(s)"
            ))
            .record();
        g.bench_function(BenchmarkId::new("faer", label), |b| {
            b.iter(|| faer_crate(s, black_box(&mut o), threads))
        });
    }
    g.finish();
}

fn square_shapes() -> Vec<(String, Shape)> {
    [64usize, 256, 512, 1024, 2048]
        .iter()
        .map(|&n| {
            (
                format!("{n}"),
                Shape {
                    m: n,
                    n,
                    k: n,
                    b_col_major: false,
                },
            )
        })
        .collect()
}

fn llm_shapes() -> Vec<(String, Shape)> {
    let mut v = Vec::new();
    for (n, k) in [(2560, 2560), (6912, 2560), (2560, 6912)] {
        for m in [1, 8, 64, 512] {
            v.push((
                format!("m{m} n{n} k{k}"),
                Shape {
                    m,
                    n,
                    k,
                    b_col_major: true,
                },
            ));
        }
    }
    v
}

fn square(c: &mut Criterion) {
    let shapes = square_shapes();
    group(c, "gemm/square_1t", &shapes, false);
    group(c, "gemm/square_all", &shapes, true);
}

fn llm(c: &mut Criterion) {
    let shapes = llm_shapes();
    group(c, "gemm/llm_1t", &shapes, false);
    group(c, "gemm/llm_all", &shapes, true);
}

/// The log's "512x512x512" table, measured: every variant on one thread, row-major.
fn log_table(c: &mut Criterion) {
    let name = "gemm/variants_512";
    let s = Shape {
        m: 512,
        n: 512,
        k: 512,
        b_col_major: false,
    };
    let mut o = operands(s);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(s.flops() as u64));
    g.sample_size(10);
    let limit = peak_key("1t");
    type Variant =
        fn(f32, MatRef<'_>, MatRef<'_>, f32, MatMut<'_>) -> Result<(), bitnet_gemm::GemmError>;
    fn forced(
        isa: Isa,
        al: f32,
        a: MatRef<'_>,
        b: MatRef<'_>,
        be: f32,
        c: MatMut<'_>,
    ) -> Result<(), bitnet_gemm::GemmError> {
        with_isa(isa, || gemm_packed(al, a, b, be, c, Par::Seq))?
    }
    let variants: [(&str, &str, Variant); 9] = [
        (
            "naive_f64",
            "reference::gemm_naive_f64: i-j-k, f64 accumulation (the oracle)",
            gemm_naive_f64,
        ),
        (
            "ikj",
            "reference::gemm_ikj: the log's i-k-j order in f32",
            gemm_ikj,
        ),
        (
            "blocked",
            "blocked::gemm_blocked: i-k-j in L1-sized blocks",
            gemm_blocked,
        ),
        (
            "multilevel",
            "blocked::gemm_multilevel: L2 blocks of L1 blocks",
            gemm_multilevel,
        ),
        (
            "oblivious",
            "oblivious::gemm_oblivious: recursive halving to 64^3",
            gemm_oblivious,
        ),
        (
            "strassen",
            "strassen::gemm_strassen: one level at 512 (cutoff 512), packed below, Par::Seq",
            |al, a, b, be, c| gemm_strassen(al, a, b, be, c, Par::Seq),
        ),
        (
            "packed",
            "packed::gemm_packed, Par::Seq (best level)",
            |al, a, b, be, c| gemm_packed(al, a, b, be, c, Par::Seq),
        ),
        (
            "packed_avx2",
            "packed::gemm_packed forced to AVX2+FMA (with_isa), Par::Seq: its 16x6 ymm tile",
            |al, a, b, be, c| forced(Isa::Avx2, al, a, b, be, c),
        ),
        (
            "packed_scalar",
            "packed::gemm_packed forced to the scalar level (with_isa), Par::Seq: its 4x4 tile (built with -C target-cpu, the compiler may vectorise these loops itself)",
            |al, a, b, be, c| forced(Isa::Scalar, al, a, b, be, c),
        ),
    ];
    for (f, note, run) in variants {
        if f == "packed_avx2" && !Isa::Avx2.is_supported() {
            continue;
        }
        RowMeta::new(name, f, "512")
            .throughput("GFLOP/s", s.flops())
            .limit(&limit)
            .note(note)
            .speedup_over("naive_f64")
            .record();
        g.bench_function(BenchmarkId::new(f, "512"), |b| {
            b.iter(|| {
                run(
                    1.0,
                    MatRef::row_major(&o.a, 512, 512).unwrap(),
                    MatRef::row_major(&o.b, 512, 512).unwrap(),
                    0.0,
                    MatMut::row_major(&mut o.c, 512, 512).unwrap(),
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

/// Strided batches of row-major products on every core: ours across the batch (or inside each
/// product, as `gemm_batched` decides) against a loop of products each threaded inside, ours and
/// the peers'.
fn batched(c: &mut Criterion) {
    let name = "gemm/batched_all";
    let threads = bitnet_simd::affinity::core_count();
    let limit = peak_key("all");
    let mut g = c.benchmark_group(name);
    for (batch, m, n, k) in [(32usize, 64usize, 64usize, 64usize), (20, 256, 256, 128)] {
        let label = format!("b{batch} m{m} n{n} k{k}");
        let s = Shape {
            m,
            n,
            k,
            b_col_major: false,
        };
        let flops = batch as f64 * s.flops();
        let fill = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
                .collect()
        };
        let (a, b) = (fill(batch * m * k), fill(batch * k * n));
        let mut out = vec![0f32; batch * m * n];
        g.throughput(Throughput::Elements(flops as u64));
        let row = |f: &str| {
            RowMeta::new(name, f, &label)
                .throughput("GFLOP/s", flops)
                .limit(&limit)
        };
        row("bitnet_batched")
            .note(format!(
                "batched::gemm_batched, Par::default() ({threads} threads: across the batch below {} flops per product, inside each above)",
                bitnet_gemm::batched::INNER_PARALLEL_FLOPS
            ))
            .record();
        g.bench_function(BenchmarkId::new("bitnet_batched", &label), |bench| {
            bench.iter(|| {
                bitnet_gemm::batched::gemm_batched(
                    1.0,
                    Batch::new(bitnet_gemm::Operand::A, &a, batch, m * k, m, k, k, 1).unwrap(),
                    Batch::new(bitnet_gemm::Operand::B, &b, batch, k * n, k, n, n, 1).unwrap(),
                    0.0,
                    BatchMut::new(black_box(&mut out), batch, m * n, m, n, n, 1).unwrap(),
                    Par::default(),
                )
                .unwrap()
            })
        });
        row("bitnet_loop")
            .note("a loop of bitnet_gemm::gemm, each product on every core (Par::default())")
            .record();
        g.bench_function(BenchmarkId::new("bitnet_loop", &label), |bench| {
            bench.iter(|| {
                for i in 0..batch {
                    bitnet_gemm::gemm(
                        1.0,
                        MatRef::row_major(&a[i * m * k..(i + 1) * m * k], m, k).unwrap(),
                        MatRef::row_major(&b[i * k * n..(i + 1) * k * n], k, n).unwrap(),
                        0.0,
                        MatMut::row_major(&mut out[i * m * n..(i + 1) * m * n], m, n).unwrap(),
                        Par::default(),
                    )
                    .unwrap();
                }
            })
        });
        row("faer_loop")
            .peer()
            .note(format!(
                "a loop of faer 0.24 matmul, each product on {threads} rayon threads"
            ))
            .record();
        g.bench_function(BenchmarkId::new("faer_loop", &label), |bench| {
            bench.iter(|| {
                for i in 0..batch {
                    let ai =
                        faer::MatRef::from_row_major_slice(&a[i * m * k..(i + 1) * m * k], m, k);
                    let bi =
                        faer::MatRef::from_row_major_slice(&b[i * k * n..(i + 1) * k * n], k, n);
                    let ci = faer::MatMut::from_row_major_slice_mut(
                        &mut out[i * m * n..(i + 1) * m * n],
                        m,
                        n,
                    );
                    faer::linalg::matmul::matmul(
                        ci,
                        faer::Accum::Replace,
                        ai,
                        bi,
                        1.0f32,
                        faer::Par::rayon(threads),
                    );
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = log_table, square, llm, batched
}
criterion_main!(benches);
