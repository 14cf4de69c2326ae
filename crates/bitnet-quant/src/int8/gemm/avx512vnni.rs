//! The int8 GEMM tile on AVX-512 VNNI: `R` A rows (4, or 1 for a GEMV) × 4 B rows, `vpdpbusd`
//! (u8 × s8, four products per i32 lane) over 64 values of `k` per step, the last `k % 64` with
//! masked loads (zero bytes add nothing). For i8 A (`BIASED`) each A vector is biased to u8 in
//! registers (`a ^ 0x80` = `a + 128`), and `128 Σ_k b` is subtracted at the end: given by the
//! caller (`b_sums`, computed once per call by [`row_sums`]) or, without them (a GEMV, where a
//! separate pass would read B twice), summed in the same pass by a `vpdpbusd` of B with ones.

use core::arch::x86_64::*;

/// `Σ_k a[i][k] · b[j][k]` for the `R × 4` tile, `a` read as u8, or as i8 when `BIASED`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn tile<const R: usize, const BIASED: bool>(
    a: [&[u8]; R],
    b: [&[i8]; 4],
    k: usize,
    b_sums: Option<[i32; 4]>,
) -> [[i32; 4]; R] {
    assert!(a.iter().all(|r| r.len() >= k) && b.iter().all(|r| r.len() >= k));
    let bias = _mm512_set1_epi8(0x80u8 as i8);
    let ones = _mm512_set1_epi8(1);
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let sum_in_pass = BIASED && b_sums.is_none();
    let mut in_pass = [_mm512_setzero_si512(); 4];
    let mut step = |p: usize, m: __mmask64| {
        // SAFETY: the masked loads read bytes p..p + popcount(m) <= k of each row only.
        let bv: [__m512i; 4] = core::array::from_fn(|e| unsafe {
            _mm512_maskz_loadu_epi8(m, b[e].as_ptr().add(p).cast())
        });
        if sum_in_pass {
            for (s, bv) in in_pass.iter_mut().zip(&bv) {
                *s = _mm512_dpbusd_epi32(*s, ones, *bv);
            }
        }
        for (acc_i, row) in acc.iter_mut().zip(&a) {
            // SAFETY: as above. A masked-off byte biased to 128 meets a zero B byte.
            let mut av = unsafe { _mm512_maskz_loadu_epi8(m, row.as_ptr().add(p).cast()) };
            if BIASED {
                av = _mm512_xor_si512(av, bias);
            }
            for (c, bv) in acc_i.iter_mut().zip(&bv) {
                *c = _mm512_dpbusd_epi32(*c, av, *bv);
            }
        }
    };
    let full = k / 64 * 64;
    for p in (0..full).step_by(64) {
        step(p, u64::MAX);
    }
    if full < k {
        step(full, (1u64 << (k - full)) - 1);
    }
    let corrections = match (BIASED, b_sums) {
        (false, _) => [0; 4],
        (true, Some(sums)) => sums.map(|s| 128 * s),
        (true, None) => hsum4(in_pass).map(|s| 128 * s),
    };
    acc.map(|row| {
        let sums = hsum4(row);
        core::array::from_fn(|j| sums[j] - corrections[j])
    })
}

/// The horizontal sums of four vectors of i32 lanes: pairs folded 512 → 128 bits with 128-bit
/// lane shuffles, then the last four lanes of each added.
#[inline]
#[target_feature(enable = "avx512f")]
fn hsum4(v: [__m512i; 4]) -> [i32; 4] {
    let fold = |x: __m512i, y: __m512i| {
        // [x.0 + x.2, x.1 + x.3, y.0 + y.2, y.1 + y.3], then adjacent 128-bit lanes added:
        // lane 0 holds x's four partial sums, lane 2 y's.
        let s = _mm512_add_epi32(
            _mm512_shuffle_i64x2::<0b01_00_01_00>(x, y),
            _mm512_shuffle_i64x2::<0b11_10_11_10>(x, y),
        );
        _mm512_add_epi32(s, _mm512_shuffle_i64x2::<0b10_11_00_01>(s, s))
    };
    let mut lanes = [[0i32; 16]; 2];
    // SAFETY: 16 i32 each.
    unsafe {
        _mm512_storeu_si512(lanes[0].as_mut_ptr().cast(), fold(v[0], v[1]));
        _mm512_storeu_si512(lanes[1].as_mut_ptr().cast(), fold(v[2], v[3]));
    }
    core::array::from_fn(|j| lanes[j / 2][8 * (j % 2)..8 * (j % 2) + 4].iter().sum())
}

/// `Σ_k b[j][k]` of every `k`-byte row of `b` (a `vpdpbusd` of each 64 bytes with ones).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub fn row_sums(b: &[i8], k: usize, out: &mut [i32]) {
    assert!(b.len() >= out.len() * k);
    let ones = _mm512_set1_epi8(1);
    for (j, o) in out.iter_mut().enumerate() {
        let row = &b[j * k..(j + 1) * k];
        let mut acc = _mm512_setzero_si512();
        for p in (0..k).step_by(64) {
            let m: __mmask64 = if k - p >= 64 {
                u64::MAX
            } else {
                (1u64 << (k - p)) - 1
            };
            // SAFETY: the masked load reads bytes p..min(p + 64, k) of the row only.
            let v = unsafe { _mm512_maskz_loadu_epi8(m, row.as_ptr().add(p).cast()) };
            acc = _mm512_dpbusd_epi32(acc, ones, v);
        }
        *o = _mm512_reduce_add_epi32(acc);
    }
}
