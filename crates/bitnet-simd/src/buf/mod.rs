//! Aligned buffers and the scratch pool.

pub mod aligned;
pub mod pool;
