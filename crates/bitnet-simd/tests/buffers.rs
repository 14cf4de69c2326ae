//! Aligned buffers and the scratch pool.

use std::sync::Barrier;

use bitnet_simd::{AlignedVec, ScratchPool};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn aligned_vec_alignment_and_length(len in 0usize..5000, extra in 0usize..300) {
        let v: AlignedVec<f32> = AlignedVec::zeroed(len);
        prop_assert_eq!(v.len(), len);
        prop_assert_eq!(v.as_ptr() as usize % 64, 0);
        prop_assert!(v.iter().all(|&x| x == 0.0));

        let data: Vec<u16> = (0..len).map(|i| i as u16).collect();
        let mut w = AlignedVec::from_slice(&data);
        prop_assert_eq!(w.as_slice(), &data[..]);
        prop_assert_eq!(w.as_ptr() as usize % 64, 0);
        w.extend_from_slice(&data[..extra.min(len)]);
        prop_assert_eq!(w.len(), len + extra.min(len));
        prop_assert_eq!(w.as_ptr() as usize % 64, 0);
        w.resize(len / 2, 7);
        prop_assert_eq!(w.len(), len / 2);
        w.resize(len / 2 + extra, 9);
        prop_assert!(w[len / 2..].iter().all(|&x| x == 9));
        prop_assert!(w.capacity() >= w.len());

        let x = AlignedVec::from_elem(3u8, len);
        prop_assert_eq!(x.as_ptr() as usize % 64, 0);
        prop_assert!(x.iter().all(|&b| b == 3));
        prop_assert_eq!(x.clone(), x);
    }

    #[test]
    fn scratch_has_requested_length_and_alignment(lens in proptest::collection::vec(0usize..10_000, 1..8)) {
        let pool = ScratchPool::new();
        for &len in &lens {
            let s = pool.take::<f64>(len);
            prop_assert_eq!(s.len(), len);
            prop_assert_eq!(s.as_ptr() as usize % 64, 0);
            prop_assert!(s.iter().all(|&x| x == 0.0));
        }
    }
}

#[test]
fn pool_hands_out_disjoint_buffers_under_concurrency() {
    let pool = ScratchPool::new();
    let threads = 8;
    let rounds = 200;
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (pool, barrier) = (&pool, &barrier);
            s.spawn(move || {
                barrier.wait();
                for r in 0..rounds {
                    let len = 64 + (t * 37 + r * 11) % 2000;
                    let mut a = pool.take_uninit::<u32>(len);
                    let mut b = pool.take_uninit::<u32>(len / 2 + 1);
                    let tag = (t * rounds + r) as u32;
                    a.fill(tag);
                    b.fill(!tag);
                    std::thread::yield_now();
                    // Had any other thread (or `b`) received the same memory, a tag would differ.
                    assert!(a.iter().all(|&x| x == tag), "buffer shared between users");
                    assert!(b.iter().all(|&x| x == !tag), "buffer shared between users");
                }
            });
        }
    });
    assert!(pool.cached() <= ScratchPool::MAX_CACHED);
    assert!(pool.cached() >= 2);
}

#[test]
fn global_pool_is_one_pool() {
    assert!(std::ptr::eq(ScratchPool::global(), ScratchPool::global()));
    let s = ScratchPool::global().take::<i8>(100);
    assert_eq!(s.len(), 100);
}
