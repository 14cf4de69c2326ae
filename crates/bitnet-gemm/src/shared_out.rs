//! The output pointer shared by the threads of one product.

/// The base pointer of an output (C or y) that several threads write at once, each its own
/// elements.
///
/// Every kernel that shares one guarantees that its threads write pairwise disjoint elements
/// of an output the caller borrows mutably (and, for views, that `MatMut` checked does not
/// overlap itself) for the whole call; that is what makes the `Send`/`Sync` below sound.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(*mut f32);

// SAFETY: see the type's documentation: disjoint writes to an exclusively borrowed output.
unsafe impl Send for SharedOut {}
// SAFETY: as above; shared references only copy the pointer.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Wraps the base pointer of an exclusively borrowed output.
    pub(crate) fn new(ptr: *mut f32) -> SharedOut {
        SharedOut(ptr)
    }

    /// The address `offset` elements past the base (a method, so closures capture the whole
    /// `Sync` wrapper rather than the raw pointer field).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}
