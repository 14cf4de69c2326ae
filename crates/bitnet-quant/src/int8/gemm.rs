//! The exact int8 GEMM `C = A · Bᵀ` (i32), A i8 or u8 (`m × k`), B i8 (`n × k`), on every core.
//!
//! | [`Int8Path`] | kernel |
//! |---|---|
//! | `Avx512Vnni` (`packed.rs`, `avx512vnni.rs`) | from 16 A rows: B packed per 64-column panel, 6 × 64 tiles of broadcast A against packed B (each i32 lane one output, no horizontal sums); fewer rows: `vpdpbusd` zmm 4 × 4 tiles (1 × 4 for a single A row); i8 A is biased to u8 (`a ^ 0x80` = `a + 128`: once per call, or in registers for a single row) and `128 Σ_k b` subtracted (summed once per call, or in the same pass for a single row) |
//! | `AvxVnni` (`ymm_vnni.rs`) | VEX `vpdpbusd` ymm (AVX-VNNI, for CPUs without AVX-512), 2 × 4 tiles (1 × 4 for a single row), i8 A biased as above |
//! | `Avx512VnniYmm` (`ymm_vnni.rs`) | the `AvxVnni` code in the EVEX encoding (AVX-512 VNNI + VL): never chosen by [`Int8Path::best`], it lets a machine with AVX-512 VNNI run and test what an AVX-VNNI machine runs |
//! | `Avx2` (`avx2.rs`) | both operands widened to i16 (`vpmovsxbw` / `vpmovzxbw`), `vpmaddwd`: no i16 saturation (products ≤ 2^15, pairs ≤ 2^16 in i32) — `vpmaddubsw` would saturate at 255 · 127 · 2 |
//! | `Scalar` | i32 dot products, four B rows per A row pass |
//!
//! Loop order: panels of [`PANEL`] B rows (their `PANEL · k` bytes stay in L2) outside, A rows in
//! fours inside, B rows in fours within the panel; each tile runs the whole `k`. Threads split
//! the B panels (output columns). Every path is bit-identical to [`super::gemm_reference`]:
//! the sums are exact in i32 for `k ≤` [`super::MAX_K_I8`].

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512vnni;
#[cfg(target_arch = "x86_64")]
pub(crate) mod packed;
#[cfg(target_arch = "x86_64")]
mod ymm_vnni;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, ScratchPool};

use super::{MAX_K_I8, Operand};
use crate::error::{QuantError, check_len, elements};

/// B rows per panel.
const PANEL: usize = 64;
/// A rows from which the AVX-512 VNNI path packs B (`packed.rs`) instead of running 4 × 4
/// tiles with horizontal sums: packing reads B once per call, and pays off once it is reused.
const PACKED_MIN_M: usize = 16;

/// The instruction family an int8 GEMM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Path {
    /// `vpdpbusd` zmm.
    Avx512Vnni,
    /// The [`Int8Path::AvxVnni`] kernel in AVX-512 VNNI + VL's EVEX encoding of `vpdpbusd` ymm
    /// (never chosen by [`Int8Path::best`]: it verifies the AVX-VNNI code on AVX-512 machines).
    Avx512VnniYmm,
    /// `vpdpbusd` ymm, VEX-encoded (AVX-VNNI).
    AvxVnni,
    /// i16 widening and `vpmaddwd` ymm.
    Avx2,
    /// Portable Rust.
    Scalar,
}

impl Int8Path {
    /// Every path, fastest first.
    pub const ALL: [Int8Path; 5] = [
        Int8Path::Avx512Vnni,
        Int8Path::Avx512VnniYmm,
        Int8Path::AvxVnni,
        Int8Path::Avx2,
        Int8Path::Scalar,
    ];

    /// The fastest path the active ceiling allows: AVX-512 VNNI, AVX-VNNI, AVX2, scalar.
    pub fn best() -> Result<Int8Path, QuantError> {
        for path in [Int8Path::Avx512Vnni, Int8Path::AvxVnni, Int8Path::Avx2] {
            if path.available()? {
                return Ok(path);
            }
        }
        Ok(Int8Path::Scalar)
    }

    /// Whether this CPU, under the active ceiling, may run the path.
    pub fn available(self) -> Result<bool, QuantError> {
        let level = Level::active()?;
        let _ = level;
        #[cfg(target_arch = "x86_64")]
        {
            return Ok(match self {
                Int8Path::Avx512Vnni | Int8Path::Avx512VnniYmm => {
                    bitnet_simd::dispatch::Avx512VnniToken::get()?.is_some()
                }
                Int8Path::AvxVnni => bitnet_simd::dispatch::AvxVnniToken::get()?.is_some(),
                Int8Path::Avx2 => matches!(level, Level::Avx2(_) | Level::Avx512(_)),
                Int8Path::Scalar => true,
            });
        }
        #[allow(unreachable_code)]
        Ok(self == Int8Path::Scalar)
    }
}

/// Checks the operands of a GEMM of `m × k` by `n × k` into `m × n`.
pub(crate) fn check_shapes(
    a: Operand<'_>,
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    c: &[i32],
) -> Result<(), QuantError> {
    if k > MAX_K_I8 {
        return Err(QuantError::Invalid {
            what: "k",
            reason: format!("{k} exceeds MAX_K_I8 = {MAX_K_I8} (the i32 sums must stay exact)"),
        });
    }
    check_len("A", elements(m, k)?, a.len())?;
    check_len("B", elements(n, k)?, b.len())?;
    check_len("C", elements(m, n)?, c.len())
}

/// `C = A · Bᵀ` exactly (module docs) on the fastest path and every core `par` allows.
pub fn gemm(
    a: Operand<'_>,
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    c: &mut [i32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_on(Int8Path::best()?, a, b, m, n, k, c, par)
}

/// [`gemm`] on the given path; an error where it may not run.
#[allow(clippy::too_many_arguments)]
pub fn gemm_on(
    path: Int8Path,
    a: Operand<'_>,
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    c: &mut [i32],
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
    check_shapes(a, b, m, n, k, c)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    // i8 A on VNNI with more than one row: biased to u8 once (`a ^ 0x80` = `a + 128`), with
    // Σ_k b[j][k] once per call for the correction `− 128 Σ b` (a GEMV biases in registers and
    // sums B in its one pass instead).
    let mut b_sums = Vec::new();
    let mut biased = None;
    // The packed path sums each B panel as it packs it (no separate pass over B).
    let packed = path == Int8Path::Avx512Vnni && m >= PACKED_MIN_M;
    #[cfg(target_arch = "x86_64")]
    if let (
        Int8Path::Avx512Vnni | Int8Path::Avx512VnniYmm | Int8Path::AvxVnni,
        Operand::I8(v),
        true,
    ) = (path, a, m > 1)
    {
        if !packed {
            b_sums = vec![0i32; n];
            // SAFETY: each VNNI path runs only when its token exists (checked above).
            unsafe {
                match path {
                    Int8Path::AvxVnni => ymm_vnni::row_sums(b, k, &mut b_sums),
                    Int8Path::Avx512VnniYmm => ymm_vnni::evex::row_sums(b, k, &mut b_sums),
                    _ => avx512vnni::row_sums(b, k, &mut b_sums),
                }
            }
        }
        let mut copy = ScratchPool::global().take_uninit::<u8>(m * k);
        for (o, &q) in copy.iter_mut().zip(v.iter()) {
            *o = q as u8 ^ 0x80;
        }
        biased = Some(copy);
    }
    let a = match &biased {
        Some(copy) => Operand::U8(&copy[..]),
        None => a,
    };
    let b_sums = &b_sums[..];
    let out = SharedOut::new(c.as_mut_ptr());
    let par = par.for_work(m.saturating_mul(n).saturating_mul(k), 1 << 20);
    #[cfg(target_arch = "x86_64")]
    if let (Operand::U8(a), true) = (a, packed) {
        packed_gemm(a, b, m, n, k, biased.is_some(), out, par);
        return Ok(());
    }
    par.for_each_range(n.div_ceil(PANEL), 1, |panels| {
        for p in panels {
            let (j0, jn) = (p * PANEL, PANEL.min(n - p * PANEL));
            for i0 in (0..m).step_by(4) {
                let im = 4.min(m - i0);
                for j in (j0..j0 + jn).step_by(4) {
                    let jm = 4.min(j0 + jn - j);
                    let tile = tile(path, a, b, k, i0, im, j, jm);
                    for (di, row) in tile.iter().enumerate().take(im) {
                        for (dj, &v) in row.iter().enumerate().take(jm) {
                            let v = match b_sums {
                                [] => v,
                                sums => v - 128 * sums[j + dj],
                            };
                            // SAFETY: (i0 + di, j + dj) is inside C (m × n, checked), and this
                            // task owns panel p's columns: no other thread writes them.
                            unsafe { *out.at((i0 + di) * n + j + dj) = v };
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// The 4 × 4 tile of C at rows `i0..i0 + im`, columns `j..j + jm` (rows past the end repeat
/// the last one: computed, not stored).
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile(
    path: Int8Path,
    a: Operand<'_>,
    b: &[i8],
    k: usize,
    i0: usize,
    im: usize,
    j: usize,
    jm: usize,
) -> [[i32; 4]; 4] {
    let b_rows: [&[i8]; 4] = std::array::from_fn(|d| {
        let r = j + d.min(jm - 1);
        &b[r * k..(r + 1) * k]
    });
    let a_row = |d: usize| i0 + d.min(im - 1);
    match (path, a) {
        #[cfg(target_arch = "x86_64")]
        (Int8Path::Avx512Vnni | Int8Path::Avx512VnniYmm | Int8Path::AvxVnni, a) => {
            // i8 rows are read as u8 bytes and biased in the kernel.
            let (bytes, biased) = match a {
                Operand::U8(v) => (v, false),
                // SAFETY: i8 and u8 have the same size and alignment.
                Operand::I8(v) => unsafe {
                    (
                        std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()),
                        true,
                    )
                },
            };
            let rows = |d: usize| &bytes[a_row(d) * k..(a_row(d) + 1) * k];
            let mut t = [[0i32; 4]; 4];
            match (path, im) {
                (Int8Path::Avx512Vnni, 1) => [t[0]] = zmm_tile::<1>(biased, [rows(0)], b_rows, k),
                (Int8Path::Avx512Vnni, _) => {
                    t = zmm_tile::<4>(biased, std::array::from_fn(rows), b_rows, k)
                }
                (ymm, 1) => [t[0]] = ymm_tile::<1>(ymm, biased, [rows(0)], b_rows, k),
                (ymm, _) => {
                    for half in (0..im).step_by(2) {
                        let [r0, r1] =
                            ymm_tile::<2>(ymm, biased, [rows(half), rows(half + 1)], b_rows, k);
                        (t[half], t[half + 1]) = (r0, r1);
                    }
                }
            }
            t
        }
        #[cfg(target_arch = "x86_64")]
        (Int8Path::Avx2, a) => std::array::from_fn(|d| {
            let r = a_row(d);
            // SAFETY: Int8Path::Avx2 runs only at level AVX2 or AVX-512.
            unsafe {
                match a {
                    Operand::I8(v) => avx2::row_i8(&v[r * k..(r + 1) * k], b_rows),
                    Operand::U8(v) => avx2::row_u8(&v[r * k..(r + 1) * k], b_rows),
                }
            }
        }),
        _ => std::array::from_fn(|d| {
            let r = a_row(d);
            std::array::from_fn(|e| {
                (0..k)
                    .map(|p| a.at(r * k + p) * i32::from(b_rows[e][p]))
                    .sum()
            })
        }),
    }
}

/// The `R × 4` tile of the zmm VNNI path.
#[cfg(target_arch = "x86_64")]
#[inline]
fn zmm_tile<const R: usize>(biased: bool, a: [&[u8]; R], b: [&[i8]; 4], k: usize) -> [[i32; 4]; R] {
    // SAFETY: the callers run this path only when its token exists (`gemm_on` checks it).
    unsafe {
        if biased {
            avx512vnni::tile::<R, true>(a, b, k, None)
        } else {
            avx512vnni::tile::<R, false>(a, b, k, None)
        }
    }
}

/// The `R × 4` tile of a 256-bit VNNI path (`AvxVnni` VEX, `Avx512VnniYmm` EVEX).
#[cfg(target_arch = "x86_64")]
#[inline]
fn ymm_tile<const R: usize>(
    path: Int8Path,
    biased: bool,
    a: [&[u8]; R],
    b: [&[i8]; 4],
    k: usize,
) -> [[i32; 4]; R] {
    // SAFETY: the callers run only a path whose token exists (`gemm_on` checks it).
    unsafe {
        match (path, biased) {
            (Int8Path::AvxVnni, false) => ymm_vnni::tile::<R, false>(a, b, k, None),
            (Int8Path::AvxVnni, true) => ymm_vnni::tile::<R, true>(a, b, k, None),
            (_, false) => ymm_vnni::evex::tile::<R, false>(a, b, k, None),
            (_, true) => ymm_vnni::evex::tile::<R, true>(a, b, k, None),
        }
    }
}

/// The packed-B path of `Int8Path::Avx512Vnni` (`packed.rs`): each thread packs its panels of
/// [`packed::NR`] B rows into scratch and runs every A row against them in tiles of
/// [`packed::MR`]; for `biased` (i8 A made u8) the `128 Σ b` correction of each column is
/// summed from the packed panel.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn packed_gemm(
    a: &[u8],
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    biased: bool,
    out: SharedOut<i32>,
    par: Par,
) {
    par.for_each_range(n.div_ceil(packed::NR), 1, |panels| {
        let mut panel = ScratchPool::global().take_uninit::<u8>(packed::panel_len(k));
        for p in panels {
            let (j0, jn) = (p * packed::NR, packed::NR.min(n - p * packed::NR));
            // SAFETY: this path runs only when the AVX-512 VNNI token exists (AVX-512 F, BW
            // and VNNI).
            let corr = unsafe {
                packed::pack_panel(b, k, j0, jn, &mut panel);
                if biased {
                    packed::bias_corrections(&panel, k)
                } else {
                    [0; packed::NR]
                }
            };
            let corr = if biased { &corr[..jn] } else { &[][..] };
            for i0 in (0..m).step_by(packed::MR) {
                let rn = packed::MR.min(m - i0);
                let row = |r: usize| &a[(i0 + r) * k..(i0 + r + 1) * k];
                let dst = |r: usize| out.at((i0 + r) * n + j0);
                macro_rules! run {
                    ($r:literal) => {
                        // SAFETY: this path runs only when the AVX-512 VNNI token exists (on the
                        // AVX-512 level: F and BW); rows i0..i0 + rn of C, columns j0..j0 + jn,
                        // are inside C (m × n, checked) and owned by this task's panel.
                        unsafe {
                            packed::tile::<$r>(
                                std::array::from_fn(row),
                                &panel,
                                k,
                                corr,
                                std::array::from_fn(dst),
                                jn,
                            )
                        }
                    };
                }
                match rn {
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
