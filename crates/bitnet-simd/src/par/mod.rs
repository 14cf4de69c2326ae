//! `Par`: the parallelism argument every bitnet-rs kernel takes.
//!
//! - `Par::Seq` runs on the calling thread.
//! - `Par::Threads(n)` splits the work into at most `n` parts run on a persistent spin-then-park
//!   pool ([`pool::SpinPool`]): the default, because a decode-step kernel takes tens of
//!   microseconds and rayon's fork-join (waking parked workers) costs a large share of that —
//!   `cargo xtask bench` measures both in the group `simd/par_fork_join`.
//! - `Par::Rayon(n)` splits the work into at most `n` parts on rayon's global pool: work stealing
//!   for long, uneven jobs, and composition with the caller's own rayon code.
//!
//! `Par::default()` is `Threads` over every core the process may run on.
//!
//! With `Rayon`, a part that blocks in a nested rayon call may let its worker run an unrelated
//! rayon job meanwhile; that job sees this part's per-call ISA override unless it is itself a
//! `Par` part (which installs its caller's). Kernels never depend on it: they resolve their level
//! once, on the calling thread, and pass it down.
//!
//! Small problems lose more to fork-join than they gain: [`Par::for_work`] lowers the thread
//! count so that each thread gets at least a minimum amount of work, and falls back to `Seq` below
//! it. The per-call ISA override of [`crate::isa::with_isa`] is carried into the worker threads,
//! so a test that forces a level forces it for the whole parallel kernel.

pub mod pool;
mod shared_out;

pub use shared_out::SharedOut;

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::isa;
use pool::SpinPool;

/// How many threads a kernel may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Par {
    /// On the calling thread only.
    Seq,
    /// Split into at most `n` parts on the persistent spin-then-park pool (and the caller).
    Threads(NonZeroUsize),
    /// Split into at most `n` parts on rayon's global thread pool.
    Rayon(NonZeroUsize),
}

impl Default for Par {
    /// Every core this process may run on (`std::thread::available_parallelism`).
    fn default() -> Par {
        Par::all_cores()
    }
}

impl Par {
    /// Every core this process may run on; `Seq` on a single-core machine.
    pub fn all_cores() -> Par {
        Par::threads_or_seq(crate::affinity::core_count())
    }

    /// `n` threads on the spin pool, `Seq` for 0 or 1.
    pub fn threads_or_seq(n: usize) -> Par {
        match NonZeroUsize::new(n) {
            Some(n) if n.get() > 1 => Par::Threads(n),
            _ => Par::Seq,
        }
    }

    /// The most threads this setting uses.
    pub fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Threads(n) | Par::Rayon(n) => n.get(),
        }
    }

    /// The same backend with at most `n` threads (`Seq` for 0 or 1).
    pub fn with_threads(self, n: usize) -> Par {
        match (self, NonZeroUsize::new(n)) {
            (Par::Rayon(_), Some(n)) if n.get() > 1 => Par::Rayon(n),
            (Par::Seq, _) => Par::Seq,
            _ => Par::threads_or_seq(n),
        }
    }

    /// Runs `f(p)` for each part `p` in `0..n_parts` on this backend, with the caller's ISA
    /// override installed in every worker.
    fn run_parts(self, n_parts: usize, f: impl Fn(usize) + Sync) {
        let ceiling = isa::current_override();
        let with_ceiling = |p: usize| isa::with_validated_ceiling(ceiling, || f(p));
        match self {
            Par::Seq => (0..n_parts).for_each(f),
            Par::Threads(_) => SpinPool::global().run(n_parts, &with_ceiling),
            Par::Rayon(_) => (0..n_parts)
                .into_par_iter()
                .with_max_len(1)
                .for_each(with_ceiling),
        }
    }

    /// Memory traffic below which splitting a memory-bound kernel across threads does not pay:
    /// 128 KiB per thread is about 5 µs even at DRAM speed, five to ten times the fork-join cost
    /// of the `Threads` pool measured by `cargo xtask bench` (group `simd/par_fork_join`), so the
    /// split costs a few percent at most.
    pub const MIN_BYTES_PER_THREAD: usize = 128 << 10;

    /// Arithmetic below which splitting a compute-bound kernel does not pay: 512 K flops per
    /// thread is several microseconds on any vector unit, for the same reason as
    /// [`Par::MIN_BYTES_PER_THREAD`].
    pub const MIN_FLOPS_PER_THREAD: usize = 512 << 10;

    /// This setting limited for a memory-bound kernel that reads or writes `bytes` in all
    /// ([`Par::MIN_BYTES_PER_THREAD`] per thread at least).
    pub fn for_bytes(self, bytes: usize) -> Par {
        self.for_work(bytes, Par::MIN_BYTES_PER_THREAD)
    }

    /// This setting limited for a compute-bound kernel of `flops` in all
    /// ([`Par::MIN_FLOPS_PER_THREAD`] per thread at least).
    pub fn for_flops(self, flops: usize) -> Par {
        self.for_work(flops, Par::MIN_FLOPS_PER_THREAD)
    }

    /// This setting limited so that each thread gets at least `min_work_per_thread` of the
    /// `work` (in any unit: flops, bytes, rows); `Seq` when the work is below two threads' worth.
    pub fn for_work(self, work: usize, min_work_per_thread: usize) -> Par {
        let by_work = work / min_work_per_thread.max(1);
        self.with_threads(self.threads().min(by_work))
    }

    /// Runs `f` on every range of a partition of `0..len` into at most `threads()` contiguous
    /// ranges of equal length, a multiple of `granule` (the last range takes the remainder).
    /// Returns when all ranges are done. Allocation-free.
    pub fn for_each_range(self, len: usize, granule: usize, f: impl Fn(Range<usize>) + Sync) {
        let chunk = chunk_len(len, self.threads(), granule);
        if chunk >= len {
            if len > 0 {
                f(0..len);
            }
            return;
        }
        self.run_parts(len.div_ceil(chunk), |p| {
            f(p * chunk..((p + 1) * chunk).min(len))
        });
    }

    /// Splits `out` into at most `threads()` contiguous chunks of equal length, a multiple of
    /// `granule` (the last takes the remainder), and runs `f(offset, chunk)` on each in parallel.
    /// Allocation-free.
    pub fn for_each_chunk_mut<T: Send>(
        self,
        out: &mut [T],
        granule: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let chunk = chunk_len(out.len(), self.threads(), granule);
        if chunk >= out.len() {
            if !out.is_empty() {
                f(0, out);
            }
            return;
        }
        let len = out.len();
        let base = SendPtr(out.as_mut_ptr());
        self.run_parts(len.div_ceil(chunk), |p| {
            let start = p * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: parts are disjoint ranges of `out` (each part index runs exactly once), and
            // `out` is exclusively borrowed for the whole call, which returns after all parts.
            let part =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(start, part);
        });
    }

    /// Runs `f(i)` for every task index in `0..n_tasks` on at most `threads()` threads. Each
    /// thread claims the next unclaimed task from a shared counter, so uneven tasks balance.
    pub fn for_each_task(self, n_tasks: usize, f: impl Fn(usize) + Sync) {
        let workers = self.threads().min(n_tasks);
        if workers <= 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        let next = AtomicUsize::new(0);
        self.run_parts(workers, |_| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n_tasks {
                    break;
                }
                f(i);
            }
        });
    }
}

/// A raw pointer that may cross threads: the caller guarantees disjoint use.
struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: only used by `for_each_chunk_mut`, whose parts touch disjoint elements of a slice of
// `T: Send`.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above: shared references to the wrapper only copy the pointer.
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// The length of each part when `0..len` is cut into at most `parts` contiguous parts whose
/// length is a multiple of `granule` (the last part takes the remainder). Equal parts of
/// `ceil(units / parts)` granules finish as early as any balanced split would.
pub fn chunk_len(len: usize, parts: usize, granule: usize) -> usize {
    let granule = granule.max(1);
    let units = len.div_ceil(granule).max(1);
    units.div_ceil(parts.clamp(1, units)) * granule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_len_is_balanced_and_aligned() {
        for len in [0, 1, 7, 64, 1000, 1001] {
            for parts in [1, 2, 3, 8] {
                for granule in [1, 4, 16, 2000] {
                    let chunk = chunk_len(len, parts, granule);
                    assert_eq!(chunk % granule, 0);
                    assert!(len.div_ceil(chunk) <= parts);
                    // No other split into at most `parts` granule-aligned parts has a shorter
                    // longest part.
                    let units = len.div_ceil(granule);
                    assert!(chunk / granule <= units.div_ceil(parts).max(1));
                }
            }
        }
    }

    #[test]
    fn for_work_threshold() {
        let p = Par::threads_or_seq(8);
        assert_eq!(p.for_work(100, 1000), Par::Seq);
        assert_eq!(p.for_work(2500, 1000).threads(), 2);
        assert_eq!(p.for_work(1 << 30, 1000).threads(), 8);
        assert_eq!(Par::threads_or_seq(1), Par::Seq);
        assert_eq!(Par::Seq.for_work(1 << 30, 1), Par::Seq);
        assert_eq!(p.for_bytes(64 << 10), Par::Seq);
        assert_eq!(p.for_bytes(1 << 30), p);
        assert_eq!(p.for_flops(1000), Par::Seq);
        let r = Par::Rayon(NonZeroUsize::new(4).unwrap());
        assert_eq!(r.for_bytes(3 * Par::MIN_BYTES_PER_THREAD).threads(), 3);
        assert!(matches!(
            r.for_bytes(3 * Par::MIN_BYTES_PER_THREAD),
            Par::Rayon(_)
        ));
    }

    #[test]
    fn every_index_runs_once() {
        let five = NonZeroUsize::new(5).unwrap();
        for par in [
            Par::Seq,
            Par::threads_or_seq(2),
            Par::Threads(five),
            Par::Rayon(five),
        ] {
            let hits: Vec<AtomicUsize> = (0..103).map(|_| AtomicUsize::new(0)).collect();
            par.for_each_range(103, 4, |r| {
                for i in r {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                }
            });
            par.for_each_task(103, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            let mut out = vec![0usize; 103];
            par.for_each_chunk_mut(&mut out, 8, |off, chunk| {
                for (j, o) in chunk.iter_mut().enumerate() {
                    *o = off + j;
                }
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 2));
            assert!(out.iter().enumerate().all(|(i, &o)| i == o));
        }
    }

    #[test]
    fn override_reaches_workers() {
        let seen = std::sync::Mutex::new(Vec::new());
        let four = NonZeroUsize::new(4).unwrap();
        crate::isa::with_isa(crate::Isa::Scalar, || {
            for par in [Par::Threads(four), Par::Rayon(four)] {
                par.for_each_task(16, |_| {
                    seen.lock().unwrap().push(crate::isa::active_isa().unwrap());
                });
            }
        })
        .unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 32);
        assert!(seen.iter().all(|&i| i == crate::Isa::Scalar));
    }
}
