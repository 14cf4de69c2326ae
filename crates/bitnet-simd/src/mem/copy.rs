//! Copies: a generic SIMD copy (the seed's `aligned_copy`) and a non-temporal copy (the seed's
//! `memcpy_nt`).
//!
//! A non-temporal store writes a full cache line to memory without first reading it into the
//! cache (no read-for-ownership) and without evicting useful data: it wins for copies too large
//! for the last-level cache and loses for anything that fits in it, because the destination is
//! not in cache afterwards. `cargo xtask bench` measures both against `copy_from_slice` from
//! 4 KiB to 1 GiB (group `simd/copy` of `docs/BENCHMARKS.md`). On the Zen 4 machine of our first
//! report, streaming stores lost 2–4× up to 4 MiB and won from 16 MiB (half its 32 MiB L3) up:
//! so [`copy`] switches to them at half the last-level cache ([`nontemporal_threshold`]).

use super::MemError;
use super::arch;
use crate::dispatch::Level;
use pulp::{Simd, WithSimd};

/// Copies `src` into `dst` with vector loads and stores at the active level (any alignment),
/// using streaming stores ([`copy_nontemporal`]) from [`nontemporal_threshold`] bytes up.
pub fn copy<T: bytemuck::Pod>(dst: &mut [T], src: &[T]) -> Result<(), MemError> {
    check(dst.len(), src.len())?;
    if size_of_val(src) >= nontemporal_threshold() {
        return copy_nontemporal(dst, src);
    }
    copy_cached(dst, src)
}

/// Copies `src` into `dst` with ordinary vector loads and stores at the active level, whatever
/// the size (the seed's `aligned_copy`; any alignment works).
pub fn copy_cached<T: bytemuck::Pod>(dst: &mut [T], src: &[T]) -> Result<(), MemError> {
    check(dst.len(), src.len())?;
    let (dst, src) = (bytes_mut(dst), bytemuck::cast_slice(src));
    Level::active()?.run(CopyBytes { dst, src });
    Ok(())
}

/// The size in bytes from which [`copy`] uses streaming stores: half the last-level cache
/// ([`crate::CacheInfo`], overridable with `BITNET_L3`).
pub fn nontemporal_threshold() -> usize {
    (crate::CacheInfo::get().l3 / 2).max(1 << 20)
}

/// Copies `src` into `dst` with non-temporal (cache-bypassing) stores at the active level.
///
/// Faster than a cached copy only for copies larger than the last-level cache (see the module
/// docs); [`copy`] chooses it by itself. At the scalar level there is no non-temporal store and this is a plain copy. The stores are
/// ordered (`sfence`) before returning, so the copy is visible to other threads like any other.
pub fn copy_nontemporal<T: bytemuck::Pod>(dst: &mut [T], src: &[T]) -> Result<(), MemError> {
    check(dst.len(), src.len())?;
    let (dst, src) = (bytes_mut(dst), bytemuck::cast_slice(src));
    match Level::active()? {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512(v4) => arch::x86::copy_nt_avx512(v4, dst, src),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2(v3) => arch::x86::copy_nt_avx2(v3, dst, src),
        _ => dst.copy_from_slice(src),
    }
    Ok(())
}

fn check(dst: usize, src: usize) -> Result<(), MemError> {
    if dst == src {
        Ok(())
    } else {
        Err(MemError::LengthMismatch { dst, src })
    }
}

fn bytes_mut<T: bytemuck::Pod>(s: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(s)
}

/// Generic vector copy: full vectors four at a time, then single vectors, then the byte tail.
struct CopyBytes<'a> {
    dst: &'a mut [u8],
    src: &'a [u8],
}

impl WithSimd for CopyBytes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> Self::Output {
        let (dst_v, dst_tail) = S::as_mut_simd_u8s(self.dst);
        let (src_v, src_tail) = S::as_simd_u8s(self.src);
        let mut d4 = dst_v.chunks_exact_mut(4);
        let mut s4 = src_v.chunks_exact(4);
        for (d, s) in (&mut d4).zip(&mut s4) {
            let (a, b, c, e) = (s[0], s[1], s[2], s[3]);
            d[0] = a;
            d[1] = b;
            d[2] = c;
            d[3] = e;
        }
        for (d, s) in d4.into_remainder().iter_mut().zip(s4.remainder()) {
            *d = *s;
        }
        dst_tail.copy_from_slice(src_tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{testable_isas, with_isa};

    #[test]
    fn copies_match_on_every_level() {
        for isa in testable_isas().unwrap() {
            for len in [0usize, 1, 3, 63, 64, 65, 257, 4099] {
                for offset in [0usize, 1, 7] {
                    let src: Vec<u8> = (0..len + offset).map(|i| (i * 7 + 3) as u8).collect();
                    let src = &src[offset..];
                    let mut a = vec![0u8; len + offset];
                    let mut b = vec![0u8; len + 1];
                    with_isa(isa, || {
                        copy_cached(&mut a[offset..], src).unwrap();
                        copy_nontemporal(&mut b[1..], src).unwrap();
                    })
                    .unwrap();
                    assert_eq!(&a[offset..], src, "{isa} copy len {len}");
                    assert_eq!(&b[1..], src, "{isa} nt copy len {len}");
                }
            }
        }
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let mut d = [0f32; 3];
        assert_eq!(
            copy(&mut d, &[1.0; 4]),
            Err(MemError::LengthMismatch { dst: 3, src: 4 })
        );
        assert!(copy_nontemporal(&mut d, &[1.0; 2]).is_err());
    }
}
