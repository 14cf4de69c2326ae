//! Reference products: the test oracle and the log's i-k-j loop order.
//!
//! - [`gemm_naive_f64`]: i-j-k with every product and sum in `f64`, rounded once to `f32` at the
//!   end: the oracle every other variant is tested against.
//! - [`gemm_ikj`]: the log's i-k-j order in `f32` (row of C updated by a scaled row of B: unit
//!   stride in the inner loop for row-major B and C, which the compiler vectorises).

use crate::error::GemmError;
use crate::view::{MatMut, MatRef};

/// Checks that `C (m x n) = A (m x k) * B (k x n)` chains.
pub fn check_shapes(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>) -> Result<(), GemmError> {
    if a.cols() != b.rows() || a.rows() != c.rows() || b.cols() != c.cols() {
        return Err(GemmError::ShapeMismatch {
            a_rows: a.rows(),
            a_cols: a.cols(),
            b_rows: b.rows(),
            b_cols: b.cols(),
            c_rows: c.rows(),
            c_cols: c.cols(),
        });
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C`, i-j-k, accumulated in `f64`. With `beta == 0`, C is only
/// written (NaN or infinity in it does not leak).
pub fn gemm_naive_f64(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let dot: f64 = (0..a.cols())
                .map(|p| a.at(i, p) as f64 * b.at(p, j) as f64)
                .sum();
            let prior = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c.at(i, j) as f64
            };
            *c.at_mut(i, j) = (alpha as f64 * dot + prior) as f32;
        }
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C` in the log's i-k-j order, in `f32`.
pub fn gemm_ikj(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) -> Result<(), GemmError> {
    check_shapes(&a, &b, &c)?;
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let prior = c.at(i, j);
            *c.at_mut(i, j) = if beta == 0.0 { 0.0 } else { beta * prior };
        }
        for p in 0..a.cols() {
            let aip = alpha * a.at(i, p);
            for j in 0..c.cols() {
                *c.at_mut(i, j) += aip * b.at(p, j);
            }
        }
    }
    Ok(())
}
