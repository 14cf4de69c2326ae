//! x86 non-temporal stores (`vmovntdq`) for `copy_nontemporal`.
//!
//! Layout of the copy: an unaligned head up to the first `W`-byte boundary of `dst` (plain copy),
//! then whole `W`-byte vectors loaded unaligned from `src` and streamed to aligned `dst`, then the
//! tail (plain copy), then `sfence` so the weakly ordered streaming stores are globally visible
//! before the function returns.

use std::arch::x86_64::*;

use pulp::x86::{V3, V4};

/// Bytes before the first `align`-byte boundary of `p`, capped at `len`.
fn head_len(p: *const u8, align: usize, len: usize) -> usize {
    (p.align_offset(align)).min(len)
}

/// Non-temporal copy with 64-byte stores. `dst.len() == src.len()` is checked by the caller.
pub fn copy_nt_avx512(_proof: V4, dst: &mut [u8], src: &[u8]) {
    // SAFETY: the V4 token proves AVX-512F, which `stream_avx512` needs; `split_copy` passes it
    // a 64-byte aligned destination and a multiple of 64 bytes, in bounds.
    unsafe { split_copy(dst, src, 64, stream_avx512) }
}

/// Non-temporal copy with 32-byte stores. `dst.len() == src.len()` is checked by the caller.
pub fn copy_nt_avx2(_proof: V3, dst: &mut [u8], src: &[u8]) {
    // SAFETY: the V3 token proves AVX2, which `stream_avx2` needs; `split_copy` passes it a
    // 32-byte aligned destination and a multiple of 32 bytes, in bounds.
    unsafe { split_copy(dst, src, 32, stream_avx2) }
}

/// Copies the head up to the first `width`-aligned byte of `dst` and the tail with ordinary
/// stores, and the body between them with `stream`.
///
/// # Safety
/// `stream` must be safe to call on this CPU with a `width`-aligned destination and a byte count
/// that is a multiple of `width`, both valid for that many bytes.
unsafe fn split_copy(
    dst: &mut [u8],
    src: &[u8],
    width: usize,
    stream: unsafe fn(*mut u8, *const u8, usize),
) {
    debug_assert_eq!(dst.len(), src.len());
    let head = head_len(dst.as_ptr(), width, dst.len());
    let (dst_head, dst_rest) = dst.split_at_mut(head);
    let (src_head, src_rest) = src.split_at(head);
    dst_head.copy_from_slice(src_head);
    let body = dst_rest.len() / width * width;
    // SAFETY: `dst_rest` starts on a `width` boundary, both slices hold at least `body` bytes (a
    // multiple of `width`) and do not overlap (one is borrowed mutably); the caller vouches for
    // the CPU.
    unsafe { stream(dst_rest.as_mut_ptr(), src_rest.as_ptr(), body) };
    dst_rest[body..].copy_from_slice(&src_rest[body..]);
}

/// # Safety
/// AVX-512F must be available; `dst` must be 64-byte aligned; `dst` and `src` must be valid for
/// `bytes` bytes (a multiple of 64) and must not overlap.
#[target_feature(enable = "avx512f")]
unsafe fn stream_avx512(dst: *mut u8, src: *const u8, bytes: usize) {
    let mut i = 0;
    while i < bytes {
        // SAFETY: `i + 64 <= bytes`, so both accesses are in bounds; `dst + i` is 64-aligned.
        unsafe {
            let v = _mm512_loadu_si512(src.add(i).cast());
            _mm512_stream_si512(dst.add(i).cast(), v);
        }
        i += 64;
    }
    _mm_sfence();
}

/// # Safety
/// AVX2 must be available; `dst` must be 32-byte aligned; `dst` and `src` must be valid for
/// `bytes` bytes (a multiple of 32) and must not overlap.
#[target_feature(enable = "avx2")]
unsafe fn stream_avx2(dst: *mut u8, src: *const u8, bytes: usize) {
    let mut i = 0;
    while i < bytes {
        // SAFETY: `i + 32 <= bytes`, so both accesses are in bounds; `dst + i` is 32-aligned.
        unsafe {
            let v = _mm256_loadu_si256(src.add(i).cast());
            _mm256_stream_si256(dst.add(i).cast(), v);
        }
        i += 32;
    }
    _mm_sfence();
}
