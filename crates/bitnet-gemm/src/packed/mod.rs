//! Packed, BLIS-style GEMM: the fast path for every shape with more than a handful of rows.
//!
//! ```text
//! LOOP 5  for jc in 0..n step NC            columns of C and B      (B block in L3)
//! LOOP 4    for pc in 0..k step KC          depth                   pack B[pc.., jc..] (parallel)
//! LOOP 3      for ic in 0..m step MC        rows of C and A         (A block in L2)   ┐ parallel
//!               each task packs its own A block into its own scratch (so it is in its L2)
//! LOOP 2        for jr in NR panels of the  columns                 (B panel in L1)   │ tasks over
//! LOOP 1          for ir in MR panels       rows                                       ┘ (ic, jr range)
//!                   microkernel: C[ir, jr] = alpha * Ap[ir] * Bp[jr] + beta' * C[ir, jr]
//! ```
//! `beta' = beta` for the first depth block and 1 after it. The block sizes come from the cache
//! sizes `bitnet-simd` reports ([`Blocking::for_tile`]). Packed buffers come from the scratch
//! pool, so a warm call allocates nothing. Tasks run through [`Par`]: with `Par::Rayon` this is
//! rayon's work stealing over macro-tiles; with `Par::Threads` the same tasks on the spin pool.
//!
//! A row-major C is computed as `C^T = B^T A^T` (swapping two views costs nothing), so the
//! microkernel always stores whole column vectors when C has unit row or column stride.

mod kernel;
mod pack;
mod transpose;
#[cfg(target_arch = "x86_64")]
mod transpose_avx2;
#[cfg(target_arch = "x86_64")]
mod transpose_avx512;

use std::cell::Cell;
use std::sync::OnceLock;

use bitnet_simd::{CacheInfo, Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

use crate::error::GemmError;
use crate::reference::check_shapes;
use crate::view::{MatMut, MatRef};
use bitnet_simd::par::SharedOut;
use kernel::{TileDst, microkernel, store_tile};
use pack::{pack_a_panel, pack_b_panel};

/// Cache block sizes (in elements) for one microkernel tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Depth of a packed block: a `KC x NR` B panel fills at most half of L1.
    pub kc: usize,
    /// Rows of a packed A block: `MC x KC` fills at most half of L2 (multiple of MR).
    pub mc: usize,
    /// Columns of a packed B block: `KC x NC` fills at most half of L3 (multiple of NR).
    pub nc: usize,
}

impl Blocking {
    /// Block sizes for an `mr x nr` tile from the cache sizes `bitnet-simd` reports, each
    /// overridable for tuning with `BITNET_GEMM_KC`, `BITNET_GEMM_MC`, `BITNET_GEMM_NC` (read
    /// once) or, on the calling thread, [`with_blocking`]; MC is rounded to a multiple of MR and
    /// NC to a multiple of NR.
    pub fn for_tile(mr: usize, nr: usize) -> Blocking {
        let c = CacheInfo::get();
        let f = size_of::<f32>();
        let requested = OVERRIDE.with(Cell::get).unwrap_or(*env_blocking());
        let kc = requested
            .kc
            .unwrap_or((c.l1d / (2 * f * nr) / 16 * 16).clamp(64, 512))
            .clamp(1, 4096);
        let mc = requested.mc.unwrap_or(c.l2 / (2 * f * kc));
        let nc = requested.nc.unwrap_or(c.l3 / (2 * f * kc));
        Blocking {
            kc,
            mc: (mc / mr * mr).clamp(mr, 8192 / mr * mr),
            nc: (nc / nr * nr).clamp(nr, 16384 / nr * nr),
        }
    }
}

/// Requested block sizes; `None` means "derive from the caches".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockingRequest {
    /// Depth of a block.
    pub kc: Option<usize>,
    /// Rows of an A block (rounded to MR).
    pub mc: Option<usize>,
    /// Columns of a B block (rounded to NR).
    pub nc: Option<usize>,
}

fn env_blocking() -> &'static BlockingRequest {
    static ENV: OnceLock<BlockingRequest> = OnceLock::new();
    ENV.get_or_init(|| {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&v| v > 0)
        };
        BlockingRequest {
            kc: env("BITNET_GEMM_KC"),
            mc: env("BITNET_GEMM_MC"),
            nc: env("BITNET_GEMM_NC"),
        }
    })
}

thread_local! {
    static OVERRIDE: Cell<Option<BlockingRequest>> = const { Cell::new(None) };
}

/// Runs `f` with packed products started on this thread using `request`'s block sizes (tests
/// use tiny blocks so that several depth and column blocks run on small matrices).
pub fn with_blocking<R>(request: BlockingRequest, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<BlockingRequest>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(Some(request))));
    f()
}

/// `C = alpha * A * B + beta * C` with the packed BLIS-style kernel of the active level.
///
/// With `beta == 0`, C is only written (NaN in it does not leak). Error bound per element, with
/// ε = `f32::EPSILON`: `|C - C_exact| ≤ (k + 2) ε (|alpha| Σ_p |A[i,p]| |B[p,j]| + |beta| |C[i,j]|)`.
pub fn gemm_packed(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
    par: Par,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    let level = Level::active()?;
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    if m == 0 || n == 0 {
        return Ok(());
    }
    // Row-major C: compute C^T = B^T A^T so that C's unit stride runs along the tile's rows.
    if c.col_stride() == 1 && c.row_stride() != 1 {
        return gemm_packed(alpha, b.t(), a.t(), beta, c.t(), par);
    }
    let par = par.for_flops(
        m.saturating_mul(n)
            .saturating_mul(k.max(1))
            .saturating_mul(2),
    );
    let (ptr, _, _, rs, cs) = c.raw();
    level.run(PackedGemm {
        level,
        alpha,
        a,
        b,
        beta,
        c: SharedOut::new(ptr),
        rs,
        cs,
        par,
    });
    Ok(())
}

/// LOOPs 2 and 1 over one task's share of a packed block: NR panels `panels_n` (outer) by MR
/// panels `panels_m` (inner), so one B panel stays in L1 while A panels stream from L2.
struct MacroTile<'a, const MV: usize, const NR: usize> {
    /// The level the packers transpose with (the one `S` belongs to).
    level: Level,
    /// The `m x kc` depth slice of A; the task packs its own rows into its own scratch, so the
    /// packed A block sits in the L2 of the core that uses it.
    a_blk: MatRef<'a>,
    bp: &'a [f32],
    kc: usize,
    panels_m: std::ops::Range<usize>,
    panels_n: std::ops::Range<usize>,
    row_end: usize,
    col0: usize,
    col_end: usize,
    c: SharedOut<f32>,
    rs: usize,
    cs: usize,
    alpha: f32,
    beta: f32,
}

impl<const MV: usize, const NR: usize> WithSimd for MacroTile<'_, MV, NR> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let mr = MV * size_of::<S::f32s>() / size_of::<f32>();
        let kc = self.kc;
        let first = self.panels_m.start;
        let mut packed = ScratchPool::global().take_uninit::<f32>(self.panels_m.len() * kc * mr);
        for (i, panel) in packed.chunks_exact_mut(kc * mr).enumerate() {
            pack_a_panel::<S, MV>(self.level, &self.a_blk, first + i, panel);
        }
        let (ap, _) = S::as_simd_f32s(&packed);
        for jr in self.panels_n {
            let b_panel = &self.bp[jr * kc * NR..(jr + 1) * kc * NR];
            let col = self.col0 + jr * NR;
            for ir in self.panels_m.clone() {
                let local = ir - first;
                let a_panel = &ap[local * kc * MV..(local + 1) * kc * MV];
                let acc = microkernel::<S, MV, NR>(simd, a_panel, b_panel);
                let row = ir * mr;
                let dst = TileDst {
                    ptr: self.c.at(row * self.rs + col * self.cs),
                    rs: self.rs,
                    cs: self.cs,
                    rows: mr.min(self.row_end - row),
                    cols: NR.min(self.col_end - col),
                };
                // SAFETY: the tile's valid part lies inside the non-overlapping C view, and no
                // other task writes tile (ir, jr) of this depth block.
                unsafe { store_tile::<S, MV, NR>(simd, &acc, self.alpha, self.beta, &dst) };
            }
        }
    }
}

struct PackedGemm<'a> {
    level: Level,
    alpha: f32,
    a: MatRef<'a>,
    b: MatRef<'a>,
    beta: f32,
    c: SharedOut<f32>,
    rs: usize,
    cs: usize,
    par: Par,
}

impl WithSimd for PackedGemm<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        match size_of::<S::f32s>() / size_of::<f32>() {
            // 4 x 6 beat 2 x 12 and 3 x 8 on Zen 4 (fewer broadcasts per FMA); see kernel.rs.
            16 => self.drive::<S, 4, 6>(simd),
            8 => self.drive::<S, 2, 6>(simd),
            4 => self.drive::<S, 2, 8>(simd),
            _ => self.drive::<S, 4, 4>(simd),
        }
    }
}

impl PackedGemm<'_> {
    /// LOOPs 5 to 1 for a tile of `MV` vectors by `NR` columns.
    #[inline(always)]
    fn drive<S: Simd, const MV: usize, const NR: usize>(self, simd: S) {
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        let mr = MV * lanes;
        let (m, n, k) = (self.a.rows(), self.b.cols(), self.a.cols());
        let blk = Blocking::for_tile(mr, NR);
        let m_panels = m.div_ceil(mr);
        let pool = ScratchPool::global();
        let threads = self.par.threads();

        if k == 0 {
            // No depth: C = beta * C (alpha * 0 contributes nothing).
            self.scale_c(m, n);
            return;
        }
        for jc in (0..n).step_by(blk.nc) {
            let nc = blk.nc.min(n - jc);
            let n_panels = nc.div_ceil(NR);
            for pc in (0..k).step_by(blk.kc) {
                let kc = blk.kc.min(k - pc);
                let beta = if pc == 0 { self.beta } else { 1.0 };
                let b_blk = self.b.submatrix(pc, jc, kc, nc).expect("inside B");
                let a_blk = self.a.submatrix(0, pc, m, kc).expect("inside A");

                let mut bp = pool.take_uninit::<f32>(n_panels * kc * NR);
                self.par.for_each_chunk_mut(&mut bp, kc * NR, |off, chunk| {
                    for (i, panel) in chunk.chunks_exact_mut(kc * NR).enumerate() {
                        pack_b_panel(self.level, &b_blk, off / (kc * NR) + i, NR, panel);
                    }
                });
                let bp: &[f32] = &bp;

                // Tasks: MC-row blocks × ranges of NR panels, enough for every thread.
                let mc_panels = blk.mc / mr;
                let m_blocks = m_panels.div_ceil(mc_panels);
                let n_chunks = (2 * threads).div_ceil(m_blocks).clamp(1, n_panels);
                let chunk_panels = n_panels.div_ceil(n_chunks);
                let n_chunks = n_panels.div_ceil(chunk_panels);
                let (c, rs, cs, alpha) = (self.c, self.rs, self.cs, self.alpha);
                let level = self.level;
                self.par.for_each_task(m_blocks * n_chunks, |task| {
                    let (mb, nb) = (task / n_chunks, task % n_chunks);
                    // A closure body is compiled without the level's target features: re-enter
                    // them through the token before the hot loops.
                    simd.vectorize(MacroTile::<MV, NR> {
                        level,
                        a_blk,
                        bp,
                        kc,
                        panels_m: mb * mc_panels..((mb + 1) * mc_panels).min(m_panels),
                        panels_n: nb * chunk_panels..((nb + 1) * chunk_panels).min(n_panels),
                        row_end: m,
                        col0: jc,
                        col_end: jc + nc,
                        c,
                        rs,
                        cs,
                        alpha,
                        beta,
                    });
                });
            }
        }
    }

    /// `C = beta * C` (for `k == 0`); with `beta == 0`, C is only written.
    fn scale_c(&self, m: usize, n: usize) {
        for j in 0..n {
            for i in 0..m {
                // SAFETY: (i, j) is inside the C view, borrowed mutably by the caller.
                unsafe {
                    let c = self.c.at(i * self.rs + j * self.cs);
                    *c = if self.beta == 0.0 {
                        0.0
                    } else {
                        self.beta * *c
                    };
                }
            }
        }
    }
}
