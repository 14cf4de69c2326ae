//! `cargo xtask bench [--target-cpu CPU] [--quick] [--reuse-limits] [FILTER]`: builds the
//! criterion benches for a target CPU in their own target directory, measures the machine limits,
//! runs the benches and writes `docs/BENCHMARKS.md` (with a FILTER, a partial report in the target
//! directory instead).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd::{cargo, fmt_duration, run, workspace_root};
use crate::{limits, report};

/// Target CPUs the bench accepts for `--target-cpu`.
const TARGETS: [&str; 4] = ["native", "x86-64-v2", "x86-64-v3", "x86-64-v4"];

/// Parsed command line.
#[derive(Debug, Default)]
pub struct BenchArgs {
    /// `-C target-cpu=...`, or `None` for the default target.
    pub target_cpu: Option<String>,
    /// A short time budget per row.
    pub quick: bool,
    /// Criterion filter (a substring of the benchmark id).
    pub filter: Option<String>,
    /// Use `target/bitnet-limits.json` as it is instead of measuring the limits again.
    pub reuse_limits: bool,
}

pub fn parse(args: &[String]) -> Result<BenchArgs> {
    let mut out = BenchArgs::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--reuse-limits" => out.reuse_limits = true,
            "--target-cpu" => {
                let cpu = it.next().context("--target-cpu needs a value")?;
                if !TARGETS.contains(&cpu.as_str()) {
                    bail!("--target-cpu {cpu}: expected one of {}", TARGETS.join(", "));
                }
                out.target_cpu = Some(cpu.clone());
            }
            s if s.starts_with("--target-cpu=") => {
                return parse(
                    &[
                        vec![
                            "--target-cpu".to_owned(),
                            s["--target-cpu=".len()..].to_owned(),
                        ],
                        it.cloned().collect(),
                    ]
                    .concat(),
                )
                .map(|b| BenchArgs {
                    quick: b.quick || out.quick,
                    reuse_limits: b.reuse_limits || out.reuse_limits,
                    filter: b.filter.or(out.filter.take()),
                    ..b
                });
            }
            s if s.starts_with('-') => bail!("unknown flag {s}"),
            s => out.filter = Some(s.to_owned()),
        }
    }
    Ok(out)
}

/// The label of the build target, used in directory names and the report.
pub fn target_label(args: &BenchArgs) -> String {
    args.target_cpu
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

pub fn run_cli(raw: &[String]) -> Result<()> {
    let args = parse(raw)?;
    let start = Instant::now();
    let label = target_label(&args);
    let target_dir = workspace_root()
        .join("target")
        .join(format!("bench-{label}"));
    let meta = target_dir.join("bitnet-bench-meta.jsonl");
    let criterion_home = target_dir.join("criterion");

    let rustflags = match &args.target_cpu {
        Some(cpu) => {
            let base = std::env::var("RUSTFLAGS").unwrap_or_default();
            format!("{base} -C target-cpu={cpu}").trim().to_owned()
        }
        None => std::env::var("RUSTFLAGS").unwrap_or_default(),
    };
    let bench_cmd = |extra: &[&str]| {
        let mut c = cargo();
        c.args(["bench", "--package", "bitnet-benches", "--benches"])
            .args(extra)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", &rustflags);
        c
    };

    // 1. Build first, so nothing compiles while the limits or the benches are measured.
    run(
        &format!("build benches for target-cpu={label}"),
        &mut bench_cmd(&["--no-run"]),
    )?;

    // 2. The machine limits every row is a fraction of, measured in this run: on a shared
    //    machine the memory bandwidth a process gets drifts over minutes (we saw DRAM read on
    //    all cores between 30 and 48 GB/s on one VM in one hour), so a limit from an earlier run
    //    can be exceeded by a bench of this one. `--reuse-limits` skips the measurement.
    let limits_file = limits::limits_path();
    let limits = if args.reuse_limits {
        println!("\nreusing machine limits from {}", limits_file.display());
        limits::Limits::load(&limits_file)?
    } else {
        let quick = if args.quick {
            vec!["--quick".to_owned()]
        } else {
            vec![]
        };
        limits::run_cli(&quick)?
    };

    // 3. The benches.
    std::fs::create_dir_all(&target_dir)?;
    if meta.exists() {
        std::fs::remove_file(&meta)?;
    }
    let mut criterion_args = vec!["--", "--noplot"];
    if let Some(f) = &args.filter {
        criterion_args.push(f);
    }
    let mut cmd = bench_cmd(&criterion_args);
    cmd.env("BITNET_BENCH_META", &meta)
        .env("CRITERION_HOME", &criterion_home)
        .env("BITNET_BENCH_QUICK", if args.quick { "1" } else { "0" });
    let since = std::time::SystemTime::now();
    run("run benches", &mut cmd)?;

    // 4. The report: a filtered run is partial, so it does not replace docs/BENCHMARKS.md.
    let out: PathBuf = if args.filter.is_some() {
        target_dir.join("BENCHMARKS.md")
    } else {
        workspace_root().join("docs").join("BENCHMARKS.md")
    };
    let command = std::iter::once("cargo xtask bench".to_owned())
        .chain(raw.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let text = report::render(&report::Inputs {
        limits: &limits,
        meta_path: &meta,
        criterion_home: &criterion_home,
        target_label: &label,
        command: &command,
        quick: args.quick,
        since,
    })?;
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "\nwrote {} in {}",
        out.display(),
        fmt_duration(start.elapsed())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags() {
        let a = parse(&strings(&["--target-cpu", "native", "--quick"])).unwrap();
        assert_eq!(a.target_cpu.as_deref(), Some("native"));
        assert!(a.quick);
        let b = parse(&strings(&["--quick", "--target-cpu=x86-64-v3", "copy"])).unwrap();
        assert_eq!(b.target_cpu.as_deref(), Some("x86-64-v3"));
        assert!(b.quick);
        assert_eq!(b.filter.as_deref(), Some("copy"));
        assert!(parse(&strings(&["--target-cpu", "pentium"])).is_err());
        assert!(parse(&strings(&["--fast"])).is_err());
        assert_eq!(target_label(&parse(&[]).unwrap()), "default");
    }
}
