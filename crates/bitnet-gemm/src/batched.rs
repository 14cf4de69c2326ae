//! Batched GEMM over a strided batch (the log's `batch_matmul` / `matmul_batch_parallel`):
//! `C_b = alpha * A_b * B_b + beta * C_b` for `b` in `0..batch`, matrix `b` of each operand
//! starting `b * batch_stride` elements after the first.
//!
//! Threads go where the shape favours them: across the batch when there are at least as many
//! products as threads and each is small (below [`INNER_PARALLEL_FLOPS`]), inside each product
//! otherwise. A batch stride of 0 for A or B broadcasts one matrix to every product (a shared
//! weight); C's matrices must not overlap.

use bitnet_simd::Par;

use crate::error::{GemmError, Operand};
use crate::view::{MatMut, MatRef};
use bitnet_simd::par::SharedOut;

/// Products of at least this many flops are parallelised inside rather than across the batch.
pub const INNER_PARALLEL_FLOPS: usize = 2 * 256 * 256 * 256;

/// A strided batch of matrices: matrix `b` is the view `(rows, cols, row_stride, col_stride)` of
/// `data[b * batch_stride..]`.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    data: &'a [f32],
    shape: BatchShape,
}

/// The layout shared by input and output batches.
#[derive(Clone, Copy, Debug)]
struct BatchShape {
    batch: usize,
    batch_stride: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl BatchShape {
    /// Checks that every matrix fits in `len` elements; returns the span of one matrix.
    fn check(&self, operand: Operand, len: usize) -> Result<usize, GemmError> {
        let (rows, cols, row_stride, col_stride) =
            (self.rows, self.cols, self.row_stride, self.col_stride);
        let one = span(rows, cols, row_stride, col_stride).ok_or(GemmError::StrideOverflow {
            operand,
            rows,
            cols,
            row_stride,
            col_stride,
        })?;
        check_batch(operand, len, self.batch, self.batch_stride, one)?;
        Ok(one)
    }
}

/// The elements one `rows x cols` view spans (0 if empty), or `None` on overflow.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// Checks that `batch` views of `span` elements, `batch_stride` apart, fit in `len`.
fn check_batch(
    operand: Operand,
    len: usize,
    batch: usize,
    batch_stride: usize,
    span: usize,
) -> Result<(), GemmError> {
    if batch == 0 || span == 0 {
        return Ok(());
    }
    let needed = (batch - 1)
        .checked_mul(batch_stride)
        .and_then(|s| s.checked_add(span))
        .ok_or_else(|| {
            GemmError::Batch(format!(
                "{operand}: batch stride {batch_stride} overflows for {batch} matrices"
            ))
        })?;
    if needed > len {
        return Err(GemmError::Batch(format!(
            "{operand}: {batch} matrices {batch_stride} apart need {needed} elements, the slice has {len}"
        )));
    }
    Ok(())
}

impl<'a> Batch<'a> {
    /// A batch of `batch` matrices in `data` used as `operand` (A or B: errors name it); every
    /// one is checked to fit.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        operand: Operand,
        data: &'a [f32],
        batch: usize,
        batch_stride: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Batch<'a>, GemmError> {
        let shape = BatchShape {
            batch,
            batch_stride,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        shape.check(operand, data.len())?;
        Ok(Batch { data, shape })
    }

    /// Matrix `b` (`b < batch`). An empty matrix (which was not checked against the slice)
    /// is a view of nothing.
    fn get(&self, b: usize) -> MatRef<'a> {
        let s = &self.shape;
        let data = self
            .data
            .get(b.saturating_mul(s.batch_stride)..)
            .unwrap_or(&[]);
        MatRef::new(data, s.rows, s.cols, s.row_stride, s.col_stride)
            .expect("checked at construction")
    }
}

/// A strided batch of output matrices that do not overlap each other or themselves.
#[derive(Debug)]
pub struct BatchMut<'a> {
    data: &'a mut [f32],
    shape: BatchShape,
}

impl<'a> BatchMut<'a> {
    /// A batch of `batch` output matrices in `data`. Matrices must not share elements: the
    /// batch stride must be at least the span of one matrix (or `batch <= 1`).
    pub fn new(
        data: &'a mut [f32],
        batch: usize,
        batch_stride: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<BatchMut<'a>, GemmError> {
        let shape = BatchShape {
            batch,
            batch_stride,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        let one = shape.check(Operand::C, data.len())?;
        if batch > 1 && one > 0 && batch_stride < one {
            return Err(GemmError::Batch(format!(
                "C: matrices of {one} elements {batch_stride} apart overlap"
            )));
        }
        // Each matrix is checked for self-overlap by MatMut.
        if batch > 0 {
            MatMut::new(&mut data[..one], rows, cols, row_stride, col_stride)?;
        }
        Ok(BatchMut { data, shape })
    }
}

/// `C_b = alpha * A_b * B_b + beta * C_b` for every `b`. With `beta == 0`, C is only written.
/// Error bound per element as [`crate::packed::gemm_packed`].
pub fn gemm_batched(
    alpha: f32,
    a: Batch<'_>,
    b: Batch<'_>,
    beta: f32,
    c: BatchMut<'_>,
    par: Par,
) -> Result<(), GemmError> {
    // Resolve the level once, so that an invalid BITNET_ISA is this call's error and the
    // products below cannot fail.
    bitnet_simd::Level::active()?;
    let (sa, sb, sc) = (a.shape, b.shape, c.shape);
    let n = sc.batch;
    if sa.batch != n || sb.batch != n {
        return Err(GemmError::Batch(format!(
            "batch sizes differ: A {}, B {}, C {n}",
            sa.batch, sb.batch
        )));
    }
    if sa.cols != sb.rows || sa.rows != sc.rows || sb.cols != sc.cols {
        return Err(GemmError::ShapeMismatch {
            a_rows: sa.rows,
            a_cols: sa.cols,
            b_rows: sb.rows,
            b_cols: sb.cols,
            c_rows: sc.rows,
            c_cols: sc.cols,
        });
    }
    let flops = sa
        .rows
        .saturating_mul(sb.cols)
        .saturating_mul(sa.cols)
        .saturating_mul(2);
    let (rows, cols, rs, cs, stride) = (
        sc.rows,
        sc.cols,
        sc.row_stride,
        sc.col_stride,
        sc.batch_stride,
    );
    let one = span(rows, cols, rs, cs).unwrap_or(0);
    if one == 0 {
        return Ok(());
    }
    if n >= par.threads() && flops < INNER_PARALLEL_FLOPS {
        // Across the batch: each product on one thread.
        let base = SharedOut::new(c.data.as_mut_ptr());
        par.for_each_task(n, |i| {
            // SAFETY: matrix i spans [i * stride, i * stride + one), inside `c.data` (checked at
            // construction) and disjoint from every other matrix's span (stride >= one).
            let slice = unsafe { std::slice::from_raw_parts_mut(base.at(i * stride), one) };
            let ci = MatMut::new(slice, rows, cols, rs, cs).expect("checked at construction");
            crate::gemm(alpha, a.get(i), b.get(i), beta, ci, Par::Seq).expect("shapes checked");
        });
    } else {
        for i in 0..n {
            let ci = MatMut::new(
                &mut c.data[i * stride..i * stride + one],
                rows,
                cols,
                rs,
                cs,
            )?;
            crate::gemm(alpha, a.get(i), b.get(i), beta, ci, par)?;
        }
    }
    Ok(())
}
