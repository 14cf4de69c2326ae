//! The int8 GEMM tile on 256-bit `vpdpbusd`: VEX-encoded for CPUs with AVX-VNNI (and no
//! AVX-512), and the same code in the EVEX encoding of AVX-512 VNNI + VL ([`evex`]), which is how
//! a machine with AVX-512 VNNI verifies what an AVX-VNNI machine runs.
//!
//! Data layout and loop order: `R` A rows (2, or 1 for a GEMV) × 4 B rows of `k` bytes each; one
//! step loads 32 bytes of every row and issues `R · 4` `vpdpbusd` (u8 × s8, four products per i32
//! lane, no saturation). `R = 2` keeps 8 accumulators + 4 B vectors + 1 A vector + the bias in
//! the 16 ymm registers a VEX-only CPU has. The last `k % 32` bytes are copied into zeroed 32-byte
//! buffers and run as one more step (a zero B byte cancels whatever A holds there, the bias
//! included). For i8 A (`BIASED`) each A vector is biased to u8 in registers (`a ^ 0x80` =
//! `a + 128`) and `128 Σ_k b` subtracted at the end: given by the caller (`b_sums`) or summed in
//! the same pass by a `vpdpbusd` of B with ones.

/// The tile kernel and the B row sums for one byte-dot instruction (`$dot`: a
/// `crate::kernels::avx_vnni` byte dot, one `vpdpbusd` for `N = 1`).
macro_rules! vnni_ymm_tile {
    ($features:literal, $($dot:ident)::+) => {
        use core::arch::x86_64::*;

        /// `vpdpbusd` of one vector pair into `acc`.
        #[inline]
        #[target_feature(enable = $features)]
        fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            $($dot)::+::<1>(acc, [u], [s])
        }

        /// 32 bytes of `row` from `p` (`p + 32 <= row.len()`).
        #[inline]
        #[target_feature(enable = $features)]
        fn load32<T: Copy>(row: &[T], p: usize) -> __m256i {
            assert!(p + 32 <= row.len() && size_of::<T>() == 1);
            // SAFETY: bytes p..p + 32 of the row (checked above).
            unsafe { _mm256_loadu_si256(row.as_ptr().add(p).cast()) }
        }

        /// The last `row.len() - p < 32` bytes of `row` from `p`, zero-padded to 32.
        #[inline]
        #[target_feature(enable = $features)]
        fn load_tail<T: Copy>(row: &[T], p: usize) -> __m256i {
            assert!(row.len() - p < 32 && size_of::<T>() == 1);
            let mut pad = [0u8; 32];
            // SAFETY: T is a one-byte integer (checked above); the copy of `row.len() - p`
            // bytes stays inside the row and `pad`.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    row.as_ptr().add(p).cast::<u8>(),
                    pad.as_mut_ptr(),
                    row.len() - p,
                )
            };
            // SAFETY: 32 bytes of `pad`.
            unsafe { _mm256_loadu_si256(pad.as_ptr().cast()) }
        }

        /// The sum of the eight i32 lanes of `v`.
        #[inline]
        #[target_feature(enable = $features)]
        fn hsum(v: __m256i) -> i32 {
            let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<1>(s));
            _mm_cvtsi128_si32(s)
        }

        /// `Σ_k a[i][k] · b[j][k]` for the `R × 4` tile, `a` read as u8, or as i8 when
        /// `BIASED` (module docs).
        #[target_feature(enable = $features)]
        pub fn tile<const R: usize, const BIASED: bool>(
            a: [&[u8]; R],
            b: [&[i8]; 4],
            k: usize,
            b_sums: Option<[i32; 4]>,
        ) -> [[i32; 4]; R] {
            let a = a.map(|r| &r[..k]);
            let b = b.map(|r| &r[..k]);
            let bias = _mm256_set1_epi8(0x80u8 as i8);
            let ones = _mm256_set1_epi8(1);
            let sum_in_pass = BIASED && b_sums.is_none();
            let mut acc = [[_mm256_setzero_si256(); 4]; R];
            let mut in_pass = [_mm256_setzero_si256(); 4];
            let mut step = |bv: [__m256i; 4], av: [__m256i; R]| {
                if sum_in_pass {
                    for (s, &bv) in in_pass.iter_mut().zip(&bv) {
                        *s = dpbusd(*s, ones, bv);
                    }
                }
                for (acc_i, mut av) in acc.iter_mut().zip(av) {
                    if BIASED {
                        av = _mm256_xor_si256(av, bias);
                    }
                    for (c, &bv) in acc_i.iter_mut().zip(&bv) {
                        *c = dpbusd(*c, av, bv);
                    }
                }
            };
            let full = k / 32 * 32;
            for p in (0..full).step_by(32) {
                step(b.map(|r| load32(r, p)), a.map(|r| load32(r, p)));
            }
            if full < k {
                step(b.map(|r| load_tail(r, full)), a.map(|r| load_tail(r, full)));
            }
            let corrections = match (BIASED, b_sums) {
                (false, _) => [0; 4],
                (true, Some(sums)) => sums.map(|s| 128 * s),
                (true, None) => in_pass.map(|v| 128 * hsum(v)),
            };
            acc.map(|row| core::array::from_fn(|j| hsum(row[j]) - corrections[j]))
        }

        /// `Σ_k b[j][k]` of every `k`-byte row of `b` (a `vpdpbusd` of each 32 bytes with
        /// ones).
        #[target_feature(enable = $features)]
        pub fn row_sums(b: &[i8], k: usize, out: &mut [i32]) {
            let ones = _mm256_set1_epi8(1);
            for (row, o) in b.chunks_exact(k.max(1)).zip(out.iter_mut()) {
                let row = &row[..k];
                let mut acc = _mm256_setzero_si256();
                let full = k / 32 * 32;
                for p in (0..full).step_by(32) {
                    acc = dpbusd(acc, ones, load32(row, p));
                }
                if full < k {
                    acc = dpbusd(acc, ones, load_tail(row, full));
                }
                *o = hsum(acc);
            }
            if k == 0 {
                out.fill(0);
            }
        }
    };
}

vnni_ymm_tile!("avx2,avxvnni", crate::kernels::avx_vnni::dot);

/// The same tile with the EVEX `vpdpbusd` ymm of AVX-512 VNNI + VL.
pub mod evex {
    vnni_ymm_tile!(
        "avx2,avx512f,avx512vl,avx512vnni",
        crate::kernels::avx_vnni::evex::dot
    );
}
