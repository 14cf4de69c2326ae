//! Writes `docs/BENCHMARKS.md` from the machine limits, the rows the benches recorded
//! (`BITNET_BENCH_META`) and criterion's estimates.
//!
//! One table per criterion group: a line per parameter (size, shape), a column per function,
//! ours and the peers side by side; each cell is the median throughput in the row's unit and,
//! where the row names a machine limit, the fraction of it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::limits::Limits;

pub struct Inputs<'a> {
    pub limits: &'a Limits,
    pub meta_path: &'a Path,
    pub criterion_home: &'a Path,
    pub target_label: &'a str,
    pub command: &'a str,
    pub quick: bool,
    /// When the bench run started: criterion results older than this (left by an earlier run
    /// of a bench this run filtered out) are not reported.
    pub since: std::time::SystemTime,
}

/// One row as the benches recorded it (see `bitnet_benches::RowMeta`).
#[derive(Debug, Deserialize)]
struct Row {
    group: String,
    function: String,
    parameter: String,
    role: String,
    unit: String,
    work_per_iter: f64,
    limit: Option<String>,
    note: String,
    #[serde(default)]
    baseline: Option<String>,
}

/// Criterion's `benchmark.json`: which benchmark a directory holds.
#[derive(Debug, Deserialize)]
struct CriterionId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Criterion's `estimates.json` (nanoseconds per iteration).
#[derive(Debug, Deserialize)]
struct Estimates {
    median: Estimate,
}

/// Median ns/iteration of every benchmark under `home` measured since `since`, by (group,
/// function, parameter).
fn read_criterion(
    home: &Path,
    since: std::time::SystemTime,
) -> Result<HashMap<(String, String, String), f64>> {
    let mut out = HashMap::new();
    let mut stack: Vec<PathBuf> = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && path.parent().is_some_and(|p| p.ends_with("new"))
            {
                let id: CriterionId = serde_json::from_str(&std::fs::read_to_string(&path)?)
                    .with_context(|| format!("parsing {}", path.display()))?;
                let est_path = path.with_file_name("estimates.json");
                let fresh = std::fs::metadata(&est_path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= since);
                let Ok(text) = std::fs::read_to_string(&est_path) else {
                    continue;
                };
                if !fresh {
                    continue;
                }
                let est: Estimates = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", est_path.display()))?;
                out.insert(
                    (
                        id.group_id,
                        id.function_id.unwrap_or_default(),
                        id.value_str.unwrap_or_default(),
                    ),
                    est.median.point_estimate,
                );
            }
        }
    }
    Ok(out)
}

fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading bench rows from {}", path.display()))?;
    let mut rows: Vec<Row> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Row = serde_json::from_str(line).with_context(|| format!("bad row: {line}"))?;
        // A bench may record a row once per criterion pass; keep the first.
        if !rows.iter().any(|r| {
            r.group == row.group && r.function == row.function && r.parameter == row.parameter
        }) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `12.3 µs`, `850 ns`, `1.20 ms`.
fn fmt_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Three significant digits.
fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(row: &Row, ns: Option<f64>, limits: &Limits) -> String {
    let Some(ns) = ns else {
        return "not run".to_owned();
    };
    if row.unit == "ns" {
        return fmt_time(ns);
    }
    // work per ns = (work / 1e9) per second: GB/s for bytes, GFLOP/s for flops, GOPS for ops.
    let value = row.work_per_iter / ns;
    let mut s = format!("{} {}", fmt_value(value), row.unit);
    if let Some(limit) = row.limit.as_deref().and_then(|k| limits.get(k)) {
        let _ = write!(s, " · {:.0}%", 100.0 * value / limit.value);
    }
    s
}

pub fn render(inputs: &Inputs<'_>) -> Result<String> {
    let times = read_criterion(inputs.criterion_home, inputs.since)?;
    // Rows a filtered-out bench recorded but did not measure are left out.
    let rows: Vec<Row> = read_rows(inputs.meta_path)?
        .into_iter()
        .filter(|r| times.contains_key(&(r.group.clone(), r.function.clone(), r.parameter.clone())))
        .collect();
    let limits = inputs.limits;
    let mut md = String::new();
    let m = &limits.machine;
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Generated by `{}`; do not edit by hand, rerun the command. Every number below was measured \
         in that run on the machine named here; throughputs are criterion medians, and each \
         percentage is the fraction of the machine limit named in the group's notes, as measured \
         by `cargo xtask limits` at the start of the same run (table below). On a shared machine \
         the memory bandwidth a process gets drifts over minutes: a bandwidth percentage above \
         100 means the bench ran in a better minute than the limit was measured in (the limit's \
         spread column shows how disturbed its own measurement was); compute peaks do not drift.\n",
        inputs.command
    )?;
    writeln!(
        md,
        "- Machine: {} · {} cores · L1d {} KiB, L2 {} KiB, L3 {} MiB",
        m.cpu_model,
        m.cores,
        m.l1d >> 10,
        m.l2 >> 10,
        m.l3 >> 20
    )?;
    writeln!(md, "- CPU features: {}", m.features)?;
    writeln!(
        md,
        "- Built for: {} (kernels still pick their level at run time; BITNET_ISA unset, so the best level runs)",
        if inputs.target_label == "default" {
            "the default target (no -C target-cpu)".to_owned()
        } else {
            format!("-C target-cpu={}", inputs.target_label)
        }
    )?;
    writeln!(
        md,
        "- Mode: {}\n",
        if inputs.quick {
            "quick (short time budget per row: indicative, noisier)"
        } else {
            "full"
        }
    )?;

    writeln!(md, "## Machine limits (`cargo xtask limits`)\n")?;
    writeln!(
        md,
        "| limit | threads | value | spread | clock | per cycle per core | what |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|")?;
    for e in &limits.entries {
        writeln!(
            md,
            "| `{}` | {} | {} {} | ±{:.1}% | {} | {} | {} |",
            e.key,
            e.threads,
            fmt_value(e.value),
            e.unit,
            e.spread_pct,
            e.clock_ghz.map_or("".into(), |c| format!("{c:.2} GHz")),
            e.per_cycle_per_core.map_or("".into(), fmt_value),
            e.what
        )?;
    }

    // Groups in first-recorded order; within a group, parameters and functions likewise.
    let mut groups: Vec<&str> = Vec::new();
    for r in &rows {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    for group in groups {
        let in_group: Vec<&Row> = rows.iter().filter(|r| r.group == group).collect();
        let mut functions: Vec<&str> = Vec::new();
        let mut params: Vec<&str> = Vec::new();
        for r in &in_group {
            if !functions.contains(&r.function.as_str()) {
                functions.push(&r.function);
            }
            if !params.contains(&r.parameter.as_str()) {
                params.push(&r.parameter);
            }
        }
        writeln!(md, "\n## `{group}`\n")?;
        let mut limits_used: BTreeMap<&str, ()> = BTreeMap::new();
        for f in &functions {
            let r = in_group
                .iter()
                .find(|r| r.function == *f)
                .expect("function has a row");
            writeln!(md, "- `{}` ({}): {}", f, r.role, r.note)?;
        }
        for r in &in_group {
            if let Some(l) = r.limit.as_deref() {
                limits_used.insert(l, ());
            }
        }
        if !limits_used.is_empty() {
            let names: Vec<String> = limits_used
                .keys()
                .map(|k| match limits.get(k) {
                    Some(e) => format!("`{k}` = {} {}", fmt_value(e.value), e.unit),
                    None => format!("`{k}` (not measured)"),
                })
                .collect();
            writeln!(md, "- % of: {}", names.join(", "))?;
        }
        writeln!(md)?;
        write!(md, "| |")?;
        for f in &functions {
            write!(md, " {f} |")?;
        }
        writeln!(md)?;
        write!(md, "|---|")?;
        for _ in &functions {
            write!(md, "---:|")?;
        }
        writeln!(md)?;
        for p in &params {
            write!(md, "| {p} |")?;
            for f in &functions {
                let text = match in_group
                    .iter()
                    .find(|r| r.function == *f && r.parameter == *p)
                {
                    Some(r) => {
                        let key = (r.group.clone(), r.function.clone(), r.parameter.clone());
                        let mut c = cell(r, times.get(&key).copied(), limits);
                        if r.limit.is_some() && in_group.iter().any(|o| o.limit != r.limit) {
                            let _ = write!(c, " of `{}`", r.limit.as_deref().unwrap_or(""));
                        }
                        if let Some(base) = r.baseline.as_deref().filter(|b| *b != r.function) {
                            let base_key = (r.group.clone(), base.to_owned(), r.parameter.clone());
                            if let (Some(ns), Some(base_ns)) =
                                (times.get(&key), times.get(&base_key))
                            {
                                let _ = write!(c, " · {} × {base}", fmt_value(base_ns / ns));
                            }
                        }
                        c
                    }
                    None => "".to_owned(),
                };
                write!(md, " {text} |")?;
            }
            writeln!(md)?;
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(850.0), "850 ns");
        assert_eq!(fmt_time(12_345.0), "12.3 µs");
        assert_eq!(fmt_time(1_200_000.0), "1.20 ms");
        assert_eq!(fmt_value(123.4), "123");
        assert_eq!(fmt_value(12.34), "12.3");
        assert_eq!(fmt_value(1.234), "1.23");
    }
}
