//! The stdout table of `cargo xtask limits`: one row per entry as it is measured, then notes.

use super::{Config, LimitEntry, Limits, Machine};

/// The entries measured so far, printed as they come, and notes printed at the end.
pub struct Table {
    entries: Vec<LimitEntry>,
    notes: Vec<String>,
}

impl Table {
    /// Prints the machine and the column headers.
    pub fn new(machine: &Machine, cfg: &Config) -> Table {
        println!(
            "machine limits: {} · {} cores · L1d {} KiB, L2 {} KiB, L3 {} MiB",
            machine.cpu_model,
            machine.cores,
            machine.l1d >> 10,
            machine.l2 >> 10,
            machine.l3 >> 20
        );
        println!(
            "{}: median of {} repetitions of ~{:.0} ms each (DRAM: one pass each), after a warm-up; \
             ± = half the 10-90 % range;\n\
             timed in each thread's CPU time, except L3 and DRAM loops on several threads (wall time)",
            if cfg.quick { "quick" } else { "full" },
            cfg.reps,
            cfg.target_secs * 1e3
        );
        println!(
            "\n{:<26} {:>9} {:<8} {:>6} {:>6} {:>9}  what",
            "key", "value", "unit", "±", "GHz", "per cycle"
        );
        Table {
            entries: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records and prints one entry (the description only on `1t` rows, to keep rows short).
    pub fn push(&mut self, e: LimitEntry) {
        let opt = |v: Option<f64>, prec: usize| v.map_or(String::new(), |v| format!("{v:.prec$}"));
        let what = if e.threads == 1 { e.what.as_str() } else { "" };
        println!(
            "{:<26} {:>9.2} {:<8} {:>5.1}% {:>6} {:>9}  {what}",
            e.key,
            e.value,
            e.unit,
            e.spread_pct,
            opt(e.clock_ghz, 2),
            opt(e.per_cycle_per_core, 1),
        );
        self.entries.push(e);
    }

    /// Prints that a limit is not measured on this machine, and why.
    pub fn absent(&mut self, name: &str, reason: &str) {
        println!("absent: {name}: {reason}");
    }

    /// Keeps a line for the summary at the end.
    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    /// The entries measured so far.
    pub fn entries(&self) -> &[LimitEntry] {
        &self.entries
    }

    /// Prints each peak's measured work per cycle per core, to compare with clock × IPC.
    pub fn print_per_cycle_summary(&self, limits: &Limits) {
        if let Some(running) = super::pinned::running_fraction().filter(|r| *r < 0.98) {
            println!(
                "\nwarning: other processes took {:.0} % of the measurement threads' time \
                 ({} wall-timed repetitions dropped for it); compute and L2 entries are timed in \
                 thread CPU time, but L3 and DRAM ones share the machine and may be low",
                100.0 * (1.0 - running),
                super::pinned::dropped_reps()
            );
        }
        if self.notes.is_empty() {
            return;
        }
        let clock = |key: &str| limits.get(key).map_or(f64::NAN, |e| e.value);
        println!(
            "\nper cycle per core, at the clock measured under each load (idle clock {:.2} GHz on \
             1 thread, {:.2} GHz on all cores):",
            clock("clock/1t"),
            clock("clock/all")
        );
        for line in &self.notes {
            println!("{line}");
        }
    }
}
