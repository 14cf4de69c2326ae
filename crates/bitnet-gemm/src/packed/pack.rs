//! Packing A and B into the panel layouts the microkernel streams.
//!
//! ```text
//! packed A block (rows ic..ic+mc, depth pc..pc+kc), one panel per MR rows:
//!   panel r: [ A[r*MR+0, p], A[r*MR+1, p], …, A[r*MR+MR-1, p] ]  for p = 0..kc  (kc * MR floats)
//! packed B block (depth pc..pc+kc, columns jc..jc+nc), one panel per NR columns:
//!   panel s: [ B[p, s*NR+0], B[p, s*NR+1], …, B[p, s*NR+NR-1] ]  for p = 0..kc  (kc * NR floats)
//! ```
//! Rows or columns past the edge of the matrix are packed as zeros, so the microkernel always
//! runs a full MR x NR tile and only the store is clipped.

use bitnet_simd::Level;
use pulp::Simd;

use super::transpose::{Runs, transpose_runs};
use crate::view::MatRef;

/// Packs panel `panel` of MR = `MV` vectors of rows of `a` (an `m x kc` view) into `out`
/// (`kc * MR` floats).
#[inline(always)]
pub fn pack_a_panel<S: Simd, const MV: usize>(
    level: Level,
    a: &MatRef<'_>,
    panel: usize,
    out: &mut [f32],
) {
    let mr_tile = MV * size_of::<S::f32s>() / size_of::<f32>();
    let kc = a.cols();
    let row0 = panel * mr_tile;
    let rows = a.rows().saturating_sub(row0).min(mr_tile);
    debug_assert_eq!(out.len(), kc * mr_tile);
    if a.row_stride() == 1 && rows == mr_tile {
        // Column-major A: each depth step is one contiguous run of MR rows, copied as MV
        // vectors (a fixed-size copy: a `copy_from_slice` of runtime length calls memmove once
        // per depth step).
        let data = a.data();
        let (out, _) = S::as_mut_simd_f32s(out);
        for (p, dst) in out.chunks_exact_mut(MV).enumerate() {
            let start = row0 + p * a.col_stride();
            let (src, _) = S::as_simd_f32s(&data[start..start + mr_tile]);
            let src: &[S::f32s; MV] = src.try_into().expect("MV vectors");
            let dst: &mut [S::f32s; MV] = dst.try_into().expect("MV vectors");
            *dst = *src;
        }
        return;
    }
    if a.col_stride() == 1 {
        // Row-major A: each row is a contiguous run over the depth; transpose it into place.
        let runs = Runs {
            data: a.data(),
            start: row0 * a.row_stride(),
            stride: a.row_stride(),
            count: rows,
            len: kc,
        };
        transpose_runs(level, runs, mr_tile, out);
        return;
    }
    for (p, dst) in out.chunks_exact_mut(mr_tile).enumerate() {
        for (r, d) in dst.iter_mut().enumerate() {
            *d = if r < rows { a.at(row0 + r, p) } else { 0.0 };
        }
    }
}

/// Packs panel `panel` of NR columns of `b` (a `kc x n` view) into `out` (`kc * nr_tile` floats).
pub fn pack_b_panel(level: Level, b: &MatRef<'_>, panel: usize, nr_tile: usize, out: &mut [f32]) {
    let col0 = panel * nr_tile;
    let cols = b.cols().saturating_sub(col0).min(nr_tile);
    debug_assert_eq!(out.len(), b.rows() * nr_tile);
    if b.col_stride() == 1 && cols == nr_tile {
        // Row-major B: each depth step is one contiguous run of NR columns.
        let data = b.data();
        for (p, dst) in out.chunks_exact_mut(nr_tile).enumerate() {
            let start = p * b.row_stride() + col0;
            dst.copy_from_slice(&data[start..start + nr_tile]);
        }
        return;
    }
    if b.row_stride() == 1 {
        // Column-major B: each column is a contiguous run over the depth.
        let kc = b.rows();
        let runs = Runs {
            data: b.data(),
            start: col0 * b.col_stride(),
            stride: b.col_stride(),
            count: cols,
            len: kc,
        };
        transpose_runs(level, runs, nr_tile, out);
        return;
    }
    for (p, dst) in out.chunks_exact_mut(nr_tile).enumerate() {
        for (c, d) in dst.iter_mut().enumerate() {
            *d = if c < cols { b.at(p, col0 + c) } else { 0.0 };
        }
    }
}
