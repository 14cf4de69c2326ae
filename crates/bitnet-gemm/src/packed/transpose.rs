//! The transposing copy of both packers: `runs` contiguous source runs of `len` floats become
//! the columns of a `len x width` row-major block.
//!
//! ```text
//! source (run r at start + r * stride)      out (len rows of width floats)
//!   run 0: s00 s01 s02 …                       row p: [ s0p s1p s2p … s(runs-1)p 0 … 0 ]
//!   run 1: s10 s11 s12 …
//! ```
//! Square blocks of 16 (AVX-512) or 8 (AVX2) runs by as many depth steps are transposed in
//! registers (one load and one store per vector, shuffles in between); the ragged rest goes
//! through cache-sized scalar tiles.

use bitnet_simd::Level;

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
    // The register-transposed part: whole blocks of `block` runs by `block` depth steps.
    let block = match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512(_) => 16,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2(_) => 8,
        _ => 0,
    };
    let (simd_runs, simd_len) = match block {
        0 => (0, 0),
        b => (runs / b * b, len / b * b),
    };
    for r0 in (0..simd_runs).step_by(block.max(1)) {
        for p0 in (0..simd_len).step_by(block) {
            let src = start + r0 * stride + p0;
            let dst = p0 * width + r0;
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the token proves AVX-512F; the 16 runs of 16 floats from `src` lie
                // inside `data` (checked above: r0 + 15 < runs, p0 + 15 < len), and the 16 rows
                // of 16 floats from `dst` lie inside `out` (p0 + 15 < len, r0 + 15 < width).
                Level::Avx512(_) => unsafe {
                    super::transpose_avx512::transpose_16x16(
                        data.as_ptr().add(src),
                        stride,
                        out.as_mut_ptr().add(dst),
                        width,
                    )
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above with 8 x 8 and AVX (implied by the AVX2 token).
                Level::Avx2(_) => unsafe {
                    super::transpose_avx2::transpose_8x8(
                        data.as_ptr().add(src),
                        stride,
                        out.as_mut_ptr().add(dst),
                        width,
                    )
                },
                _ => unreachable!("block is 0 on other levels"),
            }
        }
    }
    // The rest: runs past the register blocks over the whole depth, then the depth tail of the
    // register-blocked runs.
    transpose_tiles(data, start, stride, simd_runs..runs, 0..len, width, out);
    transpose_tiles(data, start, stride, 0..simd_runs, simd_len..len, width, out);
}

/// Scalar transpose of `runs x depth` in tiles of 8 runs by one cache line of depth: each source
/// line is loaded into L1 once and used whole before it can be evicted (runs a power-of-two-ish
/// stride apart fall into a few L1 sets, so a tile reads no more lines than L1 has ways).
fn transpose_tiles(
    data: &[f32],
    start: usize,
    stride: usize,
    runs: std::ops::Range<usize>,
    depth: std::ops::Range<usize>,
    width: usize,
    out: &mut [f32],
) {
    const ROWS: usize = 8;
    const DEPTH: usize = 16;
    for r0 in runs.clone().step_by(ROWS) {
        let r1 = (r0 + ROWS).min(runs.end);
        for p0 in depth.clone().step_by(DEPTH) {
            for p in p0..(p0 + DEPTH).min(depth.end) {
                for (r, d) in out[p * width + r0..p * width + r1].iter_mut().enumerate() {
                    *d = data[start + (r0 + r) * stride + p];
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
