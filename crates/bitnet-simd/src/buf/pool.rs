//! A thread-safe pool of reusable, 64-byte-aligned scratch buffers (the seed's `MemoryPool` /
//! `PreAllocatedBuffer`).
//!
//! Kernels that need temporary space (packed panels, quantized activations, partial sums) take a
//! [`Scratch`] from a pool instead of allocating: after the first call of a given size the hot
//! path allocates nothing. A `Scratch` returns its buffer to the pool when dropped. Buffers are
//! byte buffers viewed as any plain-data type (`bytemuck::Pod`) with alignment up to 64.
//!
//! The pool keeps at most [`ScratchPool::MAX_CACHED`] buffers; a buffer returned beyond that is
//! freed, so a burst of concurrent users cannot pin memory forever.

use std::marker::PhantomData;
use std::mem::size_of;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, OnceLock};

use super::aligned::AlignedVec;

/// A pool of reusable aligned byte buffers.
#[derive(Debug, Default)]
pub struct ScratchPool {
    free: Mutex<Vec<AlignedVec<u8>>>,
}

impl ScratchPool {
    /// The most buffers a pool keeps for reuse.
    pub const MAX_CACHED: usize = 64;

    /// An empty pool.
    pub const fn new() -> ScratchPool {
        ScratchPool {
            free: Mutex::new(Vec::new()),
        }
    }

    /// The process-wide pool kernels use by default.
    pub fn global() -> &'static ScratchPool {
        static GLOBAL: OnceLock<ScratchPool> = OnceLock::new();
        GLOBAL.get_or_init(ScratchPool::new)
    }

    /// A zero-initialised scratch buffer of `len` elements of `T`, reusing a pooled allocation
    /// when one is large enough.
    ///
    /// # Panics
    /// If `len * size_of::<T>()` overflows `usize`.
    pub fn take<T: bytemuck::Pod>(&self, len: usize) -> Scratch<'_, T> {
        let mut scratch = self.take_uninit::<T>(len);
        scratch.fill(T::zeroed());
        scratch
    }

    /// A scratch buffer of `len` elements of `T` whose contents are whatever the last user left
    /// (any bit pattern is a valid `T` for `Pod` types): the cheapest way to get space a kernel
    /// overwrites entirely.
    ///
    /// # Panics
    /// If `len * size_of::<T>()` overflows `usize`.
    pub fn take_uninit<T: bytemuck::Pod>(&self, len: usize) -> Scratch<'_, T> {
        const {
            assert!(align_of::<T>() <= super::aligned::ALIGN);
            assert!(
                size_of::<T>() != 0,
                "Scratch does not hold zero-sized types"
            );
        };
        let bytes = len
            .checked_mul(size_of::<T>())
            .expect("scratch size overflows usize");
        let reused = {
            let mut free = self.lock();
            // Best fit: the smallest pooled buffer that is large enough.
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= bytes)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| free.swap_remove(i))
        };
        let mut buf = reused.unwrap_or_else(|| AlignedVec::with_capacity(bytes));
        // A buffer's bytes are initialised (to zero) once, over its whole capacity, the first
        // time it is handed out; after that its length stays at its capacity.
        if buf.len() < buf.capacity() {
            let cap = buf.capacity();
            buf.resize(cap, 0);
        }
        Scratch {
            pool: self,
            buf: Some(buf),
            len,
            _type: PhantomData,
        }
    }

    /// Number of buffers waiting for reuse.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    /// Total bytes held by buffers waiting for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.lock().iter().map(AlignedVec::capacity).sum()
    }

    /// Frees every pooled buffer.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AlignedVec<u8>>> {
        // A panic while holding the lock cannot leave the list inconsistent (push/remove only).
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, buf: AlignedVec<u8>) {
        let mut free = self.lock();
        if free.len() < Self::MAX_CACHED {
            free.push(buf);
        }
    }
}

/// A buffer borrowed from a [`ScratchPool`], viewed as `[T]`; returned to the pool on drop.
pub struct Scratch<'pool, T: bytemuck::Pod> {
    pool: &'pool ScratchPool,
    buf: Option<AlignedVec<u8>>,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: bytemuck::Pod> Deref for Scratch<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let bytes = self.buf.as_deref().unwrap_or_default();
        // The buffer is 64-byte aligned and exactly len * size_of::<T>() long, so the cast
        // cannot fail.
        bytemuck::cast_slice(&bytes[..self.len * size_of::<T>()])
    }
}

impl<T: bytemuck::Pod> DerefMut for Scratch<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let n = self.len * size_of::<T>();
        let bytes = self.buf.as_deref_mut().unwrap_or_default();
        bytemuck::cast_slice_mut(&mut bytes[..n])
    }
}

impl<T: bytemuck::Pod> Drop for Scratch<'_, T> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give_back(buf);
        }
    }
}

impl<T: bytemuck::Pod + std::fmt::Debug> std::fmt::Debug for Scratch<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_allocation() {
        let pool = ScratchPool::new();
        let ptr = {
            let mut s = pool.take::<f32>(1000);
            s[999] = 1.0;
            s.as_ptr() as usize
        };
        assert_eq!(pool.cached(), 1);
        let s = pool.take::<f32>(500);
        assert_eq!(s.as_ptr() as usize, ptr, "a large enough buffer is reused");
        assert!(s.iter().all(|&x| x == 0.0), "take() zeroes");
        assert_eq!(s.as_ptr() as usize % 64, 0);
        drop(s);
        let z = pool.take::<u64>(0);
        assert!(z.is_empty());
    }

    #[test]
    fn cap_on_cached_buffers() {
        let pool = ScratchPool::new();
        let held: Vec<_> = (0..ScratchPool::MAX_CACHED + 5)
            .map(|_| pool.take::<u8>(16))
            .collect();
        drop(held);
        assert_eq!(pool.cached(), ScratchPool::MAX_CACHED);
        pool.clear();
        assert_eq!(pool.cached_bytes(), 0);
    }
}
