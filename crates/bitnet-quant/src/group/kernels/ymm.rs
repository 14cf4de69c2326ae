//! The 256-bit group-format kernels, written once and instantiated per byte-dot instruction by
//! [`group_kernels!`]: `vpmaddubsw` + `vpmaddwd` on AVX2, `vpdpbusd` ymm on AVX-VNNI (VEX) and
//! on AVX-512 VNNI + VL (EVEX) — the byte dots of the ternary kernels (`crate::kernels`).
//!
//! Each kernel computes one weight row against `NT` tokens (1 for a GEMV, 4 for a GEMM tile),
//! decoding every 32 weights once for all tokens. Loop order: blocks, then 32-value sub-blocks,
//! then tokens.
//!
//! - **32-value formats** (the log's groups, Q4_0, Q4_1, Q8_0): each 32 weights become one
//!   vector of u8 codes (nibbles masked out of 16 or 32 bytes; 2-bit fields shifted out of a
//!   broadcast with `vpsrlvq`; Q8_0 as `|w|` with the sign moved onto the activations by
//!   `vpsignb`). The symmetric offset is a second byte dot, of `off`s with the activations,
//!   subtracted (so each block's integer `Σ (code − off)·q` is exact, as in the reference); the
//!   i32 lanes are converted and multiplied by `d_w · d_a` in one FMA into an f32 accumulator,
//!   `U` of them per token taking blocks in turn (4 for a GEMV: one chain would wait on the FMA
//!   latency every block); a minimum adds the scalar `m_w · (d_a Σ q)` per token.
//! - **Q4_K**: the 32-byte code chunk gives two sub-blocks (low and high nibbles); each byte dot
//!   is multiplied by its 6-bit scale (`vpmulld`) into an i32 sum per super-block, converted
//!   once and multiplied by `d · d_a`; the minimums are `Σ m_j (bsum_2j + bsum_2j+1)` from the
//!   Q8_K block sums in one `vpmaddwd` + `vpmulld`.
//! - **Q6_K**: four 6-bit code vectors per 128 values from `ql` nibbles and `qh` pairs; each byte
//!   dot times the two i8 sub-scales of its halves, and `− 32 Σ sc_j bsum_j` once per
//!   super-block.
//!
//! AVX2 bound: no `vpmaddubsw` pair saturates: codes ≤ 63 and `|w| ≤ 128` against `|q| ≤ 127`
//! give at most 2 · 128 · 127 = 32512.

/// `vpshufb` masks that spread the i8 sub-scales `2i` and `2i + 1` of a Q6_K block over four
/// bytes each (for `vpmovsxbd`).
pub const Q6K_SCALE_SPREAD: [[u8; 16]; 8] = {
    let mut m = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut b = 0;
        while b < 8 {
            m[i][b] = (2 * i + b / 4) as u8;
            b += 1;
        }
        i += 1;
    }
    m
};

/// The four f16 values at `p..p + 8` as f32, by one `vcvtph2ps` from memory (which writes its
/// whole register). Written in `asm!` because from intrinsics the compiler narrows the load to the
/// 16 bits a caller uses and emits `vpinsrw` into an arbitrary register, often an accumulator:
/// that false dependency chained every block's scale to the FMA of the block before (measured:
/// 4.5 cycles per Q4_0 block).
///
/// # Safety
/// `p` must be valid for 8 bytes.
#[inline]
#[target_feature(enable = "avx,f16c")]
pub unsafe fn f16x4_load(p: *const u8) -> core::arch::x86_64::__m128 {
    let v;
    // SAFETY: reads 8 bytes at p (caller); F16C is enabled.
    unsafe {
        core::arch::asm!(
            "vcvtph2ps {v}, qword ptr [{p}]",
            p = in(reg) p,
            v = out(xmm_reg) v,
            options(pure, readonly, nostack, preserves_flags)
        )
    };
    v
}

/// Defines `groups`, `q8_0`, `q4_k` and `q6_k` in the invoking module, compiled with `$features`
/// on the byte dot `$dot` (module docs).
macro_rules! group_kernels {
    ($features:literal, $dot:path) => {
        use core::arch::x86_64::*;

        use $crate::formats::q8_k::BlockQ8K;
        use $crate::group::kernels::ymm::{Q6K_SCALE_SPREAD, f16x4_load};
        use $crate::kernels::ymm::reduce_f32x8;

        /// The i32 lanes of one byte dot `u · s`.
        #[inline]
        #[target_feature(enable = $features)]
        fn bdot(u: __m256i, s: __m256i) -> __m256i {
            $dot(_mm256_setzero_si256(), [u], [s])
        }

        /// The four f16 values at `p..p + 8` as f32, in order ([`f16x4_load`]).
        ///
        /// # Safety
        /// `p` must be valid for 8 bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn f16x4_at(p: *const u8) -> [f32; 4] {
            // SAFETY: 8 bytes (caller).
            let v = unsafe { f16x4_load(p) };
            [
                _mm_cvtss_f32(v),
                _mm_cvtss_f32(_mm_movehdup_ps(v)),
                _mm_cvtss_f32(_mm_movehl_ps(v, v)),
                _mm_cvtss_f32(_mm_shuffle_ps::<3>(v, v)),
            ]
        }

        /// The 32 4-bit codes of sub-block `sub` of a group of `SIZE` (codes at `codes`).
        ///
        /// # Safety
        /// `codes` must be valid for `SIZE / 2` bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn nibbles<const SIZE: usize>(codes: *const u8, sub: usize) -> __m256i {
            let m = _mm256_set1_epi8(0x0F);
            if SIZE == 32 {
                // SAFETY: 16 bytes (caller).
                let x = unsafe { _mm_loadu_si128(codes.cast()) };
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(x), x), m)
            } else {
                let chunks = SIZE / 64;
                // SAFETY: chunk sub % chunks of SIZE / 64 chunks of 32 bytes (caller).
                let x = unsafe { _mm256_loadu_si256(codes.add(32 * (sub % chunks)).cast()) };
                if sub < chunks {
                    _mm256_and_si256(x, m)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16::<4>(x), m)
                }
            }
        }

        /// The 32 2-bit codes of sub-block `sub` of a group of `SIZE` (codes at `codes`).
        ///
        /// # Safety
        /// `codes` must be valid for `SIZE / 4` bytes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn crumbs<const SIZE: usize>(codes: *const u8, sub: usize) -> __m256i {
            let v = match SIZE {
                32 => {
                    // SAFETY: 8 bytes (caller). Field s = values 8s..8s + 8 → qword s.
                    let x = unsafe { codes.cast::<i64>().read_unaligned() };
                    _mm256_srlv_epi64(_mm256_set1_epi64x(x), _mm256_setr_epi64x(0, 2, 4, 6))
                }
                64 => {
                    // SAFETY: 16 bytes (caller). Fields 2·sub and 2·sub + 1 → the two halves.
                    let x = unsafe { _mm_loadu_si128(codes.cast()) };
                    let s = 4 * sub as i64;
                    _mm256_srlv_epi64(
                        _mm256_set_m128i(x, x),
                        _mm256_setr_epi64x(s, s, s + 2, s + 2),
                    )
                }
                _ => {
                    // SAFETY: 32 bytes (caller). Field sub = values 32·sub..
                    let x = unsafe { _mm256_loadu_si256(codes.cast()) };
                    _mm256_srlv_epi64(x, _mm256_set1_epi64x(2 * sub as i64))
                }
            };
            _mm256_and_si256(v, _mm256_set1_epi8(3))
        }

        /// One row of a `BITS`-bit group format of `SIZE` values (`MIN`: with a minimum)
        /// against `NT` tokens: their i8 values `q`, block scales `d` and `d · Σ q` `ds`. `U` independent accumulators per token take consecutive blocks
        /// in turn, so the FMA latency does not serialise a GEMV.
        #[target_feature(enable = $features)]
        pub fn groups<
            const BITS: u32,
            const SIZE: usize,
            const MIN: bool,
            const NT: usize,
            const U: usize,
        >(
            row: &[u8],
            q: [&[i8]; NT],
            d: [&[f32]; NT],
            ds: [&[f32]; NT],
        ) -> [f32; NT] {
            let header = if MIN { 4 } else { 2 };
            let bb = header + SIZE * BITS as usize / 8;
            let nsub = SIZE / 32;
            let nb = row.len() / bb;
            assert!(
                row.len() == nb * bb
                    && (0..NT).all(|t| q[t].len() == nb * SIZE
                        && d[t].len() == nb * nsub
                        && ds[t].len() == nb * nsub)
            );
            // The symmetric offset: `Σ (code − off)·q = Σ code·q − Σ off·q`, the second term a
            // byte dot of `off`s with the activations, so the integer is exact before conversion.
            let offs = _mm256_set1_epi8(if MIN { 0 } else { 1i8 << (BITS - 1) });
            let block = |b: usize, acc: &mut [__m256; NT], side: &mut [f32; NT]| {
                // SAFETY: block b lies inside row (asserted).
                let block = unsafe { row.as_ptr().add(b * bb) };
                // SAFETY: a block has at least 10 bytes (a 2-byte header and 8 or more code
                // bytes); the header holds d (and m).
                let [dw, mw, ..] = unsafe { f16x4_at(block) };
                for sub in 0..nsub {
                    // SAFETY: the codes follow the header (SIZE·BITS/8 bytes).
                    let u = unsafe {
                        if BITS == 4 {
                            nibbles::<SIZE>(block.add(header), sub)
                        } else {
                            crumbs::<SIZE>(block.add(header), sub)
                        }
                    };
                    let j = b * nsub + sub;
                    for t in 0..NT {
                        // SAFETY: j < nb · nsub, so 32 values at 32 j and the scales at j exist.
                        let (a, dj, dsj) = unsafe {
                            (
                                _mm256_loadu_si256(q[t].as_ptr().add(32 * j).cast()),
                                *d[t].get_unchecked(j),
                                *ds[t].get_unchecked(j),
                            )
                        };
                        let mut isum = bdot(u, a);
                        if !MIN {
                            isum = _mm256_sub_epi32(isum, bdot(offs, a));
                        }
                        let sum = _mm256_cvtepi32_ps(isum);
                        acc[t] = _mm256_fmadd_ps(sum, _mm256_set1_ps(dw * dj), acc[t]);
                        if MIN {
                            side[t] += mw * dsj;
                        }
                    }
                }
            };
            let mut acc = [[_mm256_setzero_ps(); NT]; U];
            let mut side = [[0f32; NT]; U];
            let full = nb / U * U;
            for b0 in (0..full).step_by(U) {
                for u in 0..U {
                    block(b0 + u, &mut acc[u], &mut side[u]);
                }
            }
            for b in full..nb {
                block(b, &mut acc[0], &mut side[0]);
            }
            core::array::from_fn(|t| {
                let v = (1..U).fold(acc[0][t], |s, u| _mm256_add_ps(s, acc[u][t]));
                reduce_f32x8(v) + (0..U).map(|u| side[u][t]).sum::<f32>()
            })
        }

        /// One Q8_0 row against `NT` tokens (`U` accumulators per token, as [`groups`]).
        #[target_feature(enable = $features)]
        pub fn q8_0<const NT: usize, const U: usize>(
            row: &[u8],
            q: [&[i8]; NT],
            d: [&[f32]; NT],
        ) -> [f32; NT] {
            let nb = row.len() / 34;
            assert!(
                row.len() == nb * 34 && (0..NT).all(|t| q[t].len() == nb * 32 && d[t].len() == nb)
            );
            let block = |b: usize, acc: &mut [__m256; NT]| {
                // SAFETY: block b (34 bytes) lies inside row (asserted).
                let (dw, w) = unsafe {
                    let block = row.as_ptr().add(b * 34);
                    (f16x4_at(block)[0], _mm256_loadu_si256(block.add(2).cast()))
                };
                let u = _mm256_abs_epi8(w);
                for t in 0..NT {
                    // SAFETY: b < nb.
                    let (a, db) = unsafe {
                        (
                            _mm256_loadu_si256(q[t].as_ptr().add(32 * b).cast()),
                            *d[t].get_unchecked(b),
                        )
                    };
                    let sum = _mm256_cvtepi32_ps(bdot(u, _mm256_sign_epi8(a, w)));
                    acc[t] = _mm256_fmadd_ps(sum, _mm256_set1_ps(dw * db), acc[t]);
                }
            };
            let mut acc = [[_mm256_setzero_ps(); NT]; U];
            let full = nb / U * U;
            for b0 in (0..full).step_by(U) {
                for u in 0..U {
                    block(b0 + u, &mut acc[u]);
                }
            }
            for b in full..nb {
                block(b, &mut acc[0]);
            }
            core::array::from_fn(|t| {
                reduce_f32x8((1..U).fold(acc[0][t], |s, u| _mm256_add_ps(s, acc[u][t])))
            })
        }

        /// One Q4_K row against `NT` Q8_K tokens.
        #[target_feature(enable = $features)]
        pub fn q4_k<const NT: usize>(row: &[u8], x: [&[BlockQ8K]; NT]) -> [f32; NT] {
            let nb = row.len() / 144;
            assert!(row.len() == nb * 144 && (0..NT).all(|t| x[t].len() == nb));
            let m4 = _mm256_set1_epi8(0x0F);
            let (mut acc, mut acc_min) = ([_mm256_setzero_ps(); NT], [_mm256_setzero_ps(); NT]);
            for b in 0..nb {
                let block = &row[144 * b..144 * b + 144];
                let (sc, m) = $crate::group::k_quants_scales(&block[4..16]);
                let scales = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(sc as i64));
                let mins = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(m as i64));
                let mut sumi = [_mm256_setzero_si256(); NT];
                for c in 0..4 {
                    let at = block[16 + 32 * c..].as_ptr();
                    // SAFETY: 32 code bytes at 16 + 32 c <= 112.
                    let codes = unsafe { _mm256_loadu_si256(at.cast()) };
                    let (lo, hi) = (
                        _mm256_and_si256(codes, m4),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(codes), m4),
                    );
                    let s_lo = _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(2 * c as i32));
                    let s_hi =
                        _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(2 * c as i32 + 1));
                    for t in 0..NT {
                        let a = x[t][b].q.as_ptr();
                        // SAFETY: 64 c + 64 <= 256 values.
                        let (a_lo, a_hi) = unsafe {
                            (
                                _mm256_loadu_si256(a.add(64 * c).cast()),
                                _mm256_loadu_si256(a.add(64 * c + 32).cast()),
                            )
                        };
                        let p = _mm256_add_epi32(
                            _mm256_mullo_epi32(bdot(lo, a_lo), s_lo),
                            _mm256_mullo_epi32(bdot(hi, a_hi), s_hi),
                        );
                        sumi[t] = _mm256_add_epi32(sumi[t], p);
                    }
                }
                // SAFETY: the f16 d and dmin at 0..4, then scale bytes.
                let [d, dmin, ..] = unsafe { f16x4_at(block.as_ptr()) };
                for t in 0..NT {
                    let xb = &x[t][b];
                    // SAFETY: bsums is 16 i16 = 32 bytes.
                    let bsums = unsafe { _mm256_loadu_si256(xb.bsums.as_ptr().cast()) };
                    let pairs = _mm256_madd_epi16(bsums, _mm256_set1_epi16(1));
                    let min_sum = _mm256_cvtepi32_ps(_mm256_mullo_epi32(pairs, mins));
                    acc[t] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(sumi[t]),
                        _mm256_set1_ps(d * xb.d),
                        acc[t],
                    );
                    acc_min[t] = _mm256_fmadd_ps(min_sum, _mm256_set1_ps(dmin * xb.d), acc_min[t]);
                }
            }
            core::array::from_fn(|t| reduce_f32x8(acc[t]) - reduce_f32x8(acc_min[t]))
        }

        /// One Q6_K row against `NT` Q8_K tokens.
        #[target_feature(enable = $features)]
        pub fn q6_k<const NT: usize>(row: &[u8], x: [&[BlockQ8K]; NT]) -> [f32; NT] {
            let nb = row.len() / 210;
            assert!(row.len() == nb * 210 && (0..NT).all(|t| x[t].len() == nb));
            let (m4, m30) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
            let mut acc = [_mm256_setzero_ps(); NT];
            for b in 0..nb {
                let block = &row[210 * b..210 * b + 210];
                let p = block.as_ptr();
                // SAFETY: the 16 sub-scales at 192..208.
                let sc16 = unsafe { _mm_loadu_si128(p.add(192).cast()) };
                let mut sumi = [_mm256_setzero_si256(); NT];
                for n in 0..2 {
                    // SAFETY: ql at 64 n (64 bytes), qh at 128 + 32 n (32 bytes), inside 210.
                    let (ql0, ql1, qh) = unsafe {
                        (
                            _mm256_loadu_si256(p.add(64 * n).cast()),
                            _mm256_loadu_si256(p.add(64 * n + 32).cast()),
                            _mm256_loadu_si256(p.add(128 + 32 * n).cast()),
                        )
                    };
                    let codes = [
                        _mm256_or_si256(
                            _mm256_and_si256(ql0, m4),
                            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(ql1, m4),
                            _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                            _mm256_and_si256(qh, m30),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
                        ),
                    ];
                    for (i, &u) in codes.iter().enumerate() {
                        let mask = Q6K_SCALE_SPREAD[4 * n + i].as_ptr();
                        // SAFETY: a 16-byte constant.
                        let spread = unsafe { _mm_loadu_si128(mask.cast()) };
                        let sv = _mm256_cvtepi8_epi32(_mm_shuffle_epi8(sc16, spread));
                        for t in 0..NT {
                            // SAFETY: 128 n + 32 i + 32 <= 256 values.
                            let a = unsafe {
                                _mm256_loadu_si256(x[t][b].q.as_ptr().add(128 * n + 32 * i).cast())
                            };
                            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(bdot(u, a), sv));
                        }
                    }
                }
                // SAFETY: the f16 d at 208, read with the scale bytes 202..208 before it.
                let [.., d] = unsafe { f16x4_at(p.add(202)) };
                let sc_i16 = _mm256_cvtepi8_epi16(sc16);
                for t in 0..NT {
                    let xb = &x[t][b];
                    // SAFETY: bsums is 16 i16 = 32 bytes.
                    let bsums = unsafe { _mm256_loadu_si256(xb.bsums.as_ptr().cast()) };
                    let corr = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc_i16, bsums));
                    let s = _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[t], corr));
                    acc[t] = _mm256_fmadd_ps(s, _mm256_set1_ps(d * xb.d), acc[t]);
                }
            }
            core::array::from_fn(|t| reduce_f32x8(acc[t]))
        }
    };
}

pub(crate) use group_kernels;
