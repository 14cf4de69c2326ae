//! The error type of `bitnet-simd`.

use crate::isa::{Extension, Isa};

/// Why an ISA level or extension could not be selected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    /// A level was forced (by `BITNET_ISA` or a per-call override) that this machine cannot run.
    #[error("ISA level `{requested}` was forced but this CPU can only run up to `{best}`")]
    Unavailable {
        /// The level asked for.
        requested: Isa,
        /// The best level this machine has.
        best: Isa,
    },
    /// A per-call override asked for a level above the process-wide `BITNET_ISA` ceiling.
    #[error("ISA level `{requested}` is above the BITNET_ISA ceiling `{ceiling}`")]
    AboveCeiling {
        /// The level asked for.
        requested: Isa,
        /// The ceiling set by `BITNET_ISA`.
        ceiling: Isa,
    },
    /// An extension was forced on that this machine or the active ceiling does not allow.
    #[error("ISA extension `{0}` was forced but is not available under the active ceiling")]
    ExtensionUnavailable(Extension),
    /// `BITNET_ISA` holds a value that names no level.
    #[error("BITNET_ISA={value:?} is not a level; expected one of: scalar, neon, avx2, avx512")]
    UnknownName {
        /// The value found in the environment.
        value: String,
    },
}
