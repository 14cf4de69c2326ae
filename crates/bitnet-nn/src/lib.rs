//! Neural-network operations for bitnet-rs.
//!
//! This crate will hold activations, softmax, norms, RoPE, attention and convolution, written
//! once over `pulp` and dispatched through [`bitnet_simd`]. It is filled by its own issue; for now
//! it only re-exports the parallelism argument its API will take.
#![deny(unsafe_op_in_unsafe_fn)]

pub use bitnet_simd::Par;
