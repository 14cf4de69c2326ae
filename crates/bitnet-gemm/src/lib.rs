//! f32 matrix multiplication for bitnet-rs: `C = alpha * A * B + beta * C` and
//! `y = alpha * A x + beta * y` on strided views, every variant checked against an `f64`
//! reference on every ISA level this machine has.
//!
//! - [`gemm`] / [`gemv`]: the entries that pick the best variant for the shape.
//! - [`MatRef`] / [`MatMut`]: strided views (row-major, column-major, transposed, sub-matrices),
//!   checked at construction.
//! - Variants, each public: [`reference`] (naive `f64` oracle, i-k-j), [`blocked`] (single- and
//!   two-level cache blocking), [`oblivious`] (cache-oblivious recursion), [`strassen`] (with a
//!   cutoff to the packed kernel), [`packed`] (BLIS-style
//!   packed microkernels per ISA), [`small_m`] (a few rows times a streamed weight), [`batched`]
//!   (strided batches).
//!
//! Every function takes the [`Par`] of `bitnet-simd` and returns [`GemmError`] on bad input.
//!
//! ```
//! use bitnet_gemm::{MatMut, MatRef, Par, gemm};
//! let a = vec![1.0f32; 6]; // 2 x 3
//! let b = vec![2.0f32; 12]; // 3 x 4
//! let mut c = vec![0.0f32; 8]; // 2 x 4
//! gemm(1.0, MatRef::row_major(&a, 2, 3)?, MatRef::row_major(&b, 3, 4)?, 0.0,
//!      MatMut::row_major(&mut c, 2, 4)?, Par::default())?;
//! assert!(c.iter().all(|&v| v == 6.0));
//! # Ok::<(), bitnet_gemm::GemmError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod batched;
pub mod blocked;
pub mod error;
pub mod gemv;
pub mod oblivious;
pub mod packed;
pub mod reference;
pub mod small_m;
pub mod strassen;
pub mod view;

pub use bitnet_simd::Par;
pub use error::{GemmError, Operand};
pub use gemv::gemv;
pub use view::{MatMut, MatRef};

/// `C = alpha * A * B + beta * C` with the best variant for the shape: [`small_m`] for at most
/// [`small_m::MAX_ROWS`] rows of A times a `W^T` view (unit row stride), the packed kernel
/// otherwise. With `beta == 0`, C is only written (NaN in it does not leak); with `alpha == 0`,
/// A and B are not read (as in BLAS: NaN or infinity in them does not reach C).
pub fn gemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    par: Par,
) -> Result<(), GemmError> {
    if alpha == 0.0 {
        reference::check_shapes(&a, &b, &c)?;
        let mut c = c;
        c.scale(beta);
        return Ok(());
    }
    if a.rows() <= small_m::MAX_ROWS && b.row_stride() == 1 {
        return small_m::gemm_small_m(alpha, a, b, beta, c, par);
    }
    packed::gemm_packed(alpha, a, b, beta, c, par)
}
