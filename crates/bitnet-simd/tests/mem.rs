//! `mem::copy`, `mem::copy_nontemporal` and `mem::fill` against their plain references
//! (`copy_from_slice`, `slice::fill`) on every level this machine has, at random lengths and
//! misalignments.

use bitnet_simd::isa::testable_isas;
use bitnet_simd::{mem, with_isa};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn copies_equal_reference(len in 0usize..9000, src_off in 0usize..64, dst_off in 0usize..64, seed: u8) {
        let src: Vec<u8> = (0..len + src_off).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let src = &src[src_off..];
        for isa in testable_isas().unwrap() {
            let mut a = vec![0xEEu8; len + dst_off + 8];
            let mut b = vec![0xEEu8; len + dst_off + 8];
            let mut c = vec![0xEEu8; len + dst_off + 8];
            with_isa(isa, || {
                mem::copy_cached(&mut a[dst_off..dst_off + len], src).unwrap();
                mem::copy_nontemporal(&mut b[dst_off..dst_off + len], src).unwrap();
                mem::copy(&mut c[dst_off..dst_off + len], src).unwrap();
            }).unwrap();
            prop_assert_eq!(&c[dst_off..dst_off + len], src, "{} copy", isa);
            prop_assert_eq!(&a[dst_off..dst_off + len], src, "{} copy_cached", isa);
            prop_assert_eq!(&b[dst_off..dst_off + len], src, "{} copy_nontemporal", isa);
            // Nothing outside the destination is touched.
            prop_assert!(a[..dst_off].iter().chain(&a[dst_off + len..]).all(|&x| x == 0xEE));
            prop_assert!(b[..dst_off].iter().chain(&b[dst_off + len..]).all(|&x| x == 0xEE));
        }
    }

    #[test]
    fn typed_copy_f32(data in proptest::collection::vec(any::<f32>(), 0..700), off in 0usize..16) {
        for isa in testable_isas().unwrap() {
            let mut out = vec![0f32; data.len() + off];
            with_isa(isa, || mem::copy(&mut out[off..], &data).unwrap()).unwrap();
            // Bit-exact, NaN payloads included.
            prop_assert!(out[off..].iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn fill_equals_reference(len in 0usize..5000, off in 0usize..17, v32: u32, v8: u8, v16: u16, v64: u64) {
        for isa in testable_isas().unwrap() {
            with_isa(isa, || -> Result<(), TestCaseError> {
                let mut a = vec![0u32; len + off + 1];
                mem::fill(&mut a[off..off + len], v32).unwrap();
                let mut r = vec![0u32; len + off + 1];
                r[off..off + len].fill(v32);
                prop_assert_eq!(&a, &r);
                let mut b = vec![0u8; len + off];
                mem::fill(&mut b[off..], v8).unwrap();
                prop_assert!(b[off..].iter().all(|&x| x == v8) && b[..off].iter().all(|&x| x == 0));
                let mut c = vec![0u16; len];
                mem::fill(&mut c, v16).unwrap();
                prop_assert!(c.iter().all(|&x| x == v16));
                let mut d = vec![0u64; len / 2];
                mem::fill(&mut d, v64).unwrap();
                prop_assert!(d.iter().all(|&x| x == v64));
                let mut e = vec![[0u8; 5]; len / 3];
                mem::fill(&mut e, [v8, 1, 2, 3, 4]).unwrap();
                prop_assert!(e.iter().all(|&x| x == [v8, 1, 2, 3, 4]));
                Ok(())
            }).unwrap()?;
        }
    }
}
