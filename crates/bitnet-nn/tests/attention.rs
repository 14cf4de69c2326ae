//! RoPE and attention against the f64 references on every ISA level this machine can run:
//! both RoPE styles at random positions; the flash-style and the naive attention, causal or not,
//! grouped-query, f32 and f16 caches, decode (one query) and prefill (many), one or two threads;
//! bad shapes are errors.

mod common;

use bitnet_nn::attention::{self, KvCache, KvStorage};
use bitnet_nn::rope::{Rope, RopeStyle};
use bitnet_nn::{NnError, Par, reference};
use bitnet_simd::isa::with_ceiling;
use common::{EPS, ceilings, close, values};
use half::f16;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rope_matches_the_reference(
        tokens in 0usize..5, heads in 1usize..4, half in 1usize..40, pos0 in 0usize..5000,
        theta in prop::sample::select(vec![10_000.0f32, 500_000.0, 1.5]),
        interleaved in any::<bool>(), seed in any::<u64>(), threads in 1usize..3,
    ) {
        let d = 2 * half;
        let style = if interleaved { RopeStyle::Interleaved } else { RopeStyle::HalfSplit };
        let rope = Rope::new(d, theta, style).unwrap();
        let x = values(tokens * heads * d, seed, 3.0, false);
        let want = reference::rope(&x, heads, d, pos0, theta, style);
        for c in ceilings() {
            let mut y = x.clone();
            with_ceiling(c, || rope.apply(&mut y, heads, pos0, Par::threads_or_seq(threads))).unwrap().unwrap();
            for (n, head) in x.chunks_exact(d).enumerate() {
                for i in 0..d {
                    let partner = match style {
                        RopeStyle::HalfSplit => (i + half) % d,
                        RopeStyle::Interleaved => i ^ 1,
                    };
                    let b = 3.0 * EPS * f64::from(head[i].abs() + head[partner].abs());
                    prop_assert!(close(y[n * d + i], want[n * d + i], b), "{:?} {:?}", c, style);
                }
            }
            // A table covering some, all or none of the positions gives identical results.
            let cached = rope.clone().cached(pos0 + tokens / 2).unwrap();
            prop_assert_eq!(cached.cached_positions(), pos0 + tokens / 2);
            let mut z = x.clone();
            with_ceiling(c, || cached.apply(&mut z, heads, pos0, Par::threads_or_seq(threads))).unwrap().unwrap();
            prop_assert_eq!(&z, &y);
        }
    }

    #[test]
    fn attention_matches_the_reference(
        past in 0usize..150, tokens in 1usize..40, kv_heads in 1usize..3, group in 1usize..4,
        d in prop::sample::select(vec![1usize, 7, 16, 33, 64]), causal in any::<bool>(),
        f16_cache in any::<bool>(), seed in any::<u64>(), threads in 1usize..3,
    ) {
        check_attention(past, tokens, kv_heads, group, d, causal, f16_cache, seed, threads);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_attention(
    past: usize,
    tokens: usize,
    kv_heads: usize,
    group: usize,
    d: usize,
    causal: bool,
    f16_cache: bool,
    seed: u64,
    threads: usize,
) {
    let heads = kv_heads * group;
    let len = past + tokens;
    let storage = if f16_cache {
        KvStorage::F16
    } else {
        KvStorage::F32
    };
    let mut cache = KvCache::new(kv_heads, d, len + 3, storage).unwrap();
    let k = values(len * kv_heads * d, seed, 2.0, false);
    let v = values(len * kv_heads * d, seed ^ 1, 2.0, false);
    // Append the past in two pieces and the new tokens, as decode and prefill would.
    let split = past / 2 * kv_heads * d;
    let end = past * kv_heads * d;
    cache.append(&k[..split], &v[..split]).unwrap();
    cache.append(&k[split..end], &v[split..end]).unwrap();
    cache.append(&k[end..], &v[end..]).unwrap();
    let stored = |x: &[f32]| -> Vec<f32> {
        if f16_cache {
            x.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
        } else {
            x.to_vec()
        }
    };
    let q = values(tokens * heads * d, seed ^ 2, 2.0, false);
    let (want, max_mag) = reference::attention(
        &q,
        tokens,
        heads,
        kv_heads,
        d,
        &stored(&k),
        &stored(&v),
        causal,
    );
    // The larger of the flash and naive score bounds (module docs).
    let score_err = (d as f64 + 2.0).max((d as f64 / 4.0).ceil() + 16.0) * EPS * max_mag;
    let par = Par::threads_or_seq(threads);
    for c in ceilings() {
        for naive in [false, true] {
            let mut out = vec![f32::NAN; q.len()];
            with_ceiling(c, || {
                if naive {
                    attention::attention_naive(&q, tokens, heads, &cache, causal, &mut out, par)
                } else {
                    attention::attention(&q, tokens, heads, &cache, causal, &mut out, par)
                }
            })
            .unwrap()
            .unwrap();
            for (i, (&got, &(o, w))) in out.iter().zip(&want).enumerate() {
                let b = (2.0 * score_err + (len as f64 + 32.0) * EPS) * w;
                assert!(
                    close(got, o, b),
                    "{c:?} naive={naive} causal={causal} f16={f16_cache} at {i}: {got} vs {o}"
                );
            }
        }
    }
}

#[test]
fn decode_and_prefill_shapes_of_bitnet() {
    // BitNet b1.58 2B: 20 query heads, 5 KV heads, head dim 128; prefill 70 then decode 2.
    check_attention(0, 70, 5, 4, 128, true, false, 1, 2);
    check_attention(300, 1, 5, 4, 128, true, true, 2, 2);
}

#[test]
fn bad_shapes_are_errors() {
    assert!(matches!(
        Rope::new(7, 1e4, RopeStyle::HalfSplit),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        Rope::new(8, 0.0, RopeStyle::HalfSplit),
        Err(NnError::Invalid { .. })
    ));
    let rope = Rope::new(8, 1e4, RopeStyle::HalfSplit).unwrap();
    assert!(matches!(
        rope.apply(&mut [0.0; 12], 1, 0, Par::Seq),
        Err(NnError::Rows { .. })
    ));
    let mut cache = KvCache::new(2, 4, 3, KvStorage::F32).unwrap();
    assert!(matches!(
        cache.append(&[0.0; 8], &[0.0; 7]),
        Err(NnError::Length { .. })
    ));
    cache.append(&[0.0; 16], &[0.0; 16]).unwrap();
    assert!(matches!(
        cache.append(&[0.0; 16], &[0.0; 16]),
        Err(NnError::Invalid { .. })
    ));
    let q = [0.0; 12];
    let mut out = [0.0; 12];
    // 3 query heads over 2 KV heads; more queries than cached tokens; wrong lengths.
    assert!(matches!(
        attention::attention(&q, 1, 3, &cache, true, &mut out, Par::Seq),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        attention::attention(&[0.0; 24], 3, 2, &cache, true, &mut [0.0; 24], Par::Seq),
        Err(NnError::Invalid { .. })
    ));
    assert!(matches!(
        attention::attention(&q, 1, 2, &cache, true, &mut out, Par::Seq),
        Err(NnError::Length { .. })
    ));
    assert!(KvCache::new(0, 4, 3, KvStorage::F16).is_err());
    // Capacities whose key tiles or element counts overflow, or cannot be allocated.
    assert!(KvCache::new(1, 1, usize::MAX, KvStorage::F32).is_err());
    assert!(KvCache::new(2, 8, usize::MAX / 4, KvStorage::F16).is_err());
}
