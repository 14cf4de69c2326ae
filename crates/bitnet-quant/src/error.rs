//! The error type of every fallible function of this crate.

use thiserror::Error;

/// What went wrong, precisely enough to fix the call.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum QuantError {
    /// A slice does not have the length the shape or format requires.
    #[error("{what}: expected {expected} elements/bytes, got {got}")]
    Length {
        /// Which argument.
        what: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length passed.
        got: usize,
    },
    /// A dimension the format stores in blocks is not a whole number of blocks.
    #[error("{what} = {len} is not a multiple of the {format} block of {block}")]
    NotMultiple {
        /// Which dimension.
        what: &'static str,
        /// Its value.
        len: usize,
        /// The format's block size.
        block: usize,
        /// The format.
        format: &'static str,
    },
    /// A shape whose element count overflows `usize`.
    #[error("shape {rows} x {cols} overflows")]
    Overflow {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// Two operands disagree on a dimension.
    #[error("{what}: {left} != {right}")]
    Mismatch {
        /// What is compared.
        what: &'static str,
        /// One side.
        left: usize,
        /// The other.
        right: usize,
    },
    /// Packed bytes that no valid encoder writes (a TQ1_0 byte that is not the encoding of any
    /// five base-3 digits, a 2-bit code of 3, a non-finite or negative scale, a missing scale).
    #[error("malformed {format} data at byte {offset}: {reason}")]
    Malformed {
        /// The format.
        format: &'static str,
        /// Byte offset of the first bad byte.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A value the quantizer cannot represent (NaN or infinity).
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Index of the first non-finite value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A parameter outside its valid range.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// `rows * cols`, or [`QuantError::Overflow`].
pub(crate) fn elements(rows: usize, cols: usize) -> Result<usize, QuantError> {
    rows.checked_mul(cols)
        .ok_or(QuantError::Overflow { rows, cols })
}

/// Checks `got == expected` for the argument `what`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), QuantError> {
    if expected == got {
        Ok(())
    } else {
        Err(QuantError::Length {
            what,
            expected,
            got,
        })
    }
}

/// Checks that every value of `values` is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f32]) -> Result<(), QuantError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(QuantError::NonFinite {
            what,
            index,
            value: values[index],
        }),
    }
}

/// A vector of `n` copies of `value`, or [`QuantError::Invalid`] when `n` of them cannot be
/// allocated (a shape like `usize::MAX x 0` must be an error, not an abort).
pub(crate) fn try_filled<T: Clone>(
    what: &'static str,
    n: usize,
    value: T,
) -> Result<Vec<T>, QuantError> {
    let mut v = Vec::new();
    try_resize(&mut v, n, what, value)?;
    Ok(v)
}

/// `v` resized to `n` values (`value` where it grows), an error if that cannot be allocated.
pub(crate) fn try_resize<T: Clone>(
    v: &mut Vec<T>,
    n: usize,
    what: &'static str,
    value: T,
) -> Result<(), QuantError> {
    v.try_reserve_exact(n.saturating_sub(v.len()))
        .map_err(|_| QuantError::Invalid {
            what,
            reason: format!("{n} elements cannot be allocated"),
        })?;
    v.resize(n, value);
    Ok(())
}

/// Checks `k <= MAX_K`: the kernels' integer sums are exact in i32 up to there.
pub(crate) fn check_k(k: usize) -> Result<(), QuantError> {
    if k <= crate::MAX_K {
        Ok(())
    } else {
        Err(QuantError::Invalid {
            what: "k",
            reason: format!(
                "{k} values per row exceed MAX_K = {} (the integer sums are exact in i32 up to there)",
                crate::MAX_K
            ),
        })
    }
}

/// The ISA layer's errors (a bad `BITNET_ISA`, a ceiling above the CPU) as `Invalid` "ISA".
impl From<bitnet_simd::IsaError> for QuantError {
    fn from(e: bitnet_simd::IsaError) -> QuantError {
        QuantError::Invalid {
            what: "ISA",
            reason: e.to_string(),
        }
    }
}
