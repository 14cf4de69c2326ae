//! f32 matrix multiplication for bitnet-rs.
//!
//! This crate will hold the GEMM/GEMV family (naive and i-k-j references, blocked, packed
//! BLIS-style microkernels per ISA, cache-oblivious, Strassen, batched, rayon-parallel), each
//! dispatched through [`bitnet_simd`]. It is filled by its own issue; for now it only re-exports
//! the parallelism argument its API will take.
#![deny(unsafe_op_in_unsafe_fn)]

pub use bitnet_simd::Par;
