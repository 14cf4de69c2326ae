//! The parallelism backends under stress: many jobs, concurrent callers, nesting, panics.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use bitnet_simd::Par;
use bitnet_simd::par::pool::SpinPool;

fn backends() -> Vec<Par> {
    let n = NonZeroUsize::new(bitnet_simd::affinity::core_count().max(2)).unwrap();
    vec![Par::Seq, Par::Threads(n), Par::Rayon(n)]
}

#[test]
fn many_small_jobs_cover_every_part_once() {
    for par in backends() {
        for round in 0..2000 {
            let n = 1 + round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            par.for_each_task(n, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{par:?} round {round}"
            );
        }
    }
}

#[test]
fn concurrent_callers_and_nesting() {
    std::thread::scope(|s| {
        for t in 0..6 {
            s.spawn(move || {
                for par in backends() {
                    for round in 0..100 {
                        let mut out = vec![0usize; 257 + t + round];
                        par.for_each_chunk_mut(&mut out, 8, |off, chunk| {
                            // A nested parallel call inside a part.
                            let inner = AtomicUsize::new(0);
                            par.for_each_range(10, 1, |r| {
                                inner.fetch_add(r.len(), Ordering::Relaxed);
                            });
                            assert_eq!(inner.load(Ordering::Relaxed), 10);
                            for (j, o) in chunk.iter_mut().enumerate() {
                                *o = off + j;
                            }
                        });
                        assert!(out.iter().enumerate().all(|(i, &o)| i == o));
                    }
                }
            });
        }
    });
}

#[test]
fn a_panicking_part_panics_the_caller_and_the_pool_survives() {
    let n = NonZeroUsize::new(4).unwrap();
    let result = std::panic::catch_unwind(|| {
        Par::Threads(n).for_each_task(8, |i| {
            if i == 5 {
                panic!("part 5");
            }
        });
    });
    assert!(result.is_err());
    let count = AtomicUsize::new(0);
    Par::Threads(n).for_each_task(8, |_| {
        count.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(count.load(Ordering::Relaxed), 8);
    // Still parallel, not quietly sequential: two slow parts run on two threads.
    if bitnet_simd::affinity::core_count() >= 2 {
        let ids = std::sync::Mutex::new(std::collections::HashSet::new());
        SpinPool::global().run(2, &|_| {
            ids.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_millis(20));
        });
        assert_eq!(
            ids.into_inner().unwrap().len(),
            2,
            "pool fell back to one thread"
        );
    }
}

#[test]
fn more_parts_than_the_claim_word_counts() {
    let n = bitnet_simd::par::pool::MAX_PARTS * 2 + 3;
    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
    SpinPool::global().run(n, &|i| {
        hits[i].fetch_add(1, Ordering::Relaxed);
    });
    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
}

#[test]
fn pool_survives_parking() {
    let pool = SpinPool::global();
    let count = AtomicUsize::new(0);
    for _ in 0..5 {
        // Longer than the spin time: workers park and must be woken.
        std::thread::sleep(bitnet_simd::par::pool::spin_time() * 3);
        pool.run(16, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    }
    assert_eq!(count.load(Ordering::Relaxed), 80);
}
