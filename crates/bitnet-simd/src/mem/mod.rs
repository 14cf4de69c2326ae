//! Vectorised memory operations: copy, non-temporal copy, fill; software prefetch.
//!
//! The copies and the fill take slices at any address and check lengths, returning [`MemError`]
//! on mismatch; the prefetch hints take any address and cannot fail.

mod arch;
pub mod copy;
pub mod fill;
pub mod prefetch;

pub use copy::{copy, copy_cached, copy_nontemporal, nontemporal_threshold};
pub use fill::fill;
pub use prefetch::{Ahead, prefetch};

/// Why a memory operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// Source and destination lengths differ.
    #[error("length mismatch: destination has {dst} elements, source {src}")]
    LengthMismatch {
        /// Destination length.
        dst: usize,
        /// Source length.
        src: usize,
    },
    /// The ISA ceiling could not be resolved.
    #[error(transparent)]
    Isa(#[from] crate::IsaError),
}
