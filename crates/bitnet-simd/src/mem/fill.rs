//! Vectorised fill (the seed's `memset_float_avx2`), for any plain-data element type.
//!
//! The element's bytes are repeated into a 64-byte pattern, loaded once into a vector register
//! and stored to every full vector of the destination; the tail takes the pattern's first bytes.
//! Vector widths (16/32/64 bytes) are multiples of the element size whenever that divides 64, so
//! the pattern stays in phase with the elements. Element sizes that do not divide 64 use
//! `slice::fill`; a level whose vector is narrower than the element (scalar) copies the pattern
//! 64 bytes at a time.

use super::MemError;
use crate::dispatch::Level;
use pulp::{Simd, WithSimd};

/// Sets every element of `dst` to `value`, with vector stores at the active level.
pub fn fill<T: bytemuck::Pod>(dst: &mut [T], value: T) -> Result<(), MemError> {
    let size = size_of::<T>();
    if size == 0 || 64 % size != 0 {
        dst.fill(value);
        return Ok(());
    }
    let mut pattern = [0u8; 64];
    for chunk in pattern.chunks_exact_mut(size) {
        chunk.copy_from_slice(bytemuck::bytes_of(&value));
    }
    Level::active()?.run(FillBytes {
        dst: bytemuck::cast_slice_mut(dst),
        pattern: &pattern,
        elem_size: size,
    });
    Ok(())
}

struct FillBytes<'a> {
    dst: &'a mut [u8],
    pattern: &'a [u8; 64],
    elem_size: usize,
}

impl WithSimd for FillBytes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> Self::Output {
        if size_of::<S::u8s>() % self.elem_size != 0 {
            for chunk in self.dst.chunks_mut(64) {
                let n = chunk.len();
                chunk.copy_from_slice(&self.pattern[..n]);
            }
            return;
        }
        // The vector width divides 64, so the first vector of the pattern is the whole register.
        let v = S::as_simd_u8s(self.pattern).0[0];
        let (body, tail) = S::as_mut_simd_u8s(self.dst);
        for d in body {
            *d = v;
        }
        let n = tail.len();
        tail.copy_from_slice(&self.pattern[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{testable_isas, with_isa};

    #[test]
    fn fills_every_type_on_every_level() {
        for isa in testable_isas().unwrap() {
            with_isa(isa, || {
                for len in [0usize, 1, 5, 16, 17, 100, 1031] {
                    let mut a = vec![0f32; len + 1];
                    fill(&mut a[1..], -2.5f32).unwrap();
                    assert!(a[1..].iter().all(|&x| x == -2.5) && a[0] == 0.0);
                    let mut b = vec![0u8; len];
                    fill(&mut b, 0xA5).unwrap();
                    assert!(b.iter().all(|&x| x == 0xA5));
                    let mut c = vec![0u64; len];
                    fill(&mut c, u64::MAX - 3).unwrap();
                    assert!(c.iter().all(|&x| x == u64::MAX - 3));
                    let mut d = vec![[0u8; 3]; len];
                    fill(&mut d, [1, 2, 3]).unwrap();
                    assert!(d.iter().all(|&x| x == [1, 2, 3]));
                    let mut e = vec![0u16; len + 3];
                    fill(&mut e[3..], 0xBEEF).unwrap();
                    assert!(e[3..].iter().all(|&x| x == 0xBEEF));
                }
            })
            .unwrap();
        }
    }
}
