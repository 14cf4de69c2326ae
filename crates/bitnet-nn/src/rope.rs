//! Rotary position embedding (RoPE) of query and key vectors, in place.
//!
//! Layout: `x` is `tokens × heads × head_dim`, row-major; token `t` sits at position `pos0 + t`.
//! Pair `i` (`0 ≤ i < head_dim / 2`) rotates by the angle `pos · θ^(−2i / head_dim)`:
//!
//! - [`RopeStyle::HalfSplit`] (GPT-NeoX, Hugging Face Llama, BitNet b1.58): the pair is
//!   `(x[i], x[i + head_dim/2])`; vectorised over `i` on the active level (pulp).
//! - [`RopeStyle::Interleaved`] (GPT-J, the original Llama checkpoints): the pair is
//!   `(x[2i], x[2i+1])`; a plain loop (pulp has no portable lane swap), which the compiler
//!   vectorises where it can.
//!
//! The cosines and sines are computed once per token in f64 from the f64 angle (positions in
//! the thousands times frequencies near 1 lose most of an f32 angle's bits) and rounded to f32;
//! all heads of the token share them. That costs more than the rotation of a token's heads, so
//! [`Rope::cached`] precomputes them for the positions a model will use (the same f32 values:
//! results are identical with and without the table). Error: `|y − ŷ| ≤ 3 ε · (|x₁| + |x₂|)` per element of a
//! pair (ε = `f32::EPSILON`), against the f64 rotation of the same inputs.

use bitnet_simd::{Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

use crate::error::{NnError, rows_of};

/// Which elements of a head vector form a rotated pair (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeStyle {
    /// `(x[i], x[i + d/2])`: GPT-NeoX, Hugging Face Llama, BitNet b1.58.
    HalfSplit,
    /// `(x[2i], x[2i+1])`: GPT-J, the original Llama.
    Interleaved,
}

/// A RoPE configuration: head size, base `θ` and pairing.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    head_dim: usize,
    style: RopeStyle,
    /// `θ^(−2i / head_dim)` in f64, one per pair.
    inv_freq: Vec<f64>,
    /// Per cached position `pos`: the `head_dim / 2` cosines, then the sines, at
    /// `pos · head_dim` (empty when nothing is cached).
    table: Vec<f32>,
}

impl Rope {
    /// RoPE for heads of `head_dim` (even, > 0) with base `theta` (finite, > 0; BitNet b1.58
    /// uses 500000, Llama 2 10000).
    pub fn new(head_dim: usize, theta: f32, style: RopeStyle) -> Result<Rope, NnError> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(NnError::Invalid {
                what: "head_dim",
                reason: format!("{head_dim} is not even and positive"),
            });
        }
        if !(theta.is_finite() && theta > 0.0) {
            return Err(NnError::Invalid {
                what: "theta",
                reason: format!("{theta} is not finite and positive"),
            });
        }
        let inv_freq = (0..head_dim / 2)
            .map(|i| f64::from(theta).powf(-2.0 * i as f64 / head_dim as f64))
            .collect();
        Ok(Rope {
            head_dim,
            style,
            inv_freq,
            table: Vec::new(),
        })
    }

    /// This RoPE with the cosines and sines of positions `0..positions` precomputed (`positions
    /// × head_dim` f32: 2 MiB for 4096 positions of 128); positions past them are computed per
    /// call as without a table. An error if the table cannot be allocated.
    pub fn cached(mut self, positions: usize) -> Result<Rope, NnError> {
        let n = positions
            .checked_mul(self.head_dim)
            .ok_or_else(|| NnError::Invalid {
                what: "RoPE table",
                reason: format!("{positions} positions of {} overflow", self.head_dim),
            })?;
        let mut table = Vec::new();
        table.try_reserve_exact(n).map_err(|_| NnError::Invalid {
            what: "RoPE table",
            reason: format!("{n} values cannot be allocated"),
        })?;
        table.resize(n, 0.0);
        for (pos, row) in table.chunks_exact_mut(self.head_dim).enumerate() {
            self.fill_cos_sin(pos, row);
        }
        self.table = table;
        Ok(self)
    }

    /// Positions with precomputed cosines and sines ([`Rope::cached`]).
    pub fn cached_positions(&self) -> usize {
        self.table.len() / self.head_dim
    }

    /// The cosines (first half) and sines (second half) of position `pos` into `row`.
    fn fill_cos_sin(&self, pos: usize, row: &mut [f32]) {
        let (cos, sin) = row.split_at_mut(self.head_dim / 2);
        for (p, (c, s)) in cos.iter_mut().zip(sin).enumerate() {
            (*c, *s) = self.cos_sin(pos, p);
        }
    }

    /// Head size.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// The pairing.
    pub fn style(&self) -> RopeStyle {
        self.style
    }

    /// `(cos, sin)` of pair `i`'s angle at position `pos`, rounded to f32.
    pub fn cos_sin(&self, pos: usize, i: usize) -> (f32, f32) {
        let (sin, cos) = (pos as f64 * self.inv_freq[i]).sin_cos();
        (cos as f32, sin as f32)
    }

    /// Rotates `x` (`tokens × heads × head_dim`) in place, token `t` at position `pos0 + t`;
    /// tokens split over the cores `par` allows. An error unless `x` is a whole number of
    /// tokens of `heads` heads.
    pub fn apply(&self, x: &mut [f32], heads: usize, pos0: usize, par: Par) -> Result<(), NnError> {
        let token_len = heads * self.head_dim;
        let tokens = rows_of("x", x.len(), token_len)?;
        if pos0.checked_add(tokens).is_none() {
            return Err(NnError::Invalid {
                what: "pos0",
                reason: format!("{pos0} + {tokens} tokens overflows"),
            });
        }
        let level = Level::active()?;
        if x.is_empty() {
            return Ok(());
        }
        let half = self.head_dim / 2;
        par.for_bytes(8 * x.len())
            .for_each_chunk_mut(x, token_len, |start, part| {
                let mut scratch = ScratchPool::global().take::<f32>(2 * half);
                for (i, token) in part.chunks_exact_mut(token_len).enumerate() {
                    let pos = pos0 + start / token_len + i;
                    let row = if pos < self.cached_positions() {
                        &self.table[pos * 2 * half..(pos + 1) * 2 * half]
                    } else {
                        self.fill_cos_sin(pos, &mut scratch);
                        &scratch[..]
                    };
                    let (cos, sin) = row.split_at(half);
                    for head in token.chunks_exact_mut(self.head_dim) {
                        match self.style {
                            RopeStyle::HalfSplit => {
                                let (x1, x2) = head.split_at_mut(half);
                                level.run(RotateHalves { x1, x2, cos, sin });
                            }
                            RopeStyle::Interleaved => {
                                for (p, pair) in head.chunks_exact_mut(2).enumerate() {
                                    let (a, b) = (pair[0], pair[1]);
                                    pair[0] = a * cos[p] - b * sin[p];
                                    pair[1] = b * cos[p] + a * sin[p];
                                }
                            }
                        }
                    }
                }
            });
        Ok(())
    }
}

/// `(x1, x2) ← (x1 cos − x2 sin, x2 cos + x1 sin)` elementwise.
struct RotateHalves<'a> {
    x1: &'a mut [f32],
    x2: &'a mut [f32],
    cos: &'a [f32],
    sin: &'a [f32],
}

impl WithSimd for RotateHalves<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let rot = |a: S::f32s, b: S::f32s, c: S::f32s, s: S::f32s| {
            (
                simd.sub_f32s(simd.mul_f32s(a, c), simd.mul_f32s(b, s)),
                simd.add_f32s(simd.mul_f32s(b, c), simd.mul_f32s(a, s)),
            )
        };
        let (av, at) = S::as_mut_simd_f32s(self.x1);
        let (bv, bt) = S::as_mut_simd_f32s(self.x2);
        let (cv, ct) = S::as_simd_f32s(self.cos);
        let (sv, st) = S::as_simd_f32s(self.sin);
        for (((a, b), &c), &s) in av.iter_mut().zip(bv.iter_mut()).zip(cv).zip(sv) {
            (*a, *b) = rot(*a, *b, c, s);
        }
        if !at.is_empty() {
            let (a, b) = rot(
                simd.partial_load_f32s(at),
                simd.partial_load_f32s(bt),
                simd.partial_load_f32s(ct),
                simd.partial_load_f32s(st),
            );
            simd.partial_store_f32s(at, a);
            simd.partial_store_f32s(bt, b);
        }
    }
}
