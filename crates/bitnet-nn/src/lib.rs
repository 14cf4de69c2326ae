//! Neural-network operations of bitnet-rs: activations, elementwise operations, reductions,
//! softmax and normalisation, written once over `pulp` and dispatched through [`bitnet_simd`]
//! (the active ISA ceiling; tests force every level this machine has). Every function checks
//! its arguments and returns [`NnError`] on bad input; every kernel has an f64 reference in
//! [`reference`](mod@reference) and a stated error bound, tested on every level.
//!
//! - [`act`]: [`Activation`] (ReLU, squared ReLU, GELU erf / tanh / fast, sigmoid, SiLU, mish),
//!   clamp, scale, the residual add and the fused add + ReLU, `exp` in place; in place and out
//!   of place.
//! - [`reduce`]: sum (blocked pairwise, or compensated), dot, max; over cores above 128 KiB per
//!   thread.
//! - [`softmax`]: softmax and log-softmax of matrix rows, in place, with the exact or fast `exp`.
//! - [`norm`]: RMSNorm, LayerNorm, the residual add + RMSNorm and RMSNorm + int8 quantization.
//! - [`rope`]: rotary position embedding, half-split and interleaved.
//! - [`attention`]: a KV cache (f32 or f16), flash-style and naive scaled dot-product attention,
//!   causal and grouped-query.
//! - [`conv`]: 2-D convolution, direct, im2col + GEMM and Winograd F(2×2, 3×3).
//!
//! Error bounds: the activations and `exp` in [`act`] (a table, with the measured errors), the
//! reductions in [`reduce`], softmax in [`softmax`], the norms in [`norm`].

#![deny(unsafe_op_in_unsafe_fn)]

pub mod act;
pub mod attention;
pub mod conv;
mod error;
mod map;
mod math;
pub mod norm;
pub mod reduce;
pub mod reference;
pub mod rope;
pub mod softmax;

pub use act::{Activation, ExpKind};
pub use bitnet_simd::Par;
pub use error::NnError;
