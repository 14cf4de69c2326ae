//! Per-ISA leaf functions of `mem` (instructions pulp's generic layer does not expose).

#[cfg(target_arch = "x86_64")]
pub mod x86;
