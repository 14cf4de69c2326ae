//! `cargo xtask`: the developer tasks of bitnet-rs.
//!
//! - `info`: the platform report (CPU, features, levels, caches, cores).
//! - `limits`: measures this machine's peak compute and bandwidth into `target/bitnet-limits.json`.
//! - `test`: the test suite on the default target, then under `BITNET_ISA=scalar`.
//! - `bench [--target-cpu native|x86-64-v2|x86-64-v3|x86-64-v4] [--quick]`: the criterion benches
//!   and `docs/BENCHMARKS.md`.
//! - `ci`: fmt, clippy, benches compiled, then `test`.

mod bench;
mod ci;
mod cmd;
mod info;
mod limits;
mod report;
mod test;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <info | limits [--quick] | test | bench [--target-cpu CPU] [--quick] [--reuse-limits] [FILTER] | ci>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "info" => info::run(),
        "limits" => limits::run_cli(rest).map(|_| ()),
        "test" => test::run_cli(),
        "bench" => bench::run_cli(rest),
        "ci" => ci::run_cli(),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}
