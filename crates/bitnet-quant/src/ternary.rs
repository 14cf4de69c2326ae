//! BitNet b1.58 weight quantization: absmean to {-1, 0, +1} with one f32 scale per group.
//!
//! For each group of weights G (the whole tensor, a row, or a block of consecutive weights of a
//! row): `s = max(mean_{w in G} |w|, 1e-5)` (the mean accumulated in f64, then rounded to f32),
//! and `code = clamp(round_half_even(w / s), -1, 1)` with the division in f32. Then `w ≈ s * code`.
//! Round-half-to-even is what `torch.round` does in the BitNet training recipe.

use crate::error::{QuantError, check_finite, check_len, elements, try_filled};

/// The smallest scale: an all-zero group gets this scale and all-zero codes.
pub const MIN_SCALE: f32 = 1e-5;

/// Which weights share one scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleGroup {
    /// One scale for the whole tensor (BitNet b1.58, and I2_S).
    Tensor,
    /// One scale per row.
    Row,
    /// One scale per `n` consecutive weights of a row (`cols` must be a multiple of `n`).
    Block(usize),
}

/// A `rows x cols` ternary matrix: codes in {-1, 0, 1}, row-major, with their scales.
#[derive(Clone, Debug, PartialEq)]
pub struct TernaryMatrix {
    rows: usize,
    cols: usize,
    group: ScaleGroup,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl TernaryMatrix {
    /// Absmean-quantizes the row-major `rows x cols` `weights` (see the module docs).
    ///
    /// Errors: a length that does not match the shape, a non-finite weight, a block of 0 or one
    /// that does not divide `cols`.
    pub fn quantize_absmean(
        weights: &[f32],
        rows: usize,
        cols: usize,
        group: ScaleGroup,
    ) -> Result<TernaryMatrix, QuantError> {
        check_len("weights", elements(rows, cols)?, weights.len())?;
        check_finite("weights", weights)?;
        let group_len = group_len(group, rows, cols)?;
        let mut codes = vec![0i8; weights.len()];
        let mut scales = Vec::new();
        for (g, chunk) in weights.chunks(group_len.max(1)).enumerate() {
            let mean = chunk.iter().map(|w| f64::from(w.abs())).sum::<f64>() / chunk.len() as f64;
            let s = (mean as f32).max(MIN_SCALE);
            scales.push(s);
            let out = &mut codes[g * group_len..g * group_len + chunk.len()];
            for (c, &w) in out.iter_mut().zip(chunk) {
                *c = (w / s).round_ties_even().clamp(-1.0, 1.0) as i8;
            }
        }
        if scales.is_empty() {
            // An empty tensor still has its one (or `rows`) scale(s).
            scales = try_filled("scales", scale_count(group, rows, cols)?, MIN_SCALE)?;
        }
        Ok(TernaryMatrix {
            rows,
            cols,
            group,
            codes,
            scales,
        })
    }

    /// A matrix from its parts; checks that every code is -1, 0 or 1, that there is one finite,
    /// non-negative scale per group, and the lengths.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        group: ScaleGroup,
        codes: Vec<i8>,
        scales: Vec<f32>,
    ) -> Result<TernaryMatrix, QuantError> {
        check_len("codes", elements(rows, cols)?, codes.len())?;
        group_len(group, rows, cols)?;
        check_len("scales", scale_count(group, rows, cols)?, scales.len())?;
        check_finite("scales", &scales)?;
        if let Some(i) = scales.iter().position(|&s| s < 0.0) {
            return Err(QuantError::Invalid {
                what: "scales",
                reason: format!("scale {i} is negative ({})", scales[i]),
            });
        }
        if let Some(i) = codes.iter().position(|c| !(-1..=1).contains(c)) {
            return Err(QuantError::Invalid {
                what: "codes",
                reason: format!("code {i} is {}, not -1, 0 or 1", codes[i]),
            });
        }
        Ok(TernaryMatrix {
            rows,
            cols,
            group,
            codes,
            scales,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (the reduction dimension `k` of a linear layer's `W`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Which weights share a scale.
    pub fn group(&self) -> ScaleGroup {
        self.group
    }

    /// The codes, row-major, each -1, 0 or 1.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// One scale per group, in group order (row-major).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Row `r`'s codes.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[i8] {
        &self.codes[r * self.cols..(r + 1) * self.cols]
    }

    /// The scale of element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn scale_at(&self, r: usize, c: usize) -> f32 {
        assert!(
            r < self.rows && c < self.cols,
            "({r}, {c}) is outside {} x {}",
            self.rows,
            self.cols
        );
        match self.group {
            ScaleGroup::Tensor => self.scales[0],
            ScaleGroup::Row => self.scales[r],
            ScaleGroup::Block(b) => self.scales[(r * self.cols + c) / b],
        }
    }

    /// `scale * code` for every element, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        if self.cols == 0 {
            return Vec::new();
        }
        (0..self.rows)
            .flat_map(|r| (0..self.cols).map(move |c| (r, c)))
            .map(|(r, c)| self.scale_at(r, c) * f32::from(self.codes[r * self.cols + c]))
            .collect()
    }
}

/// Number of weights per group (0 for an empty tensor).
fn group_len(group: ScaleGroup, rows: usize, cols: usize) -> Result<usize, QuantError> {
    match group {
        ScaleGroup::Tensor => elements(rows, cols),
        ScaleGroup::Row => Ok(cols),
        ScaleGroup::Block(0) => Err(QuantError::Invalid {
            what: "block",
            reason: "a block of 0 weights".into(),
        }),
        ScaleGroup::Block(b) if !cols.is_multiple_of(b) => Err(QuantError::NotMultiple {
            what: "cols",
            len: cols,
            block: b,
            format: "scale",
        }),
        ScaleGroup::Block(b) => Ok(b),
    }
}

/// Number of scales a shape has.
fn scale_count(group: ScaleGroup, rows: usize, cols: usize) -> Result<usize, QuantError> {
    Ok(match group {
        ScaleGroup::Tensor => 1,
        ScaleGroup::Row => rows,
        ScaleGroup::Block(b) => elements(rows, cols)? / b.max(1),
    })
}
