//! Packed weight formats and their kernels for bitnet-rs.
//!
//! This crate will hold the ternary (BitNet b1.58: TQ1_0, TQ2_0, I2_S and a native layout),
//! binary, group-quantized, int8, bf16/f16 and sparse formats with their GEMV/GEMM kernels, each
//! dispatched through [`bitnet_simd`]. It is filled by its own issues; for now it only re-exports
//! the parallelism argument its API will take.
#![deny(unsafe_op_in_unsafe_fn)]

pub use bitnet_simd::Par;
