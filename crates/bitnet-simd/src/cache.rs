//! Cache and core facts for block-size selection.
//!
//! Read once from the operating system (Linux sysfs `/sys/devices/system/cpu/cpu0/cache`), with
//! conservative defaults where the OS does not tell, and overridable for tuning through the
//! environment (`BITNET_L1D`, `BITNET_L2`, `BITNET_L3` in bytes, with an optional `K`/`M`/`G`
//! suffix; `BITNET_CORES`) or programmatically with [`CacheInfo::set_override`].

use std::sync::{OnceLock, RwLock};

/// Sizes in bytes of the data caches one core sees, and the core count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// Level-1 data cache per core.
    pub l1d: usize,
    /// Level-2 cache per core (or per cluster sharing it).
    pub l2: usize,
    /// Last-level cache (shared), as the OS reports it.
    pub l3: usize,
    /// Cache line size.
    pub line: usize,
    /// Cores this process may use (`std::thread::available_parallelism`).
    pub cores: usize,
    /// Where each number came from.
    pub source: CacheSource,
}

/// Whether the facts were read from the OS, defaulted, or overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheSource {
    /// Read from the operating system.
    Os,
    /// At least one size was unknown and took its default.
    Defaults,
    /// Set by environment variables or [`CacheInfo::set_override`].
    Override,
}

impl CacheInfo {
    /// Defaults used when the OS does not tell: typical of current x86 server cores.
    pub const DEFAULT: CacheInfo = CacheInfo {
        l1d: 32 << 10,
        l2: 1 << 20,
        l3: 8 << 20,
        line: 64,
        cores: 1,
        source: CacheSource::Defaults,
    };

    /// The facts in force: a programmatic override if set, else the detected facts with
    /// environment overrides applied.
    pub fn get() -> CacheInfo {
        if let Some(o) = *OVERRIDE.read().unwrap_or_else(|e| e.into_inner()) {
            return o;
        }
        *DETECTED.get_or_init(|| apply_env(CacheInfo::detect(), |name| std::env::var(name).ok()))
    }

    /// Replaces the facts for the whole process (for tuning); `None` restores detection.
    pub fn set_override(info: Option<CacheInfo>) {
        *OVERRIDE.write().unwrap_or_else(|e| e.into_inner()) = info.map(|i| CacheInfo {
            source: CacheSource::Override,
            ..i
        });
    }

    /// Reads the facts from the OS now, without environment overrides.
    pub fn detect() -> CacheInfo {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut info = CacheInfo {
            cores,
            ..CacheInfo::DEFAULT
        };
        let (mut l1, mut l2, mut l3) = (None, None, None);
        for index in 0..8 {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
            else {
                continue;
            };
            let Some(size) = parse_size(size.trim()) else {
                continue;
            };
            if let Some(line) = read("coherency_line_size").and_then(|l| l.trim().parse().ok()) {
                info.line = line;
            }
            match (level.trim(), kind.trim()) {
                ("1", "Data" | "Unified") => l1 = Some(size),
                ("2", "Data" | "Unified") => l2 = Some(size),
                ("3", "Data" | "Unified") => l3 = Some(size),
                _ => {}
            }
        }
        info.source = if l1.is_some() && l2.is_some() && l3.is_some() {
            CacheSource::Os
        } else {
            CacheSource::Defaults
        };
        info.l1d = l1.unwrap_or(info.l1d);
        info.l2 = l2.unwrap_or(info.l2);
        info.l3 = l3.unwrap_or(info.l3);
        info
    }
}

static DETECTED: OnceLock<CacheInfo> = OnceLock::new();
static OVERRIDE: RwLock<Option<CacheInfo>> = RwLock::new(None);

/// Applies `BITNET_L1D`, `BITNET_L2`, `BITNET_L3`, `BITNET_CORES` where set and valid, reading
/// variables through `var`.
fn apply_env(mut info: CacheInfo, var: impl Fn(&str) -> Option<String>) -> CacheInfo {
    let env = |name: &str| var(name).and_then(|v| parse_size(v.trim()));
    let mut changed = false;
    for (name, field) in [
        ("BITNET_L1D", &mut info.l1d),
        ("BITNET_L2", &mut info.l2),
        ("BITNET_L3", &mut info.l3),
        ("BITNET_CORES", &mut info.cores),
    ] {
        if let Some(v) = env(name).filter(|v| *v > 0) {
            *field = v;
            changed = true;
        }
    }
    if changed {
        info.source = CacheSource::Override;
    }
    info
}

/// Parses `48K`, `2048K`, `32M`, `1G` or a plain byte count.
pub fn parse_size(s: &str) -> Option<usize> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1usize << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn environment_overrides() {
        let base = CacheInfo::DEFAULT;
        let vars = |name: &str| match name {
            "BITNET_L2" => Some("2M".to_owned()),
            "BITNET_L3" => Some("garbage".to_owned()),
            "BITNET_CORES" => Some("6".to_owned()),
            _ => None,
        };
        let o = apply_env(base, vars);
        assert_eq!(
            (o.l1d, o.l2, o.l3, o.cores),
            (base.l1d, 2 << 20, base.l3, 6)
        );
        assert_eq!(o.source, CacheSource::Override);
        let untouched = apply_env(base, |_| None);
        assert_eq!(untouched, base);
    }

    #[test]
    fn programmatic_override_wins_and_clears() {
        let custom = CacheInfo {
            l3: 64 << 20,
            ..CacheInfo::get()
        };
        CacheInfo::set_override(Some(custom));
        let got = CacheInfo::get();
        CacheInfo::set_override(None);
        assert_eq!(got.l3, 64 << 20);
        assert_eq!(got.source, CacheSource::Override);
        assert_ne!(CacheInfo::get().source, CacheSource::Override);
    }

    #[test]
    fn detected_facts_are_plausible() {
        let info = CacheInfo::detect();
        assert!(info.l1d >= 4 << 10 && info.l1d <= info.l2);
        assert!(info.l2 <= info.l3 || info.source == CacheSource::Defaults);
        assert!(info.cores >= 1);
        assert!(info.line.is_power_of_two());
    }
}
