//! Fast ternary GEMV and GEMM: the packed formats times int8 activations on every core, with the
//! best instructions the active level allows ([`Path::for_format`]), or on a path the caller
//! names ([`gemm_on`], [`gemm_native_on`]; an error where it may not run).
//!
//! | [`Path`] | when | kernels |
//! |---|---|---|
//! | `Avx512Vnni` (`avx512vnni.rs`) | the `Avx512Vnni` extension is enabled | `vpdpbusd` zmm for every format (TQ1_0's trits by byte adds and compares), 2-row × 4-token GEMM tiles |
//! | `AvxVnni` (`avx_vnni.rs`) | AVX-VNNI without AVX-512 VNNI | the 256-bit kernels of `ymm.rs` on VEX `vpdpbusd` ymm |
//! | `Avx512VnniYmm` (`avx_vnni.rs`, `evex`) | forced only | the same kernels on EVEX `vpdpbusd` ymm: how a machine with AVX-512 VNNI verifies the AVX-VNNI code |
//! | `Avx2` (`avx2.rs`) | level AVX2, or AVX-512 without VNNI | the 256-bit kernels of `ymm.rs` on `vpmaddubsw` + `vpmaddwd` |
//! | `Reference` | level scalar (or NEON: not yet) | [`crate::reference`] |
//!
//! Results: I2_S is bit-identical to [`crate::reference`] on every path (its integer sum is
//! exact and the float steps are the same). TQ2_0's and TQ1_0's per-block integer sums are exact
//! too, but the SIMD paths accumulate the scaled block sums in vector lanes, so the f32 result is within
//! `(nb + 6) ε Σ_j |w_j| |x_j|` of the exact product (`nb = k / 256`, ε = `f32::EPSILON`,
//! `w`, `x` the dequantized weights and activations), not bit-equal to the reference.
//!
//! Activations are prepared once per call: permuted into the order the SIMD loops read
//! ([`permute_activations`]) in scratch from the pool, so the hot path allocates nothing. Rows are
//! split across threads ([`Par::for_bytes`] on the weight bytes), in groups of [`ROWS`] that
//! share each activation load.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512vnni;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx_vnni;
#[cfg(target_arch = "x86_64")]
pub(crate) mod ymm;

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, Scratch, ScratchPool};

use crate::error::{QuantError, check_len, elements};
use crate::formats::TernaryFormat;
use crate::formats::TernaryWeights;
use crate::formats::native::{GROUP, NativeTernary};
use crate::reference::{self, Activations};

/// Rows computed together (each activation vector loaded once for all of them; the native
/// layout's row group).
pub const ROWS: usize = GROUP;

/// The kernel family a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `vpdpbusd` on zmm (AVX-512 VNNI), with the GEMM tiles.
    Avx512Vnni,
    /// The [`Path::AvxVnni`] kernels in AVX-512 VNNI + VL's EVEX encoding of `vpdpbusd` ymm. Never
    /// chosen by [`Path::for_format`]: it exists so that a machine with AVX-512 VNNI runs, and
    /// the tests verify, the code an AVX-VNNI machine runs.
    Avx512VnniYmm,
    /// `vpdpbusd` on ymm, VEX-encoded (AVX-VNNI: CPUs with it and without AVX-512 VNNI).
    AvxVnni,
    /// `vpmaddubsw` on ymm.
    Avx2,
    /// The scalar reference.
    Reference,
}

impl Path {
    /// Every path, fastest first.
    pub const ALL: [Path; 5] = [
        Path::Avx512Vnni,
        Path::Avx512VnniYmm,
        Path::AvxVnni,
        Path::Avx2,
        Path::Reference,
    ];

    /// The path for `format` under the active ceiling (forced levels and extensions included):
    /// the first of AVX-512 VNNI, AVX-VNNI, AVX2 and the reference that may run.
    pub fn for_format(format: TernaryFormat) -> Result<Path, QuantError> {
        // Every format has a kernel on every path; `format` stays in the signature for formats
        // that will not.
        let _ = format;
        for path in [Path::Avx512Vnni, Path::AvxVnni, Path::Avx2] {
            if path.available()? {
                return Ok(path);
            }
        }
        Ok(Path::Reference)
    }

    /// Whether this CPU, under the active ceiling, may run the path.
    pub fn available(self) -> Result<bool, QuantError> {
        let level = Level::active()?;
        let _ = level;
        #[cfg(target_arch = "x86_64")]
        {
            use bitnet_simd::dispatch::{Avx512VnniToken, AvxVnniToken};
            return Ok(match self {
                Path::Avx512Vnni | Path::Avx512VnniYmm => Avx512VnniToken::get()?.is_some(),
                Path::AvxVnni => AvxVnniToken::get()?.is_some(),
                Path::Avx2 => matches!(level, Level::Avx2(_) | Level::Avx512(_)),
                Path::Reference => true,
            });
        }
        #[allow(unreachable_code)]
        Ok(self == Path::Reference)
    }

    /// `Ok` if the path may run, else the error a forced call returns.
    pub(crate) fn check(self) -> Result<(), QuantError> {
        if self.available()? {
            Ok(())
        } else {
            Err(QuantError::Invalid {
                what: "kernel path",
                reason: format!(
                    "{self:?} needs CPU features this machine or the ISA ceiling does not allow"
                ),
            })
        }
    }
}

/// Calls the 256-bit kernel `$f` of a ymm path (`Avx512VnniYmm`, `AvxVnni` or `Avx2`).
#[cfg(target_arch = "x86_64")]
macro_rules! ymm {
    ($path:expr, $f:ident($($arg:expr),*)) => {
        // SAFETY: a path runs only after `Path::check` found its CPU features (the AVX2 level
        // includes FMA and F16C; the VNNI tokens include it).
        unsafe {
            match $path {
                Path::Avx512VnniYmm => avx_vnni::evex::$f($($arg),*),
                Path::AvxVnni => avx_vnni::$f($($arg),*),
                _ => avx2::$f($($arg),*),
            }
        }
    };
}

/// Reorders one token's `k` int8 activations for the SIMD loops: each 256-chunk becomes
/// `[q[32g..32g+32], q[128+32g..128+32g+32]]` for g = 0..4 (so that the four 2-bit fields of 64
/// code bytes pair with contiguous activations); a last chunk of 128 stays as it is.
pub fn permute_activations(q: &[i8], out: &mut [i8]) {
    debug_assert_eq!(q.len(), out.len());
    let full = q.len() / 256 * 256;
    for (src, dst) in q[..full]
        .chunks_exact(256)
        .zip(out[..full].chunks_exact_mut(256))
    {
        for g in 0..4 {
            dst[64 * g..64 * g + 32].copy_from_slice(&src[32 * g..32 * g + 32]);
            dst[64 * g + 32..64 * g + 64].copy_from_slice(&src[128 + 32 * g..160 + 32 * g]);
        }
    }
    out[full..].copy_from_slice(&q[full..]);
}

/// Weight index of lane `i` (0..64) at trit step `n` (0..5) of a TQ1_0 block laid out as
/// `[qs[0..48], qh[0..4], 0 × 12]`, or `None` for a lane without a weight.
pub fn tq1_0_lanes(n: usize, i: usize) -> Option<usize> {
    match i {
        0..32 => Some(32 * n + i),
        32..48 => Some(160 + 16 * n + (i - 32)),
        48..52 if n < 4 => Some(240 + 4 * n + (i - 48)),
        _ => None,
    }
}

/// Arranges one 256-block of Q8_K activations for the TQ1_0 kernel: five 64-byte vectors, lane
/// `i` of vector `n` holding the activation of weight [`tq1_0_lanes`]`(n, i)` (0 where none).
pub fn arrange_tq1_0(q: &[i8; 256], out: &mut [i8]) {
    debug_assert_eq!(out.len(), 320);
    for n in 0..5 {
        for i in 0..64 {
            out[n * 64 + i] = tq1_0_lanes(n, i).map_or(0, |w| q[w]);
        }
    }
}

/// `y[r] = W[r] · x` for the one token of `x` (decode), on every core `par` allows.
pub fn gemv(
    w: &TernaryWeights<'_>,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    if x.tokens() != 1 {
        return Err(QuantError::Mismatch {
            what: "tokens of a GEMV",
            left: 1,
            right: x.tokens(),
        });
    }
    gemm(w, x, y, par)
}

/// `y[t * rows + r] = W[r] · x[t]` for every token (`Y = X W^T`, token-major), on every core
/// `par` allows, on the best path for the format ([`Path::for_format`]).
pub fn gemm(
    w: &TernaryWeights<'_>,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_on(Path::for_format(w.format())?, w, x, y, par)
}

/// [`gemm`] on the given path (tests, benchmarks, a user's own choice); an error if this CPU or
/// the ISA ceiling does not allow it ([`Path::available`]).
pub fn gemm_on(
    path: Path,
    w: &TernaryWeights<'_>,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    path.check()?;
    reference::check_pair(w, x)?;
    let (rows, tokens, k) = (w.rows(), x.tokens(), w.k());
    check_len("output", elements(tokens, rows)?, y.len())?;
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    let prepared = Prepared::new(x, k, w.format() == TernaryFormat::Tq1_0);
    let par = par.for_bytes(w.data().len().saturating_mul(tokens));
    drive(rows, tokens, y, par, |r0, n, t0, tn, res| {
        #[cfg(target_arch = "x86_64")]
        if tn == TILE && path == Path::Avx512Vnni && tile_public(w, x, &prepared, r0, n, t0, res) {
            return;
        }
        for (ti, res_t) in res[..tn].iter_mut().enumerate() {
            let (act, blk) = prepared.token(t0 + ti);
            rows_dot(path, w, x, t0 + ti, r0, n, act, blk, res_t);
        }
    });
    Ok(())
}

/// The 2-row × 4-token VNNI tiles for a group of rows of a public I2_S tensor (k a multiple of
/// 256) or a TQ2_0 or TQ1_0 tensor. The Q8_K tiles take their scale products from memory as FMA
/// broadcasts: with the products formed per (row, token, block) in registers (a scalar multiply
/// and a broadcast each) a TQ2_0 tile measured no faster than the per-token kernel.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn tile_public(
    w: &TernaryWeights<'_>,
    x: Activations<'_>,
    prepared: &Prepared<'_>,
    r0: usize,
    n: usize,
    t0: usize,
    res: &mut [[f32; ROWS]; TILE],
) -> bool {
    let acts: [&[i8]; TILE] = std::array::from_fn(|t| prepared.token(t0 + t).0);
    let k = w.k();
    for pair in [0, 2] {
        let rows: [&[u8]; 2] = std::array::from_fn(|i| w.row(r0 + (pair + i).min(n - 1)));
        match (w.format(), x) {
            (TernaryFormat::I2s, Activations::Int8(a)) if k.is_multiple_of(256) => {
                // SAFETY: called only on Path::Avx512Vnni (the token exists).
                let sums = unsafe { avx512vnni::i2s_tile(rows, 64, acts, k / 256) };
                let s = w.tensor_scale().expect("I2_S");
                for (i, sums_r) in sums.iter().enumerate() {
                    for (t, &sumi) in sums_r.iter().enumerate() {
                        let (a_t, q_sum) = (a.scales()[t0 + t], a.sums()[t0 + t]);
                        res[t][pair + i] = reference::finish_i2s(sumi, q_sum, a_t, s);
                    }
                }
            }
            (format, Activations::Q8K(_)) => {
                let (ds, sumqs) = tile_blocks(prepared, t0);
                // The block's bytes and where its f16 scale sits in them.
                let (stride, scale_at) = match format {
                    TernaryFormat::Tq2_0 => (66, 64),
                    _ => (54, 52),
                };
                let dw = |r: usize, b: usize| {
                    let at = b * stride + scale_at;
                    half::f16::from_le_bytes([rows[r][at], rows[r][at + 1]]).to_f32()
                };
                use avx512vnni::{codes, tq_tile};
                // SAFETY: called only on Path::Avx512Vnni.
                let sums = unsafe {
                    if format == TernaryFormat::Tq2_0 {
                        tq_tile::<{ codes::TQ2_0 }, 4>(rows, stride, dw, acts, ds, sumqs)
                    } else {
                        tq_tile::<{ codes::TRITS }, 5>(rows, stride, dw, acts, ds, sumqs)
                    }
                };
                for (i, sums_r) in sums.iter().enumerate() {
                    for (t, &v) in sums_r.iter().enumerate() {
                        res[t][pair + i] = v;
                    }
                }
            }
            _ => return false,
        }
    }
    true
}

/// The block scales and sums of the tile's tokens `t0..t0 + TILE`.
#[cfg(target_arch = "x86_64")]
fn tile_blocks<'p>(
    prepared: &'p Prepared<'_>,
    t0: usize,
) -> ([&'p [f32]; TILE], [&'p [i32]; TILE]) {
    let blocks: [(&[f32], &[i32]); TILE] = std::array::from_fn(|t| prepared.token(t0 + t).1);
    (blocks.map(|b| b.0), blocks.map(|b| b.1))
}

/// [`gemm`] on weights repacked into the native layout ([`NativeTernary`]): the activations
/// pair with the layout's source format (Int8 for I2_S, Q8_K for TQ2_0). Results as [`gemm`]
/// (I2_S bit-identical to the reference, TQ2_0 within the same bound).
pub fn gemm_native(
    w: &NativeTernary,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    gemm_native_on(Path::for_format(w.source())?, w, x, y, par)
}

/// [`gemm_native`] on the given path; an error if it may not run ([`Path::available`]).
pub fn gemm_native_on(
    path: Path,
    w: &NativeTernary,
    x: Activations<'_>,
    y: &mut [f32],
    par: Par,
) -> Result<(), QuantError> {
    path.check()?;
    let pairs = matches!(
        (w.source(), x),
        (TernaryFormat::I2s, Activations::Int8(_)) | (TernaryFormat::Tq2_0, Activations::Q8K(_))
    );
    if !pairs {
        return Err(QuantError::Invalid {
            what: "activations",
            reason: format!(
                "weights repacked from {} do not pair with these activations",
                w.source()
            ),
        });
    }
    if x.k() != w.k() {
        return Err(QuantError::Mismatch {
            what: "k of weights and activations",
            left: w.k(),
            right: x.k(),
        });
    }
    let (rows, tokens, k) = (w.rows(), x.tokens(), w.k());
    check_len("output", elements(tokens, rows)?, y.len())?;
    if rows == 0 || tokens == 0 {
        return Ok(());
    }
    let prepared = Prepared::new(x, k, false);
    let par = par.for_bytes(w.code_bytes().saturating_mul(tokens));
    drive(rows, tokens, y, par, |r0, n, t0, tn, res| {
        let g = r0 / GROUP;
        let group = w.group(g);
        #[cfg(target_arch = "x86_64")]
        let tile = tn == TILE && path == Path::Avx512Vnni && k > 0;
        match (tile, x) {
            (true, Activations::Int8(a)) => return tile_native_i2s(w, a, &prepared, g, t0, res),
            (true, Activations::Q8K(_)) => return tile_native_tq(w, &prepared, g, t0, res),
            _ => {}
        }
        for (ti, res) in res[..tn].iter_mut().enumerate() {
            let t = t0 + ti;
            let (act, (ds, sumqs)) = prepared.token(t);
            match (path, x) {
                #[cfg(target_arch = "x86_64")]
                (
                    Path::Avx512Vnni | Path::Avx512VnniYmm | Path::AvxVnni | Path::Avx2,
                    Activations::Int8(a),
                ) => {
                    let sums = if path == Path::Avx512Vnni {
                        // SAFETY: Path::Avx512Vnni only when the Avx512Vnni token exists.
                        unsafe { avx512vnni::native_i2s_dots(group, act) }
                    } else {
                        ymm!(path, native_i2s_dots(group, act))
                    };
                    let s = w.tensor_scale().expect("I2_S source");
                    for (o, &sumi) in res.iter_mut().zip(&sums) {
                        *o = reference::finish_i2s(sumi, a.sums()[t], a.scales()[t], s);
                    }
                }
                #[cfg(target_arch = "x86_64")]
                (
                    Path::Avx512Vnni | Path::Avx512VnniYmm | Path::AvxVnni | Path::Avx2,
                    Activations::Q8K(_),
                ) => {
                    let scales = w.group_scales(g);
                    *res = if path == Path::Avx512Vnni {
                        // SAFETY: as above.
                        unsafe { avx512vnni::native_tq_dots(group, scales, act, ds, sumqs) }
                    } else {
                        ymm!(path, native_tq_dots(group, scales, act, ds, sumqs))
                    };
                }
                _ => native_reference(w, x, t, r0, n, res),
            }
        }
    });
    Ok(())
}

/// The 2-row × 4-token VNNI tiles for a native row group repacked from I2_S.
#[cfg(target_arch = "x86_64")]
fn tile_native_i2s(
    w: &NativeTernary,
    a: &crate::Int8Activations,
    prepared: &Prepared<'_>,
    g: usize,
    t0: usize,
    res: &mut [[f32; ROWS]; TILE],
) {
    let acts: [&[i8]; TILE] = std::array::from_fn(|t| prepared.token(t0 + t).0);
    let (group, chunks) = (w.group(g), w.k() / 256);
    let s = w.tensor_scale().expect("I2_S source");
    for pair in [0, 2] {
        let rows: [&[u8]; 2] = std::array::from_fn(|i| &group[(pair + i) * 64..]);
        // SAFETY: called only on Path::Avx512Vnni (the token exists).
        let sums = unsafe { avx512vnni::i2s_tile(rows, 256, acts, chunks) };
        for (i, sums_r) in sums.iter().enumerate() {
            for (t, &sumi) in sums_r.iter().enumerate() {
                let (a_t, q_sum) = (a.scales()[t0 + t], a.sums()[t0 + t]);
                res[t][pair + i] = reference::finish_i2s(sumi, q_sum, a_t, s);
            }
        }
    }
}

/// The 2-row × 4-token VNNI tiles for a native row group repacked from TQ2_0.
#[cfg(target_arch = "x86_64")]
fn tile_native_tq(
    w: &NativeTernary,
    prepared: &Prepared<'_>,
    g: usize,
    t0: usize,
    res: &mut [[f32; ROWS]; TILE],
) {
    let acts: [&[i8]; TILE] = std::array::from_fn(|t| prepared.token(t0 + t).0);
    let (ds, sumqs) = tile_blocks(prepared, t0);
    let (group, scales) = (w.group(g), w.group_scales(g));
    for pair in [0, 2] {
        let rows: [&[u8]; 2] = std::array::from_fn(|i| &group[(pair + i) * 64..]);
        let dw = |r: usize, b: usize| scales[b * GROUP + pair + r];
        // SAFETY: called only on Path::Avx512Vnni (the token exists).
        let sums = unsafe {
            {
                use avx512vnni::{codes, tq_tile};
                tq_tile::<{ codes::I2S_ORDER }, 4>(rows, 256, dw, acts, ds, sumqs)
            }
        };
        for (i, sums_r) in sums.iter().enumerate() {
            for (t, &v) in sums_r.iter().enumerate() {
                res[t][pair + i] = v;
            }
        }
    }
}

/// The scalar path of [`gemm_native`]: decode the group's codes and run the reference's
/// arithmetic (bit-identical to [`reference`]).
fn native_reference(
    w: &NativeTernary,
    x: Activations<'_>,
    t: usize,
    r0: usize,
    n: usize,
    res: &mut [f32; ROWS],
) {
    let group = w.group(r0 / GROUP);
    let chunks = w.k() / 256;
    for (lane, o) in res.iter_mut().enumerate().take(n) {
        let codes = |p: usize| -> [u8; 256] {
            let bytes = &group[p * 256 + lane * 64..][..64];
            let lo = crate::formats::i2_s::decode_block(bytes[..32].try_into().expect("32"));
            let hi = crate::formats::i2_s::decode_block(bytes[32..].try_into().expect("32"));
            std::array::from_fn(|j| if j < 128 { lo[j] } else { hi[j - 128] })
        };
        *o = match x {
            Activations::Int8(a) => {
                let q = a.row(t);
                let sumi: i32 = (0..chunks)
                    .map(|p| {
                        let c = codes(p);
                        (0..256)
                            .map(|j| i32::from(c[j]) * i32::from(q[p * 256 + j]))
                            .sum::<i32>()
                    })
                    .sum();
                let s = w.tensor_scale().expect("I2_S source");
                reference::finish_i2s(sumi, a.sums()[t], a.scales()[t], s)
            }
            Activations::Q8K(a) => {
                let scales = w.group_scales(r0 / GROUP);
                let mut sumf = 0f32;
                for (p, blk) in a.row(t).iter().enumerate() {
                    let c = codes(p);
                    let sumi: i32 = (0..256)
                        .map(|j| (i32::from(c[j]) - 1) * i32::from(blk.q[j]))
                        .sum();
                    sumf += sumi as f32 * (blk.d * scales[p * 4 + lane]);
                }
                sumf
            }
        };
    }
}

/// One call's activations in the order the SIMD loops read them: permuted bytes per token (or,
/// for TQ1_0, 320 arranged bytes per block), and for Q8_K each block's scale and `Σq`. Scratch
/// from the pool: a warm call allocates nothing.
struct Prepared<'p> {
    stride: usize,
    nb: usize,
    permuted: Scratch<'p, i8>,
    ds: Scratch<'p, f32>,
    sumqs: Scratch<'p, i32>,
}

impl Prepared<'static> {
    fn new(x: Activations<'_>, k: usize, tq1_0: bool) -> Prepared<'static> {
        let (tokens, nb) = (x.tokens(), k / 256);
        let stride = if tq1_0 { nb * 320 } else { k };
        let pool = ScratchPool::global();
        let mut permuted = pool.take_uninit::<i8>(tokens * stride);
        let mut ds = pool.take_uninit::<f32>(tokens * nb);
        let mut sumqs = pool.take_uninit::<i32>(tokens * nb);
        match x {
            Activations::Int8(a) => {
                for t in 0..tokens {
                    permute_activations(a.row(t), &mut permuted[t * stride..(t + 1) * stride]);
                }
            }
            Activations::Q8K(a) => {
                for t in 0..tokens {
                    for (b, blk) in a.row(t).iter().enumerate() {
                        if tq1_0 {
                            let dst = &mut permuted[t * stride + b * 320..][..320];
                            arrange_tq1_0(&blk.q, dst);
                        } else {
                            let dst = &mut permuted[t * stride + b * 256..][..256];
                            permute_activations(&blk.q, dst);
                        }
                        ds[t * nb + b] = blk.d;
                        sumqs[t * nb + b] = blk.bsums.iter().map(|&s| i32::from(s)).sum();
                    }
                }
            }
        }
        Prepared {
            stride,
            nb,
            permuted,
            ds,
            sumqs,
        }
    }
}

impl Prepared<'_> {
    /// Token `t`'s permuted activations and its blocks' `(d, Σq)`.
    fn token(&self, t: usize) -> (&[i8], (&[f32], &[i32])) {
        let (stride, nb) = (self.stride, self.nb);
        (
            &self.permuted[t * stride..(t + 1) * stride],
            (
                &self.ds[t * nb..(t + 1) * nb],
                &self.sumqs[t * nb..(t + 1) * nb],
            ),
        )
    }
}

/// Tokens a GEMM handles together (each weight decode serves all of them).
pub(crate) const TILE: usize = 4;

/// Splits `rows` across `par`'s threads in groups of [`ROWS`] and, for each group and tile of up
/// to [`TILE`] tokens starting at `t0`, stores what `f(r0, n, t0, tn, res)` leaves in
/// `res[ti][..n]` at `y[(t0 + ti) * rows + r0 + i]`.
pub(crate) fn drive(
    rows: usize,
    tokens: usize,
    y: &mut [f32],
    par: Par,
    f: impl Fn(usize, usize, usize, usize, &mut [[f32; ROWS]; TILE]) + Sync,
) {
    debug_assert_eq!(y.len(), rows * tokens);
    let out = SharedOut::new(y.as_mut_ptr());
    par.for_each_range(rows.div_ceil(ROWS), 4, |groups| {
        for g in groups {
            let (r0, n) = (g * ROWS, ROWS.min(rows - g * ROWS));
            for t0 in (0..tokens).step_by(TILE) {
                let tn = TILE.min(tokens - t0);
                let mut res = [[0f32; ROWS]; TILE];
                f(r0, n, t0, tn, &mut res);
                for (ti, row_res) in res[..tn].iter().enumerate() {
                    for (i, &v) in row_res[..n].iter().enumerate() {
                        // SAFETY: (t0 + ti, r0 + i) is inside y (length rows * tokens, checked
                        // by the callers); this task owns row group g, so no other thread
                        // writes it.
                        unsafe { *out.at((t0 + ti) * rows + r0 + i) = v };
                    }
                }
            }
        }
    });
}

/// Outputs `r0..r0 + n` (n ≤ ROWS) of token `t` into `res`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn rows_dot(
    path: Path,
    w: &TernaryWeights<'_>,
    x: Activations<'_>,
    t: usize,
    r0: usize,
    n: usize,
    act: &[i8],
    (ds, sumqs): (&[f32], &[i32]),
    res: &mut [f32; ROWS],
) {
    // Short groups repeat their last row (computed, not stored).
    let rows: [&[u8]; ROWS] = std::array::from_fn(|i| w.row(r0 + i.min(n - 1)));
    match (path, w.format(), x) {
        #[cfg(target_arch = "x86_64")]
        (
            Path::Avx512Vnni | Path::Avx512VnniYmm | Path::AvxVnni | Path::Avx2,
            TernaryFormat::I2s,
            Activations::Int8(a),
        ) => {
            let sums = if path == Path::Avx512Vnni {
                // SAFETY: Path::Avx512Vnni runs only when the Avx512Vnni token exists (CPU and
                // ceiling allow AVX-512 F/BW/VL + VNNI).
                unsafe { avx512vnni::i2s_dots(&rows, act) }
            } else {
                ymm!(path, i2s_dots(&rows, act))
            };
            let s = w.tensor_scale().expect("I2_S");
            let (a_t, q_sum) = (a.scales()[t], a.sums()[t]);
            for (o, &sumi) in res.iter_mut().zip(&sums) {
                // The reference's float steps, so the result is bit-identical.
                *o = reference::finish_i2s(sumi, q_sum, a_t, s);
            }
        }
        #[cfg(target_arch = "x86_64")]
        (
            Path::Avx512Vnni | Path::Avx512VnniYmm | Path::AvxVnni | Path::Avx2,
            TernaryFormat::Tq2_0,
            Activations::Q8K(_),
        ) => {
            *res = if path == Path::Avx512Vnni {
                // SAFETY: as above (the token's level includes F16C: bitnet-simd checks it).
                unsafe { avx512vnni::tq2_0_dots(&rows, act, ds, sumqs) }
            } else {
                ymm!(path, tq2_0_dots(&rows, act, ds, sumqs))
            };
        }
        #[cfg(target_arch = "x86_64")]
        (
            Path::Avx512Vnni | Path::Avx512VnniYmm | Path::AvxVnni | Path::Avx2,
            TernaryFormat::Tq1_0,
            Activations::Q8K(_),
        ) => {
            *res = if path == Path::Avx512Vnni {
                // SAFETY: as above.
                unsafe { avx512vnni::tq1_0_dots(&rows, act, ds, sumqs) }
            } else {
                ymm!(path, tq1_0_dots(&rows, act, ds, sumqs))
            };
        }
        _ => {
            for (i, o) in res.iter_mut().enumerate().take(n) {
                *o = reference::dot_checked(w, r0 + i, x, t);
            }
        }
    }
}
