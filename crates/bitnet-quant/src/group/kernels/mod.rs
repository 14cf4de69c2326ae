//! The SIMD GEMV/GEMM of the group formats, parallel over rows.
//!
//! | [`Path`] | kernel |
//! |---|---|
//! | `Avx512Vnni` | GEMV of Q4_0, Q8_0, Q4_K, Q6_K: four rows per call (`zmm.rs`); Q4_0 tiles two blocks per `vpdpbusd` zmm (`zmm.rs`); the rest as `Avx512VnniYmm` |
//! | `Avx512VnniYmm` | the 256-bit kernels of [`ymm`] on EVEX `vpdpbusd` ymm (AVX-512 VNNI + VL) |
//! | `AvxVnni` | the same on VEX `vpdpbusd` (AVX-VNNI) |
//! | `Avx2` | the same on `vpmaddubsw` + `vpmaddwd` |
//! | `Reference` | [`super::reference`] |
//!
//! Rows are split across threads in groups of four; each group runs tiles of four tokens (the
//! `NT = 4` kernels), and single tokens run the four-row kernels where the path and format have
//! one, else the one-token kernels row by row. Every path meets the error bound of
//! [`super::reference`] (tested on every path this machine has).
//!
//! Why the four-row zmm kernels exist for the GGUF formats only: a GEMV must keep up with DRAM on
//! every core, and a file's Q4_0/Q8_0/Q4_K/Q6_K tensors (the output head among them) are what a
//! decode step streams; the log's B2/B4 groups run the ymm kernels.

#[cfg(target_arch = "x86_64")]
pub(crate) mod ymm;
#[cfg(target_arch = "x86_64")]
mod zmm;

use bitnet_simd::Par;

use super::reference::{self, GroupActivations, check_call};
use super::{GroupFormat, GroupWeights};
use crate::error::QuantError;
use crate::kernels::{Path, ROWS, TILE, drive};

#[cfg(target_arch = "x86_64")]
mod avx2 {
    super::ymm::group_kernels!("avx2,fma,f16c", crate::kernels::avx2::dot);
}
#[cfg(target_arch = "x86_64")]
mod avx_vnni {
    super::ymm::group_kernels!("avx2,fma,f16c,avxvnni", crate::kernels::avx_vnni::dot);
}
#[cfg(target_arch = "x86_64")]
mod evex {
    super::ymm::group_kernels!(
        "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
        crate::kernels::avx_vnni::evex::dot
    );
}

/// The fastest path the active ceiling allows for the group formats.
pub fn best_path() -> Result<Path, QuantError> {
    for path in [Path::Avx512Vnni, Path::AvxVnni, Path::Avx2] {
        if path.available()? {
            return Ok(path);
        }
    }
    Ok(Path::Reference)
}

/// `y[t * rows + r] = W[r] · x[t]` (`Y = X Wᵀ`, token-major) on the fastest path and every core
/// `par` allows; `x` must be the activations of `w`'s format ([`GroupFormat::activation`]).
pub fn gemm(
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_on(best_path()?, w, x, y, par)
}

/// [`gemm`] on the given path; an error where this CPU or the ISA ceiling does not allow it.
pub fn gemm_on(
    path: Path,
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    path.check()?;
    check_call(w, x, y)?;
    let (rows, tokens) = (w.rows(), x.tokens());
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    let par = par.for_bytes(w.bytes().len().saturating_mul(tokens));
    drive(rows, tokens, y, par, |r0, n, t0, tn, res| {
        if tn < TILE {
            // Single tokens: the kernels that share each activation load between four rows.
            // Short groups repeat their last row (computed, not stored).
            #[cfg(target_arch = "x86_64")]
            let group: [&[u8]; ROWS] = std::array::from_fn(|i| w.row(r0 + i.min(n - 1)));
            #[cfg(target_arch = "x86_64")]
            if let Some(first) = rows4_dots(path, w, x, group, t0) {
                res[0] = first;
                for ti in 1..tn {
                    res[ti] = rows4_dots(path, w, x, group, t0 + ti).expect("same path");
                }
                return;
            }
        }
        for i in 0..n {
            let dots = row_dots(path, w, x, r0 + i, t0, tn);
            for (ti, &v) in dots[..tn].iter().enumerate() {
                res[ti][i] = v;
            }
        }
    });
    Ok(())
}

/// Rows `group` against token `t` on the four-row single-token kernel of `w`'s format and
/// `path`, if it has one.
#[cfg(target_arch = "x86_64")]
fn rows4_dots(
    path: Path,
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    group: [&[u8]; ROWS],
    t: usize,
) -> Option<[f32; ROWS]> {
    match (path, w.format(), x) {
        (Path::Avx512Vnni, GroupFormat::Q4_0, GroupActivations::Q8x32(a)) => {
            // SAFETY: Path::Avx512Vnni runs only when its token exists (AVX-512 F, BW, VL and
            // VNNI on a level that includes AVX2, FMA and F16C).
            Some(unsafe { zmm::q4_0_rows4(group, a.row(t), a.scales(t)) })
        }
        (Path::Avx512Vnni, GroupFormat::Q8_0, GroupActivations::Q8x32(a)) => {
            // SAFETY: as above.
            Some(unsafe { zmm::q8_0_rows4(group, a.row(t), a.scales(t)) })
        }
        (Path::Avx512Vnni, GroupFormat::Q4K, GroupActivations::Q8K(a)) => {
            // SAFETY: as above.
            Some(unsafe { zmm::q4_k_rows4(group, a.row(t)) })
        }
        (Path::Avx512Vnni, GroupFormat::Q6K, GroupActivations::Q8K(a)) => {
            // SAFETY: as above.
            Some(unsafe { zmm::q6_k_rows4(group, a.row(t)) })
        }
        _ => None,
    }
}

/// Calls kernel `$f` of the module of a ymm path.
#[cfg(target_arch = "x86_64")]
macro_rules! on_path {
    ($path:expr, $f:ident::<$($g:tt),*>($($arg:expr),*)) => {
        // SAFETY: a path runs only after `Path::check` found its CPU features (the AVX2 level
        // includes FMA and F16C; the VNNI tokens include AVX2).
        unsafe {
            match $path {
                Path::Avx512Vnni | Path::Avx512VnniYmm => evex::$f::<$($g),*>($($arg),*),
                Path::AvxVnni => avx_vnni::$f::<$($g),*>($($arg),*),
                _ => avx2::$f::<$($g),*>($($arg),*),
            }
        }
    };
}

/// Row `r` against tokens `t0..t0 + tn` (`tn ≤ TILE`).
fn row_dots(
    path: Path,
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    r: usize,
    t0: usize,
    tn: usize,
) -> [f32; TILE] {
    let mut out = [0f32; TILE];
    #[cfg(target_arch = "x86_64")]
    if path != Path::Reference {
        // Two accumulators per token in a 4-token tile, four for a single token.
        if tn == TILE {
            out = simd_dots::<TILE, 2>(path, w, x, r, t0);
        } else {
            for (ti, o) in out[..tn].iter_mut().enumerate() {
                [*o] = simd_dots::<1, 4>(path, w, x, r, t0 + ti);
            }
        }
        return out;
    }
    let _ = path;
    for (ti, o) in out[..tn].iter_mut().enumerate() {
        *o = reference::dot_checked(w, r, x, t0 + ti);
    }
    out
}

/// Row `r` against tokens `t0..t0 + NT` on a ymm path, `U` accumulators per token.
#[cfg(target_arch = "x86_64")]
fn simd_dots<const NT: usize, const U: usize>(
    path: Path,
    w: &GroupWeights<'_>,
    x: GroupActivations<'_>,
    r: usize,
    t0: usize,
) -> [f32; NT] {
    let row = w.row(r);
    match x {
        GroupActivations::Q8K(a) => {
            let xs: [_; NT] = std::array::from_fn(|i| a.row(t0 + i));
            match w.format() {
                GroupFormat::Q4K => on_path!(path, q4_k::<NT>(row, xs)),
                _ => on_path!(path, q6_k::<NT>(row, xs)),
            }
        }
        GroupActivations::Q8x32(a) => {
            let q: [_; NT] = std::array::from_fn(|i| a.row(t0 + i));
            let d: [_; NT] = std::array::from_fn(|i| a.scales(t0 + i));
            let ds: [_; NT] = std::array::from_fn(|i| a.scaled_sums(t0 + i));
            let spec = match w.format() {
                GroupFormat::Grouped(spec) => spec,
                _ => return on_path!(path, q8_0::<NT, U>(row, q, d)),
            };
            if path == Path::Avx512Vnni && w.format() == GroupFormat::Q4_0 {
                // SAFETY: Path::Avx512Vnni runs only when its token exists (AVX-512 F, BW, VL
                // and VNNI on a level that includes AVX2, FMA and F16C).
                return unsafe { zmm::q4_0::<NT, U>(row, q, d) };
            }
            macro_rules! specs {
                ($(($b:literal, $s:literal, $m:literal)),*) => {
                    match (spec.bits(), spec.size(), spec.with_min()) {
                        $(($b, $s, $m) => on_path!(path, groups::<$b, $s, $m, NT, U>(row, q, d, ds)),)*
                        _ => unreachable!("GroupSpec::new admits no other spec"),
                    }
                };
            }
            specs!(
                (4, 32, false),
                (4, 32, true),
                (4, 64, false),
                (4, 64, true),
                (4, 128, false),
                (4, 128, true),
                (2, 32, false),
                (2, 32, true),
                (2, 64, false),
                (2, 64, true),
                (2, 128, false),
                (2, 128, true)
            )
        }
    }
}
