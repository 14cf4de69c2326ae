//! INT8 quantization and the int8 GEMM (the optimisation log's `quantize_int8`,
//! `dequantize_int8`, `quantize_with_scale` and its VNNI matrix multiply).
//!
//! Schemes ([`Int8Scheme`]), per tensor or per row ([`ScaleGroup`]):
//! - **Symmetric** (i8): `s = max|x| / 127`, `q = clamp(round(x / s), −127, 127)`, zero point 0.
//! - **Asymmetric** (u8): the range is widened to include 0 (so that 0 is exact),
//!   `s = (max − min) / 255`, `z = clamp(round(−min / s), 0, 255)`,
//!   `q = clamp(round(x / s) + z, 0, 255)`.
//!
//! `round` is round-half-to-even ([`f32::round_ties_even`]); the division is `x / s` in f32, the
//! scale computed in f64 and rounded to f32 once. An all-zero group gets `s = 0` and codes
//! equal to the zero point. Dequantization is `(q − z) · s`.
//!
//! GEMM ([`gemm`]): `C = A · Bᵀ` in exact i32 for A as i8 or u8 (activations) and B as i8
//! (weights, symmetric), both row-major with `k` contiguous; then [`Int8Matmul`] turns `C` into
//! f32 with the scales and zero points.

pub(crate) mod gemm;

pub use gemm::{Int8Path, gemm, gemm_on};

use crate::error::{QuantError, check_finite, check_len, elements, try_filled};
use crate::ternary::ScaleGroup;

/// The most values per row an int8 GEMM takes: `255 · 128 · k` must stay below 2^31.
pub const MAX_K_I8: usize = 1 << 16;

/// How values map to 8-bit codes (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Scheme {
    /// i8 codes in −127..=127, zero point 0.
    Symmetric,
    /// u8 codes in 0..=255 with a zero point.
    Asymmetric,
}

/// 8-bit codes of a signed or unsigned scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codes {
    /// Symmetric codes.
    I8(Vec<i8>),
    /// Asymmetric codes.
    U8(Vec<u8>),
}

/// A `rows × cols` matrix quantized to 8 bits, with one scale (and zero point) per tensor or row.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantI8 {
    rows: usize,
    cols: usize,
    codes: Codes,
    scales: Vec<f32>,
    zero_points: Vec<i32>,
}

/// The scale and zero point of one group of values (module docs).
fn params(values: &[f32], scheme: Int8Scheme) -> (f32, i32) {
    match scheme {
        Int8Scheme::Symmetric => {
            let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            ((f64::from(max) / 127.0) as f32, 0)
        }
        Int8Scheme::Asymmetric => {
            let (lo, hi) = values
                .iter()
                .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let s = ((f64::from(hi) - f64::from(lo)) / 255.0) as f32;
            if s == 0.0 {
                return (0.0, 0);
            }
            let z = (-lo / s).round_ties_even().clamp(0.0, 255.0) as i32;
            (s, z)
        }
    }
}

/// The code of `x` with scale `s` and zero point `z` (0 when `s` is 0).
fn code(x: f32, s: f32, z: i32, scheme: Int8Scheme) -> i32 {
    let q = if s == 0.0 {
        0.0
    } else {
        (x / s).round_ties_even()
    };
    match scheme {
        Int8Scheme::Symmetric => q.clamp(-127.0, 127.0) as i32,
        Int8Scheme::Asymmetric => (q + z as f32).clamp(0.0, 255.0) as i32,
    }
}

/// Quantizes `values` with a given scale and zero point (the log's `quantize_with_scale`):
/// symmetric codes as `i8` bytes, asymmetric ones as `u8`. The scale must be finite and ≥ 0 and
/// the zero point in 0..=255 (0 for symmetric).
pub fn quantize_with_scale(
    values: &[f32],
    scale: f32,
    zero_point: i32,
    scheme: Int8Scheme,
) -> Result<Codes, QuantError> {
    check_finite("values", values)?;
    if !scale.is_finite() || scale < 0.0 {
        return Err(QuantError::Invalid {
            what: "scale",
            reason: format!("{scale} is not a finite non-negative number"),
        });
    }
    let valid_zero = match scheme {
        Int8Scheme::Symmetric => zero_point == 0,
        Int8Scheme::Asymmetric => (0..=255).contains(&zero_point),
    };
    if !valid_zero {
        return Err(QuantError::Invalid {
            what: "zero point",
            reason: format!("{zero_point} is outside the range of the {scheme:?} scheme"),
        });
    }
    let codes = values.iter().map(|&x| code(x, scale, zero_point, scheme));
    Ok(match scheme {
        Int8Scheme::Symmetric => Codes::I8(codes.map(|q| q as i8).collect()),
        Int8Scheme::Asymmetric => Codes::U8(codes.map(|q| q as u8).collect()),
    })
}

impl QuantI8 {
    /// Quantizes the row-major `rows × cols` values (the log's `quantize_int8`), one scale per
    /// tensor or per row (`ScaleGroup::Block` is an error).
    pub fn quantize(
        values: &[f32],
        rows: usize,
        cols: usize,
        scheme: Int8Scheme,
        group: ScaleGroup,
    ) -> Result<QuantI8, QuantError> {
        check_len("values", elements(rows, cols)?, values.len())?;
        check_finite("values", values)?;
        let per_row = match group {
            ScaleGroup::Tensor => false,
            ScaleGroup::Row => true,
            ScaleGroup::Block(_) => {
                return Err(QuantError::Invalid {
                    what: "scale group",
                    reason: "int8 takes one scale per tensor or per row".into(),
                });
            }
        };
        let groups = if per_row { rows } else { 1 };
        let mut scales = try_filled("scales", groups, 0f32)?;
        let mut zero_points = try_filled("zero points", groups, 0i32)?;
        if per_row {
            for (r, (s, z)) in scales.iter_mut().zip(&mut zero_points).enumerate() {
                (*s, *z) = params(&values[r * cols..(r + 1) * cols], scheme);
            }
        } else {
            (scales[0], zero_points[0]) = params(values, scheme);
        }
        let param = |i: usize| {
            let g = if per_row && cols > 0 { i / cols } else { 0 };
            (scales[g], zero_points[g])
        };
        let codes = values.iter().enumerate().map(|(i, &x)| {
            let (s, z) = param(i);
            code(x, s, z, scheme)
        });
        let codes = match scheme {
            Int8Scheme::Symmetric => Codes::I8(codes.map(|q| q as i8).collect()),
            Int8Scheme::Asymmetric => Codes::U8(codes.map(|q| q as u8).collect()),
        };
        Ok(QuantI8 {
            rows,
            cols,
            codes,
            scales,
            zero_points,
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

    /// The scheme.
    pub fn scheme(&self) -> Int8Scheme {
        match self.codes {
            Codes::I8(_) => Int8Scheme::Symmetric,
            Codes::U8(_) => Int8Scheme::Asymmetric,
        }
    }

    /// The codes, row-major.
    pub fn codes(&self) -> &Codes {
        &self.codes
    }

    /// Scale and zero point of row `r` (the tensor's when there is one).
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn params(&self, r: usize) -> (f32, i32) {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        let g = if self.scales.len() == 1 { 0 } else { r };
        (self.scales[g], self.zero_points[g])
    }

    /// `(q − z) · s` for every value (the log's `dequantize_int8`).
    pub fn dequantize(&self) -> Vec<f32> {
        let code = |i: usize| match &self.codes {
            Codes::I8(v) => i32::from(v[i]),
            Codes::U8(v) => i32::from(v[i]),
        };
        (0..self.rows * self.cols)
            .map(|i| {
                let (s, z) = self.params(i / self.cols.max(1));
                (code(i) - z) as f32 * s
            })
            .collect()
    }
}

/// The f32 product of int8 operands: `Y = dequant(A) · dequant(B)ᵀ` through the exact i32 GEMM.
pub struct Int8Matmul;

impl Int8Matmul {
    /// `y[i * n + j] = s_a(i) s_b(j) Σ_k (a[i][k] − z_a(i)) b[j][k]` for A (`m × k`, either
    /// scheme) and B (`n × k`, symmetric), computed as `s_a s_b (C − z_a Σ_k b[j][k])` with `C`
    /// the exact i32 GEMM; the i32 → f32 conversion and two multiplies round (≤ 3 ε relative to
    /// the exact value of the quantized product, when `|C − z_a Σb| < 2^24`; larger sums round
    /// once more on conversion).
    pub fn run(
        a: &QuantI8,
        b: &QuantI8,
        y: &mut [f32],
        par: bitnet_simd::Par,
    ) -> Result<(), QuantError> {
        let Codes::I8(bq) = &b.codes else {
            return Err(QuantError::Invalid {
                what: "weights",
                reason: "the int8 GEMM takes symmetric (i8) weights".into(),
            });
        };
        if a.cols != b.cols {
            return Err(QuantError::Mismatch {
                what: "k of A and B",
                left: a.cols,
                right: b.cols,
            });
        }
        let (m, n, k) = (a.rows, b.rows, a.cols);
        check_len("output", elements(m, n)?, y.len())?;
        let mut c = try_filled("i32 products", m * n, 0i32)?;
        match &a.codes {
            Codes::I8(aq) => gemm(Operand::I8(aq), bq, m, n, k, &mut c, par)?,
            Codes::U8(aq) => gemm(Operand::U8(aq), bq, m, n, k, &mut c, par)?,
        }
        let b_sums: Vec<i64> = (0..n)
            .map(|j| bq[j * k..(j + 1) * k].iter().map(|&v| i64::from(v)).sum())
            .collect();
        for i in 0..m {
            let (sa, za) = a.params(i);
            for j in 0..n {
                let (sb, _) = b.params(j);
                let exact = i64::from(c[i * n + j]) - i64::from(za) * b_sums[j];
                y[i * n + j] = exact as f32 * sa * sb;
            }
        }
        Ok(())
    }
}

/// The left operand of [`gemm`]: signed or unsigned 8-bit codes.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// i8 codes.
    I8(&'a [i8]),
    /// u8 codes.
    U8(&'a [u8]),
}

impl Operand<'_> {
    fn len(&self) -> usize {
        match self {
            Operand::I8(v) => v.len(),
            Operand::U8(v) => v.len(),
        }
    }

    fn at(&self, i: usize) -> i32 {
        match self {
            Operand::I8(v) => i32::from(v[i]),
            Operand::U8(v) => i32::from(v[i]),
        }
    }
}

/// The scalar reference: `c[i * n + j] = Σ_k a[i][k] · b[j][k]` in i64, checked to fit i32.
pub fn gemm_reference(
    a: Operand<'_>,
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    c: &mut [i32],
) -> Result<(), QuantError> {
    gemm::check_shapes(a, b, m, n, k, c)?;
    for i in 0..m {
        for j in 0..n {
            let s: i64 = (0..k)
                .map(|p| i64::from(a.at(i * k + p)) * i64::from(b[j * k + p]))
                .sum();
            c[i * n + j] = i32::try_from(s).expect("k <= MAX_K_I8 keeps the sum in i32");
        }
    }
    Ok(())
}
