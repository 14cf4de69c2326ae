//! The bf16 GEMM for many tokens on AVX-512 BF16: the weight rows packed per panel so that one
//! `vdpbf16ps` serves 16 weight rows (output columns), with no horizontal sums.
//!
//! A bf16 row of `k` values is `k / 2` dwords of two values, exactly as an int8 row of `2k`
//! bytes is `k / 2` dwords of four, so the int8 GEMM's panel packer
//! (`int8::gemm::packed::pack_panel`) packs it unchanged: per panel of 64 rows, for each pair
//! `p` of `k` values, the two bf16 of row `c` at dword `p · 64 + c` (256 contiguous bytes per
//! pair, four zmm loads; rows past the end and the odd `k`-th partner are zero).
//!
//! Microkernel: up to 6 tokens × 64 rows in 24 f32 accumulators; per pair, the four packed
//! vectors are loaded once and each token's two bf16 are broadcast (`vpbroadcastd`) against
//! them: `4 R` `vdpbf16ps` for `4 + R` loads. Each accumulator lane is one output. Loop order:
//! panels outside (split over threads), tokens in sixes inside, the whole `k` per tile.
//!
//! Error: each output accumulates its `k` exact products in one f32 lane, two per instruction:
//! `|y − Σ w_i x_i| ≤ k · ε · Σ |w_i x_i|` (the usual GEMM bound), with `vdpbf16ps`'s treatment
//! of subnormal bf16 inputs as zero.

use core::arch::x86_64::*;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Par, ScratchPool};

use crate::int8::gemm::packed::{self as int8_packed, NR, panel_len};

/// Tokens per microkernel call.
const MR: usize = 6;

/// `y[t · rows + r] = Σ_i w[r][i] · x[t][i]` for bf16 bits `w` (`rows × k`) and `x`
/// (`tokens × k`), lengths checked by the caller.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and BF16.
pub(super) unsafe fn gemm(
    w: &[u16],
    rows: usize,
    k: usize,
    x: &[u16],
    tokens: usize,
    y: &mut [f32],
    par: Par,
) {
    assert!(w.len() == rows * k && x.len() == tokens * k && y.len() == rows * tokens);
    if rows == 0 || tokens == 0 {
        return;
    }
    // SAFETY: the same memory as i8 (2 bytes per bf16), as the packer takes it.
    let wb = unsafe { core::slice::from_raw_parts(w.as_ptr().cast::<i8>(), 2 * w.len()) };
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes((rows * k * 2).saturating_mul(tokens));
    par.for_each_range(rows.div_ceil(NR), 1, |panels| {
        let mut panel = ScratchPool::global().take_uninit::<u8>(panel_len(2 * k));
        for p in panels {
            let (j0, jn) = (p * NR, NR.min(rows - p * NR));
            // SAFETY: AVX-512 F (caller).
            unsafe { int8_packed::pack_panel(wb, 2 * k, j0, jn, &mut panel) };
            for t0 in (0..tokens).step_by(MR) {
                let tn = MR.min(tokens - t0);
                let token = |t: usize| &x[(t0 + t) * k..(t0 + t + 1) * k];
                let dst = |t: usize| out.at((t0 + t) * rows + j0);
                macro_rules! run {
                    ($r:literal) => {
                        // SAFETY: AVX-512 F/BW/BF16 (caller); rows j0..j0 + jn of the outputs of
                        // tokens t0..t0 + tn are inside y and owned by this task's panel.
                        unsafe {
                            tile::<$r>(
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

/// `R` tokens against one packed panel: `out[t][c] = Σ x[t] · w[j0 + c]` for `c < jn`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and BF16; `out[t]` must be valid for `jn` f32 writes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn tile<const R: usize>(
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
