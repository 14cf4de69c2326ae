//! Memory bandwidth: reading from L2, the last-level cache and DRAM, and copying in DRAM.
//!
//! Reads sum-reduce the buffer with the widest vector loads the CPU has (zmm, else ymm) into 8
//! independent accumulators, so the loop is bound by loads, not by the adds' latency. Bandwidth is
//! in GB/s = 1e9 bytes per second.

use core::arch::asm;
use core::arch::x86_64::*;
use std::hint::black_box;
use std::sync::Mutex;

use anyhow::Result;
use bitnet_simd::{CacheInfo, CpuFeatures};

use super::pinned::{self, Timing};
use super::{Config, LimitEntry, Table, summarize};

/// One cache line: the unit of every buffer here, so buffers are 64-byte aligned.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct Line([u64; 8]);

/// One thread's part of a copy: source and destination.
type CopyPart<'a> = (&'a [Line], &'a mut [Line]);

/// Bytes in one [`Line`].
const LINE: usize = size_of::<Line>();

/// The DRAM buffer: 2.5 GiB, far beyond any cache. The copy uses its two halves.
const DRAM_BYTES: usize = 5 << 29;

/// A buffer of `bytes` (rounded down to whole 8-line blocks), every page written once so it is
/// faulted in before any timing. With `threads > 1` the writing is split among that many pinned
/// threads; with 1 the calling thread writes it all.
fn buffer(bytes: usize, threads: usize) -> Vec<Line> {
    let n = (bytes / LINE / 8 * 8).max(8);
    let mut v: Vec<Line> = Vec::with_capacity(n);
    let fill = |chunk: &mut [std::mem::MaybeUninit<Line>]| {
        for line in chunk {
            line.write(Line([1; 8]));
        }
    };
    let lines = &mut v.spare_capacity_mut()[..n];
    if threads <= 1 {
        fill(lines);
    } else {
        std::thread::scope(|scope| {
            for (t, chunk) in lines.chunks_mut(n.div_ceil(threads)).enumerate() {
                scope.spawn(move || {
                    bitnet_simd::affinity::pin_current_thread(t);
                    fill(chunk);
                });
            }
        });
    }
    // SAFETY: the capacity is at least `n`, and all `n` lines were initialised just above.
    unsafe { v.set_len(n) };
    v
}

/// The `t`-th of `threads` nearly equal parts of `lines`, in whole 8-line blocks (the last part
/// takes any remainder).
fn part<T>(lines: &[T], t: usize, threads: usize) -> &[T] {
    let per = (lines.len() / 8).div_ceil(threads) * 8;
    let start = (t * per).min(lines.len());
    let end = if t + 1 == threads {
        lines.len()
    } else {
        (start + per).min(lines.len())
    };
    &lines[start..end]
}

/// The vector registers the loops use here.
fn width() -> &'static str {
    let f = CpuFeatures::get();
    if f.avx512f {
        "zmm"
    } else if f.avx2 {
        "ymm"
    } else {
        "scalar"
    }
}

/// Sums `lines` as u64s (wrapping): a read of every byte.
pub fn read_sum(lines: &[Line]) -> u64 {
    let f = CpuFeatures::get();
    if f.avx512f {
        // SAFETY: AVX-512F is present (checked just above).
        return unsafe { read_zmm(lines) };
    }
    if f.avx2 {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { read_ymm(lines) };
    }
    lines.iter().flat_map(|l| l.0).fold(0, u64::wrapping_add)
}

/// Sums `lines` with one zmm load per line into 8 accumulators (one per line of an 8-line block).
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn read_zmm(lines: &[Line]) -> u64 {
    let (blocks, tail) = lines.as_chunks::<8>();
    let mut acc = [_mm512_setzero_si512(); 8];
    for block in blocks {
        for (acc, line) in acc.iter_mut().zip(block) {
            // SAFETY: `line` is 64 readable bytes, 64-byte aligned.
            let v = unsafe { _mm512_load_si512(line.0.as_ptr().cast()) };
            *acc = _mm512_add_epi64(*acc, v);
        }
    }
    let total = acc
        .into_iter()
        .fold(_mm512_setzero_si512(), |s, a| _mm512_add_epi64(s, a));
    let tail_sum = tail.iter().flat_map(|l| l.0).fold(0, u64::wrapping_add);
    (_mm512_reduce_add_epi64(total) as u64).wrapping_add(tail_sum)
}

/// Sums `lines` with two ymm loads per line into 8 accumulators (one per line of an 8-line block).
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn read_ymm(lines: &[Line]) -> u64 {
    let (blocks, tail) = lines.as_chunks::<8>();
    let mut acc = [_mm256_setzero_si256(); 8];
    for block in blocks {
        for (acc, line) in acc.iter_mut().zip(block) {
            let p: *const __m256i = line.0.as_ptr().cast();
            // SAFETY: `line` is 64 readable bytes, 64-byte aligned: two aligned 32-byte halves.
            let (lo, hi) = unsafe { (_mm256_load_si256(p), _mm256_load_si256(p.add(1))) };
            *acc = _mm256_add_epi64(*acc, _mm256_add_epi64(lo, hi));
        }
    }
    let total = acc
        .into_iter()
        .fold(_mm256_setzero_si256(), |s, a| _mm256_add_epi64(s, a));
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 32 writable bytes; the unaligned store has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total) };
    let tail_sum = tail.iter().flat_map(|l| l.0).fold(0, u64::wrapping_add);
    lanes.into_iter().fold(tail_sum, u64::wrapping_add)
}

/// How the copy loops store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stores {
    /// Ordinary stores: each destination line is read into the cache first (read for ownership).
    Temporal,
    /// Streaming (`vmovntdq`) stores: whole lines go to memory without being read, then `sfence`.
    NonTemporal,
}

/// Copies `src` into `dst` (equal lengths) with vector loads and the given kind of stores.
pub fn copy(src: &[Line], dst: &mut [Line], stores: Stores) {
    assert_eq!(src.len(), dst.len());
    let f = CpuFeatures::get();
    let nt = stores == Stores::NonTemporal;
    if f.avx512f {
        // SAFETY: AVX-512F is present (checked just above).
        unsafe {
            if nt {
                copy_zmm_nt(src, dst)
            } else {
                copy_zmm(src, dst)
            }
        }
    } else if f.avx2 {
        // SAFETY: AVX2 is present (checked just above).
        unsafe {
            if nt {
                copy_ymm_nt(src, dst)
            } else {
                copy_ymm(src, dst)
            }
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// Defines a copy loop over 256-byte blocks of 64-byte aligned lines: four aligned vector loads,
/// then four stores with the named instruction, then the tail with `copy_from_slice`.
///
/// Written in `asm!` because the compiler turns the same loop written with intrinsics into a
/// `memcpy` call, whose strategy (e.g. non-temporal stores for large sizes) is the C library's.
macro_rules! copy_loop {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $reg:ident, $load:literal, $store:literal,
     $w:literal, $fence:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        ///
        #[doc = concat!("The CPU must support ", $feature, ".")]
        #[target_feature(enable = $feature)]
        unsafe fn $name(src: &[Line], dst: &mut [Line]) {
            // 4 vectors per block: 4 lines of zmm, 2 lines of ymm.
            const LINES: usize = 4 * $w / 64;
            let (src_blocks, src_tail) = src.as_chunks::<LINES>();
            let (dst_blocks, dst_tail) = dst.as_chunks_mut::<LINES>();
            if !src_blocks.is_empty() {
                // SAFETY: `src_blocks` and `dst_blocks` hold the same number (≥ 1) of blocks of
                // 64-byte aligned lines, readable and writable respectively; the loop touches
                // exactly them.
                unsafe {
                    asm!(
                        "2:",
                        concat!($load, " {v0}, [{s}]"),
                        concat!($load, " {v1}, [{s} + ", $w, "]"),
                        concat!($load, " {v2}, [{s} + 2 * ", $w, "]"),
                        concat!($load, " {v3}, [{s} + 3 * ", $w, "]"),
                        concat!($store, " [{d}], {v0}"),
                        concat!($store, " [{d} + ", $w, "], {v1}"),
                        concat!($store, " [{d} + 2 * ", $w, "], {v2}"),
                        concat!($store, " [{d} + 3 * ", $w, "], {v3}"),
                        concat!("add {s}, 4 * ", $w),
                        concat!("add {d}, 4 * ", $w),
                        "dec {n}",
                        "jnz 2b",
                        $fence,
                        s = inout(reg) src_blocks.as_ptr() => _,
                        d = inout(reg) dst_blocks.as_mut_ptr() => _,
                        n = inout(reg) src_blocks.len() => _,
                        v0 = out($reg) _,
                        v1 = out($reg) _,
                        v2 = out($reg) _,
                        v3 = out($reg) _,
                        options(nostack),
                    );
                }
            }
            dst_tail.copy_from_slice(src_tail);
        }
    };
}

copy_loop!(
    /// Copies 4 lines per iteration with zmm loads and ordinary stores.
    copy_zmm, "avx512f", zmm_reg, "vmovdqa64", "vmovdqa64", 64, ""
);
copy_loop!(
    /// Copies 4 lines per iteration with zmm loads and streaming stores, then `sfence`.
    copy_zmm_nt, "avx512f", zmm_reg, "vmovdqa64", "vmovntdq", 64, "sfence"
);
copy_loop!(
    /// Copies 2 lines per iteration with ymm loads and ordinary stores.
    copy_ymm, "avx2", ymm_reg, "vmovdqa", "vmovdqa", 32, ""
);
copy_loop!(
    /// Copies 2 lines per iteration with ymm loads and streaming stores, then `sfence`.
    copy_ymm_nt, "avx2", ymm_reg, "vmovdqa", "vmovntdq", 32, "sfence"
);

/// Sums `lines` `passes` times; the result is kept alive so no pass is optimised away.
fn read_passes(lines: &[Line], passes: u64) {
    for _ in 0..passes {
        black_box(read_sum(black_box(lines)));
    }
}

/// Passes over a buffer of `bytes` that take about `target_secs` on one thread.
fn calibrate_passes(cfg: &Config, bytes: usize) -> u64 {
    let buf = buffer(bytes, 1);
    pinned::calibrate(cfg.target_secs, 4, |n| read_passes(&buf, n))
}

/// Records one bandwidth entry from the wall times of repetitions that each moved `bytes`.
fn record(table: &mut Table, name: &str, what: &str, threads: usize, bytes: f64, walls: &[f64]) {
    let suffix = if threads == 1 { "1t" } else { "all" };
    let rates: Vec<f64> = walls.iter().map(|w| bytes / w / 1e9).collect();
    let (value, spread_pct) = summarize(&rates);
    table.push(LimitEntry {
        key: format!("{name}/{suffix}"),
        what: format!("{what}; {threads} thread(s) pinned one per core"),
        unit: "GB/s".into(),
        threads,
        value,
        spread_pct,
        clock_ghz: None,
        per_cycle_per_core: None,
    });
}

/// Timing for a loop whose threads share a resource (L3, DRAM): wall time when several threads
/// share it (one running alone would get more than its share), thread CPU time for one thread.
fn shared(threads: usize) -> Timing {
    if threads == 1 {
        Timing::ThreadCpu
    } else {
        Timing::Wall
    }
}

/// Measures `l2_read`, `l2_copy`, `llc_read`, `dram_read`, `dram_copy` and `dram_copy_nt`, each
/// on 1 thread and all cores.
pub fn measure(cfg: &Config, table: &mut Table) -> Result<()> {
    let caches = CacheInfo::get();
    let w = width();
    let counts = cfg.thread_counts();
    let all = cfg.all_threads;

    // L2: each thread re-reads its own buffer of half the L2, allocated on its core.
    let l2_bytes = caches.l2 / 2 / (8 * LINE) * (8 * LINE);
    let passes = calibrate_passes(cfg, l2_bytes);
    let what = format!(
        "repeated sum-reduce of {} KiB (half of L2) per thread, {w} loads, 8 accumulators",
        l2_bytes >> 10
    );
    for (threads, _) in counts {
        let walls = pinned::run(
            threads,
            cfg.reps,
            Timing::ThreadCpu, // private caches: each thread's CPU time
            |_| buffer(l2_bytes, 1),
            |buf, _| read_passes(buf, passes),
        );
        let bytes = (l2_bytes as u64 * passes * threads as u64) as f64;
        record(table, "l2_read", &what, threads, bytes, &walls);
    }

    // L2 copy: each thread copies the first half of its buffer into the second, again and again
    // (the traffic of an in-place elementwise operation on a quarter of the L2).
    let what = format!(
        "repeated copy of {} KiB -> {} KiB (the halves of half of L2) per thread, {w} loads and \
         ordinary stores; value = bytes copied per second",
        l2_bytes >> 11,
        l2_bytes >> 11
    );
    for (threads, _) in counts {
        let walls = pinned::run(
            threads,
            cfg.reps,
            Timing::ThreadCpu,
            |_| buffer(l2_bytes, 1),
            |buf, _| {
                let half = buf.len() / 2;
                let (src, dst) = buf.split_at_mut(half);
                for _ in 0..passes {
                    copy(black_box(src), black_box(dst), Stores::Temporal);
                }
            },
        );
        let bytes = (l2_bytes as u64 / 2 * passes * threads as u64) as f64;
        record(table, "l2_copy", &what, threads, bytes, &walls);
    }

    // Last-level cache: one buffer of half the L3, split among the threads, re-read.
    let llc_bytes = caches.l3 / 2 / (8 * LINE) * (8 * LINE);
    let passes = calibrate_passes(cfg, llc_bytes);
    let llc = buffer(llc_bytes, all);
    let what = format!(
        "repeated sum-reduce of {} MiB (half of L3) split among threads, {w} loads, 8 accumulators",
        llc_bytes >> 20
    );
    for (threads, _) in counts {
        // Every thread makes `passes` passes over its part: the whole buffer `passes` times in all.
        let walls = pinned::run(
            threads,
            cfg.reps,
            shared(threads),
            |t| part(&llc, t, threads),
            |part, _| read_passes(part, passes),
        );
        let bytes = (llc.len() * LINE) as f64 * passes as f64;
        record(table, "llc_read", &what, threads, bytes, &walls);
    }
    drop(llc);

    // DRAM: one 2.5 GiB buffer, read once per repetition (split among threads), then its first
    // half copied into its second half.
    let mut dram = buffer(DRAM_BYTES, all);
    let dram_bytes = (dram.len() * LINE) as f64;
    let what = format!(
        "sum-reduce of {:.1} GiB (pages pre-faulted) split among threads, {w} loads, 8 accumulators",
        dram_bytes / (1u64 << 30) as f64
    );
    for (threads, _) in counts {
        let walls = pinned::run(
            threads,
            cfg.reps,
            shared(threads),
            |t| part(&dram, t, threads),
            |part, _| read_passes(part, 1),
        );
        record(table, "dram_read", &what, threads, dram_bytes, &walls);
    }

    let half = dram.len() / 2;
    let (src, dst) = dram.split_at_mut(half);
    let copied = (src.len() * LINE) as f64;
    for (key, stores, how) in [
        ("dram_copy", Stores::Temporal, "ordinary stores"),
        (
            "dram_copy_nt",
            Stores::NonTemporal,
            "streaming (non-temporal) stores",
        ),
    ] {
        let what = format!(
            "copy {:.2} GiB -> {:.2} GiB split among threads, {w} loads and {how}; \
             value = bytes copied per second",
            copied / (1u64 << 30) as f64,
            copied / (1u64 << 30) as f64,
        );
        for (threads, _) in counts {
            // Each thread takes its own (source, destination) pair out of a slot.
            let per = (src.len() / 8).div_ceil(threads) * 8;
            let slots: Vec<Mutex<Option<CopyPart<'_>>>> = src
                .chunks(per)
                .zip(dst.chunks_mut(per))
                .map(|pair| Mutex::new(Some(pair)))
                .collect();
            let walls = pinned::run(
                threads,
                cfg.reps,
                shared(threads),
                |t| {
                    slots[t]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .expect("one slot per thread")
                },
                |(s, d), _| copy(black_box(s), black_box(d), stores),
            );
            record(table, key, &what, threads, copied, &walls);
        }
    }
    black_box(&dram);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_copy_are_exact() {
        // 8-line blocks plus a 3-line tail.
        let mut src = buffer(64 * 19, 2);
        assert_eq!(src.len(), 16); // rounded down to whole blocks
        src.extend((0..3).map(|_| Line([1; 8])));
        for (i, line) in src.iter_mut().enumerate() {
            line.0 = [i as u64; 8];
        }
        let expected: u64 = (0..19u64).map(|i| 8 * i).sum();
        assert_eq!(read_sum(&src), expected);
        for stores in [Stores::Temporal, Stores::NonTemporal] {
            let mut dst = vec![Line([0; 8]); src.len()];
            copy(&src, &mut dst, stores);
            assert_eq!(read_sum(&dst), expected);
        }
    }

    #[test]
    fn parts_cover_the_buffer() {
        let v: Vec<u32> = (0..100).collect();
        for threads in 1..5 {
            let total: usize = (0..threads).map(|t| part(&v, t, threads).len()).sum();
            assert_eq!(total, 100);
            // All but the last part are whole 8-line blocks.
            for t in 0..threads - 1 {
                assert_eq!(part(&v, t, threads).len() % 8, 0);
            }
        }
    }
}
