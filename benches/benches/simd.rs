//! Benchmarks of the bitnet-simd infrastructure (filled below).
fn main() {}
