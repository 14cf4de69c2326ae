//! The transposing copy of both packers: `runs` contiguous source runs of `len` floats become
//! the columns of a `len x width` row-major block.
//!
//! ```text
//! source (run r at start + r * stride)      out (len rows of width floats)
//!   run 0: s00 s01 s02 …                       row p: [ s0p s1p s2p … s(runs-1)p 0 … 0 ]
//!   run 1: s10 s11 s12 …
//! ```
//! Square blocks of 16 (AVX-512) or 8 (AVX2) runs by as many depth steps are transposed in
//! registers (one load and one store per vector, shuffles in between; masked loads and stores
//! at the ragged edges, so a 6-run B panel is vectorised too); the scalar level goes through
//! cache-sized scalar tiles.

use bitnet_simd::Level;

#[cfg(target_arch = "x86_64")]
use super::{transpose_avx2, transpose_avx512};

/// `count` runs of `len` floats in `data`, run `r` starting at `start + r * stride`.
#[derive(Clone, Copy)]
pub struct Runs<'a> {
    /// The storage the runs are in.
    pub data: &'a [f32],
    /// Index of the first element of run 0.
    pub start: usize,
    /// Distance between the starts of consecutive runs.
    pub stride: usize,
    /// Number of runs.
    pub count: usize,
    /// Length of every run.
    pub len: usize,
}

/// Transposes `runs` into the columns of the `len x width` row-major `out`, zero-filling
/// columns `count..width`.
///
/// # Panics
/// If a run ends past `data`, `out` is not `len * width` floats, or `count > width` (callers
/// pass lengths of a checked view; these are internal invariants).
pub fn transpose_runs(level: Level, runs: Runs<'_>, width: usize, out: &mut [f32]) {
    let Runs {
        data,
        start,
        stride,
        count: runs,
        len,
    } = runs;
    assert!(runs <= width && out.len() == len * width);
    if runs < width {
        out.fill(0.0);
    }
    if runs == 0 || len == 0 {
        return;
    }
    assert!(
        start + (runs - 1) * stride + len <= data.len(),
        "run past the data"
    );
    // Blocks of `block` runs by `block` depth steps in registers (masked at the ragged edges);
    // levels without a register transpose use scalar cache tiles.
    let block = match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512(_) => 16,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2(_) => 8,
        _ => return transpose_tiles(data, start, stride, runs, len, width, out),
    };
    for r0 in (0..runs).step_by(block) {
        let rows = block.min(runs - r0);
        for p0 in (0..len).step_by(block) {
            let cols = block.min(len - p0);
            let src = data[start + r0 * stride + p0..].as_ptr();
            let dst = out[p0 * width + r0..].as_mut_ptr();
            let full = rows == block && cols == block;
            match level {
                // Block contract (every arm): the token proves the level's features; source rows
                // r0..r0+rows (< runs) have `cols` floats from p0 (p0 + cols ≤ len) inside
                // `data` (checked above), destination rows p0..p0+cols (≤ len) have `rows`
                // floats from column r0 (r0 + rows ≤ runs ≤ width) inside `out`; the two
                // slices are distinct borrows.
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the block contract above; with `width == 6` the 16 rows of 6 floats
                // from `dst` are 96 contiguous floats.
                Level::Avx512(_) if rows == 6 && width == 6 && cols == block => unsafe {
                    transpose_avx512::transpose_6x16(src, stride, dst)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the block contract above.
                Level::Avx512(_) if full => unsafe {
                    transpose_avx512::transpose_16x16(src, stride, dst, width)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the block contract above.
                Level::Avx512(_) => unsafe {
                    transpose_avx512::transpose_masked(src, stride, rows, cols, dst, width)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the block contract above.
                Level::Avx2(_) if full => unsafe {
                    transpose_avx2::transpose_8x8(src, stride, dst, width)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the block contract above.
                Level::Avx2(_) => unsafe {
                    transpose_avx2::transpose_masked(src, stride, rows, cols, dst, width)
                },
                _ => unreachable!("levels without a register transpose returned above"),
            }
        }
    }
}

/// Scalar transpose in tiles of 8 runs by one cache line of depth: each source line is loaded
/// into L1 once and used whole before it can be evicted (runs a power-of-two-ish stride apart
/// fall into a few L1 sets, so a tile reads no more lines than L1 has ways).
fn transpose_tiles(
    data: &[f32],
    start: usize,
    stride: usize,
    runs: usize,
    len: usize,
    width: usize,
    out: &mut [f32],
) {
    const ROWS: usize = 8;
    const DEPTH: usize = 16;
    for r0 in (0..runs).step_by(ROWS) {
        let r1 = (r0 + ROWS).min(runs);
        for p0 in (0..len).step_by(DEPTH) {
            let p1 = (p0 + DEPTH).min(len);
            let out_rows = out[p0 * width..p1 * width].chunks_exact_mut(width);
            for (p, row) in (p0..p1).zip(out_rows) {
                for (r, d) in (r0..r1).zip(&mut row[r0..r1]) {
                    *d = data[start + r * stride + p];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitnet_simd::isa::testable_isas;

    fn scalar(
        data: &[f32],
        start: usize,
        stride: usize,
        runs: usize,
        len: usize,
        width: usize,
    ) -> Vec<f32> {
        let mut out = vec![0.0; len * width];
        for r in 0..runs {
            for p in 0..len {
                out[p * width + r] = data[start + r * stride + p];
            }
        }
        out
    }

    #[test]
    fn every_level_matches_the_plain_transpose_on_ragged_shapes() {
        for isa in testable_isas().expect("levels") {
            let level = Level::of(isa).expect("testable level");
            for &(runs, len, width, extra) in &[
                (0, 5, 3, 0),
                (1, 1, 1, 0),
                (5, 0, 6, 1),
                (6, 37, 6, 3),
                (6, 64, 6, 0),
                (8, 8, 8, 0),
                (16, 16, 16, 0),
                (17, 33, 64, 5),
                (64, 100, 64, 11),
                (40, 15, 64, 2),
            ] {
                let stride = len + extra;
                let start = 3;
                let data: Vec<f32> = (0..start + runs * stride + 1).map(|i| i as f32).collect();
                let mut out = vec![f32::NAN; len * width];
                let source = Runs {
                    data: &data,
                    start,
                    stride,
                    count: runs,
                    len,
                };
                transpose_runs(level, source, width, &mut out);
                assert_eq!(
                    out,
                    scalar(&data, start, stride, runs, len, width),
                    "{isa:?} runs {runs} len {len} width {width}"
                );
            }
        }
    }
}
