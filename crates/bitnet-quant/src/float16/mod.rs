//! f16 and bf16: bulk conversions from and to f32 on every x86 level, exactly as the `half`
//! crate converts one value (round to nearest even, NaN stays NaN), and the GEMV/GEMM of f16 and
//! bf16 weights with f32 accumulation ([`gemm_f16`], [`gemm_bf16_f32`], [`gemm_bf16`] with
//! AVX-512 BF16's `vdpbf16ps`).
//!
//! | [`ConvertPath`] | f16 ↔ f32 | bf16 → f32 | f32 → bf16 |
//! |---|---|---|---|
//! | `Avx512Bf16` | as `Avx512` | as `Avx512` | `vcvtne2ps2bf16`: subnormals flushed (below) |
//! | `Avx512` | `vcvtph2ps` / `vcvtps2ph` zmm | zero-extend, quiet NaNs, shift | integer RNE on zmm |
//! | `Avx2` | F16C on ymm | zero-extend, quiet NaNs, shift | integer RNE on ymm |
//! | `Scalar` | `half` | `half` | `half` |
//!
//! Widening is exact; a signaling NaN comes back quiet (its quiet bit set, sign and payload
//! kept), as F16C and `half` do it. Every path but `Avx512Bf16` returns the bits `half` returns
//! for every input (tested
//! exhaustively over the 65,536 16-bit values and on f32 edge cases and random bits).
//! Integer RNE: `bf16 = (x + 0x7FFF + ((x >> 16) & 1)) >> 16` on the f32 bits `x`, and a NaN
//! becomes `(x >> 16) | 0x0040` (quiet, sign and top payload kept); finite values that round
//! past the largest bf16 become ±inf.
//!
//! `vcvtne2ps2bf16` (AVX-512 BF16) rounds to nearest even and quiets NaNs too, but by its
//! definition it does not consult MXCSR and flushes subnormal f32 inputs and subnormal bf16
//! results to zero of the same sign; [`ConvertPath::best`] therefore never picks it, and its
//! results are tested to be the exact ones except for exactly those values.
//!
//! AVX-512 FP16 is not used: its conversions have the width of AVX-512F's `vcvtph2ps`.

mod gemm;
#[cfg(target_arch = "x86_64")]
mod packed;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

pub use gemm::{gemm_bf16, gemm_bf16_f32, gemm_bf16_f32_on, gemm_bf16_on, gemm_f16, gemm_f16_on};

use bitnet_simd::Level;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use crate::error::{QuantError, check_len};

/// The kernel set a conversion runs on (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvertPath {
    /// AVX-512 with AVX-512 BF16's `vcvtne2ps2bf16` for f32 → bf16 (flushes subnormals).
    Avx512Bf16,
    /// AVX-512 F/BW/VL.
    Avx512,
    /// AVX2 with F16C (x86-64-v3).
    Avx2,
    /// Portable Rust through `half`.
    Scalar,
}

impl ConvertPath {
    /// Every path, widest first.
    pub const ALL: [ConvertPath; 4] = [
        ConvertPath::Avx512Bf16,
        ConvertPath::Avx512,
        ConvertPath::Avx2,
        ConvertPath::Scalar,
    ];

    /// The widest exact path the active ceiling allows (never `Avx512Bf16`: module docs).
    pub fn best() -> Result<ConvertPath, QuantError> {
        for path in [ConvertPath::Avx512, ConvertPath::Avx2] {
            if path.available()? {
                return Ok(path);
            }
        }
        Ok(ConvertPath::Scalar)
    }

    /// Whether this CPU, under the active ceiling, may run the path.
    pub fn available(self) -> Result<bool, QuantError> {
        let level = Level::active()?;
        let _ = level;
        #[cfg(target_arch = "x86_64")]
        {
            return Ok(match self {
                ConvertPath::Avx512Bf16 => bitnet_simd::dispatch::Avx512Bf16Token::get()?.is_some(),
                ConvertPath::Avx512 => matches!(level, Level::Avx512(_)),
                ConvertPath::Avx2 => matches!(level, Level::Avx2(_) | Level::Avx512(_)),
                ConvertPath::Scalar => true,
            });
        }
        #[allow(unreachable_code)]
        Ok(self == ConvertPath::Scalar)
    }

    /// An error unless [`ConvertPath::available`].
    fn check(self) -> Result<(), QuantError> {
        if self.available()? {
            Ok(())
        } else {
            Err(QuantError::Invalid {
                what: "conversion path",
                reason: format!("{self:?} is not available on this CPU under the active ceiling"),
            })
        }
    }
}

/// `dst[i] = f16(src[i])` (round to nearest even) on the best path.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) -> Result<(), QuantError> {
    f32_to_f16_on(ConvertPath::best()?, src, dst)
}

/// `dst[i] = f32(src[i])` (exact) on the best path.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) -> Result<(), QuantError> {
    f16_to_f32_on(ConvertPath::best()?, src, dst)
}

/// `dst[i] = bf16(src[i])` (round to nearest even, NaN stays NaN) on the best path.
pub fn f32_to_bf16(src: &[f32], dst: &mut [bf16]) -> Result<(), QuantError> {
    f32_to_bf16_on(ConvertPath::best()?, src, dst)
}

/// `dst[i] = f32(src[i])` (exact) on the best path.
pub fn bf16_to_f32(src: &[bf16], dst: &mut [f32]) -> Result<(), QuantError> {
    bf16_to_f32_on(ConvertPath::best()?, src, dst)
}

/// [`f32_to_f16`] on `path`; an error where it may not run or the lengths differ.
pub fn f32_to_f16_on(path: ConvertPath, src: &[f32], dst: &mut [f16]) -> Result<(), QuantError> {
    check_len("dst", src.len(), dst.len())?;
    path.check()?;
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        x86::f32_to_f16(path, src, dst.reinterpret_cast_mut());
        return Ok(());
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(s);
    }
    Ok(())
}

/// [`f16_to_f32`] on `path`; an error where it may not run or the lengths differ.
pub fn f16_to_f32_on(path: ConvertPath, src: &[f16], dst: &mut [f32]) -> Result<(), QuantError> {
    check_len("dst", src.len(), dst.len())?;
    path.check()?;
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        x86::f16_to_f32(path, src.reinterpret_cast(), dst);
        return Ok(());
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
    Ok(())
}

/// [`f32_to_bf16`] on `path`; an error where it may not run or the lengths differ.
pub fn f32_to_bf16_on(path: ConvertPath, src: &[f32], dst: &mut [bf16]) -> Result<(), QuantError> {
    check_len("dst", src.len(), dst.len())?;
    path.check()?;
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        x86::f32_to_bf16(path, src, dst.reinterpret_cast_mut());
        return Ok(());
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16::from_f32(s);
    }
    Ok(())
}

/// [`bf16_to_f32`] on `path`; an error where it may not run or the lengths differ.
pub fn bf16_to_f32_on(path: ConvertPath, src: &[bf16], dst: &mut [f32]) -> Result<(), QuantError> {
    check_len("dst", src.len(), dst.len())?;
    path.check()?;
    #[cfg(target_arch = "x86_64")]
    if path != ConvertPath::Scalar {
        x86::bf16_to_f32(path, src.reinterpret_cast(), dst);
        return Ok(());
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
    Ok(())
}
