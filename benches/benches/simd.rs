//! Benchmarks of the bitnet-simd infrastructure: the scratch pool against fresh allocation, the
//! copies against `copy_from_slice` from 4 KiB to 1 GiB, the fill against `slice::fill`, and the
//! fork-join cost of `Par` on a decode-GEMV-sized task.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bitnet_benches::{RowMeta, criterion_config, quick, size_label};
use bitnet_simd::timer::PerfTimer;
use bitnet_simd::{AlignedVec, CacheInfo, Par, ScratchPool, mem};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The bandwidth limit a buffer of `bytes` (per thread) is measured against.
fn level_for(bytes: usize, kind: &str) -> String {
    let c = CacheInfo::get();
    let level = if bytes * 2 <= c.l2 {
        "l2_read"
    } else if bytes * 2 <= c.l3 {
        "llc_read"
    } else if kind == "copy" {
        // The faster of the machine's two copies (streaming stores skip the read for ownership).
        "dram_copy_nt"
    } else {
        "dram_read"
    };
    format!("{level}/1t")
}

/// Scratch from the pool against a fresh zeroed allocation of the same size, and against
/// `Vec` (whose allocation the OS may satisfy lazily): the cost a kernel pays per call for its
/// temporary space.
fn pool_vs_alloc(c: &mut Criterion) {
    let group_name = "simd/scratch";
    let mut g = c.benchmark_group(group_name);
    let pool = ScratchPool::new();
    for bytes in [4usize << 10, 256 << 10, 4 << 20] {
        let p = size_label(bytes);
        let n = bytes / 4;
        g.throughput(Throughput::Elements(1));
        let note = "take a zeroed f32 scratch buffer, write one element, give it back";
        RowMeta::new(group_name, "pool_take", &p)
            .note(note)
            .record();
        g.bench_with_input(BenchmarkId::new("pool_take", &p), &n, |b, &n| {
            b.iter(|| {
                let mut s = pool.take::<f32>(n);
                s[n - 1] = 1.0;
                black_box(s[0])
            })
        });
        RowMeta::new(group_name, "pool_take_uninit", &p)
            .note("as pool_take, without zeroing")
            .record();
        g.bench_with_input(BenchmarkId::new("pool_take_uninit", &p), &n, |b, &n| {
            b.iter(|| {
                let mut s = pool.take_uninit::<f32>(n);
                s[n - 1] = 1.0;
                black_box(s[0])
            })
        });
        RowMeta::new(group_name, "aligned_vec_zeroed", &p)
            .note("fresh AlignedVec::zeroed each call")
            .record();
        g.bench_with_input(BenchmarkId::new("aligned_vec_zeroed", &p), &n, |b, &n| {
            b.iter(|| {
                let mut v = AlignedVec::<f32>::zeroed(n);
                v[n - 1] = 1.0;
                black_box(v[0])
            })
        });
        RowMeta::new(group_name, "vec_zeroed", &p)
            .peer()
            .note("fresh vec![0f32; n] each call")
            .record();
        g.bench_with_input(BenchmarkId::new("vec_zeroed", &p), &n, |b, &n| {
            b.iter(|| {
                let mut v = vec![0f32; n];
                v[n - 1] = 1.0;
                black_box(v[0])
            })
        });
    }
    g.finish();
}

/// A copy under test: name, function, what it is.
type Copy = (&'static str, fn(&mut [u8], &[u8]), &'static str);

/// The copies compared in `simd/copy`: the standard library's first (the peer).
const COPIES: [Copy; 4] = [
    (
        "copy_from_slice",
        |d, s| d.copy_from_slice(s),
        "std copy_from_slice (memcpy); bytes copied per second",
    ),
    (
        "copy_cached",
        |d, s| mem::copy_cached(d, s).unwrap(),
        "mem::copy_cached, generic vector loop, ordinary stores",
    ),
    (
        "copy",
        |d, s| mem::copy(d, s).unwrap(),
        "mem::copy: copy_cached below half the LLC, copy_nontemporal from there",
    ),
    (
        "copy_nontemporal",
        |d, s| mem::copy_nontemporal(d, s).unwrap(),
        "mem::copy_nontemporal, streaming stores",
    ),
];

fn copies(c: &mut Criterion) {
    let group_name = "simd/copy";
    let mut g = c.benchmark_group(group_name);
    let max = if quick() { 256 << 20 } else { 1 << 30 };
    let sizes: Vec<usize> = [
        4usize << 10,
        64 << 10,
        512 << 10,
        4 << 20,
        16 << 20,
        64 << 20,
        256 << 20,
        1 << 30,
    ]
    .into_iter()
    .filter(|&s| s <= max)
    .collect();
    let mut src = AlignedVec::<u8>::zeroed(max);
    let mut dst = AlignedVec::<u8>::zeroed(max);
    mem::fill(&mut src, 0x5A).unwrap();
    mem::fill(&mut dst, 0).unwrap();
    for bytes in sizes {
        let p = size_label(bytes);
        let limit = level_for(bytes, "copy");
        g.throughput(Throughput::Bytes(bytes as u64));
        if bytes >= 256 << 20 {
            g.sample_size(10);
        }
        let (s, d) = (&src[..bytes], &mut dst[..bytes]);
        for (name, copy, note) in COPIES {
            let row = RowMeta::new(group_name, name, &p)
                .throughput("GB/s", bytes as f64)
                .limit(&limit)
                .note(note);
            if name == "copy_from_slice" {
                row.peer().record();
            } else {
                row.record();
            }
            g.bench_function(BenchmarkId::new(name, &p), |b| {
                b.iter(|| copy(d, black_box(s)))
            });
        }
    }
    g.finish();
}

fn fills(c: &mut Criterion) {
    let group_name = "simd/fill";
    let mut g = c.benchmark_group(group_name);
    for bytes in [64usize << 10, 4 << 20, 256 << 20] {
        let p = size_label(bytes);
        let n = bytes / 4;
        let mut buf = AlignedVec::<f32>::zeroed(n);
        let limit = level_for(bytes, "read");
        g.throughput(Throughput::Bytes(bytes as u64));
        if bytes >= 256 << 20 {
            g.sample_size(10);
        }
        RowMeta::new(group_name, "slice_fill", &p)
            .peer()
            .throughput("GB/s", bytes as f64)
            .limit(&limit)
            .note("std slice::fill on f32; bytes written per second")
            .record();
        g.bench_function(BenchmarkId::new("slice_fill", &p), |b| {
            b.iter(|| buf.fill(black_box(1.5)))
        });
        RowMeta::new(group_name, "fill", &p)
            .throughput("GB/s", bytes as f64)
            .limit(&limit)
            .note("mem::fill on f32")
            .record();
        g.bench_function(BenchmarkId::new("fill", &p), |b| {
            b.iter(|| mem::fill(&mut buf, black_box(1.5f32)).unwrap())
        });
    }
    g.finish();
}

/// The `n <= max` for which `work(n)` takes about `target_secs` on one thread (median of 15).
fn calibrate(target_secs: f64, max: usize, work: impl Fn(usize)) -> usize {
    let time = |n: usize| {
        let mut t: Vec<f64> = (0..15)
            .map(|_| {
                let s = Instant::now();
                work(n);
                s.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[7]
    };
    let probe = max / 16;
    let n = (probe as f64 * target_secs / time(probe)) as usize;
    n.clamp(1024, max)
}

/// Waits `gap` on the calling thread, busy, as the single-threaded work between two kernels of
/// a decode step would.
fn busy_wait(gap: Duration) {
    let start = Instant::now();
    while start.elapsed() < gap {
        std::hint::spin_loop();
    }
}

/// A task of a fixed amount of memory-bound work (summing an L2-resident buffer), run on one
/// thread and split over all cores by each backend: the difference from `seq / threads` is the
/// fork-join cost. Rows time calls back to back, after 30 µs of single-threaded work (the norms
/// and quantization between two projections of a decode step), and after 1 ms (workers parked).
fn fork_join(c: &mut Criterion) {
    let group_name = "simd/par_fork_join";
    let mut g = c.benchmark_group(group_name);
    let cores = NonZeroUsize::new(bitnet_simd::affinity::core_count()).unwrap();
    let threads = cores.get();
    let data: Vec<u32> = (0..1u32 << 20).collect();
    // Eight passes over a range of an L2-sized buffer: memory-bound work like a GEMV in cache.
    let sum = |r: std::ops::Range<usize>| -> u32 {
        let mut acc = 0u32;
        for _ in 0..8 {
            acc = acc.wrapping_add(data[r.clone()].iter().fold(0u32, |a, &x| a.wrapping_add(x)));
        }
        acc
    };
    for (label, target) in [("20us", 20e-6), ("50us", 50e-6)] {
        let n = calibrate(target, data.len(), |n| {
            black_box(sum(0..n));
        });
        g.throughput(Throughput::Elements(1));
        RowMeta::new(group_name, "seq", label)
            .note("the whole task on the calling thread")
            .record();
        g.bench_function(BenchmarkId::new("seq", label), |b| {
            b.iter(|| black_box(sum(0..n)))
        });
        for (backend, par) in [
            ("threads", Par::Threads(cores)),
            ("rayon", Par::Rayon(cores)),
        ] {
            let name = format!("{backend}_{threads}t");
            let note = format!("Par::{par:?}.for_each_range, back to back");
            RowMeta::new(group_name, &name, label).note(&note).record();
            g.bench_function(BenchmarkId::new(&name, label), |b| {
                b.iter(|| {
                    par.for_each_range(n, 1024, |r| {
                        black_box(sum(r));
                    })
                })
            });
            for (suffix, gap, what) in [
                ("gap30us", Duration::from_micros(30), "30 µs"),
                (
                    "parked",
                    Duration::from_millis(1),
                    "1 ms (idle workers have parked)",
                ),
            ] {
                let name = format!("{backend}_{threads}t_{suffix}");
                let note = format!(
                    "Par::{par:?}.for_each_range, each call after {what} of single-threaded work; only the call is timed"
                );
                RowMeta::new(group_name, &name, label).note(note).record();
                g.bench_function(BenchmarkId::new(&name, label), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            busy_wait(gap);
                            let t = Instant::now();
                            par.for_each_range(n, 1024, |r| {
                                black_box(sum(r));
                            });
                            total += t.elapsed();
                        }
                        total
                    })
                });
            }
        }
    }
    g.finish();
}

/// The cost of the timing utility itself: one `PerfTimer::start` plus one `elapsed`.
fn timer(c: &mut Criterion) {
    let group_name = "simd/timer";
    let mut g = c.benchmark_group(group_name);
    RowMeta::new(group_name, "perf_timer", "start+elapsed")
        .note("PerfTimer::start then elapsed_secs (two monotonic clock reads)")
        .record();
    g.bench_function(BenchmarkId::new("perf_timer", "start+elapsed"), |b| {
        b.iter(|| black_box(PerfTimer::start().elapsed_secs()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = pool_vs_alloc, copies, fills, fork_join, timer
}
criterion_main!(benches);
