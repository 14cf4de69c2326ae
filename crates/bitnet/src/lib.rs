//! bitnet-rs: fast, verified CPU kernels for 1-bit and 1.58-bit (ternary, BitNet b1.58) LLM
//! inference.
//!
//! This facade re-exports the layers, so one dependency reaches everything:
//! - [`simd`]: CPU feature detection, ISA dispatch and forcing, parallelism, aligned buffers.
//! - [`gemm`]: f32 GEMM/GEMV.
//! - [`quant`]: packed ternary, binary and quantized formats and their kernels.
//! - [`nn`]: activations, norms, softmax, RoPE, attention, convolution.
//!
//! Each layer is also its own crate (`bitnet-simd`, …) for users who need only one.
//!
//! ```
//! let isa = bitnet::simd::Isa::best_supported();
//! println!("kernels here run at the `{isa}` level");
//! ```

pub use bitnet_gemm as gemm;
pub use bitnet_nn as nn;
pub use bitnet_quant as quant;
pub use bitnet_simd as simd;
