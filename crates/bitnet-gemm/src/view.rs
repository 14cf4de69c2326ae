//! Strided matrix views: [`MatRef`] and [`MatMut`].
//!
//! Element `(i, j)` of a view lives at `data[i * row_stride + j * col_stride]`. Row-major
//! (`col_stride == 1`), column-major (`row_stride == 1`), transposes (swap the strides:
//! [`MatRef::t`]) and sub-matrices ([`MatRef::submatrix`]) are all views of this one kind.
//! Constructors check that every element lies inside the slice, with overflow-checked
//! arithmetic, and output views also that no two elements share memory; kernels below trust
//! these checks.

use crate::error::{GemmError, Operand};

/// Checks that a `rows x cols` view with these strides fits in `len` elements; returns the
/// number of elements it spans.
fn check_extent(
    operand: Operand,
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Result<usize, GemmError> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    let overflow = || GemmError::StrideOverflow {
        operand,
        rows,
        cols,
        row_stride,
        col_stride,
    };
    let last = (rows - 1)
        .checked_mul(row_stride)
        .and_then(|r| {
            (cols - 1)
                .checked_mul(col_stride)
                .and_then(|c| r.checked_add(c))
        })
        .ok_or_else(overflow)?;
    let needed = last.checked_add(1).ok_or_else(overflow)?;
    if needed > len {
        return Err(GemmError::SliceTooShort {
            operand,
            rows,
            cols,
            row_stride,
            col_stride,
            needed,
            len,
        });
    }
    Ok(needed)
}

/// Whether distinct `(i, j)` map to distinct offsets, by the sufficient condition that the
/// larger stride steps over the whole extent of the smaller one. Layouts that are injective
/// without meeting it (interleavings such as strides (3, 2) on 2x2) are refused too.
fn is_non_overlapping(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 || (rows == 1 && cols == 1) {
        return true;
    }
    if rows <= 1 {
        return col_stride >= 1;
    }
    if cols <= 1 {
        return row_stride >= 1;
    }
    let ((small, n_small), big) = if row_stride <= col_stride {
        ((row_stride, rows), col_stride)
    } else {
        ((col_stride, cols), row_stride)
    };
    small >= 1
        && small
            .checked_mul(n_small)
            .is_some_and(|extent| big >= extent)
}

/// A read-only strided view of an `f32` matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A view of `data` with explicit strides.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>, GemmError> {
        Self::new_for(Operand::A, data, rows, cols, row_stride, col_stride)
    }

    /// As [`MatRef::new`], naming the operand in errors.
    pub fn new_for(
        operand: Operand,
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>, GemmError> {
        check_extent(operand, data.len(), rows, cols, row_stride, col_stride)?;
        Ok(MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A dense row-major view (`row_stride == cols`).
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>, GemmError> {
        MatRef::new(data, rows, cols, cols, 1)
    }

    /// A dense column-major view (`col_stride == rows`).
    pub fn col_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>, GemmError> {
        MatRef::new(data, rows, cols, 1, rows)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements between consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Elements between consecutive columns.
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// The underlying slice.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The transpose (no copy: the strides swap).
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Element `(i, j)`. Callers index inside the view (checked in debug builds).
    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        debug_assert!(i < self.rows && j < self.cols);
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// Row `i` as a slice, when the columns are contiguous (`col_stride == 1`).
    pub fn row(&self, i: usize) -> Option<&'a [f32]> {
        (self.col_stride == 1 && i < self.rows)
            .then(|| &self.data[i * self.row_stride..i * self.row_stride + self.cols])
    }

    /// The `rows x cols` sub-matrix starting at `(row, col)`, or `None` if it does not fit.
    pub fn submatrix(
        &self,
        row: usize,
        col: usize,
        rows: usize,
        cols: usize,
    ) -> Option<MatRef<'a>> {
        if row.checked_add(rows)? > self.rows || col.checked_add(cols)? > self.cols {
            return None;
        }
        let start = if rows == 0 || cols == 0 {
            0
        } else {
            row * self.row_stride + col * self.col_stride
        };
        Some(MatRef {
            data: &self.data[start.min(self.data.len())..],
            rows,
            cols,
            ..*self
        })
    }
}

/// A mutable strided view of an `f32` matrix whose elements never share memory.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A mutable view of `data` with explicit strides.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatMut<'a>, GemmError> {
        check_extent(Operand::C, data.len(), rows, cols, row_stride, col_stride)?;
        if !is_non_overlapping(rows, cols, row_stride, col_stride) {
            return Err(GemmError::OverlappingOutput {
                operand: Operand::C,
                rows,
                cols,
                row_stride,
                col_stride,
            });
        }
        Ok(MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A dense row-major view.
    pub fn row_major(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
    ) -> Result<MatMut<'a>, GemmError> {
        MatMut::new(data, rows, cols, cols, 1)
    }

    /// A dense column-major view.
    pub fn col_major(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
    ) -> Result<MatMut<'a>, GemmError> {
        MatMut::new(data, rows, cols, 1, rows)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements between consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Elements between consecutive columns.
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// A read-only view of the same elements.
    pub fn rb(&self) -> MatRef<'_> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// A shorter-lived mutable view of the same elements.
    pub fn rb_mut(&mut self) -> MatMut<'_> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> MatMut<'a> {
        MatMut {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            data: self.data,
        }
    }

    /// Element `(i, j)`.
    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        debug_assert!(i < self.rows && j < self.cols);
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// A mutable reference to element `(i, j)`.
    #[inline(always)]
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f32 {
        debug_assert!(i < self.rows && j < self.cols);
        &mut self.data[i * self.row_stride + j * self.col_stride]
    }

    /// Row `i` as a mutable slice, when the columns are contiguous (`col_stride == 1`).
    pub fn row_mut(&mut self, i: usize) -> Option<&mut [f32]> {
        (self.col_stride == 1 && i < self.rows)
            .then(|| &mut self.data[i * self.row_stride..i * self.row_stride + self.cols])
    }

    /// `C = beta * C`; with `beta == 0`, C is only written (NaN in it does not leak).
    pub fn scale(&mut self, beta: f32) {
        if beta == 1.0 {
            return;
        }
        for i in 0..self.rows {
            for j in 0..self.cols {
                let c = self.at_mut(i, j);
                *c = if beta == 0.0 { 0.0 } else { beta * *c };
            }
        }
    }

    /// The mutable `rows x cols` sub-matrix starting at `(row, col)`, or `None` if it does not
    /// fit.
    pub fn submatrix_mut(
        &mut self,
        row: usize,
        col: usize,
        rows: usize,
        cols: usize,
    ) -> Option<MatMut<'_>> {
        if row.checked_add(rows)? > self.rows || col.checked_add(cols)? > self.cols {
            return None;
        }
        let start = if rows == 0 || cols == 0 {
            0
        } else {
            row * self.row_stride + col * self.col_stride
        };
        let len = self.data.len();
        Some(MatMut {
            data: &mut self.data[start.min(len)..],
            rows,
            cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        })
    }

    /// The raw parts, for kernels that split the view across threads.
    pub(crate) fn raw(&mut self) -> (*mut f32, usize, usize, usize, usize) {
        (
            self.data.as_mut_ptr(),
            self.rows,
            self.cols,
            self.row_stride,
            self.col_stride,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_are_checked() {
        let d = [0f32; 12];
        assert!(MatRef::row_major(&d, 3, 4).is_ok());
        assert!(MatRef::row_major(&d, 4, 4).is_err());
        assert!(MatRef::new(&d, 0, 100, 100, 1).is_ok());
        assert!(matches!(
            MatRef::new(&d, 2, 2, usize::MAX, 1),
            Err(GemmError::StrideOverflow { .. })
        ));
        assert!(matches!(
            MatRef::new(&d, 2, 7, 6, 1),
            Err(GemmError::SliceTooShort {
                needed: 13,
                len: 12,
                ..
            })
        ));
    }

    #[test]
    fn overlap_is_refused_for_outputs() {
        let mut d = [0f32; 16];
        assert!(MatMut::new(&mut d, 2, 2, 0, 1).is_err());
        assert!(MatMut::new(&mut d, 2, 3, 2, 1).is_err());
        assert!(MatMut::new(&mut d, 2, 3, 3, 1).is_ok());
        assert!(MatMut::new(&mut d, 1, 4, 0, 1).is_ok());
        assert!(MatMut::new(&mut d, 4, 1, 1, 0).is_ok());
        assert!(MatMut::new(&mut d, 3, 3, 1, 3).is_ok());
        // An empty view has no two elements to overlap, whatever its strides.
        assert!(MatMut::new(&mut d, 11, 0, 0, 1).is_ok());
        assert!(MatMut::new(&mut d, 0, 5, 1, 0).is_ok());
        assert!(matches!(
            MatMut::new(&mut d, 2, 2, 3, 2),
            Err(GemmError::OverlappingOutput { .. })
        ));
    }

    #[test]
    fn transpose_and_submatrix() {
        let d: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let a = MatRef::row_major(&d, 3, 4).unwrap();
        assert_eq!(a.at(1, 2), 6.0);
        assert_eq!(a.t().at(2, 1), 6.0);
        let s = a.submatrix(1, 1, 2, 3).unwrap();
        assert_eq!(s.at(0, 0), 5.0);
        assert_eq!(s.at(1, 2), 11.0);
        assert!(a.submatrix(2, 0, 2, 1).is_none());
        assert!(a.submatrix(3, 4, 0, 0).is_some());
    }
}
