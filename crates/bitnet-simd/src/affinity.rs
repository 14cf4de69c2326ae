//! Opt-in thread pinning (the seed's `set_cpu_affinity` / `get_cpu_count`), on `core_affinity`.
//!
//! Nothing in bitnet-rs pins threads by itself: pinning helps steady measurements and hurts on a
//! shared machine, so it is the caller's choice.

/// The number of cores this process may run on (at least 1).
pub fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The ids of the cores this process may be pinned to (empty where the OS does not tell).
pub fn core_ids() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Pins the calling thread to the `index`-th core of [`core_ids`] (wrapping around), returning
/// whether the OS accepted it.
pub fn pin_current_thread(index: usize) -> bool {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.is_empty() {
        return false;
    }
    core_affinity::set_for_current(ids[index % ids.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_is_harmless() {
        assert!(core_count() >= 1);
        let ids = core_ids();
        // Pin a scratch thread, not the test harness's.
        let pinned = std::thread::spawn(|| pin_current_thread(0)).join().unwrap();
        assert_eq!(pinned, !ids.is_empty() && pinned);
    }
}
