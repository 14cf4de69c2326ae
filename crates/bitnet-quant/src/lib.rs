//! Packed weight formats of bitnet-rs and their kernels.
//!
//! - [`ternary`]: BitNet b1.58 absmean quantization of weights to {-1, 0, +1} with per-tensor,
//!   per-row or per-block scales.
//! - [`activations`]: per-token (or per-tensor) absmax quantization of activations to int8, with
//!   the sums the unsigned-code kernels need.
//! - [`formats`]: byte-compatible packed layouts: ggml's TQ2_0, TQ1_0 and Q8_K, bitnet.cpp's
//!   I2_S (documented byte by byte in `docs/FORMATS.md`).
//! - [`reference`](mod@reference): the exact scalar dot/GEMV/GEMM of every ternary format.
//! - [`kernels`]: the fast GEMV/GEMM (AVX-512 VNNI, AVX2), parallel over rows.
//! - [`group`]: the log's 2/4-bit group formats and ggml's Q4_0, Q4_1, Q8_0, Q4_K, Q6_K
//!   (byte-compatible), with their int8-activation kernels.
//! - [`binary`]: 1-bit weights (sign with a mean-absolute scale), packed into u64 words, and
//!   XNOR-popcount kernels.
//!
//! Every public function checks its arguments and returns [`QuantError`] on bad input (shapes,
//! lengths, non-finite values, malformed packed bytes); only the index accessors (`row(r)`,
//! `scale_at(r, c)`, …) panic on an index out of range, as slice indexing does, and say so.
//! Activation rows are limited to [`MAX_K`] values, so that every integer sum is exact in i32.
//!
//! ```
//! use bitnet_quant::reference::{gemv, Activations};
//! use bitnet_quant::{PackedTernary, Q8KActivations, TernaryFormat, TernaryWeights};
//!
//! // A 2 x 256 weight matrix packed as TQ2_0 (what a GGUF file holds), one token of activations.
//! let w: Vec<f32> = (0..512).map(|i| [-0.5, 0.0, 0.5][i % 3]).collect();
//! let packed = PackedTernary::quantize(TernaryFormat::Tq2_0, &w, 2, 256)?;
//! // Bytes read from a file are checked once, then the view goes to the kernels.
//! let weights = TernaryWeights::new(TernaryFormat::Tq2_0, packed.bytes(), 2, 256)?;
//! let x = Q8KActivations::quantize(&vec![1.0; 256], 1, 256)?;
//! let mut y = [0f32; 2];
//! gemv(&weights, Activations::Q8K(&x), &mut y)?;
//! assert!((y[0] - w[..256].iter().sum::<f32>()).abs() < 1e-3);
//! # Ok::<(), bitnet_quant::QuantError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod activations;
pub mod binary;
pub mod error;
pub mod float16;
pub mod formats;
pub mod group;
pub mod int8;
pub mod kernels;
pub mod lut;
#[cfg(target_arch = "x86_64")]
mod quantize_avx2;
#[cfg(target_arch = "x86_64")]
mod quantize_avx512;
pub mod reference;
pub mod sparse;
pub mod ternary;

/// The most values per activation row (and so per weight row a kernel accepts): with
/// `|q| ≤ 128` and codes ≤ 2, `Σ code · q` stays below 2^30.
pub const MAX_K: usize = 1 << 22;

pub use activations::{ActScale, Int8Activations};
pub use bitnet_simd::Par;
pub use error::QuantError;
pub use formats::q8_k::{BlockQ8K, Q8KActivations};
pub use formats::{PackedTernary, TernaryFormat, TernaryWeights};
pub use group::{GroupFormat, GroupSpec, GroupWeights, PackedGroup, Q8x32Activations};
pub use reference::Activations;
pub use ternary::{ScaleGroup, TernaryMatrix};
