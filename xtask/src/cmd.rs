//! Running cargo steps and timing them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo that runs us.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Runs `cmd` with inherited output, failing on a non-zero exit; returns how long it took.
pub fn run(step: &str, cmd: &mut Command) -> Result<Duration> {
    let shown = format!("{cmd:?}").replace('"', "");
    println!("\n==> {step}: {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let took = start.elapsed();
    println!(
        "<== {step}: {} in {}",
        if status.success() { "ok" } else { "FAILED" },
        fmt_duration(took)
    );
    if !status.success() {
        bail!("step `{step}` failed ({status})");
    }
    Ok(took)
}

/// `1m 23.4s` or `12.3s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 {
        format!("{}m {:.1}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1}s")
    }
}

/// Prints a table of step durations.
pub fn print_times(title: &str, steps: &[(String, Duration)]) {
    println!("\n{title}");
    for (step, took) in steps {
        println!("  {step:<44} {:>10}", fmt_duration(*took));
    }
    let total: Duration = steps.iter().map(|(_, d)| *d).sum();
    println!("  {:<44} {:>10}", "total", fmt_duration(total));
}
