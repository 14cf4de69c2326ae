//! The core clock, from a dependent `imul` chain.
//!
//! `imul r64, r64` has a latency of 3 cycles on every current Intel and AMD core (Intel since
//! Sandy Bridge, AMD since Zen 1), whatever the operand values. A chain where each `imul` needs the
//! previous one's result therefore runs exactly one `imul` per 3 cycles, so
//! `imuls * 3 / seconds` is the core clock. (A dependent `add` chain is no such probe: some cores
//! fuse or eliminate adds, and its 1-cycle latency makes loop overhead visible.)
//!
//! Under a peak load the same chain is interleaved into the peak loop (`peak`'s `mixed` loops),
//! made long enough that it, not the vector work, bounds the loop: [`pick_chain`].

use core::arch::asm;

use super::pinned::{self, Timing};
use super::{Config, LimitEntry, Table, summarize};

/// Latency of `imul r64, r64` in cycles: the assumption the clock rests on.
pub const IMUL_LATENCY: f64 = 3.0;

/// Longest chain a mixed peak loop is compiled for (see `peak::MAX_CHAIN`).
pub const MAX_CHAIN: usize = 48;

/// How much longer than the vector work the chain starts out: 10 %, so that the chain is the
/// bottleneck while the vector units stay about 90 % busy.
const MARGIN: f64 = 1.10;

/// Dependent `imul`s per iteration of [`imul_chain`].
const CHAIN_PER_ITER: u64 = 12;

/// `iters` iterations of 12 dependent `imul`s on one register.
fn imul_chain(iters: u64) {
    // SAFETY: register-only loop (`nomem, nostack`); both registers it writes are operands, and
    // `iters.max(1)` keeps `dec`/`jnz` from wrapping around.
    unsafe {
        asm!(
            "2:",
            ".rept 12",
            "imul {x}, {x}", // x = x * x: each waits for the previous (x stays 1)
            ".endr",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) 1u64 => _,
            n = inout(reg) iters.max(1) => _,
            options(nomem, nostack),
        );
    }
}

/// The clock in GHz implied by `imuls` dependent `imul`s taking `secs`.
pub fn ghz(imuls: f64, secs: f64) -> f64 {
    imuls * IMUL_LATENCY / secs / 1e9
}

/// The chain length for a vector block of `vector_cycles` cycles: [`MARGIN`] longer, in whole
/// `imul`s, within `1..=MAX_CHAIN`.
pub fn chain_len(vector_cycles: f64) -> usize {
    ((vector_cycles * MARGIN / IMUL_LATENCY).ceil() as usize).clamp(1, MAX_CHAIN)
}

/// Chooses the chain length `k` of a mixed loop whose vector part takes about `vector_cycles`
/// cycles per iteration (the pure loop's time at the idle clock).
///
/// Starts at [`chain_len`], then checks the choice: `clocks(k, longer)` measures the clocks the
/// mixed loop implies with chain lengths `k` and `longer`. If the chain bounds the loop, the
/// implied clock does not depend on the chain length; if the vector part still bounds it (it
/// needs more cycles than estimated, or the `imul`s compete with it for a port), the longer chain
/// implies a higher clock. While it does (by more than 3 %), the chain grows by a quarter.
pub fn pick_chain(vector_cycles: f64, mut clocks: impl FnMut(usize, usize) -> (f64, f64)) -> usize {
    let mut k = chain_len(vector_cycles);
    for _ in 0..4 {
        let longer = (k + (k / 4).max(1)).min(MAX_CHAIN);
        if longer == k {
            break;
        }
        let (clock_k, clock_longer) = clocks(k, longer);
        if clock_k >= 0.97 * clock_longer {
            break;
        }
        k = longer;
    }
    k
}

/// Measures `clock/1t` and `clock/all`; returns the single-thread clock in GHz.
pub fn measure(cfg: &Config, table: &mut Table) -> f64 {
    let iters = pinned::calibrate(cfg.target_secs, 1 << 12, imul_chain);
    let imuls = (iters * CHAIN_PER_ITER) as f64;
    let mut clock_1t = f64::NAN;
    for (threads, suffix) in cfg.thread_counts() {
        let walls = pinned::run(
            threads,
            cfg.reps,
            Timing::ThreadCpu,
            |_| (),
            |_, _| imul_chain(iters),
        );
        let clocks: Vec<f64> = walls.iter().map(|&w| ghz(imuls, w)).collect();
        let (value, spread_pct) = summarize(&clocks);
        if threads == 1 {
            clock_1t = value;
        }
        table.push(LimitEntry {
            key: format!("clock/{suffix}"),
            what: format!(
                "core clock per core: dependent imul r64 chain, assuming its 3-cycle latency \
                 (true on every current Intel and AMD core); {threads} thread(s) pinned one per core"
            ),
            unit: "GHz".into(),
            threads,
            value,
            spread_pct,
            clock_ghz: None,
            per_cycle_per_core: None,
        });
    }
    clock_1t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_longer_than_the_vector_work() {
        assert_eq!(chain_len(24.0), 9); // 26.4 cycles -> 9 imuls = 27 cycles
        assert_eq!(chain_len(0.0), 1);
        assert_eq!(chain_len(1e9), MAX_CHAIN);
        assert!((ghz(1e9, 1.0) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn chain_grows_while_the_clock_rises() {
        // A fake loop bound by 40 cycles of vector work: the implied clock rises with k until
        // the chain (3k cycles) exceeds 40.
        let fake = |k: usize| 3.0 * (3.0 * k as f64) / (3.0 * k as f64).max(40.0);
        let k = pick_chain(24.0, |k, longer| (fake(k), fake(longer)));
        // It stops within the 3 % tolerance of the 40 cycles.
        assert!(3.0 * k as f64 >= 0.97 * 40.0, "k = {k}");
        // A loop the chain already bounds keeps its first choice.
        assert_eq!(pick_chain(24.0, |_, _| (3.0, 3.0)), 9);
    }

    #[test]
    fn imul_chain_runs() {
        imul_chain(0);
        imul_chain(10);
    }
}
