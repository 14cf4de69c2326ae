//! Runtime dispatch of kernels to the active level, on top of `pulp`.
//!
//! A kernel is written once as a struct implementing [`pulp::WithSimd`] with an
//! `#[inline(always)]` generic body; [`dispatch`] compiles it per level (pulp's `Scalar`, `V3`,
//! `V4`, `Neon`) and runs the copy that matches the active ceiling ([`crate::isa`]).
//!
//! A kernel that needs one instruction outside its level (VNNI, AVX-VNNI, BF16 dot, VPOPCNTDQ,
//! VBMI) lives in a per-ISA leaf file as a `#[target_feature]` function and asks for the matching
//! *token* ([`Avx512VnniToken`], …): the token's constructor returns `Some` only when the CPU has
//! the extension **and** the active ceiling allows it, so holding a token is the proof the leaf
//! may be called.
//!
//! ```
//! use bitnet_simd::dispatch::dispatch;
//! use bitnet_simd::pulp::{Simd, WithSimd};
//!
//! struct Sum<'a>(&'a [f32]);
//! impl WithSimd for Sum<'_> {
//!     type Output = f32;
//!     #[inline(always)]
//!     fn with_simd<S: Simd>(self, simd: S) -> f32 {
//!         let (head, tail) = S::as_simd_f32s(self.0);
//!         let mut acc = simd.splat_f32s(0.0);
//!         for &v in head {
//!             acc = simd.add_f32s(acc, v);
//!         }
//!         simd.reduce_sum_f32s(acc) + tail.iter().sum::<f32>()
//!     }
//! }
//! let data = vec![1.0f32; 100];
//! assert_eq!(dispatch(Sum(&data)).unwrap(), 100.0);
//! ```

use pulp::WithSimd;

use crate::error::IsaError;
use crate::features::CpuFeatures;
use crate::isa::{Extension, Isa, active_isa};

/// A level together with the pulp token that proves the machine can run it.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    /// pulp's portable scalar level.
    Scalar,
    /// x86-64-v3 (AVX2 + FMA).
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    /// x86-64-v4 (AVX-512).
    #[cfg(target_arch = "x86_64")]
    Avx512(pulp::x86::V4),
    /// aarch64 NEON (unverified: compiled and tested only on aarch64 machines).
    #[cfg(target_arch = "aarch64")]
    Neon(pulp::aarch64::Neon),
}

impl Level {
    /// The level for the active ceiling on this thread.
    #[inline]
    pub fn active() -> Result<Level, IsaError> {
        Level::of(active_isa()?)
    }

    /// The token of a given level, or [`IsaError::Unavailable`] if this machine lacks it.
    ///
    /// This ignores the ceiling: use it to run a kernel at a level the caller already resolved
    /// (e.g. inside a worker thread).
    pub fn of(isa: Isa) -> Result<Level, IsaError> {
        let unavailable = || IsaError::Unavailable {
            requested: isa,
            best: Isa::best_supported(),
        };
        match isa {
            Isa::Scalar => Ok(Level::Scalar),
            #[cfg(target_arch = "x86_64")]
            // Each x86 level also needs F16C (`CpuFeatures::x86_64_v3` explains why).
            Isa::Avx2 => pulp::x86::V3::try_new()
                .filter(|_| CpuFeatures::get().f16c)
                .map(Level::Avx2)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => pulp::x86::V4::try_new()
                .filter(|_| CpuFeatures::get().f16c)
                .map(Level::Avx512)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => pulp::aarch64::Neon::try_new()
                .map(Level::Neon)
                .ok_or_else(unavailable),
            #[allow(unreachable_patterns)]
            _ => Err(unavailable()),
        }
    }

    /// Which level this is.
    pub fn isa(self) -> Isa {
        match self {
            Level::Scalar => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(_) => Isa::Avx2,
            #[cfg(target_arch = "x86_64")]
            Level::Avx512(_) => Isa::Avx512,
            #[cfg(target_arch = "aarch64")]
            Level::Neon(_) => Isa::Neon,
        }
    }

    /// Runs `op` compiled for this level.
    #[inline(always)]
    pub fn run<Op: WithSimd>(self, op: Op) -> Op::Output {
        use pulp::Simd;
        match self {
            Level::Scalar => Simd::vectorize(pulp::Scalar::new(), op),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(v3) => Simd::vectorize(v3, op),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512(v4) => Simd::vectorize(v4, op),
            #[cfg(target_arch = "aarch64")]
            Level::Neon(neon) => Simd::vectorize(neon, op),
        }
    }
}

/// Runs `op` at the active level of this thread (the `BITNET_ISA` ceiling or a per-call
/// override, else the best this machine has).
#[inline]
pub fn dispatch<Op: WithSimd>(op: Op) -> Result<Op::Output, IsaError> {
    Ok(Level::active()?.run(op))
}

macro_rules! extension_token {
    ($(#[$doc:meta])* $name:ident, $ext:expr) => {
        $(#[$doc])*
        ///
        /// Obtainable only through `get`, which checks the CPU and the active ceiling; holding
        /// one is the proof that the leaf functions needing the extension may be called.
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            _proof: (),
        }

        impl $name {
            /// The extension this token proves.
            pub const EXTENSION: Extension = $ext;

            /// `Some` when the machine has the extension and the active ceiling allows it.
            #[inline]
            pub fn get() -> Result<Option<$name>, IsaError> {
                Ok(Self::EXTENSION.is_enabled()?.then_some($name { _proof: () }))
            }
        }
    };
}

extension_token!(
    /// Proof of AVX-512 VNNI on top of x86-64-v4: `target_feature`s
    /// `avx512f,avx512bw,avx512vl,avx512dq,avx512vnni` may be used.
    Avx512VnniToken,
    Extension::Avx512Vnni
);
extension_token!(
    /// Proof of AVX-VNNI on top of x86-64-v3: `target_feature`s `avx2,fma,avxvnni` may be used.
    AvxVnniToken,
    Extension::AvxVnni
);
extension_token!(
    /// Proof of AVX-512 BF16 on top of x86-64-v4: `target_feature`s
    /// `avx512f,avx512bw,avx512vl,avx512bf16` may be used.
    Avx512Bf16Token,
    Extension::Avx512Bf16
);
extension_token!(
    /// Proof of AVX-512 VPOPCNTDQ on top of x86-64-v4: `target_feature`s
    /// `avx512f,avx512bw,avx512vl,avx512vpopcntdq` may be used.
    Avx512VpopcntdqToken,
    Extension::Avx512Vpopcntdq
);
extension_token!(
    /// Proof of AVX-512 VBMI on top of x86-64-v4: `target_feature`s
    /// `avx512f,avx512bw,avx512vl,avx512vbmi` may be used.
    Avx512VbmiToken,
    Extension::Avx512Vbmi
);
