//! `AlignedVec<T>`: a growable buffer whose data starts on a 64-byte boundary.
//!
//! 64 bytes is a cache line and the width of an AVX-512 register, so a kernel may use aligned
//! loads on it and two buffers never share a line (no false sharing between threads writing
//! adjacent buffers). Elements are plain data (`T: Copy`): there is nothing to drop, and growth is
//! a reallocation plus a memcpy. Zero-sized `T` is rejected at compile time.

use std::alloc::{self, Layout};
use std::fmt;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The alignment of every `AlignedVec` allocation, in bytes.
pub const ALIGN: usize = 64;

/// A growable, 64-byte-aligned buffer of plain data.
pub struct AlignedVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

// SAFETY: `AlignedVec<T>` owns its elements exactly like `Vec<T>`: sending it sends the `T`s, and
// sharing `&AlignedVec<T>` only hands out `&[T]`.
unsafe impl<T: Copy + Send> Send for AlignedVec<T> {}
// SAFETY: as above, `&AlignedVec<T>` gives only shared access to the `T`s.
unsafe impl<T: Copy + Sync> Sync for AlignedVec<T> {}

impl<T: Copy> AlignedVec<T> {
    const ALIGN: usize = {
        assert!(
            size_of::<T>() != 0,
            "AlignedVec does not hold zero-sized types"
        );
        if align_of::<T>() > ALIGN {
            align_of::<T>()
        } else {
            ALIGN
        }
    };

    /// An empty buffer (no allocation).
    pub const fn new() -> AlignedVec<T> {
        AlignedVec {
            // An address that is a multiple of the alignment, never dereferenced while cap == 0.
            ptr: match NonNull::new(std::ptr::without_provenance_mut(Self::ALIGN)) {
                Some(p) => p,
                None => unreachable!(),
            },
            len: 0,
            cap: 0,
        }
    }

    /// An empty buffer with room for `cap` elements.
    ///
    /// # Panics
    /// If the byte size overflows `isize` (like `Vec`); aborts if the allocator fails.
    pub fn with_capacity(cap: usize) -> AlignedVec<T> {
        let mut v = AlignedVec::new();
        v.reserve_exact(cap);
        v
    }

    /// `len` copies of `value`.
    pub fn from_elem(value: T, len: usize) -> AlignedVec<T> {
        let mut v = AlignedVec::with_capacity(len);
        v.resize(len, value);
        v
    }

    /// A copy of `data`.
    pub fn from_slice(data: &[T]) -> AlignedVec<T> {
        let mut v = AlignedVec::with_capacity(data.len());
        v.extend_from_slice(data);
        v
    }

    /// `len` elements whose bytes are all zero, from zeroed memory (pages the OS hands out
    /// zeroed are not touched until used).
    pub fn zeroed(len: usize) -> AlignedVec<T>
    where
        T: bytemuck::Zeroable,
    {
        let mut v = AlignedVec::new();
        if len > 0 {
            let layout = Self::layout(len);
            // SAFETY: `layout` has non-zero size (len > 0, T not zero-sized).
            let raw = unsafe { alloc::alloc_zeroed(layout) };
            v.ptr = NonNull::new(raw.cast()).unwrap_or_else(|| alloc::handle_alloc_error(layout));
            v.cap = len;
            v.len = len;
        }
        v
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements the buffer holds without reallocating.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Pointer to the first element: always a multiple of 64 (and of `align_of::<T>()`).
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// Mutable pointer to the first element.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: `ptr` is aligned and non-null, and the first `len` elements are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Makes room for at least `additional` more elements, growing geometrically.
    pub fn reserve(&mut self, additional: usize) {
        let needed = self.len.checked_add(additional).expect("capacity overflow");
        if needed > self.cap {
            self.grow_to(needed.max(self.cap.saturating_mul(2)).max(8));
        }
    }

    /// Makes room for exactly `additional` more elements.
    pub fn reserve_exact(&mut self, additional: usize) {
        let needed = self.len.checked_add(additional).expect("capacity overflow");
        if needed > self.cap {
            self.grow_to(needed);
        }
    }

    /// Appends one element.
    pub fn push(&mut self, value: T) {
        self.reserve(1);
        // SAFETY: `reserve` made `len < cap`, so the slot is inside the allocation.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.as_slice_with_len(self.len + 1)[self.len])
    }

    fn as_slice_with_len(&self, len: usize) -> &[T] {
        debug_assert!(len <= self.cap);
        // SAFETY: callers pass `len` no greater than the number of initialised elements.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), len) }
    }

    /// Appends a copy of `data`.
    pub fn extend_from_slice(&mut self, data: &[T]) {
        self.reserve(data.len());
        // SAFETY: `reserve` made room for `data.len()` more elements after `len`; `data` cannot
        // overlap the spare capacity because `&mut self` excludes any borrow of it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                data.len(),
            )
        };
        self.len += data.len();
    }

    /// Sets the length to `new_len`, filling new slots with `value`.
    pub fn resize(&mut self, new_len: usize, value: T) {
        if new_len > self.len {
            self.reserve_exact(new_len - self.len);
            for i in self.len..new_len {
                // SAFETY: `i < new_len <= cap`.
                unsafe { self.ptr.as_ptr().add(i).write(value) };
            }
        }
        self.len = new_len;
    }

    /// Shortens to `len` elements (no effect if already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Removes every element, keeping the allocation.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn layout(cap: usize) -> Layout {
        Layout::array::<T>(cap)
            .and_then(|l| l.align_to(Self::ALIGN))
            .expect("capacity overflow")
    }

    fn grow_to(&mut self, new_cap: usize) {
        let new_layout = Self::layout(new_cap);
        let raw = if self.cap == 0 {
            // SAFETY: `new_layout` has non-zero size (new_cap > 0, T not zero-sized).
            unsafe { alloc::alloc(new_layout) }
        } else {
            // SAFETY: `ptr` was allocated with `layout(cap)`, same alignment, and the new size is
            // non-zero and does not overflow isize (checked by `Layout::array`).
            unsafe {
                alloc::realloc(
                    self.ptr.as_ptr().cast(),
                    Self::layout(self.cap),
                    new_layout.size(),
                )
            }
        };
        self.ptr =
            NonNull::new(raw.cast()).unwrap_or_else(|| alloc::handle_alloc_error(new_layout));
        self.cap = new_cap;
    }
}

impl<T: Copy> Drop for AlignedVec<T> {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: `ptr` was allocated with exactly this layout and is not used afterwards.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.cap)) };
        }
    }
}

impl<T: Copy> Default for AlignedVec<T> {
    fn default() -> Self {
        AlignedVec::new()
    }
}

impl<T: Copy> Clone for AlignedVec<T> {
    fn clone(&self) -> Self {
        AlignedVec::from_slice(self)
    }
}

impl<T: Copy> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Copy> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for AlignedVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Copy + PartialEq> PartialEq for AlignedVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Copy> FromIterator<T> for AlignedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut v = AlignedVec::with_capacity(iter.size_hint().0);
        for x in iter {
            v.push(x);
        }
        v
    }
}

impl<T: Copy> Extend<T> for AlignedVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_aligned_and_empty() {
        let v = AlignedVec::<f32>::new();
        assert!(v.is_empty());
        assert_eq!(v.as_ptr() as usize % ALIGN, 0);
        assert_eq!(v.as_slice(), &[] as &[f32]);
        let z = AlignedVec::<u8>::zeroed(0);
        assert!(z.is_empty() && z.capacity() == 0);
    }

    #[test]
    fn push_pop_grow() {
        let mut v = AlignedVec::new();
        for i in 0..1000u32 {
            v.push(i);
            assert_eq!(v.as_ptr() as usize % ALIGN, 0);
        }
        assert_eq!(v.len(), 1000);
        assert!(v.iter().copied().eq(0..1000));
        assert_eq!(v.pop(), Some(999));
        v.truncate(10);
        assert_eq!(v.len(), 10);
        v.clear();
        assert_eq!(v.pop(), None);
    }

    #[test]
    fn over_aligned_type() {
        #[derive(Clone, Copy, PartialEq, Debug)]
        #[repr(align(128))]
        struct Big(u8);
        let v = AlignedVec::from_elem(Big(7), 5);
        assert_eq!(v.as_ptr() as usize % 128, 0);
        assert_eq!(v[4], Big(7));
    }
}
