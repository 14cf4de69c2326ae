//! Packed weight formats of bitnet-rs and their kernels.
//!
//! - [`ternary`]: BitNet b1.58 absmean quantization of weights to {-1, 0, +1} with per-tensor,
//!   per-row or per-block scales.
//! - [`activations`]: per-token (or per-tensor) absmax quantization of activations to int8, with
//!   the sums the unsigned-code kernels need.
//! - [`formats`]: byte-compatible packed layouts: ggml's TQ2_0, TQ1_0 and Q8_K, bitnet.cpp's
//!   I2_S (documented byte by byte in `docs/FORMATS.md`).
//! - [`reference`]: the exact scalar dot/GEMV/GEMM of every ternary format.
//! - [`binary`]: 1-bit weights (sign with a mean-absolute scale), packed into u64 words, and
//!   XNOR-popcount kernels.
//!
//! Every public function checks its arguments and returns [`QuantError`] on bad input.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod activations;
pub mod binary;
pub mod error;
pub mod formats;
pub mod reference;
pub mod ternary;

pub use activations::{ActScale, Int8Activations};
pub use bitnet_simd::Par;
pub use error::QuantError;
pub use formats::q8_k::{BlockQ8K, Q8KActivations};
pub use formats::{PackedTernary, TernaryFormat, TernaryWeights};
pub use reference::Activations;
pub use ternary::{ScaleGroup, TernaryMatrix};
