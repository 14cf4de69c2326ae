//! The register-blocked microkernel, written once over `pulp` and instantiated per level with
//! the tile that fits its registers:
//!
//! | level | lanes | MR (rows) | NR (cols) | accumulators |
//! |---|---:|---:|---:|---|
//! | AVX-512 | 16 | 64 = 4 zmm | 6 | 24 zmm, + 4 for A, + 1 broadcast of B (of 32) |
//! | AVX2+FMA | 8 | 16 = 2 ymm | 6 | 12 ymm, + 2 + 1 (of 16) |
//! | NEON | 4 | 8 = 2 q | 8 | 16 q (of 32); unverified |
//! | scalar | 1 | 4 | 4 | 16 scalars |
//!
//! ```text
//!            B panel: NR values per depth step p
//!            b0  b1  …  b(NR-1)
//!   A panel ┌───┬───┬───┬───┐
//!   MV vecs │acc│acc│ … │acc│   acc[j][v] += A[v-th vector of step p] * splat(b_j)
//!   per p   └───┴───┴───┴───┘
//! ```
//! The AVX-512 tile was chosen by measurement (ad-hoc timing of 512..2048 squares on one
//! Zen 4 core): 2 x 12 (12 broadcasts per 24 FMAs) ran at 93-97 GFLOP/s, 3 x 8 at 98-104 and
//! 4 x 6 (6 broadcasts) at 99-106, within run-to-run noise of about 5 %.
//!
//! Loop order: depth `p` outermost (one A load of MV vectors and NR broadcasts of B per step),
//! the NR x MV fused multiply-adds inside, fully unrolled (const generics) so the accumulators
//! stay in registers. C is touched only after the depth loop.

use pulp::Simd;

/// The accumulator tile of one microkernel call: `acc[j][v]` holds rows `v*lanes..(v+1)*lanes`
/// of column `j`.
pub type Tile<S, const MV: usize, const NR: usize> = [[<S as Simd>::f32s; MV]; NR];

/// Multiplies a packed A panel (`kc` steps of `MV` vectors) by a packed B panel (`kc` steps of
/// `NR` floats) into a fresh accumulator tile.
#[inline(always)]
pub fn microkernel<S: Simd, const MV: usize, const NR: usize>(
    simd: S,
    a_panel: &[S::f32s],
    b_panel: &[f32],
) -> Tile<S, MV, NR> {
    let mut acc = [[simd.splat_f32s(0.0); MV]; NR];
    for (a, b) in a_panel.chunks_exact(MV).zip(b_panel.chunks_exact(NR)) {
        for j in 0..NR {
            let bj = simd.splat_f32s(b[j]);
            for v in 0..MV {
                acc[j][v] = simd.mul_add_e_f32s(a[v], bj, acc[j][v]);
            }
        }
    }
    acc
}

/// Where a tile goes: `C[i, j]` at `ptr + i * rs + j * cs`, `rows x cols` of it valid.
pub struct TileDst {
    /// Address of `C[0, 0]` of the tile.
    pub ptr: *mut f32,
    /// Row stride of C.
    pub rs: usize,
    /// Column stride of C.
    pub cs: usize,
    /// Valid rows (≤ MR).
    pub rows: usize,
    /// Valid columns (≤ NR).
    pub cols: usize,
}

/// `C = alpha * acc + beta * C` on the valid part of the tile; with `beta == 0`, C is not read.
///
/// # Safety
/// Every `C[i, j]` with `i < dst.rows`, `j < dst.cols` must be valid for reads and writes and not
/// accessed by anyone else during the call.
#[inline(always)]
pub unsafe fn store_tile<S: Simd, const MV: usize, const NR: usize>(
    simd: S,
    acc: &Tile<S, MV, NR>,
    alpha: f32,
    beta: f32,
    dst: &TileDst,
) {
    let lanes = size_of::<S::f32s>() / size_of::<f32>();
    let mr = MV * lanes;
    let valpha = simd.splat_f32s(alpha);
    if dst.rs == 1 && dst.rows == mr {
        // Column-contiguous C: whole vectors per column.
        let vbeta = simd.splat_f32s(beta);
        for (j, col_acc) in acc.iter().enumerate().take(dst.cols) {
            // SAFETY: column j of the tile is `mr` contiguous valid elements (caller's contract).
            let col = unsafe { std::slice::from_raw_parts_mut(dst.ptr.add(j * dst.cs), mr) };
            let (vecs, _) = S::as_mut_simd_f32s(col);
            for (c, &a) in vecs.iter_mut().zip(col_acc) {
                *c = if beta == 0.0 {
                    simd.mul_f32s(valpha, a)
                } else {
                    simd.mul_add_e_f32s(valpha, a, simd.mul_f32s(vbeta, *c))
                };
            }
        }
        return;
    }
    // Any other layout or a clipped tile: spill the accumulators and scatter.
    let mut spill = [[0f32; 64]; NR];
    for (j, col_acc) in acc.iter().enumerate() {
        let (vecs, _) = S::as_mut_simd_f32s(&mut spill[j][..mr]);
        vecs.copy_from_slice(col_acc);
    }
    for (j, spilled) in spill.iter().enumerate().take(dst.cols) {
        for (i, &t) in spilled.iter().enumerate().take(dst.rows) {
            // SAFETY: (i, j) is inside the valid part of the tile (caller's contract).
            unsafe {
                let c = dst.ptr.add(i * dst.rs + j * dst.cs);
                *c = if beta == 0.0 {
                    alpha * t
                } else {
                    alpha * t + beta * *c
                };
            }
        }
    }
}
