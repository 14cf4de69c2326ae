//! A persistent spin-then-park thread pool for fork-join calls of a few microseconds.
//!
//! A decode-step GEMV takes tens of microseconds; waking rayon's sleeping workers costs a large
//! share of that (`cargo xtask bench`, group `simd/par_fork_join`). This pool keeps `cores - 1`
//! workers that, after each job, spin for a short while ([`spin_time`]) watching for the next
//! job before parking, so back-to-back kernel calls start on all cores within a cache-line
//! transfer. The calling thread takes part in every job as one of the workers.
//!
//! # Protocol
//! One job at a time. A job is `n` parts of a `Fn(usize)`. The caller stores a pointer to the
//! job, then publishes `(epoch, n, next part = 0)` in one 64-bit word (`claim`: epoch in the high
//! 40 bits, then 12 bits of part count, 12 bits of next part). Every participant claims a part by
//! compare-and-swap on that word, which also checks the epoch, and dereferences the job pointer
//! only after a claim succeeded. A job finishes only after all its parts were claimed *and*
//! completed (the `remaining` count), and the caller publishes the next job pointer only after
//! that; so a successful claim of epoch `e` proves the job pointer still points at job `e`, which
//! is alive (the caller returns only when `remaining` reaches zero). A late worker that saw an old
//! epoch fails its claim and never touches the old job. (The epoch would have to wrap through
//! 2^40 jobs between a worker's load and its compare-and-swap to fool this.)
//!
//! Parking uses the classic store-then-check handshake with sequentially consistent atomics: a
//! worker announces itself in `sleeping` and re-checks the epoch before parking; the caller
//! publishes the epoch and then reads `sleeping`, unparking workers if any announced themselves.
//!
//! A call made while the pool is busy (from another thread, or nested inside a job) runs its
//! parts on the calling thread instead: results are the same, only the parallelism is lost.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Most parts one job may have (the width of the part index in the claim word).
pub const MAX_PARTS: usize = (1 << PART_BITS) - 1;
const PART_BITS: u32 = 12;
const PART_MASK: u64 = (1 << PART_BITS) - 1;
/// The epoch sits above the part count and the next part.
const EPOCH_SHIFT: u32 = 2 * PART_BITS;

/// The job as workers see it: a type-erased pointer to the caller's closure.
struct JobRef {
    f: *const (dyn Fn(usize) + Sync),
}

struct Shared {
    /// `(epoch << 24) | (part count << 12) | next part`.
    claim: AtomicU64,
    /// Points at the current job's `JobRef`, which lives on the caller's stack.
    job: AtomicPtr<JobRef>,
    /// Parts of the current job not yet completed.
    remaining: AtomicUsize,
    /// Workers announced as about to park.
    sleeping: AtomicUsize,
    /// A part of the current job panicked.
    panicked: AtomicBool,
    /// Serialises jobs: held by the caller for a whole job.
    busy: Mutex<()>,
    /// Worker threads, for unparking.
    threads: OnceLock<Vec<Thread>>,
}

/// The process-wide pool.
pub struct SpinPool {
    shared: &'static Shared,
    workers: usize,
}

thread_local! {
    /// Whether this thread is inside a pool job (as a worker or as the calling thread).
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// How long an idle worker spins before parking: `BITNET_SPIN_US` microseconds if set, else
/// 100 µs (long enough to bridge the single-threaded work between two kernels of a decode step,
/// short enough that an idle process stops burning CPU at once).
pub fn spin_time() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("BITNET_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(100);
        Duration::from_micros(us)
    })
}

impl SpinPool {
    /// The pool, with `cores - 1` workers, started on first use.
    pub fn global() -> &'static SpinPool {
        static POOL: OnceLock<SpinPool> = OnceLock::new();
        POOL.get_or_init(|| SpinPool::start(crate::affinity::core_count().saturating_sub(1)))
    }

    fn start(workers: usize) -> SpinPool {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            claim: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            remaining: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            busy: Mutex::new(()),
            threads: OnceLock::new(),
        }));
        let threads = (0..workers)
            .filter_map(|i| {
                std::thread::Builder::new()
                    .name(format!("bitnet-pool-{i}"))
                    .spawn(move || worker_loop(shared))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect::<Vec<_>>();
        let workers = threads.len();
        let _ = shared.threads.set(threads);
        SpinPool { shared, workers }
    }

    /// Worker threads (the caller makes one more participant).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f(i)` for every `i` in `0..n_parts`, on the pool's workers and the calling thread,
    /// and returns when all have finished. Parts are claimed dynamically, so uneven parts balance.
    ///
    /// # Panics
    /// If a part panics, after every part has finished.
    pub fn run(&self, n_parts: usize, f: &(dyn Fn(usize) + Sync)) {
        if n_parts == 0 {
            return;
        }
        if n_parts > MAX_PARTS {
            // More parts than the claim word counts: each pool part runs a strided share.
            let stride = MAX_PARTS;
            return self.run(stride, &|p| (p..n_parts).step_by(stride).for_each(f));
        }
        let nested = IN_JOB.with(Cell::get);
        let guard = if nested || self.workers == 0 || n_parts == 1 {
            None
        } else {
            match self.shared.busy.try_lock() {
                Ok(guard) => Some(guard),
                // The lock guards no data: a poisoned lock is as good as a free one.
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        };
        let Some(guard) = guard else {
            (0..n_parts).for_each(f);
            return;
        };
        let s = self.shared;
        // Lifetime erasure: `job` and `f` outlive the job because this function returns only
        // after `remaining` reaches zero, i.e. after every claimed part finished, and no part can
        // be claimed after the last one (see the module docs).
        // SAFETY: only the trait object's lifetime bound changes (same layout); see above for why
        // the pointer is never used after `f` is gone.
        let f_static: *const (dyn Fn(usize) + Sync + 'static) = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &(dyn Fn(usize) + Sync + 'static)>(f)
        };
        let job = JobRef { f: f_static };
        s.remaining.store(n_parts, Ordering::Relaxed);
        s.panicked.store(false, Ordering::Relaxed);
        s.job
            .store(&job as *const JobRef as *mut JobRef, Ordering::Release);
        let epoch = (s.claim.load(Ordering::Relaxed) >> EPOCH_SHIFT) + 1;
        let word = epoch << EPOCH_SHIFT | (n_parts as u64) << PART_BITS;
        s.claim.store(word, Ordering::SeqCst);
        if s.sleeping.load(Ordering::SeqCst) > 0 {
            for t in s.threads.get().into_iter().flatten() {
                t.unpark();
            }
        }
        IN_JOB.with(|c| c.set(true));
        work_on(s, epoch);
        IN_JOB.with(|c| c.set(false));
        let start = Instant::now();
        while s.remaining.load(Ordering::Acquire) != 0 {
            if start.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        s.job.store(std::ptr::null_mut(), Ordering::Relaxed);
        let panicked = s.panicked.load(Ordering::Relaxed);
        drop(guard);
        if panicked {
            panic!("a part of a bitnet-simd parallel job panicked");
        }
    }
}

/// Claims and runs parts of job `epoch` until none is left.
fn work_on(s: &Shared, epoch: u64) {
    loop {
        let current = s.claim.load(Ordering::Acquire);
        let n_parts = (current >> PART_BITS) & PART_MASK;
        let part = current & PART_MASK;
        if current >> EPOCH_SHIFT != epoch || part >= n_parts {
            return;
        }
        if s.claim
            .compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // SAFETY: part `part` of job `epoch` is claimed and not yet completed, so job `epoch` has
        // not finished: `s.job` still points at its `JobRef` and the closure, both alive on the
        // caller's stack until `remaining` (decremented below) reaches zero.
        let f = unsafe { &*(*s.job.load(Ordering::Acquire)).f };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(part as usize))) {
            s.panicked.store(true, Ordering::Relaxed);
            // Dropping a panic payload can itself panic; nothing may unwind past this point
            // before `remaining` is decremented, or the caller would wait forever (or, on the
            // calling thread, free the job while workers still run it).
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
        }
        s.remaining.fetch_sub(1, Ordering::Release);
    }
}

fn worker_loop(s: &'static Shared) {
    IN_JOB.with(|c| c.set(true));
    let mut seen = 0u64;
    loop {
        seen = wait_for_job(s, seen);
        work_on(s, seen);
    }
}

/// Spins, then parks, until the claim word shows an epoch other than `seen`; returns it.
fn wait_for_job(s: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let spin = spin_time();
    let mut spins = 0u32;
    loop {
        let epoch = s.claim.load(Ordering::Acquire) >> EPOCH_SHIFT;
        if epoch != seen {
            return epoch;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(256) || start.elapsed() < spin {
            std::hint::spin_loop();
            continue;
        }
        s.sleeping.fetch_add(1, Ordering::SeqCst);
        if s.claim.load(Ordering::SeqCst) >> EPOCH_SHIFT == seen {
            std::thread::park();
        }
        s.sleeping.fetch_sub(1, Ordering::SeqCst);
    }
}
