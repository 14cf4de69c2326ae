//! Sparse matrices and activations: CSR built from dense with a magnitude threshold, SpMV and
//! SpMM (CSR × dense), and the log's `CompressedActivation` (the nonzeros of an activation
//! vector) against dense weights.
//!
//! Layout ([`Csr`]): `row_ptr` (`rows + 1` offsets, non-decreasing, from 0 to `nnz`),
//! `col_idx` (u32 column of each nonzero, strictly increasing within a row) and `values` (f32),
//! row after row. From dense, an entry is kept when `|v| > threshold` or it is not finite (an
//! infinity or a NaN is never "small": dropping it would hide it).
//!
//! Kernels (rows split over `Par`, weighted by the bytes read):
//! - [`Csr::spmv`]: `y = A x`, each row a sparse dot over the row's nonzeros, `x` gathered:
//!   `vgatherdps` of 16 (AVX-512) or 8 (AVX2) values per step, four scalar accumulators on
//!   the scalar level.
//! - [`Csr::spmm`]: `C = A B` for row-major `B` (`cols × n`): `C[i, :] = Σ_j a_ij · B[j, :]`
//!   over the row's nonzeros, `C[i, :]` in blocks of four vectors held in registers while
//!   every nonzero adds its scaled slice of `B[j, :]` (pulp, the active level), the ragged end
//!   of the row one vector, then one value, at a time.
//! - [`CompressedActivation::gemv_t`]: `y = W x` for weights stored transposed (`k × rows`):
//!   one AXPY of a weight row per nonzero activation; [`CompressedActivation::gemv`] takes
//!   row-major `W` (`rows × k`) and does a sparse dot per row.
//!
//! Error: each output is a sum of `m` products (`m` the nonzeros it meets), formed in f32 with
//! FMAs: `|y − Σ| ≤ m · ε · Σ |products|`; tests check it against the f64 dense product.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::error::{QuantError, check_len, elements};

#[cfg(target_arch = "x86_64")]
mod x86;

/// A sparse matrix in compressed sparse row form (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
}

fn invalid(what: &'static str, reason: String) -> QuantError {
    QuantError::Invalid { what, reason }
}

impl Csr {
    /// The entries of row-major `a` (`rows × cols`) with `|v| > threshold` or not finite;
    /// `threshold` must be finite and `≥ 0`, `cols` at most `u32::MAX`.
    pub fn from_dense(
        a: &[f32],
        rows: usize,
        cols: usize,
        threshold: f32,
    ) -> Result<Csr, QuantError> {
        check_len("dense matrix", elements(rows, cols)?, a.len())?;
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(invalid(
                "threshold",
                format!("{threshold} is not finite and ≥ 0"),
            ));
        }
        if u32::try_from(cols).is_err() {
            return Err(invalid("cols", format!("{cols} exceeds u32::MAX")));
        }
        let mut m = Csr {
            rows,
            cols,
            row_ptr: Vec::with_capacity(rows + 1),
            col_idx: Vec::new(),
            values: Vec::new(),
        };
        m.row_ptr.push(0);
        for r in 0..rows {
            for (c, &v) in a[r * cols..(r + 1) * cols].iter().enumerate() {
                if v.abs() > threshold || !v.is_finite() {
                    m.col_idx.push(c as u32);
                    m.values.push(v);
                }
            }
            m.row_ptr.push(m.values.len());
        }
        Ok(m)
    }

    /// A CSR matrix from its three arrays, validated (module docs): an error, never a panic
    /// later, for offsets out of order or out of range, columns out of range or not increasing
    /// within a row, or mismatched lengths.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col_idx: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Csr, QuantError> {
        check_len("row_ptr", rows + 1, row_ptr.len())?;
        check_len("col_idx", values.len(), col_idx.len())?;
        if row_ptr[0] != 0 || row_ptr[rows] != values.len() {
            return Err(invalid(
                "row_ptr",
                format!("must run from 0 to nnz = {}", values.len()),
            ));
        }
        for r in 0..rows {
            let (a, b) = (row_ptr[r], row_ptr[r + 1]);
            if a > b || b > values.len() {
                return Err(invalid(
                    "row_ptr",
                    format!(
                        "row {r}: offsets {a}..{b} decrease or pass nnz = {}",
                        values.len()
                    ),
                ));
            }
            let row = &col_idx[a..b];
            if let Some(&c) = row.iter().find(|&&c| c as usize >= cols) {
                return Err(invalid(
                    "col_idx",
                    format!("column {c} in row {r} is not below cols = {cols}"),
                ));
            }
            if row.windows(2).any(|p| p[0] >= p[1]) {
                return Err(invalid(
                    "col_idx",
                    format!("row {r}: columns not strictly increasing"),
                ));
            }
        }
        Ok(Csr {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// `nnz / (rows · cols)` (0 for an empty shape).
    pub fn density(&self) -> f64 {
        let n = self.rows as f64 * self.cols as f64;
        if n == 0.0 { 0.0 } else { self.nnz() as f64 / n }
    }

    /// The offsets, columns and values.
    pub fn parts(&self) -> (&[usize], &[u32], &[f32]) {
        (&self.row_ptr, &self.col_idx, &self.values)
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut a = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            for i in self.row_ptr[r]..self.row_ptr[r + 1] {
                a[r * self.cols + self.col_idx[i] as usize] = self.values[i];
            }
        }
        a
    }

    /// `y = A x` (`x`: `cols`, `y`: `rows`) on the cores `par` allows.
    pub fn spmv(&self, x: &[f32], y: &mut [f32], par: Par) -> Result<(), QuantError> {
        check_len("x", self.cols, x.len())?;
        check_len("y", self.rows, y.len())?;
        let level = active_level()?;
        let out = SharedOut::new(y.as_mut_ptr());
        let par = par.for_bytes(self.nnz() * 8);
        par.for_each_range(self.rows, 64, |range| {
            for r in range {
                let (a, b) = (self.row_ptr[r], self.row_ptr[r + 1]);
                let v = sparse_dot(level, &self.col_idx[a..b], &self.values[a..b], x);
                // SAFETY: r < rows = y.len(); this task owns row r.
                unsafe { *out.at(r) = v };
            }
        });
        Ok(())
    }

    /// `C = A B` for row-major `B` (`cols × n`) into row-major `C` (`rows × n`), on the active
    /// level and the cores `par` allows.
    pub fn spmm(&self, b: &[f32], n: usize, c: &mut [f32], par: Par) -> Result<(), QuantError> {
        check_len("B", elements(self.cols, n)?, b.len())?;
        check_len("C", elements(self.rows, n)?, c.len())?;
        let level = active_level()?;
        let out = SharedOut::new(c.as_mut_ptr());
        let par = par.for_bytes(self.nnz().saturating_mul(n) * 4);
        par.for_each_range(self.rows, 16, |range| {
            for r in range {
                // SAFETY: row r of C (n values at r·n, inside rows × n) belongs to this task.
                let c_row = unsafe { core::slice::from_raw_parts_mut(out.at(r * n), n) };
                let (a, e) = (self.row_ptr[r], self.row_ptr[r + 1]);
                level.run(SparseRowTimesDense {
                    cols: &self.col_idx[a..e],
                    values: &self.values[a..e],
                    b,
                    n,
                    c_row,
                });
            }
        });
        Ok(())
    }
}

/// The nonzeros of an activation vector (the log's `CompressedActivation`): `|x_j| > threshold`
/// or not finite, as indices and values.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressedActivation {
    len: usize,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl CompressedActivation {
    /// Compresses `x` (at most `u32::MAX` values); `threshold` finite and `≥ 0`.
    pub fn from_dense(x: &[f32], threshold: f32) -> Result<CompressedActivation, QuantError> {
        let m = Csr::from_dense(x, 1, x.len(), threshold)?;
        Ok(CompressedActivation {
            len: x.len(),
            indices: m.col_idx,
            values: m.values,
        })
    }

    /// Length of the dense vector.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the dense vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The indices and values of the nonzeros.
    pub fn parts(&self) -> (&[u32], &[f32]) {
        (&self.indices, &self.values)
    }

    /// The dense vector.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut x = vec![0f32; self.len];
        for (&j, &v) in self.indices.iter().zip(&self.values) {
            x[j as usize] = v;
        }
        x
    }

    /// `y = W x` for row-major `W` (`rows × len`): a sparse dot per row, on the cores `par`
    /// allows.
    pub fn gemv(&self, w: &[f32], rows: usize, y: &mut [f32], par: Par) -> Result<(), QuantError> {
        check_len("W", elements(rows, self.len)?, w.len())?;
        check_len("y", rows, y.len())?;
        let level = active_level()?;
        let out = SharedOut::new(y.as_mut_ptr());
        let k = self.len;
        let par = par.for_bytes(rows * self.nnz() * 4);
        par.for_each_range(rows, 64, |range| {
            for r in range {
                let v = sparse_dot(level, &self.indices, &self.values, &w[r * k..(r + 1) * k]);
                // SAFETY: r < rows = y.len(); this task owns row r.
                unsafe { *out.at(r) = v };
            }
        });
        Ok(())
    }

    /// `y = W x` for `W` stored transposed (`wt`: `len × rows`, row `j` holding column `j` of
    /// `W`): one AXPY of row `j` per nonzero `x_j`, reading only those rows; the outputs split
    /// over the cores `par` allows (each thread runs every nonzero on its slice of `y`).
    pub fn gemv_t(
        &self,
        wt: &[f32],
        rows: usize,
        y: &mut [f32],
        par: Par,
    ) -> Result<(), QuantError> {
        check_len("W transposed", elements(self.len, rows)?, wt.len())?;
        check_len("y", rows, y.len())?;
        let level = active_level()?;
        let out = SharedOut::new(y.as_mut_ptr());
        let par = par.for_bytes(self.nnz().saturating_mul(rows) * 4);
        par.for_each_range(rows, 256, |range| {
            // SAFETY: outputs `range` of y (inside rows = y.len()) belong to this task.
            let y = unsafe { core::slice::from_raw_parts_mut(out.at(range.start), range.len()) };
            y.fill(0.0);
            for (&j, &v) in self.indices.iter().zip(&self.values) {
                let row = &wt[j as usize * rows..][range.clone()];
                level.run(Axpy {
                    a: v,
                    x: row,
                    y: &mut *y,
                });
            }
        });
        Ok(())
    }
}

fn active_level() -> Result<Level, QuantError> {
    Ok(Level::active()?)
}

/// `Σ values[i] · x[cols[i]]` on `level`: hardware gathers on AVX-512 and AVX2
/// ([`x86`]); else four scalar accumulators. Every `cols[i] < x.len()` (a [`Csr`] or
/// [`CompressedActivation`] invariant, checked against `x` by the callers).
fn sparse_dot(level: Level, cols: &[u32], values: &[f32], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if x.len() <= i32::MAX as usize {
        match level {
            Level::Avx512(_) => {
                // SAFETY: the level's features exist (it came from `Level::active`); the
                // indices are inside x (above) and fit the gathers' i32.
                return unsafe { x86::sparse_dot_avx512(cols, values, x) };
            }
            Level::Avx2(_) => {
                // SAFETY: as above.
                return unsafe { x86::sparse_dot_avx2(cols, values, x) };
            }
            _ => {}
        }
    }
    let _ = level;
    let mut acc = [0f32; 4];
    let quads = values.len() / 4 * 4;
    for i in (0..quads).step_by(4) {
        for l in 0..4 {
            acc[l] = values[i + l].mul_add(x[cols[i + l] as usize], acc[l]);
        }
    }
    for i in quads..values.len() {
        acc[0] = values[i].mul_add(x[cols[i] as usize], acc[0]);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `c_row = Σ_i values[i] · B[cols[i], :]` for row-major `B` (`· × n`) on a pulp level: blocks of
/// four vectors of the output row accumulate in registers over all the nonzeros, then single
/// vectors, then single values.
struct SparseRowTimesDense<'a> {
    cols: &'a [u32],
    values: &'a [f32],
    b: &'a [f32],
    n: usize,
    c_row: &'a mut [f32],
}

impl WithSimd for SparseRowTimesDense<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            cols,
            values,
            b,
            n,
            c_row,
        } = self;
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        let b_row = |j: u32, c0: usize, len: usize| &b[j as usize * n + c0..][..len];
        // Columns c0..c0 + width of every nonzero's B row, `V` vectors at a time.
        let block = |c0: usize, out: &mut [f32], width: usize| {
            let mut acc = [simd.splat_f32s(0.0); 4];
            for (&j, &v) in cols.iter().zip(values) {
                let (bv, _) = S::as_simd_f32s(b_row(j, c0, width));
                let a = simd.splat_f32s(v);
                for (acc, &bv) in acc.iter_mut().zip(bv) {
                    *acc = simd.mul_add_e_f32s(a, bv, *acc);
                }
            }
            let (ov, _) = S::as_mut_simd_f32s(out);
            for (o, &acc) in ov.iter_mut().zip(&acc) {
                *o = acc;
            }
        };
        let wide = 4 * lanes;
        let mut c0 = 0;
        while c0 + wide <= n {
            block(c0, &mut c_row[c0..c0 + wide], wide);
            c0 += wide;
        }
        while c0 + lanes <= n {
            block(c0, &mut c_row[c0..c0 + lanes], lanes);
            c0 += lanes;
        }
        for (c, out) in c_row.iter_mut().enumerate().skip(c0) {
            *out = cols
                .iter()
                .zip(values)
                .fold(0f32, |s, (&j, &v)| v.mul_add(b[j as usize * n + c], s));
        }
    }
}

/// `y += a · x` on a pulp level.
struct Axpy<'a> {
    a: f32,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl WithSimd for Axpy<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (xv, xt) = S::as_simd_f32s(self.x);
        let (yv, yt) = S::as_mut_simd_f32s(self.y);
        let a = simd.splat_f32s(self.a);
        for (y, &x) in yv.iter_mut().zip(xv) {
            *y = simd.mul_add_e_f32s(a, x, *y);
        }
        for (y, &x) in yt.iter_mut().zip(xt) {
            *y = self.a.mul_add(x, *y);
        }
    }
}
