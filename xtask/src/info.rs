//! `cargo xtask info`: what this machine is and which paths it can run.

use anyhow::Result;
use bitnet_simd::{CacheInfo, CpuFeatures, Extension, Isa};

/// The CPU model name as the OS reports it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

pub fn run() -> Result<()> {
    let f = CpuFeatures::get();
    let c = CacheInfo::get();
    println!("CPU            {}", cpu_model());
    println!("arch           {}", std::env::consts::ARCH);
    println!("features       {}", f.present_names());
    let absent: Vec<_> = f
        .list()
        .iter()
        .filter(|(_, p)| !p)
        .map(|(n, _)| *n)
        .collect();
    println!("absent         {}", absent.join(" "));
    println!("levels         (scalar always)");
    for isa in bitnet_simd::isa::native_isas() {
        println!(
            "  {:<12} {}",
            isa.name(),
            if isa.is_supported() { "yes" } else { "no" }
        );
    }
    println!("extensions");
    for ext in Extension::ALL {
        println!(
            "  {:<16} {}",
            ext.name(),
            if ext.is_supported() { "yes" } else { "no" }
        );
    }
    match bitnet_simd::isa::env_ceiling() {
        Ok(Some(isa)) => println!("BITNET_ISA     {isa} (ceiling)"),
        Ok(None) => println!(
            "BITNET_ISA     unset (best level: {})",
            Isa::best_supported()
        ),
        Err(e) => println!("BITNET_ISA     error: {e}"),
    }
    println!(
        "caches         L1d {} KiB, L2 {} KiB, L3 {} KiB, line {} B ({:?})",
        c.l1d >> 10,
        c.l2 >> 10,
        c.l3 >> 10,
        c.line,
        c.source
    );
    println!("cores          {}", c.cores);
    Ok(())
}
