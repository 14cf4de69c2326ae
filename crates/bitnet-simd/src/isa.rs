//! ISA levels, extensions, and how they are forced.
//!
//! A kernel dispatches between *levels* ([`Isa`]): `Scalar`, `Avx2` (x86-64-v3), `Avx512`
//! (x86-64-v4) and, on aarch64, `Neon`. Instructions that only some CPUs of a level have
//! (VNNI, BF16 dot, VPOPCNTDQ, VBMI, AVX-VNNI) are *extensions* ([`Extension`]), each belonging to
//! the level whose registers it uses.
//!
//! # Forcing
//! The *ceiling* is the highest level any kernel may run, plus the set of extensions it may use:
//! - `BITNET_ISA=scalar|avx2|avx512|neon` sets a process-wide ceiling, read once. Nothing above it
//!   runs, extensions included (an extension of a level above the ceiling is off). Naming a level this
//!   machine cannot run is an error returned by every dispatch ([`IsaError::Unavailable`]), never a
//!   silent fallback.
//! - [`with_isa`] / [`with_ceiling`] set a per-call, thread-local ceiling for the duration of a
//!   closure, so that tests running in parallel can each run a kernel on a different path. It may
//!   not rise above `BITNET_ISA`. [`crate::par::Par`] carries the caller's ceiling into its worker
//!   threads.
//!
//! Without either, the ceiling is the best level this machine has, with all its extensions.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::error::IsaError;
use crate::features::CpuFeatures;

/// A dispatch level: the register width and base instruction set a generic kernel is compiled for.
///
/// Levels are ordered from least to most capable; `Neon` and the x86 levels never coexist on one
/// machine, so comparing them is meaningful only within one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable scalar code: what any CPU runs (pulp's `Scalar`).
    Scalar,
    /// aarch64 Advanced SIMD, 128-bit (pulp's `Neon`). Unverified: no aarch64 machine in our CI.
    Neon,
    /// x86-64-v3: AVX2 + FMA + F16C + BMI, 256-bit (pulp's `V3`).
    Avx2,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL, 512-bit (pulp's `V4`).
    Avx512,
}

impl Isa {
    /// Every level, from least to most capable.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// The name used by `BITNET_ISA` and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this machine can run the level (ignoring any ceiling).
    pub fn is_supported(self) -> bool {
        let f = CpuFeatures::get();
        match self {
            Isa::Scalar => true,
            Isa::Neon => f.neon,
            Isa::Avx2 => f.x86_64_v3,
            Isa::Avx512 => f.x86_64_v4,
        }
    }

    /// The most capable level this machine can run (ignoring any ceiling).
    pub fn best_supported() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|isa| isa.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// Every level this machine can run, from least to most capable (ignoring any ceiling).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = IsaError;

    fn from_str(s: &str) -> Result<Isa, IsaError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Isa::Scalar),
            "neon" => Ok(Isa::Neon),
            "avx2" | "x86-64-v3" | "v3" => Ok(Isa::Avx2),
            "avx512" | "x86-64-v4" | "v4" => Ok(Isa::Avx512),
            _ => Err(IsaError::UnknownName {
                value: s.to_owned(),
            }),
        }
    }
}

/// An instruction-set extension that only some CPUs of a level have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Extension {
    /// AVX-512 VNNI (`vpdpbusd` on zmm), on top of [`Isa::Avx512`].
    Avx512Vnni = 0,
    /// AVX-VNNI (VEX `vpdpbusd` on ymm), on top of [`Isa::Avx2`].
    AvxVnni = 1,
    /// AVX-512 BF16 (`vdpbf16ps`), on top of [`Isa::Avx512`].
    Avx512Bf16 = 2,
    /// AVX-512 VPOPCNTDQ (`vpopcntq`), on top of [`Isa::Avx512`].
    Avx512Vpopcntdq = 3,
    /// AVX-512 VBMI (`vpermb`, `vpermi2b`), on top of [`Isa::Avx512`].
    Avx512Vbmi = 4,
}

impl Extension {
    /// Every extension.
    pub const ALL: [Extension; 5] = [
        Extension::Avx512Vnni,
        Extension::AvxVnni,
        Extension::Avx512Bf16,
        Extension::Avx512Vpopcntdq,
        Extension::Avx512Vbmi,
    ];

    /// The level whose registers the extension uses: it is usable only when that level is.
    pub const fn level(self) -> Isa {
        match self {
            Extension::AvxVnni => Isa::Avx2,
            _ => Isa::Avx512,
        }
    }

    /// The name used in reports (the CPU-manual spelling).
    pub const fn name(self) -> &'static str {
        match self {
            Extension::Avx512Vnni => "avx512vnni",
            Extension::AvxVnni => "avxvnni",
            Extension::Avx512Bf16 => "avx512bf16",
            Extension::Avx512Vpopcntdq => "avx512vpopcntdq",
            Extension::Avx512Vbmi => "avx512vbmi",
        }
    }

    /// Whether this machine has the extension and the level under it (ignoring any ceiling).
    pub fn is_supported(self) -> bool {
        let f = CpuFeatures::get();
        self.level().is_supported()
            && match self {
                Extension::Avx512Vnni => f.avx512vnni,
                Extension::AvxVnni => f.avxvnni,
                Extension::Avx512Bf16 => f.avx512bf16,
                Extension::Avx512Vpopcntdq => f.avx512vpopcntdq,
                Extension::Avx512Vbmi => f.avx512vbmi,
            }
    }

    /// Whether the extension may run now: supported, its level under the active ceiling, and not
    /// masked off by a per-call override. An invalid `BITNET_ISA` is an error.
    pub fn is_enabled(self) -> Result<bool, IsaError> {
        let ceiling = active_ceiling()?;
        Ok(self.is_supported() && self.level() <= ceiling.isa && ceiling.extensions.contains(self))
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Extension`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtSet(u8);

impl ExtSet {
    /// No extension.
    pub const NONE: ExtSet = ExtSet(0);
    /// Every extension.
    pub const ALL: ExtSet = ExtSet((1 << Extension::ALL.len()) - 1);

    /// The set holding `ext`.
    pub const fn only(ext: Extension) -> ExtSet {
        ExtSet(1 << ext as u8)
    }

    /// This set plus `ext`.
    pub const fn with(self, ext: Extension) -> ExtSet {
        ExtSet(self.0 | 1 << ext as u8)
    }

    /// This set minus `ext`.
    pub const fn without(self, ext: Extension) -> ExtSet {
        ExtSet(self.0 & !(1 << ext as u8))
    }

    /// Whether `ext` is in the set.
    pub const fn contains(self, ext: Extension) -> bool {
        self.0 & (1 << ext as u8) != 0
    }

    /// The extensions in the set.
    pub fn iter(self) -> impl Iterator<Item = Extension> {
        Extension::ALL
            .into_iter()
            .filter(move |e| self.contains(*e))
    }
}

/// The highest level kernels may run, and which extensions they may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ceiling {
    /// The highest level.
    pub isa: Isa,
    /// The extensions allowed (only those of levels at or below `isa` take effect).
    pub extensions: ExtSet,
}

impl Ceiling {
    /// A ceiling at `isa` with every extension of the levels at or below it.
    pub const fn at(isa: Isa) -> Ceiling {
        Ceiling {
            isa,
            extensions: ExtSet::ALL,
        }
    }

    /// A ceiling at `isa` with no extension (the plain generic path of that level).
    pub const fn plain(isa: Isa) -> Ceiling {
        Ceiling {
            isa,
            extensions: ExtSet::NONE,
        }
    }
}

/// The environment variable holding the process-wide ceiling.
pub const ENV_VAR: &str = "BITNET_ISA";

/// The ceiling named by `BITNET_ISA`, read once: `Ok(None)` when unset or empty.
pub fn env_ceiling() -> Result<Option<Isa>, IsaError> {
    static ENV: OnceLock<Result<Option<Isa>, IsaError>> = OnceLock::new();
    ENV.get_or_init(|| parse_env_value(std::env::var(ENV_VAR).ok().as_deref()))
        .clone()
}

/// Parses a `BITNET_ISA` value and checks the machine can run it.
fn parse_env_value(value: Option<&str>) -> Result<Option<Isa>, IsaError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let isa: Isa = value.parse()?;
    if !isa.is_supported() {
        return Err(IsaError::Unavailable {
            requested: isa,
            best: Isa::best_supported(),
        });
    }
    Ok(Some(isa))
}

/// The process-wide ceiling: `BITNET_ISA` if set, else the best supported level.
pub fn process_ceiling() -> Result<Isa, IsaError> {
    Ok(env_ceiling()?.unwrap_or_else(Isa::best_supported))
}

thread_local! {
    static OVERRIDE: Cell<Option<Ceiling>> = const { Cell::new(None) };
}

/// The ceiling in force on this thread: the per-call override if one is active, else the
/// process-wide one with every extension.
pub fn active_ceiling() -> Result<Ceiling, IsaError> {
    let process = process_ceiling()?;
    Ok(OVERRIDE.with(Cell::get).unwrap_or(Ceiling::at(process)))
}

/// The per-call override active on this thread, if any (used by [`crate::par`] to carry it into
/// worker threads).
pub fn current_override() -> Option<Ceiling> {
    OVERRIDE.with(Cell::get)
}

/// The level kernels dispatch to on this thread now: the active ceiling (which is always a level
/// this machine supports).
pub fn active_isa() -> Result<Isa, IsaError> {
    Ok(active_ceiling()?.isa)
}

/// Every level this machine supports at or below the process-wide ceiling: the paths a test
/// should run a kernel on.
pub fn testable_isas() -> Result<Vec<Isa>, IsaError> {
    let ceiling = process_ceiling()?;
    Ok(Isa::supported()
        .into_iter()
        .filter(|isa| *isa <= ceiling)
        .collect())
}

/// Levels of this architecture that cannot be tested here (absent, or above `BITNET_ISA`), for
/// reports of what did not run.
pub fn untestable_isas() -> Vec<Isa> {
    let testable = testable_isas().unwrap_or_default();
    native_isas()
        .into_iter()
        .filter(|isa| !testable.contains(isa))
        .collect()
}

/// The levels that exist on the architecture this was compiled for.
pub fn native_isas() -> Vec<Isa> {
    cfg_if::cfg_if! {
        if #[cfg(target_arch = "x86_64")] {
            vec![Isa::Scalar, Isa::Avx2, Isa::Avx512]
        } else if #[cfg(target_arch = "aarch64")] {
            vec![Isa::Scalar, Isa::Neon]
        } else {
            vec![Isa::Scalar]
        }
    }
}

/// Runs `f` with kernels on this thread limited to `isa` and its extensions.
///
/// Errors, without running `f`, if the machine lacks `isa` or it is above `BITNET_ISA`.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Result<R, IsaError> {
    with_ceiling(Ceiling::at(isa), f)
}

/// Runs `f` with kernels on this thread limited to `ceiling`.
///
/// Errors, without running `f`, if the machine lacks the level, the level is above `BITNET_ISA`,
/// or an extension of a level at or below the ceiling is requested that the machine lacks.
pub fn with_ceiling<R>(ceiling: Ceiling, f: impl FnOnce() -> R) -> Result<R, IsaError> {
    validate(ceiling)?;
    Ok(with_validated_ceiling(Some(ceiling), f))
}

/// Checks that a ceiling can be honoured on this machine under `BITNET_ISA`.
fn validate(ceiling: Ceiling) -> Result<(), IsaError> {
    let process = process_ceiling()?;
    if !ceiling.isa.is_supported() {
        return Err(IsaError::Unavailable {
            requested: ceiling.isa,
            best: Isa::best_supported(),
        });
    }
    if ceiling.isa > process {
        return Err(IsaError::AboveCeiling {
            requested: ceiling.isa,
            ceiling: process,
        });
    }
    // Asking for every extension means "whatever the level has"; asking for a specific
    // subset means "these, exactly", so each must exist.
    if ceiling.extensions != ExtSet::ALL {
        for ext in ceiling.extensions.iter() {
            if ext.level() <= ceiling.isa && !ext.is_supported() {
                return Err(IsaError::ExtensionUnavailable(ext));
            }
        }
    }
    Ok(())
}

/// Installs an already validated override (or none) for the duration of `f`, restoring the
/// previous one afterwards, even if `f` unwinds.
pub(crate) fn with_validated_ceiling<R>(ceiling: Option<Ceiling>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Ceiling>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(ceiling)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!("scalar".parse::<Isa>(), Ok(Isa::Scalar));
        assert_eq!("AVX2".parse::<Isa>(), Ok(Isa::Avx2));
        assert_eq!(" avx512 ".parse::<Isa>(), Ok(Isa::Avx512));
        assert_eq!("x86-64-v4".parse::<Isa>(), Ok(Isa::Avx512));
        assert!(matches!(
            "avx3".parse::<Isa>(),
            Err(IsaError::UnknownName { .. })
        ));
    }

    #[test]
    fn env_value_checks_support() {
        assert_eq!(parse_env_value(None), Ok(None));
        assert_eq!(parse_env_value(Some("  ")), Ok(None));
        assert_eq!(parse_env_value(Some("scalar")), Ok(Some(Isa::Scalar)));
        for isa in Isa::ALL {
            let parsed = parse_env_value(Some(isa.name()));
            if isa.is_supported() {
                assert_eq!(parsed, Ok(Some(isa)));
            } else {
                assert_eq!(
                    parsed,
                    Err(IsaError::Unavailable {
                        requested: isa,
                        best: Isa::best_supported()
                    })
                );
            }
        }
        assert!(matches!(
            parse_env_value(Some("sse9")),
            Err(IsaError::UnknownName { .. })
        ));
    }

    #[test]
    fn ext_set_ops() {
        let s = ExtSet::NONE.with(Extension::Avx512Vnni);
        assert!(s.contains(Extension::Avx512Vnni));
        assert!(!s.contains(Extension::AvxVnni));
        assert_eq!(s.without(Extension::Avx512Vnni), ExtSet::NONE);
        assert_eq!(ExtSet::ALL.iter().count(), Extension::ALL.len());
        assert_eq!(
            ExtSet::only(Extension::Avx512Vbmi),
            ExtSet::NONE.with(Extension::Avx512Vbmi)
        );
    }
}
