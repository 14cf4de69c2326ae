//! The portable vector layer of bitnet-rs.
//!
//! Everything in bitnet-rs that depends on the CPU goes through this crate:
//! - [`features`]: runtime CPU feature detection, once per process ([`CpuFeatures`]).
//! - [`isa`]: dispatch levels ([`Isa`]), extensions, and forcing (`BITNET_ISA`, [`with_isa`]).
//! - [`dispatch`]: running a `pulp` kernel at the active level, and extension tokens for
//!   per-ISA leaf kernels (VNNI, AVX-VNNI, BF16, VPOPCNTDQ, VBMI).
//! - [`par`]: the parallelism argument every kernel takes ([`Par`]).
//! - [`cache`]: cache sizes and core count for block-size selection ([`CacheInfo`]).
//! - [`buf`]: 64-byte aligned buffers ([`AlignedVec`]) and a pool of reusable scratch buffers
//!   ([`ScratchPool`]).
//! - [`mem`]: vectorised copy (including a non-temporal copy) and fill.
//! - [`affinity`]: opt-in thread pinning; [`timer`]: timing and statistics.
//!
//! Kernels accept data at any address: alignment may make a path faster, never decides whether it
//! is correct.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod affinity;
pub mod buf;
pub mod cache;
pub mod dispatch;
pub mod error;
pub mod features;
pub mod isa;
pub mod mem;
pub mod par;
pub mod timer;
pub mod transpose;

pub use buf::aligned::AlignedVec;
pub use buf::pool::{Scratch, ScratchPool};
pub use cache::CacheInfo;
pub use dispatch::{Level, dispatch};
pub use error::IsaError;
pub use features::CpuFeatures;
pub use isa::{Ceiling, ExtSet, Extension, Isa, with_ceiling, with_isa};
pub use par::Par;

/// The `pulp` crate this layer is built on, re-exported so kernels name the same version.
pub use pulp;

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
