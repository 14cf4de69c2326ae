//! Reductions over a slice, split over the cores `Par` allows (each part `≥ 128 KiB`, the parts
//! combined at the end), each part on the active level:
//!
//! - [`sum`] and [`dot`]: blocked pairwise summation. A block of `128·L` values (`L` lanes)
//!   goes into 8 vector accumulators (16 terms per lane), which are added as a tree and then
//!   across lanes; block sums merge pairwise (a binary counter of partial sums), then the parts'.
//!   Error: `|s − Σ| ≤ (40 + ⌈log₂ n⌉) · ε · Σ |terms|` (ε = `f32::EPSILON`), at the speed of a
//!   plain vector sum.
//! - [`sum_compensated`]: Neumaier's compensated summation per lane, lanes and parts combined in
//!   f64: `|s − Σ| ≤ ε · |Σ| + 2 n ε² · Σ |xᵢ|`: correctly rounded but for sums that cancel
//!   almost completely. Slower (four more operations per vector).
//! - [`max`]: NaN if any value is NaN (unlike `f32::max`), `−inf` for an empty slice.
//!
//! Non-finite values propagate as in IEEE arithmetic (`inf − inf` is NaN).

use core::ops::Range;

use bitnet_simd::par::{SharedOut, chunk_len};
use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::error::{NnError, check_len};

/// Runs `f` on the parts of `0..len` (at least [`Par::MIN_BYTES_PER_THREAD`] of `bytes` each)
/// and returns their results in order.
fn parts<T: Copy + Default + Send>(
    len: usize,
    bytes: usize,
    par: Par,
    f: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let par = par.for_bytes(bytes);
    if len == 0 {
        return Vec::new();
    }
    let chunk = chunk_len(len, par.threads(), 4096);
    let n = len.div_ceil(chunk);
    let mut results = vec![T::default(); n];
    let out = SharedOut::new(results.as_mut_ptr());
    par.for_each_task(n, |p| {
        let v = f(p * chunk..((p + 1) * chunk).min(len));
        // SAFETY: p < n = results.len(); each task index runs once.
        unsafe { *out.at(p) = v };
    });
    results
}

/// `Σ values`, adding neighbours pairwise.
fn pairwise(values: &[f32]) -> f32 {
    match values.len() {
        0 => 0.0,
        1 => values[0],
        n => pairwise(&values[..n / 2]) + pairwise(&values[n / 2..]),
    }
}

/// `Σ x` (module docs: blocked pairwise, its bound).
pub fn sum(x: &[f32], par: Par) -> Result<f32, NnError> {
    let level = Level::active()?;
    let sums = parts(x.len(), 4 * x.len(), par, |r| {
        level.run(BlockedSum {
            a: &x[r.clone()],
            b: None,
        })
    });
    Ok(pairwise(&sums))
}

/// `Σ aᵢ bᵢ` (module docs: blocked pairwise with fused multiply-adds); an error unless the
/// lengths match.
pub fn dot(a: &[f32], b: &[f32], par: Par) -> Result<f32, NnError> {
    check_len("second operand", a.len(), b.len())?;
    let level = Level::active()?;
    let sums = parts(a.len(), 8 * a.len(), par, |r| {
        level.run(BlockedSum {
            a: &a[r.clone()],
            b: Some(&b[r]),
        })
    });
    Ok(pairwise(&sums))
}

/// `Σ x`, compensated (module docs).
pub fn sum_compensated(x: &[f32], par: Par) -> Result<f32, NnError> {
    let level = Level::active()?;
    let sums = parts(x.len(), 4 * x.len(), par, |r| {
        level.run(CompensatedSum { x: &x[r] })
    });
    Ok(sums.iter().sum::<f64>() as f32)
}

/// `max x`: NaN if any value is NaN, `−inf` if `x` is empty.
pub fn max(x: &[f32], par: Par) -> Result<f32, NnError> {
    let level = Level::active()?;
    let maxima = parts(x.len(), 4 * x.len(), par, |r| level.run(Max { x: &x[r] }));
    Ok(maxima.iter().fold(f32::NEG_INFINITY, |m, &v| {
        if m.is_nan() || v.is_nan() {
            f32::NAN
        } else {
            m.max(v)
        }
    }))
}

/// Vector accumulators per block.
const ACCS: usize = 8;
/// Vectors each accumulator takes per block.
const TERMS: usize = 16;

/// `Σ a` or `Σ a·b` of one part, blocked pairwise.
struct BlockedSum<'a> {
    a: &'a [f32],
    b: Option<&'a [f32]>,
}

impl WithSimd for BlockedSum<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        let block = ACCS * TERMS * lanes;
        // Binary counter of block sums: level i holds the sum of 2^i blocks, if any.
        let mut levels: [Option<f32>; 64] = [None; 64];
        for (i, a) in self.a.chunks(block).enumerate() {
            let b = self.b.map(|b| &b[i * block..i * block + a.len()]);
            let mut s = block_sum(simd, a, b);
            let mut l = 0;
            while let Some(prev) = levels[l].take() {
                s += prev;
                l += 1;
            }
            levels[l] = Some(s);
        }
        // The partial sums, smallest first, then pairwise (no allocation).
        let mut partial = [0f32; 64];
        let mut n = 0;
        for &v in levels.iter().flatten() {
            partial[n] = v;
            n += 1;
        }
        pairwise(&partial[..n])
    }
}

/// One block: `ACCS` accumulators, a tree, then across lanes.
#[inline(always)]
fn block_sum<S: Simd>(simd: S, a: &[f32], b: Option<&[f32]>) -> f32 {
    let mut acc = [simd.splat_f32s(0.0); ACCS];
    let (av, at) = S::as_simd_f32s(a);
    match b {
        None => {
            for (i, &v) in av.iter().enumerate() {
                acc[i % ACCS] = simd.add_f32s(acc[i % ACCS], v);
            }
            if !at.is_empty() {
                acc[av.len() % ACCS] =
                    simd.add_f32s(acc[av.len() % ACCS], simd.partial_load_f32s(at));
            }
        }
        Some(b) => {
            let (bv, bt) = S::as_simd_f32s(b);
            for (i, (&x, &y)) in av.iter().zip(bv).enumerate() {
                acc[i % ACCS] = simd.mul_add_e_f32s(x, y, acc[i % ACCS]);
            }
            if !at.is_empty() {
                let (x, y) = (simd.partial_load_f32s(at), simd.partial_load_f32s(bt));
                acc[av.len() % ACCS] = simd.mul_add_e_f32s(x, y, acc[av.len() % ACCS]);
            }
        }
    }
    let mut width = ACCS;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = simd.add_f32s(acc[i], acc[i + width]);
        }
    }
    simd.reduce_sum_f32s(acc[0])
}

/// Neumaier's compensated sum per lane; returns the lanes' `sum + compensation` added in f64.
struct CompensatedSum<'a> {
    x: &'a [f32],
}

impl WithSimd for CompensatedSum<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let (mut s, mut c) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
        let mut add = |x: S::f32s| {
            let t = simd.add_f32s(s, x);
            let s_bigger = simd.greater_than_or_equal_f32s(simd.abs_f32s(s), simd.abs_f32s(x));
            let lost = simd.select_f32s(
                s_bigger,
                simd.add_f32s(simd.sub_f32s(s, t), x),
                simd.add_f32s(simd.sub_f32s(x, t), s),
            );
            c = simd.add_f32s(c, lost);
            s = t;
        };
        let (xv, xt) = S::as_simd_f32s(self.x);
        for &v in xv {
            add(v);
        }
        if !xt.is_empty() {
            add(simd.partial_load_f32s(xt));
        }
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        let mut buf = [0f32; 2 * 64];
        let (sb, cb) = buf.split_at_mut(64);
        simd.partial_store_f32s(&mut sb[..lanes], s);
        simd.partial_store_f32s(&mut cb[..lanes], c);
        // A non-finite lane makes its compensation NaN: keep the IEEE result of the plain sum.
        let plain: f64 = sb[..lanes].iter().map(|&v| f64::from(v)).sum();
        if !plain.is_finite() {
            return plain;
        }
        plain + cb[..lanes].iter().map(|&v| f64::from(v)).sum::<f64>()
    }
}

/// The NaN-propagating maximum of one part.
struct Max<'a> {
    x: &'a [f32],
}

impl WithSimd for Max<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        row_max(simd, self.x)
    }
}

/// `max x` with NaN propagation, `−inf` if empty: shared with the softmax rows.
#[inline(always)]
pub(crate) fn row_max<S: Simd>(simd: S, x: &[f32]) -> f32 {
    let (xv, xt) = S::as_simd_f32s(x);
    let mut m = [simd.splat_f32s(f32::NEG_INFINITY); 4];
    // Lanes that met a NaN hold it here; the others stay 0.
    let mut nan = simd.splat_f32s(0.0);
    for (i, &v) in xv.iter().enumerate() {
        let j = i % 4;
        m[j] = simd.select_f32s(simd.greater_than_f32s(v, m[j]), v, m[j]);
        nan = simd.select_f32s(simd.equal_f32s(v, v), nan, v);
    }
    let m01 = simd.select_f32s(simd.greater_than_f32s(m[1], m[0]), m[1], m[0]);
    let m23 = simd.select_f32s(simd.greater_than_f32s(m[3], m[2]), m[3], m[2]);
    let mv = simd.select_f32s(simd.greater_than_f32s(m23, m01), m23, m01);
    let mut best = simd.reduce_max_f32s(mv);
    let mut any_nan = simd.reduce_sum_f32s(nan).is_nan();
    for &v in xt {
        any_nan |= v.is_nan();
        if v > best {
            best = v;
        }
    }
    if any_nan { f32::NAN } else { best }
}
