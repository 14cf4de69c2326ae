//! The error type of every fallible function of this crate.

use thiserror::Error;

/// What went wrong, precisely enough to fix the call.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NnError {
    /// A slice does not have the length the shape requires.
    #[error("{what}: expected {expected} elements, got {got}")]
    Length {
        /// Which argument.
        what: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length passed.
        got: usize,
    },
    /// A slice that is not a whole number of rows.
    #[error("{what}: {len} elements is not a whole number of rows of {cols}")]
    Rows {
        /// Which argument.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The row length.
        cols: usize,
    },
    /// A parameter outside its domain (a negative epsilon, `lo > hi`, …).
    #[error("{what}: {reason}")]
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The requested or active ISA level cannot run here.
    #[error(transparent)]
    Isa(#[from] bitnet_simd::IsaError),
    /// An error of a `bitnet-gemm` call (a convolution's GEMM).
    #[error(transparent)]
    Gemm(#[from] bitnet_gemm::GemmError),
    /// An error of the `bitnet-quant` step of a fused operation.
    #[error(transparent)]
    Quant(#[from] bitnet_quant::QuantError),
}

/// `got == expected`, else [`NnError::Length`].
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), NnError> {
    if got == expected {
        Ok(())
    } else {
        Err(NnError::Length {
            what,
            expected,
            got,
        })
    }
}

/// The number of rows of `cols` in `len` elements: an error unless `cols > 0` divides `len`
/// (`cols == 0` is allowed only for `len == 0`, which has no rows).
pub(crate) fn rows_of(what: &'static str, len: usize, cols: usize) -> Result<usize, NnError> {
    if cols == 0 {
        return if len == 0 {
            Ok(0)
        } else {
            Err(NnError::Rows { what, len, cols })
        };
    }
    if len.is_multiple_of(cols) {
        Ok(len / cols)
    } else {
        Err(NnError::Rows { what, len, cols })
    }
}
