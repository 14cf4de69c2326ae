//! Shared helpers of the bitnet-rs benchmarks.
//!
//! Criterion measures; this crate adds what the report needs and criterion does not know: for
//! each benchmark row, the unit its throughput is reported in, which machine limit (a key of
//! `target/bitnet-limits.json`, written by `cargo xtask limits`) it is a fraction of, and whether
//! it is ours or a peer's. `cargo xtask bench` sets `BITNET_BENCH_META` to a file; each bench
//! appends one JSON line per row there, and the report joins them with criterion's estimates.
//! Run directly with `cargo bench`, the benches record nothing extra.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variable naming the file rows are appended to.
pub const META_ENV: &str = "BITNET_BENCH_META";

/// Whose implementation a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A bitnet-rs kernel.
    Ours,
    /// A peer (the standard library, another crate) measured in the same run.
    Peer,
}

/// What the report needs to know about one benchmark row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowMeta {
    /// Criterion group name, e.g. `simd/copy`.
    pub group: String,
    /// Criterion function name, e.g. `copy_nontemporal`.
    pub function: String,
    /// Criterion parameter, e.g. `4KiB` (empty if none).
    pub parameter: String,
    /// Ours or a peer's.
    pub role: Role,
    /// Throughput unit: `GB/s`, `GFLOP/s`, `GOPS`, `Melem/s`, or `ns` for latency rows.
    pub unit: String,
    /// Work per iteration in the unit's numerator (bytes for GB/s, flops for GFLOP/s, …).
    pub work_per_iter: f64,
    /// Key of the machine limit this row is a fraction of, if any (e.g. `dram_copy/1t`).
    pub limit: Option<String>,
    /// One line saying what the row measures.
    pub note: String,
    /// Function of the same group whose time this row's speedup is reported against, if any.
    #[serde(default)]
    pub baseline: Option<String>,
}

impl RowMeta {
    /// A row of ours, reported as a latency (`ns`) until [`RowMeta::throughput`] says otherwise.
    pub fn new(group: &str, function: &str, parameter: &str) -> RowMeta {
        RowMeta {
            group: group.into(),
            function: function.into(),
            parameter: parameter.into(),
            role: Role::Ours,
            unit: "ns".into(),
            work_per_iter: 1.0,
            limit: None,
            note: String::new(),
            baseline: None,
        }
    }

    /// Marks the row as a peer's.
    pub fn peer(mut self) -> RowMeta {
        self.role = Role::Peer;
        self
    }

    /// Reports `work` units of `unit` per iteration (e.g. bytes and `GB/s`).
    pub fn throughput(mut self, unit: &str, work: f64) -> RowMeta {
        self.unit = unit.into();
        self.work_per_iter = work;
        self
    }

    /// The machine limit this row is a fraction of.
    pub fn limit(mut self, key: &str) -> RowMeta {
        self.limit = Some(key.to_owned());
        self
    }

    /// What the row measures.
    pub fn note(mut self, note: impl Into<String>) -> RowMeta {
        self.note = note.into();
        self
    }

    /// Reports the speedup over `function` (same group and parameter) next to the throughput.
    pub fn speedup_over(mut self, function: &str) -> RowMeta {
        self.baseline = Some(function.to_owned());
        self
    }

    /// Records the row (see [`record`]).
    pub fn record(self) {
        record(&self);
    }
}

/// Appends `row` to the file named by `BITNET_BENCH_META`, if set.
pub fn record(row: &RowMeta) {
    let Ok(path) = std::env::var(META_ENV) else {
        return;
    };
    let line = serde_json::to_string(row).expect("RowMeta serialises");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    match file {
        Ok(mut f) => {
            if let Err(e) = writeln!(f, "{line}") {
                eprintln!("bitnet-benches: cannot write {path}: {e}");
            }
        }
        Err(e) => eprintln!("bitnet-benches: cannot open {path}: {e}"),
    }
}

/// A human-readable byte size: `4KiB`, `1MiB`, `1GiB`, or a plain count.
pub fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}KiB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

/// The criterion settings of every bench: short in quick mode (`--quick`), longer otherwise.
pub fn criterion_config() -> criterion::Criterion {
    let (warm, meas, samples) = if quick() {
        (Duration::from_millis(100), Duration::from_millis(300), 10)
    } else {
        (Duration::from_millis(500), Duration::from_secs(2), 30)
    };
    criterion::Criterion::default()
        .warm_up_time(warm)
        .measurement_time(meas)
        .sample_size(samples)
}

/// The `cargo xtask limits` key of the int8 multiply-add peak this machine's best int8 kernels
/// run against (`threads`: `1t` or `all`).
pub fn int8_peak(threads: &str) -> String {
    let isa = if bitnet_simd::CpuFeatures::get().avx512vnni {
        "avx512vnni"
    } else {
        "avx2"
    };
    format!("int8_dot_{isa}/{threads}")
}

/// The `cargo xtask limits` key of the f32 FMA peak of this machine's widest vectors.
pub fn fma_peak(threads: &str) -> String {
    let isa = if bitnet_simd::CpuFeatures::get().x86_64_v4 {
        "avx512"
    } else {
        "avx2"
    };
    format!("fma_f32_{isa}/{threads}")
}

/// Whether the run is a quick one (`cargo xtask bench --quick` sets `BITNET_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var("BITNET_BENCH_QUICK").is_ok_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(size_label(4096), "4KiB");
        assert_eq!(size_label(3 << 20), "3MiB");
        assert_eq!(size_label(1 << 30), "1GiB");
        assert_eq!(size_label(1000), "1000B");
    }
}
