//! Software prefetch: hints that memory will be read soon, for kernels whose access pattern
//! the hardware prefetchers follow badly (several streams taking turns, each for a short run).

/// Asks the CPU to bring the cache line holding `p` into L1. A hint only: it never faults,
/// whatever `p` points to, and does nothing where no stable prefetch instruction exists
/// (everything but x86_64).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, part of x86_64) reads nothing architecturally and cannot fault.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The cache lines of a slice, prefetched a few at a time: `steps` calls of [`Ahead::step`]
/// cover the whole slice, so the requests spread over a loop of `steps` iterations.
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    next: usize,
    end: usize,
    per_step: usize,
}

impl Ahead {
    /// Bytes per cache line assumed (every x86_64 and aarch64 core of interest).
    const LINE: usize = 64;

    /// `range`'s lines spread over `steps` steps.
    pub fn new<T>(range: &[T], steps: usize) -> Ahead {
        let start = range.as_ptr() as usize;
        let bytes = size_of_val(range);
        Ahead {
            next: start,
            end: start + bytes,
            per_step: bytes.div_ceil(Self::LINE).div_ceil(steps.max(1)),
        }
    }

    /// Nothing to prefetch.
    pub fn none() -> Ahead {
        Ahead {
            next: 0,
            end: 0,
            per_step: 0,
        }
    }

    /// Prefetches the next lines of the range (none once it is covered; the last step may touch
    /// up to `per_step − 1` lines past the end, which a prefetch may do). One branch per step.
    #[inline(always)]
    pub fn step(&mut self) {
        if self.next < self.end {
            for k in 0..self.per_step {
                prefetch((self.next + k * Self::LINE) as *const u8);
            }
            self.next += self.per_step * Self::LINE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ahead;

    #[test]
    fn steps_cover_the_range_and_then_stop() {
        let data = vec![0u8; 1000];
        let mut ahead = Ahead::new(&data, 3);
        // 16 lines over 3 steps: 6 per step.
        assert_eq!(ahead.per_step, 6);
        for _ in 0..3 {
            ahead.step();
        }
        assert!(ahead.next >= ahead.end);
        ahead.step();
        let mut none = Ahead::none();
        none.step();
        assert_eq!(none.next, 0);
    }
}
