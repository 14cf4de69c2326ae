//! Vector math written once over `pulp` (every level runs the same operations, so the same
//! algorithm on every ISA): `exp` (accurate, subnormals included), `exp_fast` (a shorter
//! polynomial, flushes outside the normal range), `1 + erf` without cancellation for negative
//! arguments, and the helpers the activations share.
//!
//! `exp`: Cody–Waite reduction `x = n·ln2 + r` (`ln2` in two parts, `|r| ≤ ln2/2`), the Cephes
//! degree-7 polynomial `1 + r + r²·P(r)`, then `2^n` built in the exponent bits; `n` below −126
//! or above 127 is split into two exact factors so that subnormal results round once more at
//! most and results past `f32::MAX` overflow to `+inf`. `exp_fast`: one-constant reduction, a
//! degree-4 polynomial (least-squares on Chebyshev nodes of the relative error), `2^n` directly:
//! `0` below −87 and `+inf` above 88. Both return NaN for NaN. Their measured errors are stated
//! in `lib.rs` and tested.

use pulp::Simd;

/// `1.5 · 2^23`: adding it rounds an `f32` below `2^22` in magnitude to an integer (the current
/// rounding mode, to nearest even), which then sits in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;
/// The bits of [`MAGIC`].
const MAGIC_BITS: u32 = 0x4B40_0000;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` in two parts for exact `n · LN2_HI` (Cephes).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// Cephes `expf` polynomial: `e^r ≈ 1 + r + r² · P(r)`, highest power first.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `exp_fast`'s `e^r ≈ 1 + r + r² · (c0 + c1 r + c2 r²)`, highest power first.
const EXP_FAST_P: [f32; 3] = [0.040_917_39, 0.167_539_86, 0.500_089_35];

/// `erf(z) / z ≈ P(z²)` for `|z| ≤ 1`, highest power first.
const ERF_SMALL: [f32; 6] = [
    -5.667_873e-4,
    4.927_39e-3,
    -2.672_086_7e-2,
    0.112_805_78,
    -0.376_123_9,
    std::f32::consts::FRAC_2_SQRT_PI,
];

/// `ln erfc(z) ≈ Q(z)` for `1 ≤ z ≤ ERFC_END`, highest power first.
const LN_ERFC: [f32; 9] = [
    1.644_952_4e-6,
    -4.618_072e-5,
    5.975_754_5e-4,
    -4.761_979e-3,
    2.642_449_4e-2,
    -0.110_080_15,
    -0.631_831_94,
    -1.130_226_6,
    3.176_805_3e-4,
];

/// From here on `erf(z)` rounds to `1` in f32 and `erfc(z) < 3·10⁻⁸` is dropped.
const ERFC_END: f32 = 3.92;

/// `Σ c[i] · v^(len − 1 − i)` by Horner's rule.
#[inline(always)]
fn horner<S: Simd>(simd: S, v: S::f32s, c: &[f32]) -> S::f32s {
    let mut p = simd.splat_f32s(c[0]);
    for &ci in &c[1..] {
        p = simd.mul_add_e_f32s(p, v, simd.splat_f32s(ci));
    }
    p
}

/// `round(v)` to the nearest integer for `|v| < 2^22`.
#[inline(always)]
fn round_small<S: Simd>(simd: S, v: S::f32s) -> S::f32s {
    let m = simd.splat_f32s(MAGIC);
    simd.sub_f32s(simd.add_f32s(v, m), m)
}

/// `2^n` for an integral `n` in `[−126, 127]`, built in the exponent bits.
#[inline(always)]
fn pow2i<S: Simd>(simd: S, n: S::f32s) -> S::f32s {
    // The bits of n + MAGIC are MAGIC_BITS + n; (n + 127) << 23 is 2^n.
    let bits = simd.transmute_u32s_f32s(simd.add_f32s(n, simd.splat_f32s(MAGIC)));
    let biased = simd.add_u32s(bits, simd.splat_u32s(127u32.wrapping_sub(MAGIC_BITS)));
    simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(biased, simd.splat_u32s(23)))
}

/// `v` where `x` is not NaN, else `x`.
#[inline(always)]
pub(crate) fn keep_nan<S: Simd>(simd: S, x: S::f32s, v: S::f32s) -> S::f32s {
    simd.select_f32s(simd.equal_f32s(x, x), v, x)
}

/// `v`, but `−0` where `x` is `−inf` (the limit of `x · g(x)` activations whose formula gives
/// `−inf · 0`).
#[inline(always)]
pub(crate) fn neg_inf_to_zero<S: Simd>(simd: S, x: S::f32s, v: S::f32s) -> S::f32s {
    let neg_inf = simd.equal_f32s(x, simd.splat_f32s(f32::NEG_INFINITY));
    simd.select_f32s(neg_inf, simd.splat_f32s(-0.0), v)
}

/// `e^x`, accurate (module docs).
#[inline(always)]
pub(crate) fn exp<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    let xc = simd.min_f32s(
        simd.max_f32s(x, simd.splat_f32s(-104.0)),
        simd.splat_f32s(89.0),
    );
    let n = round_small(simd, simd.mul_f32s(xc, simd.splat_f32s(LOG2E)));
    let r = simd.mul_add_e_f32s(n, simd.splat_f32s(-LN2_HI), xc);
    let r = simd.mul_add_e_f32s(n, simd.splat_f32s(-LN2_LO), r);
    let p = horner(simd, r, &EXP_P);
    let y = simd.add_f32s(
        simd.mul_add_e_f32s(p, simd.mul_f32s(r, r), r),
        simd.splat_f32s(1.0),
    );
    // n in [−150, 128]: shift it into [−126, 127] and scale by the exact rest.
    let low = simd.less_than_f32s(n, simd.splat_f32s(-126.0));
    let high = simd.greater_than_f32s(n, simd.splat_f32s(127.0));
    let one = simd.splat_f32s(1.0);
    let shift = simd.select_f32s(
        low,
        simd.splat_f32s(64.0),
        simd.select_f32s(high, simd.splat_f32s(-1.0), simd.splat_f32s(0.0)),
    );
    let rest = simd.select_f32s(
        low,
        simd.splat_f32s(f32::from_bits(0x1F80_0000)), // 2^−64
        simd.select_f32s(high, simd.splat_f32s(2.0), one),
    );
    let scaled = simd.mul_f32s(simd.mul_f32s(y, pow2i(simd, simd.add_f32s(n, shift))), rest);
    keep_nan(simd, x, scaled)
}

/// `e^x`, fast (module docs): `0` below −87, `+inf` above 88.
#[inline(always)]
pub(crate) fn exp_fast<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    let (lo, hi) = (simd.splat_f32s(-87.0), simd.splat_f32s(88.0));
    let xc = simd.min_f32s(simd.max_f32s(x, lo), hi);
    let n = round_small(simd, simd.mul_f32s(xc, simd.splat_f32s(LOG2E)));
    let r = simd.mul_add_e_f32s(n, simd.splat_f32s(-std::f32::consts::LN_2), xc);
    let q = horner(simd, r, &EXP_FAST_P);
    let y = simd.add_f32s(
        simd.mul_add_e_f32s(q, simd.mul_f32s(r, r), r),
        simd.splat_f32s(1.0),
    );
    let v = simd.mul_f32s(y, pow2i(simd, n));
    let v = simd.select_f32s(simd.less_than_f32s(x, lo), simd.splat_f32s(0.0), v);
    let v = simd.select_f32s(
        simd.greater_than_f32s(x, hi),
        simd.splat_f32s(f32::INFINITY),
        v,
    );
    keep_nan(simd, x, v)
}

/// `1 + erf(z)`: `1 + z·P(z²)` for `|z| ≤ 1`; beyond, `erfc(|z|) = exp(Q(|z|))`, giving
/// `2 − erfc(z)` for positive and `erfc(|z|)` for negative `z` (no cancellation: the relative
/// accuracy holds in the negative tail down to `z = −3.92`, where `erfc` is dropped).
#[inline(always)]
pub(crate) fn one_plus_erf<S: Simd>(simd: S, z: S::f32s) -> S::f32s {
    let a = simd.abs_f32s(z);
    let one = simd.splat_f32s(1.0);
    let small = simd.mul_add_e_f32s(z, horner(simd, simd.mul_f32s(z, z), &ERF_SMALL), one);
    let end = simd.splat_f32s(ERFC_END);
    let ac = simd.max_f32s(simd.min_f32s(a, end), one);
    let erfc = exp(simd, horner(simd, ac, &LN_ERFC));
    let erfc = simd.select_f32s(simd.greater_than_f32s(a, end), simd.splat_f32s(0.0), erfc);
    let big = simd.select_f32s(
        simd.greater_than_f32s(z, simd.splat_f32s(0.0)),
        simd.sub_f32s(simd.splat_f32s(2.0), erfc),
        erfc,
    );
    simd.select_f32s(simd.less_than_or_equal_f32s(a, one), small, big)
}
