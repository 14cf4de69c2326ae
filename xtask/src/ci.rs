//! `cargo xtask ci`: formatting, lints, benches compiled, then the tests of `cargo xtask test`,
//! with a fixed number of property-test cases and the time of each step.

use anyhow::Result;

use crate::cmd::{cargo, print_times, run};
use crate::test;

pub fn run_cli() -> Result<()> {
    let mut steps = Vec::new();
    steps.push((
        "cargo fmt --check".to_owned(),
        run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?,
    ));
    steps.push((
        "cargo clippy --all-targets -D warnings".to_owned(),
        run(
            "clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?,
    ));
    steps.push((
        "cargo bench --no-run".to_owned(),
        run(
            "benches compile",
            cargo().args(["bench", "--workspace", "--no-run"]),
        )?,
    ));
    // The tests get a fixed case count unless the caller set one.
    if std::env::var_os("PROPTEST_CASES").is_none() {
        println!(
            "PROPTEST_CASES={} (fixed for CI)",
            test::DEFAULT_PROPTEST_CASES
        );
    }
    steps.extend(test::run_tests()?);
    print_times("cargo xtask ci: step times", &steps);
    println!("\nci: all steps passed");
    Ok(())
}
