//! A lookup-table ternary kernel in the T-MAC / bitnet.cpp TL1 style: weights in pairs, each
//! pair a 4-bit index into a 16-entry table of that activation pair's nine possible sums,
//! looked up for 64 rows at once with byte shuffles (`vpshufb`).
//!
//! Layout (`LUT2`, [`LutTernary`], repacked from I2_S; `docs/FORMATS.md`): rows in tiles of
//! [`TILE_ROWS`] (the last padded with zero weights); within a tile, weight group `g` (weights
//! `4g..4g+4` of every row) is 64 bytes, byte `r` = `idx(w[4g], w[4g+1]) | idx(w[4g+2],
//! w[4g+3]) << 4` for row `r` of the tile, `idx(w0, w1) = 3 (w0 + 1) + (w1 + 1)` (0..9; 4 is
//! the pair of zeros). Two bits per weight, as I2_S.
//!
//! Tables ([`build_tables`], per token, once per call): for activation pair `j`
//! (`q[2j], q[2j+1]`), `T_j[c] = (c / 3 − 1) q[2j] + (c % 3 − 1) q[2j+1]` for `c < 9` and 0 for
//! `c ≥ 9`, stored as 16 low bytes then 16 high bytes of the i16 (`|T| ≤ 256`): 32 bytes per
//! pair. On AVX2 (and scalar) a lookup of both bytes with the same indices (`vpshufb`),
//! interleaved (`vpunpck*bw`), is the exact i16 `T`. On AVX-512 the 16 i16 entries are written
//! twice ([`build_tables_i16`], 64 bytes per pair) and `vpermw` looks them up with the index
//! vector's own i16 lanes shifted by 0, 4, 8 or 12 bits (it reads 5 bits; the doubling makes the
//! fifth irrelevant): one cross-lane permute per 32 lookups instead of four shuffles per 64. i16
//! sums are widened to i32 every [`FLUSH_GROUPS`] groups (126 pairs: at most 126 · 256 = 32256 in
//! magnitude).
//!
//! The result `Σ w · q` is the source format's integer, so the float steps can be the
//! reference's and the output is bit-identical to [`crate::reference`]: I2_S's
//! `(Σ code·q − Σq) / a · s` once per row; for TQ2_0 and TQ1_0 (repacked too, their block scales
//! kept) a lookup pass per 256-block and `sumf += f32(block) · (d_x · d_w)` in the block order.
//!
//! Measured against the multiply-based kernels in `docs/BENCHMARKS.md` (`ternary/*`, columns
//! `lut`, `lut_avx2`, `native_i2_s`, `native_i2_s_avx2`). On the Zen 4 of this project's runs
//! (2560 × 2560, one thread): the `vpermw` kernel beats the `vpmaddubsw` kernel that an AVX-512
//! CPU without VNNI runs (about 212 against 120-188 GOPS) and stays below `vpdpbusd` (195-260 for
//! a GEMV, about 340 at 8 tokens); on AVX2 the two are level.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{AlignedVec, Level, Par, ScratchPool};

use crate::error::{QuantError, check_len, elements};
use crate::formats::{TernaryFormat, TernaryWeights};
use crate::reference::{self, Activations};

/// Rows per tile (one zmm of index bytes).
pub const TILE_ROWS: usize = 64;

/// Bytes of tables a GEMM keeps for a chunk of tokens (L2-resident while every tile uses them).
const TABLE_BYTES: usize = 256 << 10;

/// Weight groups (4 weights, 2 lookups) between widenings of the i16 sums.
const FLUSH_GROUPS: usize = 63;

/// The index of the weight pair `(w0, w1)` given as codes `c = w + 1`.
fn pair_index(c0: u8, c1: u8) -> u8 {
    3 * c0 + c1
}

/// A ternary matrix in the `LUT2` layout (module docs), with its source's scales.
#[derive(Clone, Debug)]
pub struct LutTernary {
    source: TernaryFormat,
    rows: usize,
    k: usize,
    codes: AlignedVec<u8>,
    /// I2_S: the tensor scale; TQ2_0 / TQ1_0: one per (row, 256-block), at `row · k/256 + b`.
    scales: Vec<f32>,
}

impl LutTernary {
    /// Repacks a validated tensor of any public ternary format (`k` is a multiple of 128, so of
    /// 4). TQ2_0 and TQ1_0 keep their block scales (as f32, exactly) and pair with Q8_K
    /// activations; I2_S keeps its tensor scale and pairs with int8 activations.
    pub fn repack(w: &TernaryWeights<'_>) -> Result<LutTernary, QuantError> {
        let (rows, k, source) = (w.rows(), w.k(), w.format());
        let groups = k / 4;
        let tiles = rows.div_ceil(TILE_ROWS);
        // Padding rows hold the pair of zeros (index 4) in both nibbles.
        let mut codes = AlignedVec::from_slice(&vec![0x44u8; tiles * groups * 64]);
        let mut scales = match source {
            TernaryFormat::I2s => vec![w.tensor_scale().expect("I2_S")],
            _ => Vec::with_capacity(rows * (k / 256)),
        };
        for r in 0..rows {
            let (c, block_scales) = w.row_codes(r);
            let (tile, lane) = (r / TILE_ROWS, r % TILE_ROWS);
            for g in 0..groups {
                let lo = pair_index(c[4 * g], c[4 * g + 1]);
                let hi = pair_index(c[4 * g + 2], c[4 * g + 3]);
                codes[(tile * groups + g) * 64 + lane] = lo | hi << 4;
            }
            if source != TernaryFormat::I2s {
                scales.extend_from_slice(&block_scales);
            }
        }
        Ok(LutTernary {
            source,
            rows,
            k,
            codes,
            scales,
        })
    }

    /// The public format this was repacked from (it decides the activations it pairs with).
    pub fn source(&self) -> TernaryFormat {
        self.source
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Weights per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The tensor scale (I2_S source).
    pub fn tensor_scale(&self) -> Option<f32> {
        (self.source == TernaryFormat::I2s).then(|| self.scales[0])
    }

    /// The scales of row `r`'s 256-blocks (TQ2_0 / TQ1_0 source; empty for I2_S).
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn block_scales(&self, r: usize) -> &[f32] {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        match self.source {
            TernaryFormat::I2s => &[],
            _ => &self.scales[r * (self.k / 256)..(r + 1) * (self.k / 256)],
        }
    }

    /// Bytes of indices (what a GEMV reads).
    pub fn code_bytes(&self) -> usize {
        self.codes.len()
    }

    /// Tile `t`'s `k / 4` groups of 64 index bytes (rows `64t..64t + 64`).
    ///
    /// # Panics
    /// If `t >= rows.div_ceil(64)`.
    pub fn tile(&self, t: usize) -> &[u8] {
        let n = self.k / 4 * 64;
        &self.codes[t * n..(t + 1) * n]
    }
}

/// Writes the tables of one token's `k` activations (`k` a multiple of 4) into `out`
/// (`k / 2 × 32` bytes; module docs).
pub fn build_tables(q: &[i8], out: &mut [u8]) {
    debug_assert!(q.len().is_multiple_of(2) && out.len() == q.len() / 2 * 32);
    // The pair of codes (c / 3, c % 3) − 1 of each index.
    const W0: [i16; 16] = [-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const W1: [i16; 16] = [-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    for (pair, table) in q.chunks_exact(2).zip(out.chunks_exact_mut(32)) {
        let (a0, a1) = (i16::from(pair[0]), i16::from(pair[1]));
        let (lo, hi) = table.split_at_mut(16);
        for c in 0..16 {
            let [l, h] = (W0[c] * a0 + W1[c] * a1).to_le_bytes();
            lo[c] = l;
            hi[c] = h;
        }
    }
}

/// The tables of the AVX-512 kernel: per pair, the 16 i16 entries of [`build_tables`] written
/// twice (32 i16, 64 bytes), so that `vpermw` may index them with 5 bits of which the top one is
/// junk. `out` is `k / 2 × 64` bytes.
pub fn build_tables_i16(q: &[i8], out: &mut [u8]) {
    debug_assert!(q.len().is_multiple_of(2) && out.len() == q.len() / 2 * 64);
    let mut pair = [0u8; 32];
    for (p, table) in q.chunks_exact(2).zip(out.chunks_exact_mut(64)) {
        build_tables(p, &mut pair);
        for c in 0..16 {
            let entry = [pair[c], pair[16 + c]];
            table[2 * c..2 * c + 2].copy_from_slice(&entry);
            table[32 + 2 * c..32 + 2 * c + 2].copy_from_slice(&entry);
        }
    }
}

/// The instruction family a LUT call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LutPath {
    /// `vpermw` zmm on doubled i16 tables (AVX-512 BW).
    Avx512,
    /// `vpshufb` ymm.
    Avx2,
    /// Table lookups in portable Rust.
    Scalar,
}

impl LutPath {
    /// Every path, fastest first.
    pub const ALL: [LutPath; 3] = [LutPath::Avx512, LutPath::Avx2, LutPath::Scalar];

    /// The fastest path the active ceiling allows.
    pub fn best() -> Result<LutPath, QuantError> {
        for path in LutPath::ALL {
            if path.available()? {
                return Ok(path);
            }
        }
        Ok(LutPath::Scalar)
    }

    /// Whether this CPU, under the active ceiling, may run the path.
    pub fn available(self) -> Result<bool, QuantError> {
        let level = Level::active()?;
        Ok(match self {
            LutPath::Avx512 => cfg!(target_arch = "x86_64") && matches!(level, Level::Avx512(_)),
            LutPath::Avx2 => {
                cfg!(target_arch = "x86_64") && matches!(level, Level::Avx2(_) | Level::Avx512(_))
            }
            LutPath::Scalar => true,
        })
    }
}

/// `y[t * rows + r] = W[r] · x[t]`, bit-identical to [`crate::reference`] on the source tensor
/// (int8 activations for an I2_S source, Q8_K for TQ2_0 / TQ1_0), on the fastest path and every
/// core `par` allows.
pub fn gemm(w: &LutTernary, x: Activations<'_>, y: &mut [f32], par: Par) -> Result<(), QuantError> {
    gemm_on(LutPath::best()?, w, x, y, par)
}

/// [`gemm`] on the given path; an error where it may not run.
pub fn gemm_on(
    path: LutPath,
    w: &LutTernary,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    if !path.available()? {
        return Err(QuantError::Invalid {
            what: "kernel path",
            reason: format!(
                "{path:?} needs CPU features this machine or the ISA ceiling does not allow"
            ),
        });
    }
    let pairs = matches!(
        (w.source, x),
        (TernaryFormat::I2s, Activations::Int8(_))
            | (
                TernaryFormat::Tq2_0 | TernaryFormat::Tq1_0,
                Activations::Q8K(_)
            )
    );
    if !pairs {
        return Err(QuantError::Invalid {
            what: "activations",
            reason: format!(
                "weights repacked from {} do not pair with these activations",
                w.source
            ),
        });
    }
    if x.k() != w.k {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.k,
            right: x.k(),
        });
    }
    let (rows, tokens, k) = (w.rows, x.tokens(), w.k);
    check_len("output", elements(tokens, rows)?, y.len())?;
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    // 64 bytes per pair for the AVX-512 kernel's doubled i16 tables, 32 for the others.
    let pair_bytes = if path == LutPath::Avx512 { 64 } else { 32 };
    let (groups, stride) = (k / 4, k / 2 * pair_bytes);
    // Tokens in chunks whose tables stay in L2 (about 256 KiB) while every tile passes over them.
    let chunk = (TABLE_BYTES / stride).clamp(1, tokens);
    let mut tables = ScratchPool::global().take_uninit::<u8>(chunk * stride);
    let build = |t: usize, out: &mut [u8]| {
        let build = |q: &[i8], out: &mut [u8]| match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: checked above: AVX2 is part of both levels.
            LutPath::Avx512 => unsafe { avx2::build_tables_i16(q, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            LutPath::Avx2 => unsafe { avx2::build_tables(q, out) },
            _ => build_tables(q, out),
        };
        match x {
            Activations::Int8(a) => build(a.row(t), out),
            Activations::Q8K(a) => {
                for (blk, out) in a.row(t).iter().zip(out.chunks_exact_mut(128 * pair_bytes)) {
                    build(&blk.q, out);
                }
            }
        }
    };
    let dots = |tile: &[u8], tab: &[u8], groups: usize| match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked above: the AVX-512 level (F/BW) may run.
        LutPath::Avx512 => unsafe { avx512::tile_dots(tile, tab, groups) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked above: the AVX2 level may run.
        LutPath::Avx2 => unsafe { avx2::tile_dots(tile, tab, groups) },
        _ => tile_dots(tile, tab, groups),
    };
    let out = SharedOut::new(y.as_mut_ptr());
    let par = par.for_bytes(w.code_bytes().saturating_mul(tokens));
    for t0 in (0..tokens).step_by(chunk) {
        let tn = chunk.min(tokens - t0);
        for (i, out) in tables[..tn * stride].chunks_exact_mut(stride).enumerate() {
            build(t0 + i, out);
        }
        let tables = &tables[..tn * stride];
        par.for_each_range(rows.div_ceil(TILE_ROWS), 1, |tiles| {
            for tile_index in tiles {
                let tile = w.tile(tile_index);
                let (r0, n) = (
                    tile_index * TILE_ROWS,
                    TILE_ROWS.min(rows - tile_index * TILE_ROWS),
                );
                for (i, tab) in tables.chunks_exact(stride).enumerate() {
                    let t = t0 + i;
                    let mut res = [0f32; TILE_ROWS];
                    match x {
                        Activations::Int8(a) => {
                            let sums = dots(tile, tab, groups);
                            let (a_t, q_sum) = (a.scales()[t], a.sums()[t]);
                            let s = w.scales[0];
                            for (o, &sum) in res.iter_mut().zip(&sums).take(n) {
                                // Σ code · q = Σ w · q + Σ q: the reference's float steps.
                                *o = reference::finish_i2s(sum + q_sum, q_sum, a_t, s);
                            }
                        }
                        Activations::Q8K(a) => {
                            // Block by block (64 groups, 128 pairs each), the reference's order:
                            // sumf += f32(block integer) · (d_x · d_w).
                            for (b, blk) in a.row(t).iter().enumerate() {
                                let sums = dots(
                                    &tile[b * 64 * 64..(b + 1) * 64 * 64],
                                    &tab[b * 128 * pair_bytes..(b + 1) * 128 * pair_bytes],
                                    64,
                                );
                                for (i, o) in res.iter_mut().enumerate().take(n) {
                                    *o += sums[i] as f32 * (blk.d * w.block_scales(r0 + i)[b]);
                                }
                            }
                        }
                    }
                    for (i, &v) in res.iter().enumerate().take(n) {
                        // SAFETY: (t, r0 + i) is inside y (tokens × rows, checked above) and
                        // this task owns tile `tile_index`: no other thread writes these rows.
                        unsafe { *out.at(t * rows + r0 + i) = v };
                    }
                }
            }
        });
    }
    Ok(())
}

/// The scalar kernel: the same lookups, one row at a time.
fn tile_dots(tile: &[u8], tables: &[u8], groups: usize) -> [i32; TILE_ROWS] {
    let mut rows = [0i32; TILE_ROWS];
    for g in 0..groups {
        let idx = &tile[g * 64..(g + 1) * 64];
        for (h, table) in tables[g * 64..(g + 1) * 64].chunks_exact(32).enumerate() {
            for (sum, &b) in rows.iter_mut().zip(idx) {
                let c = usize::from(b >> (4 * h) & 0x0f);
                *sum += i32::from(i16::from_le_bytes([table[c], table[16 + c]]));
            }
        }
    }
    rows
}
