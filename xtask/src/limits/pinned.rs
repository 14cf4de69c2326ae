//! Running one measurement loop on one pinned thread per core, all starting together.

use std::sync::{Barrier, Mutex, Once};

use bitnet_simd::affinity::pin_current_thread;
use bitnet_simd::timer::PerfTimer;

/// How a repetition is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Each thread's own CPU time, so time other processes take from the core does not count:
    /// for loops whose threads share nothing (compute, L2), where a thread's speed while it runs
    /// is the core's.
    ThreadCpu,
    /// Wall time: for loops whose threads share a resource (L3, DRAM), where a thread running
    /// while another is descheduled would get more than its share. Repetitions during which a
    /// thread was descheduled for more than 2 % of the time are dropped, unless all were.
    Wall,
}

/// Interference seen so far: wall and CPU seconds of every measurement thread (for
/// [`running_fraction`]) and wall-timed repetitions dropped (for [`dropped_reps`]).
static INTERFERENCE: Mutex<(f64, f64, usize)> = Mutex::new((0.0, 0.0, 0));

/// The fraction of their wall time the measurement threads were running (not descheduled in
/// favour of other processes), or `None` where thread CPU time is unknown.
pub fn running_fraction() -> Option<f64> {
    let (wall, cpu, _) = *INTERFERENCE.lock().unwrap_or_else(|e| e.into_inner());
    (wall > 0.0 && cpu > 0.0).then(|| (cpu / wall).min(1.0))
}

/// Wall-timed repetitions dropped so far because a thread was descheduled during them.
pub fn dropped_reps() -> usize {
    INTERFERENCE.lock().unwrap_or_else(|e| e.into_inner()).2
}

/// Runs `work` on `threads` threads, thread `t` pinned to core `t`, for one untimed warm-up
/// (repetition 0) and then `reps` timed repetitions (1..=reps). All threads start each repetition
/// together (a barrier); the repetition's time is the slowest thread's, so
/// `threads * work / time` is a throughput all cores sustain concurrently.
///
/// `setup(t)` runs on thread `t` after pinning, before the warm-up (so buffers it allocates and
/// touches are local to that core); `work(state, rep)` is the measured loop.
///
/// Returns the seconds of each timed repetition (of each kept one, for [`Timing::Wall`]).
pub fn run<S>(
    threads: usize,
    reps: usize,
    timing: Timing,
    setup: impl Fn(usize) -> S + Sync,
    work: impl Fn(&mut S, usize) + Sync,
) -> Vec<f64> {
    let barrier = Barrier::new(threads);
    // Per thread, per repetition: (wall, CPU) seconds.
    let per_thread: Vec<Vec<(f64, Option<f64>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, setup, work) = (&barrier, &setup, &work);
                scope.spawn(move || {
                    if !pin_current_thread(t) {
                        static WARN: Once = Once::new();
                        WARN.call_once(|| eprintln!("warning: could not pin measurement threads"));
                    }
                    let mut state = setup(t);
                    (0..=reps)
                        .map(|rep| {
                            barrier.wait();
                            let cpu = thread_cpu_secs();
                            let timer = PerfTimer::start();
                            work(&mut state, rep);
                            let wall = timer.elapsed_secs();
                            (wall, cpu.zip(thread_cpu_secs()).map(|(a, b)| b - a))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("measurement thread panicked"))
            .collect()
    });
    // Each timed repetition: (slowest wall, slowest CPU, whether no thread was descheduled).
    let timed: Vec<(f64, f64, bool)> = (1..=reps)
        .map(|rep| {
            let times = || per_thread.iter().map(|t| t[rep]);
            let wall = times().map(|(w, _)| w).fold(0.0, f64::max);
            let cpu = times().map(|(w, c)| c.unwrap_or(w)).fold(0.0, f64::max);
            let clean = times().all(|(w, c)| c.is_none_or(|c| c >= 0.98 * w));
            (wall, cpu, clean)
        })
        .collect();
    let mut interference = INTERFERENCE.lock().unwrap_or_else(|e| e.into_inner());
    for (wall, cpu) in per_thread.iter().flat_map(|t| &t[1..]) {
        if let Some(cpu) = cpu {
            interference.0 += wall;
            interference.1 += cpu;
        }
    }
    match timing {
        Timing::ThreadCpu => timed.iter().map(|&(_, cpu, _)| cpu).collect(),
        Timing::Wall => {
            let clean: Vec<f64> = timed.iter().filter(|t| t.2).map(|t| t.0).collect();
            if clean.is_empty() {
                timed.iter().map(|t| t.0).collect()
            } else {
                interference.2 += reps - clean.len();
                clean
            }
        }
    }
}

/// CPU seconds the calling thread has run, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`.
#[cfg(unix)]
fn thread_cpu_secs() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a pointer to a live local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// Thread CPU time is not read on this platform: repetitions are timed in wall time.
#[cfg(not(unix))]
fn thread_cpu_secs() -> Option<f64> {
    None
}

/// The count `n` for which `run(n)` takes about `target_secs`, found by timing growing counts
/// (starting at `start`) until one run takes at least a fifth of the target.
pub fn calibrate(target_secs: f64, start: u64, mut run: impl FnMut(u64)) -> u64 {
    run(start); // warm-up: clocks up, code and data in cache
    let mut n = start.max(1);
    loop {
        let timer = PerfTimer::start();
        run(n);
        let secs = timer.elapsed_secs();
        if secs >= target_secs / 5.0 || n >= u64::MAX / 64 {
            return ((n as f64) * target_secs / secs.max(1e-9)).ceil().max(1.0) as u64;
        }
        // Grow by the ratio still missing (at most 32×, so a noisy first timing cannot overshoot).
        let grow = (target_secs / 4.0 / secs.max(1e-9)).clamp(2.0, 32.0);
        n = ((n as f64) * grow) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_thread_runs_every_repetition() {
        let count = AtomicUsize::new(0);
        let times = run(
            2,
            3,
            Timing::ThreadCpu,
            |t| t * 10,
            |state, rep| {
                assert!(*state == 0 || *state == 10);
                assert!(rep <= 3);
                count.fetch_add(1, Ordering::Relaxed);
            },
        );
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| *t >= 0.0));
        // Two threads, one warm-up plus three repetitions each.
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        if let Some(start) = thread_cpu_secs() {
            let mut x = 0u64;
            for i in 0..10_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            let spent = thread_cpu_secs().unwrap() - start;
            assert!(spent > 0.0 && spent < 10.0, "{spent}");
        }
    }

    #[test]
    fn calibration_scales_the_count() {
        let n = calibrate(0.002, 1000, |n| {
            let mut x = 0u64;
            for i in 0..n {
                x = std::hint::black_box(x.wrapping_add(i));
            }
        });
        assert!(n > 1000);
    }
}
