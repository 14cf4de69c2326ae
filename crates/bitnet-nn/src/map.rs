//! The elementwise drivers every unary and binary operation runs on: whole vectors four at a
//! time, then single vectors, then the ragged tail through a partial load and store (so the
//! tail runs the same vector code as the body, on every level); the slice split over the cores
//! `Par` allows, weighted by the bytes touched.

use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par};
use pulp::{Simd, WithSimd};

use crate::error::{NnError, check_len};

/// An elementwise function of one vector.
pub(crate) trait Unary: Copy + Send + Sync {
    /// `f(x)` lane by lane.
    fn vec<S: Simd>(self, simd: S, x: S::f32s) -> S::f32s;
}

/// An elementwise function of two vectors.
pub(crate) trait Binary: Copy + Send + Sync {
    /// `f(a, b)` lane by lane.
    fn vec<S: Simd>(self, simd: S, a: S::f32s, b: S::f32s) -> S::f32s;
}

/// Elements below which a split over threads is not tried (each part gets at least
/// `Par::MIN_BYTES_PER_THREAD` anyway); parts are whole multiples of it.
const GRANULE: usize = 1024;

/// `x[i] = f(x[i])`.
pub(crate) fn unary_in_place<F: Unary>(f: F, x: &mut [f32], par: Par) -> Result<(), NnError> {
    let level = Level::active()?;
    par.for_bytes(8 * x.len())
        .for_each_chunk_mut(x, GRANULE, |_, part| level.run(UnaryInPlace { f, x: part }));
    Ok(())
}

/// `y[i] = f(x[i])`.
pub(crate) fn unary_to<F: Unary>(f: F, x: &[f32], y: &mut [f32], par: Par) -> Result<(), NnError> {
    check_len("output", x.len(), y.len())?;
    let level = Level::active()?;
    par.for_bytes(8 * x.len())
        .for_each_chunk_mut(y, GRANULE, |start, part| {
            let x = &x[start..start + part.len()];
            level.run(UnaryTo { f, x, y: part })
        });
    Ok(())
}

/// `acc[i] = f(acc[i], b[i])`.
pub(crate) fn binary_in_place<F: Binary>(
    f: F,
    acc: &mut [f32],
    b: &[f32],
    par: Par,
) -> Result<(), NnError> {
    check_len("second operand", acc.len(), b.len())?;
    let level = Level::active()?;
    par.for_bytes(12 * acc.len())
        .for_each_chunk_mut(acc, GRANULE, |start, part| {
            let b = &b[start..start + part.len()];
            level.run(BinaryInPlace { f, acc: part, b })
        });
    Ok(())
}

/// `out[i] = f(a[i], b[i])`.
pub(crate) fn binary_to<F: Binary>(
    f: F,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    check_len("second operand", a.len(), b.len())?;
    check_len("output", a.len(), out.len())?;
    let level = Level::active()?;
    let shared = SharedOut::new(out.as_mut_ptr());
    par.for_bytes(12 * a.len())
        .for_each_range(a.len(), GRANULE, |range| {
            // SAFETY: `range` of out (a.len() = out.len() elements) belongs to this part alone.
            let out =
                unsafe { core::slice::from_raw_parts_mut(shared.at(range.start), range.len()) };
            level.run(BinaryTo {
                f,
                a: &a[range.clone()],
                b: &b[range],
                out,
            })
        });
    Ok(())
}

struct UnaryInPlace<'a, F> {
    f: F,
    x: &'a mut [f32],
}

impl<F: Unary> WithSimd for UnaryInPlace<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let f = self.f;
        let (body, tail) = S::as_mut_simd_f32s(self.x);
        let mut quads = body.chunks_exact_mut(4);
        for q in &mut quads {
            for v in q {
                *v = f.vec(simd, *v);
            }
        }
        for v in quads.into_remainder() {
            *v = f.vec(simd, *v);
        }
        if !tail.is_empty() {
            let v = f.vec(simd, simd.partial_load_f32s(tail));
            simd.partial_store_f32s(tail, v);
        }
    }
}

struct UnaryTo<'a, F> {
    f: F,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl<F: Unary> WithSimd for UnaryTo<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let f = self.f;
        let (xb, xt) = S::as_simd_f32s(self.x);
        let (yb, yt) = S::as_mut_simd_f32s(self.y);
        for (y, &x) in yb.iter_mut().zip(xb) {
            *y = f.vec(simd, x);
        }
        if !xt.is_empty() {
            simd.partial_store_f32s(yt, f.vec(simd, simd.partial_load_f32s(xt)));
        }
    }
}

struct BinaryInPlace<'a, F> {
    f: F,
    acc: &'a mut [f32],
    b: &'a [f32],
}

impl<F: Binary> WithSimd for BinaryInPlace<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let f = self.f;
        let (ab, at) = S::as_mut_simd_f32s(self.acc);
        let (bb, bt) = S::as_simd_f32s(self.b);
        for (a, &b) in ab.iter_mut().zip(bb) {
            *a = f.vec(simd, *a, b);
        }
        if !at.is_empty() {
            let v = f.vec(simd, simd.partial_load_f32s(at), simd.partial_load_f32s(bt));
            simd.partial_store_f32s(at, v);
        }
    }
}

struct BinaryTo<'a, F> {
    f: F,
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
}

impl<F: Binary> WithSimd for BinaryTo<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let f = self.f;
        let (ab, at) = S::as_simd_f32s(self.a);
        let (bb, bt) = S::as_simd_f32s(self.b);
        let (ob, ot) = S::as_mut_simd_f32s(self.out);
        for ((o, &a), &b) in ob.iter_mut().zip(ab).zip(bb) {
            *o = f.vec(simd, a, b);
        }
        if !at.is_empty() {
            let v = f.vec(simd, simd.partial_load_f32s(at), simd.partial_load_f32s(bt));
            simd.partial_store_f32s(ot, v);
        }
    }
}
