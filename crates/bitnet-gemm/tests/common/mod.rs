//! Shared generators and the error-bound check of the gemm tests.

#![allow(dead_code)]

use bitnet_gemm::{MatMut, MatRef};
use proptest::prelude::*;

/// A dimension: mostly small (edges: 0, 1, below and just above a tile), sometimes a few hundred.
pub fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..=9, 4 => 10usize..80, 1 => 80usize..300]
}

/// How a matrix is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    RowMajor {
        pad: usize,
    },
    ColMajor {
        pad: usize,
    },
    /// Neither stride is 1: row stride `2 * cols + 1`, column stride 2.
    Spread,
}

pub fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        (0usize..5).prop_map(|pad| Layout::RowMajor { pad }),
        (0usize..5).prop_map(|pad| Layout::ColMajor { pad }),
        Just(Layout::Spread),
    ]
}

/// A matrix stored in a buffer with an offset, padding between rows/columns, and random values.
#[derive(Clone, Debug)]
pub struct Stored {
    pub data: Vec<f32>,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Stored {
    pub fn new(rows: usize, cols: usize, layout: Layout, offset: usize, seed: u64) -> Stored {
        let (rs, cs) = match layout {
            Layout::RowMajor { pad } => (cols + pad, 1),
            Layout::ColMajor { pad } => (1, rows + pad),
            Layout::Spread => (2 * cols + 1, 2),
        };
        let len = offset
            + if rows == 0 || cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            };
        let mut state = seed | 1;
        let data = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect();
        Stored {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }

    pub fn view(&self) -> MatRef<'_> {
        MatRef::new(
            &self.data[self.offset..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
        .unwrap()
    }

    pub fn view_mut(&mut self) -> MatMut<'_> {
        MatMut::new(
            &mut self.data[self.offset..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
        .unwrap()
    }

    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[self.offset + i * self.rs + j * self.cs]
    }
}

/// Checks `got` (the C after the product) against `alpha A B + beta C0` element by element
/// within `(k + 2) ε (|alpha| Σ|a||b| + |beta| |c0|)` (plus a tiny absolute slack for
/// denormal-range sums), and that nothing outside C changed.
pub fn assert_within_bound(
    alpha: f32,
    a: &Stored,
    b: &Stored,
    beta: f32,
    c0: &Stored,
    got: &Stored,
    what: &str,
) -> Result<(), TestCaseError> {
    let k = a.cols;
    let eps = f32::EPSILON as f64;
    for i in 0..got.rows {
        for j in 0..got.cols {
            let (mut exact, mut mag) = (0f64, 0f64);
            for p in 0..k {
                let t = a.at(i, p) as f64 * b.at(p, j) as f64;
                exact += t;
                mag += t.abs();
            }
            let prior = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c0.at(i, j) as f64
            };
            let expect = alpha as f64 * exact + prior;
            let prior_mag = if beta == 0.0 {
                0.0
            } else {
                (beta * c0.at(i, j)).abs() as f64
            };
            let bound = (k as f64 + 2.0) * eps * (alpha.abs() as f64 * mag + prior_mag) + 1e-30;
            let v = got.at(i, j) as f64;
            prop_assert!(
                (v - expect).abs() <= bound,
                "{what}: C[{i},{j}] = {v}, expected {expect} ± {bound} (m={}, n={}, k={k}, alpha={alpha}, beta={beta})",
                got.rows,
                got.cols
            );
        }
    }
    // Elements outside the view (offset, padding) are untouched.
    let mut inside = vec![false; got.data.len()];
    for i in 0..got.rows {
        for j in 0..got.cols {
            inside[got.offset + i * got.rs + j * got.cs] = true;
        }
    }
    for (idx, (g, o)) in got.data.iter().zip(&c0.data).enumerate() {
        if !inside[idx] {
            prop_assert!(
                g.to_bits() == o.to_bits(),
                "{what}: element {idx} outside C changed"
            );
        }
    }
    Ok(())
}

/// alpha/beta values: the special 0 and 1, -1, and a random one.
pub fn scalar() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), Just(1.0f32), Just(-1.0f32), -3.0f32..3.0]
}
