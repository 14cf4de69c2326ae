//! The int8 GEMM for many A rows on AVX-512 VNNI: B packed per panel so that one `vpdpbusd`
//! serves 16 output columns, and no horizontal sums at all.
//!
//! Packed panel layout (per [`NR`] = 64 B rows, i.e. output columns `j0..j0 + 64`): for each
//! group of four `k` values `p` (a *quad*), the four bytes of column `c` at
//! `packed[(p · 64 + c) · 4..][..4]`: 256 contiguous bytes per quad, four zmm loads. Columns past
//! the end and `k` values past `k` are zero, so a zero B byte meets whatever A holds there.
//!
//! Microkernel: `R ≤ 6` A rows × 64 columns in 24 zmm accumulators; per quad, the four B
//! vectors are loaded once and each A row's four bytes are broadcast (`vpbroadcastd`) against
//! them: `4 R` `vpdpbusd` for `4 + R` loads. Each accumulator lane is one output, so the tile is
//! stored with one (masked) store per 16 columns. Loop order: panels outside (split over
//! threads), A rows in sixes inside, the whole `k` per tile.

use core::arch::x86_64::*;

/// Output columns (B rows) per packed panel.
pub const NR: usize = 64;
/// A rows per microkernel call.
pub const MR: usize = 6;

/// Bytes of a packed panel for `k`.
pub fn panel_len(k: usize) -> usize {
    k.div_ceil(4) * NR * 4
}

/// Packs B rows `j0..j0 + jn` (`jn ≤ NR`, rows of `k` bytes in `b`) into `out`
/// ([`panel_len`] bytes; layout in the module docs): whole 16-row × 16-quad blocks by a 16 × 16
/// transpose of 32-bit words in registers, the ragged rest (columns past `jn`, the last quads)
/// word by word.
///
/// # Safety
/// The CPU must have AVX-512 F.
#[target_feature(enable = "avx512f")]
pub unsafe fn pack_panel(b: &[i8], k: usize, j0: usize, jn: usize, out: &mut [u8]) {
    assert!(jn <= NR && out.len() == panel_len(k) && b.len() >= (j0 + jn) * k);
    let (quads, full) = (k.div_ceil(4), k / 4);
    let slot = |p: usize, c: usize| (p * NR + c) * 4;
    let (c_blocks, p_blocks) = (jn / 16, full / 16);
    for cb in 0..c_blocks {
        for pb in 0..p_blocks {
            let rows: [__m512i; 16] = core::array::from_fn(|i| {
                let at = (j0 + 16 * cb + i) * k + 64 * pb;
                // SAFETY: 64 bytes of row j0 + 16cb + i from 64pb: 64pb + 64 <= 4 full <= k.
                unsafe { _mm512_loadu_si512(b.as_ptr().add(at).cast()) }
            });
            for (q, v) in bitnet_simd::transpose::transpose_16x16_x32(rows)
                .into_iter()
                .enumerate()
            {
                let at = slot(16 * pb + q, 16 * cb);
                assert!(at + 64 <= out.len());
                // SAFETY: 64 bytes inside the panel (checked).
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at).cast(), v) };
            }
        }
    }
    // The rest: columns past the transposed blocks, and quads past them for those blocks.
    for c in 0..NR {
        let first = if c < 16 * c_blocks { 16 * p_blocks } else { 0 };
        for p in first..quads {
            let mut q = [0u8; 4];
            if c < jn {
                let row = &b[(j0 + c) * k..(j0 + c + 1) * k];
                for (d, &v) in q.iter_mut().zip(&row[4 * p..]) {
                    *d = v as u8;
                }
            }
            out[slot(p, c)..slot(p, c) + 4].copy_from_slice(&q);
        }
    }
}

/// `128 Σ_k b[c][k]` of each of the panel's [`NR`] columns (zero for padding columns), summed
/// from the packed panel by `vpdpbusd` of ones with its vectors: each i32 lane is one column.
///
/// # Safety
/// The CPU must have AVX-512 F and VNNI.
#[target_feature(enable = "avx512f,avx512vnni")]
pub unsafe fn bias_corrections(packed: &[u8], k: usize) -> [i32; NR] {
    let quads = k.div_ceil(4);
    assert!(packed.len() >= quads * NR * 4);
    let ones = _mm512_set1_epi8(1);
    let mut acc = [_mm512_setzero_si512(); 4];
    for p in 0..quads {
        for (v, s) in acc.iter_mut().enumerate() {
            // SAFETY: 64 bytes of quad p < quads inside the panel (asserted).
            let bv = unsafe { _mm512_loadu_si512(packed.as_ptr().add(p * NR * 4 + 64 * v).cast()) };
            *s = _mm512_dpbusd_epi32(*s, ones, bv);
        }
    }
    let mut out = [0i32; NR];
    for (v, s) in acc.iter().enumerate() {
        // SAFETY: 16 i32 into out[16v..16v + 16].
        unsafe {
            _mm512_storeu_si512(
                out.as_mut_ptr().add(16 * v).cast(),
                _mm512_slli_epi32::<7>(*s),
            )
        };
    }
    out
}

/// `C[i0 + r][j0 + c] = Σ_k a[r][k] · b[j0 + c][k] − corr[c]` for `r < R`, `c < jn`, from the
/// packed panel; `a` holds the `R` rows (u8, `k` bytes each), `corr` is `128 Σ b` per column
/// for biased i8 A (or empty), `c_rows[r]` the output row `i0 + r` from column `j0`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VNNI; `c_rows[r]` must be valid for `jn` i32 writes.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn tile<const R: usize>(
    a: [&[u8]; R],
    packed: &[u8],
    k: usize,
    corr: &[i32],
    c_rows: [*mut i32; R],
    jn: usize,
) {
    let quads = k.div_ceil(4);
    assert!(packed.len() >= quads * NR * 4 && a.iter().all(|r| r.len() >= k) && jn <= NR);
    let full = k / 4;
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let mut step = |p: usize, av: [__m512i; R]| {
        // SAFETY: quad p < quads: 256 bytes at p · 256 inside the panel (asserted).
        let bv: [__m512i; 4] = core::array::from_fn(|v| unsafe {
            _mm512_loadu_si512(packed.as_ptr().add(p * NR * 4 + 64 * v).cast())
        });
        for (acc_r, &av) in acc.iter_mut().zip(&av) {
            for (c, &bv) in acc_r.iter_mut().zip(&bv) {
                *c = _mm512_dpbusd_epi32(*c, av, bv);
            }
        }
    };
    for p in 0..full {
        // SAFETY: bytes 4p..4p + 4 <= k of each row.
        let av = a.map(|r| unsafe {
            _mm512_set1_epi32(r.as_ptr().add(4 * p).cast::<i32>().read_unaligned())
        });
        step(p, av);
    }
    if full < quads {
        let av = a.map(|r| {
            let mut q = [0u8; 4];
            q[..k - 4 * full].copy_from_slice(&r[4 * full..k]);
            _mm512_set1_epi32(i32::from_le_bytes(q))
        });
        step(full, av);
    }
    for (acc_r, &out) in acc.iter().zip(&c_rows) {
        for (v, &sum) in acc_r.iter().enumerate() {
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
            let sum = if corr.is_empty() {
                sum
            } else {
                // SAFETY: corr holds jn values (caller); the load is masked to cols of them.
                let cv = unsafe { _mm512_maskz_loadu_epi32(mask, corr.as_ptr().add(c0).cast()) };
                _mm512_sub_epi32(sum, cv)
            };
            // SAFETY: out is valid for jn i32 (caller); the store is masked to cols of them.
            unsafe { _mm512_mask_storeu_epi32(out.add(c0).cast(), mask, sum) };
        }
    }
}
