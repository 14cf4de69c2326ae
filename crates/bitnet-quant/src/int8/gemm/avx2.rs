//! The int8 GEMM on AVX2: one A row against four B rows, both widened to i16 (16 values per
//! step) and multiplied with `vpmaddwd` into i32 lanes, exact for any bytes (no `vpmaddubsw`
//! saturation). The last `k % 16` values in scalar.

use core::arch::x86_64::*;

/// `Σ_k a[k] · b[j][k]` for i8 `a`.
#[target_feature(enable = "avx2")]
pub fn row_i8(a: &[i8], b: [&[i8]; 4]) -> [i32; 4] {
    // SAFETY: 16 bytes from p + 16 <= len.
    rows(
        a.len(),
        b,
        |p| unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(a.as_ptr().add(p).cast())) },
        |p| i32::from(a[p]),
    )
}

/// `Σ_k a[k] · b[j][k]` for u8 `a`.
#[target_feature(enable = "avx2")]
pub fn row_u8(a: &[u8], b: [&[i8]; 4]) -> [i32; 4] {
    // SAFETY: as above.
    rows(
        a.len(),
        b,
        |p| unsafe { _mm256_cvtepu8_epi16(_mm_loadu_si128(a.as_ptr().add(p).cast())) },
        |p| i32::from(a[p]),
    )
}

/// The shared loop: `widen(p)` gives A's 16 values from `p` as i16, `scalar(p)` one value.
#[inline]
#[target_feature(enable = "avx2")]
fn rows(
    k: usize,
    b: [&[i8]; 4],
    widen: impl Fn(usize) -> __m256i,
    scalar: impl Fn(usize) -> i32,
) -> [i32; 4] {
    assert!(b.iter().all(|r| r.len() >= k));
    let mut acc = [_mm256_setzero_si256(); 4];
    let full = k / 16 * 16;
    for p in (0..full).step_by(16) {
        let av = widen(p);
        for (c, row) in acc.iter_mut().zip(&b) {
            // SAFETY: 16 bytes from p, p + 16 <= full <= k.
            let bv = unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(row.as_ptr().add(p).cast())) };
            *c = _mm256_add_epi32(*c, _mm256_madd_epi16(av, bv));
        }
    }
    let mut out = acc.map(|v| {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
        _mm_cvtsi128_si32(s)
    });
    for p in full..k {
        for (o, row) in out.iter_mut().zip(&b) {
            *o += scalar(p) * i32::from(row[p]);
        }
    }
    out
}
