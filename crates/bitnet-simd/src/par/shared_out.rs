//! The output pointer shared by the threads of one parallel kernel.

/// The base pointer of an output that several threads write at once, each its own elements
/// (the rows of a GEMM that a [`crate::Par`] task owns, say, when they are not one contiguous
/// chunk).
///
/// Creating one is safe; writing through [`SharedOut::at`] is `unsafe`, and the kernel that
/// does it guarantees that its threads write pairwise disjoint elements of an output the caller
/// borrows mutably for the whole call. That guarantee is what makes the `Send`/`Sync` below
/// sound.
#[derive(Debug)]
pub struct SharedOut<T>(*mut T);

impl<T> Clone for SharedOut<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedOut<T> {}

// SAFETY: see the type's documentation: disjoint writes to an exclusively borrowed output.
unsafe impl<T: Send> Send for SharedOut<T> {}
// SAFETY: as above; shared references only copy the pointer.
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// Wraps the base pointer of an exclusively borrowed output.
    pub fn new(ptr: *mut T) -> SharedOut<T> {
        SharedOut(ptr)
    }

    /// The address `offset` elements past the base (a method, so that closures capture the
    /// whole `Sync` wrapper rather than the raw pointer field).
    pub fn at(self, offset: usize) -> *mut T {
        self.0.wrapping_add(offset)
    }
}
