//! `cargo xtask limits [--quick]`: this machine's physical limits, measured.
//!
//! Every later benchmark reports its throughput as a fraction of these numbers, so each one is the
//! median of several repetitions (with a robust spread), measured on threads pinned one per core.
//!
//! - [`peak`]: compute peaks (FMA, int8 and bf16 dot products), `asm!` loops with 12 accumulators.
//! - [`clock`]: the core clock from a dependent `imul` chain, alone and under each peak load.
//! - [`bandwidth`]: L2, last-level cache and DRAM read bandwidth, and DRAM copy.
//! - [`pinned`]: running one loop on one pinned thread per core, all starting together.
//! - [`table`]: the stdout table.
//!
//! The results go to `target/bitnet-limits.json` ([`limits_path`]), read back with [`Limits::load`].

#[cfg(target_arch = "x86_64")]
mod bandwidth;
#[cfg(target_arch = "x86_64")]
mod clock;
#[cfg(target_arch = "x86_64")]
mod peak;
mod pinned;
mod table;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bitnet_simd::{CacheInfo, CpuFeatures};
use serde::{Deserialize, Serialize};

pub use table::Table;

/// The measured limits of one machine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Limits {
    /// What the machine is.
    pub machine: Machine,
    /// One entry per limit and thread count, in measurement order.
    pub entries: Vec<LimitEntry>,
}

/// The machine the limits were measured on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Machine {
    /// CPU model name as the OS reports it.
    pub cpu_model: String,
    /// CPU features present, space separated ([`CpuFeatures::present_names`]).
    pub features: String,
    /// Cores used for the `all` entries.
    pub cores: usize,
    /// L1 data cache per core, bytes.
    pub l1d: usize,
    /// L2 cache per core, bytes.
    pub l2: usize,
    /// Last-level cache, bytes.
    pub l3: usize,
}

/// One measured limit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LimitEntry {
    /// `"<limit>/<threads>"`, threads `1t` or `all`, e.g. `fma_f32_avx512/1t`.
    pub key: String,
    /// Human description: the loop, and the counting convention.
    pub what: String,
    /// `GFLOP/s`, `GOPS`, `GB/s` (1e9 bytes/s) or `GHz`.
    pub unit: String,
    /// Threads that ran the loop concurrently, one pinned per core.
    pub threads: usize,
    /// Median over the repetitions (summed over threads).
    pub value: f64,
    /// Robust spread of the repetitions, percent (half the 10–90 percentile range over the median).
    pub spread_pct: f64,
    /// Core clock measured under this load, when measured.
    pub clock_ghz: Option<f64>,
    /// `value / (clock_ghz * threads)`: flops or ops per cycle per core, when the clock is known
    /// (the median over repetitions, each pairing a peak run with the clock probe right after it).
    pub per_cycle_per_core: Option<f64>,
}

impl Limits {
    /// Reads limits written by `cargo xtask limits`.
    pub fn load(path: &Path) -> Result<Limits> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (run `cargo xtask limits` first)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the limits as pretty JSON, creating the directory if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The entry with this key, e.g. `"dram_read/all"`.
    pub fn get(&self, key: &str) -> Option<&LimitEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

impl Machine {
    /// This machine, as `info` and bitnet-simd see it.
    pub fn detect() -> Machine {
        let c = CacheInfo::get();
        Machine {
            cpu_model: crate::info::cpu_model(),
            features: CpuFeatures::get().present_names(),
            cores: c.cores.max(1),
            l1d: c.l1d,
            l2: c.l2,
            l3: c.l3,
        }
    }
}

/// `target/bitnet-limits.json` in the workspace target directory (`CARGO_TARGET_DIR` if set).
pub fn limits_path() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target"),
    };
    target.join("bitnet-limits.json")
}

/// The workspace root: the parent of the xtask crate.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// How long and how often each loop runs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `--quick`: fewer, shorter repetitions.
    pub quick: bool,
    /// Timed repetitions per measurement (after one untimed warm-up).
    pub reps: usize,
    /// Target duration of one repetition of a compute or cache loop, seconds.
    pub target_secs: f64,
    /// Threads for the `all` entries: one per core.
    pub all_threads: usize,
}

impl Config {
    fn new(quick: bool, all_threads: usize) -> Config {
        Config {
            quick,
            reps: if quick { 3 } else { 7 },
            target_secs: if quick { 0.02 } else { 0.1 },
            all_threads: all_threads.max(1),
        }
    }

    /// The two thread counts measured: `(1, "1t")` and `(cores, "all")`.
    pub fn thread_counts(&self) -> [(usize, &'static str); 2] {
        [(1, "1t"), (self.all_threads, "all")]
    }
}

/// Median and spread (percent) of per-repetition values.
pub fn summarize(values: &[f64]) -> (f64, f64) {
    let stats = bitnet_simd::timer::PerfStats::new(values.iter().copied());
    (stats.median(), 100.0 * stats.relative_spread())
}

/// Parses `--quick`, measures everything, prints the table and writes [`limits_path`].
pub fn run_cli(args: &[String]) -> Result<Limits> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown argument `{other}` (usage: cargo xtask limits [--quick])"),
        }
    }
    let start = std::time::Instant::now();
    let machine = Machine::detect();
    let cfg = Config::new(quick, machine.cores);
    let mut table = Table::new(&machine, &cfg);
    measure(&cfg, &mut table)?;
    let limits = Limits {
        machine,
        entries: table.entries().to_vec(),
    };
    table.print_per_cycle_summary(&limits);

    let path = limits_path();
    limits.save(&path)?;
    // Read it back as the report will (floats may differ in the last bit through JSON).
    let reread = Limits::load(&path)?;
    let keys = |l: &Limits| l.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
    anyhow::ensure!(
        keys(&reread) == keys(&limits) && reread.machine == limits.machine,
        "{} did not read back equal",
        path.display()
    );
    println!(
        "\nwrote {} ({} entries) in {:.1} s",
        path.display(),
        limits.entries.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(limits)
}

/// Runs every probe in order: clock first (the peaks use it to size their clock probe).
#[cfg(target_arch = "x86_64")]
fn measure(cfg: &Config, table: &mut Table) -> Result<()> {
    let clock_1t = clock::measure(cfg, table);
    peak::measure(cfg, clock_1t, table);
    bandwidth::measure(cfg, table)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure(_cfg: &Config, _table: &mut Table) -> Result<()> {
    bail!(
        "limits are only measured on x86_64 so far (this is {})",
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Limits {
        Limits {
            machine: Machine {
                cpu_model: "Test CPU".into(),
                features: "avx2 fma".into(),
                cores: 2,
                l1d: 32 << 10,
                l2: 1 << 20,
                l3: 32 << 20,
            },
            entries: vec![
                LimitEntry {
                    key: "fma_f32_avx2/1t".into(),
                    what: "f32 FMA".into(),
                    unit: "GFLOP/s".into(),
                    threads: 1,
                    value: 115.25,
                    spread_pct: 0.4,
                    clock_ghz: Some(3.6),
                    per_cycle_per_core: Some(32.01),
                },
                LimitEntry {
                    key: "dram_read/all".into(),
                    what: "sum-reduce".into(),
                    unit: "GB/s".into(),
                    threads: 2,
                    value: 40.5,
                    spread_pct: 1.5,
                    clock_ghz: None,
                    per_cycle_per_core: None,
                },
            ],
        }
    }

    #[test]
    fn json_round_trip() {
        let limits = sample();
        let dir = std::env::temp_dir().join(format!("bitnet-limits-test-{}", std::process::id()));
        let path = dir.join("limits.json");
        limits.save(&path).unwrap();
        let back = Limits::load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back, limits);
        // Absent clocks are written as null, not dropped.
        let text = serde_json::to_string(&limits).unwrap();
        assert!(text.contains("\"clock_ghz\":null"));
    }

    #[test]
    fn key_lookup() {
        let limits = sample();
        assert_eq!(limits.get("dram_read/all").unwrap().value, 40.5);
        assert_eq!(limits.get("fma_f32_avx2/1t").unwrap().threads, 1);
        assert!(limits.get("fma_f32_avx2/all").is_none());
        assert!(limits.get("fma_f32_avx2").is_none());
    }

    #[test]
    fn path_is_in_target_dir() {
        let path = limits_path();
        assert_eq!(path.file_name().unwrap(), "bitnet-limits.json");
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(path.parent().unwrap(), workspace_root().join("target"));
        }
    }

    #[test]
    fn summary_is_median_and_spread() {
        let (median, spread) = summarize(&[10.0, 10.0, 10.0]);
        assert_eq!((median, spread), (10.0, 0.0));
        let (median, spread) = summarize(&[9.0, 10.0, 11.0, 10.0, 10.0]);
        assert_eq!(median, 10.0);
        assert!(spread > 0.0 && spread < 10.0);
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(Limits::load(Path::new("/nonexistent/bitnet-limits.json")).is_err());
    }
}
