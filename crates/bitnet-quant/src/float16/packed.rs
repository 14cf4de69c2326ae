//! The GEMMs of 16-bit weights for many tokens on AVX-512: the weight rows packed per 64-row
//! panel so that each vector instruction serves 16 weight rows (output columns), with no
//! horizontal sums. Three kernels share the packing and the loop nest:
//!
//! | kernel | activations | per pair of `k` values and 16 rows |
//! |---|---|---|
//! | [`Bf16Dot`] | bf16 | one `vdpbf16ps` against the token's broadcast bf16 pair (AVX-512 BF16) |
//! | [`Wide::<true>`] | f32 | bf16 widened by a shift (even value) and a mask (odd value), two FMAs |
//! | [`Wide::<false>`] | f32 | f16 widened by two `vcvtph2ps` from memory, two FMAs |
//!
//! Packed panel layout. A 16-bit row of `k` values is `k / 2` dwords of two values, exactly as
//! an int8 row of `2k` bytes is `k / 2` dwords of four, so the int8 GEMM's panel packer
//! (`int8::gemm::packed::pack_panel`, a 16 × 16 dword transpose in registers) packs it
//! unchanged: per panel of 64 rows, for each pair `p` of `k` values, the two values of row `c`
//! at dword `p · 64 + c` (256 contiguous bytes per pair, four 64-byte chunks of 16 rows; rows
//! past the end and the odd `k`-th partner are zero). For f16 each 64-byte chunk is then
//! reordered in place (`vpermw`) into the 16 even values followed by the 16 odd ones, so that
//! `vcvtph2ps` widens each half straight from memory.
//!
//! Microkernel: up to 6 tokens × 64 rows in 24 f32 accumulators; per pair, the four packed
//! chunks are loaded once and each token's pair (bf16: one broadcast dword; f32: two broadcast
//! values) meets them. Loop order: panels outside (split over threads), tokens in sixes
//! inside, the whole `k` per tile. (A software prefetch of the next panel's rows during the
//! first token tile was tried: no gain at 64 tokens, 5-7 % lost at 256.)
//!
//! Error: each output accumulates its `k` products in one f32 lane, in order, each product
//! exact (the FMA, or `vdpbf16ps` two per instruction): `|y − Σ w_i x_i| ≤ (k + 1) · ε ·
//! Σ |w_i x_i|` (the usual GEMM bound). `vdpbf16ps` treats subnormal bf16 inputs as zero.

use core::arch::x86_64::*;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Par, ScratchPool};

use crate::int8::gemm::packed::{self as int8_packed, NR, panel_len};

/// Tokens per microkernel call.
const MR: usize = 6;

/// One of the three microkernels over a packed panel (module docs).
pub(super) trait PanelKernel {
    /// The activation element: bf16 bits or f32.
    type X: Copy + Sync;
    /// Whether the packed panel's chunks are split into even and odd halves (f16).
    const SPLIT_HALVES: bool;

    /// `R` tokens against one packed panel: `out[t][c] = Σ_i x[t][i] · w[j0 + c][i]` for
    /// `c < jn`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW, VL, F16C and, for [`Bf16Dot`], BF16; `out[t]` must be
    /// valid for `jn` f32 writes.
    unsafe fn tile<const R: usize>(
        x: [&[Self::X]; R],
        panel: &[u8],
        k: usize,
        out: [*mut f32; R],
        jn: usize,
    );
}

/// bf16 weights × bf16 activations on `vdpbf16ps`.
pub(super) struct Bf16Dot;

/// bf16 (`BF16`) or f16 weights × f32 activations on f32 FMAs.
pub(super) struct Wide<const BF16: bool>;

/// `y[t · rows + r] = Σ_i w[r][i] · x[t][i]` for 16-bit weight bits `w` (`rows × k`) and the
/// activations `x` (`tokens × k`), lengths checked by the caller.
///
/// # Safety
/// The CPU must have what [`PanelKernel::tile`] of `K` needs.
pub(super) unsafe fn gemm<K: PanelKernel>(
    w: &[u16],
    rows: usize,
    k: usize,
    x: &[K::X],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) {
    assert!(w.len() == rows * k && x.len() == tokens * k && y.len() == rows * tokens);
    if rows == 0 || tokens == 0 {
        return;
    }
    // SAFETY: the same memory as i8 (2 bytes per value), as the packer takes it.
    let wb = unsafe { core::slice::from_raw_parts(w.as_ptr().cast::<i8>(), 2 * w.len()) };
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes((rows * k * 2).saturating_mul(tokens));
    par.for_each_range(rows.div_ceil(NR), 1, |panels| {
        let mut panel = ScratchPool::global().take_uninit::<u8>(panel_len(2 * k));
        for p in panels {
            let (j0, jn) = (p * NR, NR.min(rows - p * NR));
            // SAFETY: AVX-512 F (caller).
            unsafe { int8_packed::pack_panel(wb, 2 * k, j0, jn, &mut panel) };
            if K::SPLIT_HALVES {
                // SAFETY: AVX-512 BW (caller).
                unsafe { split_halves(&mut panel) };
            }
            for t0 in (0..tokens).step_by(MR) {
                let tn = MR.min(tokens - t0);
                let token = |t: usize| &x[(t0 + t) * k..(t0 + t + 1) * k];
                let dst = |t: usize| out.at((t0 + t) * rows + j0);
                macro_rules! run {
                    ($r:literal) => {
                        // SAFETY: the CPU features (caller); rows j0..j0 + jn of the outputs of
                        // tokens t0..t0 + tn are inside y and owned by this task's panel.
                        unsafe {
                            K::tile::<$r>(
                                core::array::from_fn(token),
                                &panel,
                                k,
                                core::array::from_fn(dst),
                                jn,
                            )
                        }
                    };
                }
                match tn {
                    6 => run!(6),
                    5 => run!(5),
                    4 => run!(4),
                    3 => run!(3),
                    2 => run!(2),
                    _ => run!(1),
                }
            }
        }
    });
}

/// Reorders each 64-byte chunk of 16 (even, odd) f16 pairs into the 16 even values, then the
/// 16 odd ones.
///
/// # Safety
/// The CPU must have AVX-512 BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_halves(panel: &mut [u8]) {
    let idx = _mm512_set_epi16(
        31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, //
        30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0,
    );
    for chunk in panel.chunks_exact_mut(64) {
        // SAFETY: 64 bytes of the chunk.
        unsafe {
            let v = _mm512_loadu_si512(chunk.as_ptr().cast());
            _mm512_storeu_si512(chunk.as_mut_ptr().cast(), _mm512_permutexvar_epi16(idx, v));
        }
    }
}

/// Stores the tile's accumulators: `out[t][16 v..]`, masked to the `jn` valid rows.
///
/// # Safety
/// `out[t]` valid for `jn ≤ 64` f32 writes; AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store<const R: usize>(acc: &[[__m512; 4]; R], out: [*mut f32; R], jn: usize) {
    for (acc_t, &o) in acc.iter().zip(&out) {
        for (v, &sum) in acc_t.iter().enumerate() {
            let c0 = 16 * v;
            if c0 >= jn {
                break;
            }
            let cols = (jn - c0).min(16);
            let mask: __mmask16 = if cols == 16 {
                u16::MAX
            } else {
                (1u16 << cols) - 1
            };
            // SAFETY: o is valid for jn f32 (caller); the store is masked to cols of them.
            unsafe { _mm512_mask_storeu_ps(o.add(c0), mask, sum) };
        }
    }
}

impl PanelKernel for Bf16Dot {
    type X = u16;
    const SPLIT_HALVES: bool = false;

    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: [&[u16]; R],
        panel: &[u8],
        k: usize,
        out: [*mut f32; R],
        jn: usize,
    ) {
        // SAFETY: forwarded (trait contract).
        unsafe { dot_tile::<R>(x, panel, k, out, jn) }
    }
}

/// [`Bf16Dot`]'s microkernel.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn dot_tile<const R: usize>(
    x: [&[u16]; R],
    packed: &[u8],
    k: usize,
    out: [*mut f32; R],
    jn: usize,
) {
    let pairs = k.div_ceil(2);
    assert!(packed.len() >= pairs * NR * 4 && x.iter().all(|t| t.len() == k) && jn <= NR);
    let bh = |v: __m512i| -> __m512bh {
        // SAFETY: __m512i and __m512bh are both 512 bits of plain data.
        unsafe { core::mem::transmute::<__m512i, __m512bh>(v) }
    };
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    let mut step = |p: usize, xv: [__m512i; R]| {
        // SAFETY: pair p < pairs: 256 bytes at p · 256 inside the panel (asserted).
        let wv: [__m512bh; 4] = core::array::from_fn(|v| unsafe {
            bh(_mm512_loadu_si512(
                packed.as_ptr().add(p * NR * 4 + 64 * v).cast(),
            ))
        });
        for (acc_t, &xv) in acc.iter_mut().zip(&xv) {
            for (a, &wv) in acc_t.iter_mut().zip(&wv) {
                *a = _mm512_dpbf16_ps(*a, wv, bh(xv));
            }
        }
    };
    let full = k / 2;
    for p in 0..full {
        // SAFETY: values 2p, 2p + 1 < k of each token.
        let xv = x.map(|t| unsafe {
            _mm512_set1_epi32(t.as_ptr().add(2 * p).cast::<i32>().read_unaligned())
        });
        step(p, xv);
    }
    if full < pairs {
        // The odd last value, its partner zero.
        step(full, x.map(|t| _mm512_set1_epi32(i32::from(t[k - 1]))));
    }
    // SAFETY: out valid for jn (caller).
    unsafe { store(&acc, out, jn) };
}

impl<const BF16: bool> PanelKernel for Wide<BF16> {
    type X = f32;
    const SPLIT_HALVES: bool = !BF16;

    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: [&[f32]; R],
        panel: &[u8],
        k: usize,
        out: [*mut f32; R],
        jn: usize,
    ) {
        // SAFETY: forwarded (trait contract).
        unsafe { wide_tile::<R, BF16>(x, panel, k, out, jn) }
    }
}

/// [`Wide`]'s microkernel: per pair, the even values of the 64 rows widened and multiplied into
/// every token, then the odd ones (28 of the 32 registers live).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn wide_tile<const R: usize, const BF16: bool>(
    x: [&[f32]; R],
    packed: &[u8],
    k: usize,
    out: [*mut f32; R],
    jn: usize,
) {
    let pairs = k.div_ceil(2);
    assert!(packed.len() >= pairs * NR * 4 && x.iter().all(|t| t.len() == k) && jn <= NR);
    // The even (`ODD` false) or odd values of the 16 rows of chunk `v` of pair `p`, as f32.
    let widen = |p: usize, v: usize, odd: bool| -> __m512 {
        let at = p * NR * 4 + 64 * v;
        // SAFETY: 64 bytes at `at` inside the panel (pair p < pairs, asserted).
        unsafe {
            if BF16 {
                let d = _mm512_loadu_si512(packed.as_ptr().add(at).cast());
                _mm512_castsi512_ps(if odd {
                    _mm512_and_si512(d, _mm512_set1_epi32(0xFFFF_0000u32 as i32))
                } else {
                    _mm512_slli_epi32::<16>(d)
                })
            } else {
                let half = packed.as_ptr().add(at + if odd { 32 } else { 0 });
                _mm512_cvtph_ps(_mm256_loadu_si256(half.cast()))
            }
        }
    };
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    let mut half_step = |p: usize, odd: bool, i: usize| {
        let wv: [__m512; 4] = core::array::from_fn(|v| widen(p, v, odd));
        for (acc_t, t) in acc.iter_mut().zip(&x) {
            // SAFETY: i < k (callers).
            let xv = _mm512_set1_ps(unsafe { *t.get_unchecked(i) });
            for (a, &wv) in acc_t.iter_mut().zip(&wv) {
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
    };
    let full = k / 2;
    for p in 0..full {
        half_step(p, false, 2 * p);
        half_step(p, true, 2 * p + 1);
    }
    if full < pairs {
        // The odd last value: its partner (zero) is skipped.
        half_step(full, false, k - 1);
    }
    // SAFETY: out valid for jn (caller).
    unsafe { store(&acc, out, jn) };
}
