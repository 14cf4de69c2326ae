//! The error type of `bitnet-gemm`.

use bitnet_simd::IsaError;

/// Which operand of a product an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The left factor.
    A,
    /// The right factor (or the vector `x` of a GEMV).
    B,
    /// The output (or the vector `y` of a GEMV).
    C,
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operand::A => "A",
            Operand::B => "B",
            Operand::C => "C",
        })
    }
}

/// Why a matrix view or a product was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GemmError {
    /// The view's last element lies past the end of its slice.
    #[error(
        "{operand}: a {rows}x{cols} view with strides ({row_stride}, {col_stride}) needs {needed} elements, the slice has {len}"
    )]
    SliceTooShort {
        /// Which matrix.
        operand: Operand,
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Elements between consecutive rows.
        row_stride: usize,
        /// Elements between consecutive columns.
        col_stride: usize,
        /// Elements the view spans.
        needed: usize,
        /// Elements in the slice.
        len: usize,
    },
    /// The view's extent does not fit in `usize`.
    #[error("{operand}: strides ({row_stride}, {col_stride}) overflow for a {rows}x{cols} view")]
    StrideOverflow {
        /// Which matrix.
        operand: Operand,
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Elements between consecutive rows.
        row_stride: usize,
        /// Elements between consecutive columns.
        col_stride: usize,
    },
    /// Two elements of an output view share memory, so the result would depend on write order.
    #[error(
        "{operand}: a {rows}x{cols} output view with strides ({row_stride}, {col_stride}) has overlapping elements"
    )]
    OverlappingOutput {
        /// Which matrix.
        operand: Operand,
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Elements between consecutive rows.
        row_stride: usize,
        /// Elements between consecutive columns.
        col_stride: usize,
    },
    /// The shapes of the operands do not chain.
    #[error(
        "shape mismatch: A is {a_rows}x{a_cols}, B is {b_rows}x{b_cols}, C is {c_rows}x{c_cols}"
    )]
    ShapeMismatch {
        /// Rows of A.
        a_rows: usize,
        /// Columns of A.
        a_cols: usize,
        /// Rows of B.
        b_rows: usize,
        /// Columns of B.
        b_cols: usize,
        /// Rows of C.
        c_rows: usize,
        /// Columns of C.
        c_cols: usize,
    },
    /// Batched operands disagree on the batch size, or a batch stride overflows.
    #[error("batch: {0}")]
    Batch(String),
    /// The ISA ceiling could not be resolved (`BITNET_ISA` names a level this CPU lacks).
    #[error(transparent)]
    Isa(#[from] IsaError),
}
