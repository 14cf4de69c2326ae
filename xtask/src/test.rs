//! `cargo xtask test`: the whole test suite on the default target, then under
//! `BITNET_ISA=scalar`.
//!
//! The default target (no `-C target-cpu`) is what users build: runtime dispatch must find the
//! vector paths by itself, and the scalar path compiled this way is exactly what a machine
//! without AVX2 runs. Inside the suite every kernel test runs each level this machine has through
//! the per-call override; the second run proves the process-wide ceiling end to end.

use std::time::Duration;

use anyhow::Result;
use bitnet_simd::{Extension, Isa, isa};

use crate::cmd::{cargo, print_times, run};

/// Proptest cases per property when the caller does not set `PROPTEST_CASES`.
pub const DEFAULT_PROPTEST_CASES: &str = "64";

pub fn run_tests() -> Result<Vec<(String, Duration)>> {
    report_paths();
    let cases = std::env::var("PROPTEST_CASES").unwrap_or_else(|_| DEFAULT_PROPTEST_CASES.into());
    let mut steps = Vec::new();
    let mut all = cargo();
    all.args(["test", "--workspace"])
        .env("PROPTEST_CASES", &cases)
        .env_remove(isa::ENV_VAR);
    steps.push((
        "test (default target, every level per test)".to_owned(),
        run("test", &mut all)?,
    ));
    let mut scalar = cargo();
    scalar
        .args(["test", "--workspace"])
        .env("PROPTEST_CASES", &cases)
        .env(isa::ENV_VAR, "scalar");
    steps.push((
        "test (BITNET_ISA=scalar)".to_owned(),
        run("test under BITNET_ISA=scalar", &mut scalar)?,
    ));
    report_paths();
    Ok(steps)
}

/// Prints which levels and extensions the suite exercises here and which it cannot.
fn report_paths() {
    let have: Vec<_> = Isa::supported().iter().map(|i| i.name()).collect();
    let missing: Vec<_> = isa::native_isas()
        .into_iter()
        .filter(|i| !i.is_supported())
        .map(Isa::name)
        .collect();
    let ext_have: Vec<_> = Extension::ALL
        .into_iter()
        .filter(|e| e.is_supported())
        .map(Extension::name)
        .collect();
    let ext_missing: Vec<_> = Extension::ALL
        .into_iter()
        .filter(|e| !e.is_supported())
        .map(Extension::name)
        .collect();
    println!("levels tested on this machine:     {}", have.join(", "));
    println!(
        "levels NOT tested (absent here):   {}",
        if missing.is_empty() {
            "none".into()
        } else {
            missing.join(", ")
        }
    );
    println!("extensions tested:                 {}", ext_have.join(", "));
    println!(
        "extensions NOT tested (absent):    {}",
        if ext_missing.is_empty() {
            "none".into()
        } else {
            ext_missing.join(", ")
        }
    );
    #[cfg(target_arch = "x86_64")]
    println!("NEON paths are not compiled on x86_64: unverified here.");
}

pub fn run_cli() -> Result<()> {
    let steps = run_tests()?;
    print_times("cargo xtask test: step times", &steps);
    Ok(())
}
