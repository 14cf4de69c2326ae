//! Runtime CPU feature detection: the one place in bitnet-rs that asks the CPU what it can do.
//!
//! [`CpuFeatures::get`] detects once per process (a `OnceLock`) and hands out the same value after.
//! Every other crate asks this module (through [`crate::isa`] and [`crate::dispatch`]) instead of
//! calling `is_x86_feature_detected!` itself.

use std::sync::OnceLock;

/// The CPU features bitnet-rs kernels care about, detected at run time.
///
/// A field is `true` only when both the CPU and the operating system support it (the standard
/// library's detection checks the OS has enabled the register state, e.g. `XCR0` for AVX-512).
/// On architectures where a feature cannot exist the field is `false`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuFeatures {
    /// AVX2 (256-bit integer vectors).
    pub avx2: bool,
    /// FMA3 (fused multiply-add on 128/256-bit vectors).
    pub fma: bool,
    /// F16C (half <-> single conversion on 128/256-bit vectors).
    pub f16c: bool,
    /// The whole x86-64-v3 level: what `pulp::x86::V3` checks (AVX2, FMA, BMI1/2, LZCNT, …) and
    /// F16C, which pulp does not check but the level includes and our kernels use.
    pub x86_64_v3: bool,
    /// AVX-512 Foundation.
    pub avx512f: bool,
    /// AVX-512 byte and word instructions.
    pub avx512bw: bool,
    /// AVX-512 doubleword and quadword instructions.
    pub avx512dq: bool,
    /// AVX-512 vector length extensions (AVX-512 instructions on 128/256-bit registers).
    pub avx512vl: bool,
    /// AVX-512 conflict detection.
    pub avx512cd: bool,
    /// The whole x86-64-v4 level as `pulp::x86::V4` defines it (v3 + AVX-512 F/BW/CD/DQ/VL).
    pub x86_64_v4: bool,
    /// AVX-512 VNNI: `vpdpbusd`/`vpdpwssd` on 512-bit vectors.
    pub avx512vnni: bool,
    /// AVX-VNNI: the VEX-encoded `vpdpbusd` on 128/256-bit vectors (Alder Lake and later, Zen 5).
    pub avxvnni: bool,
    /// AVX-512 BF16: `vdpbf16ps` and `vcvtne2ps2bf16`.
    pub avx512bf16: bool,
    /// AVX-512 VPOPCNTDQ: `vpopcntd`/`vpopcntq` on vectors.
    pub avx512vpopcntdq: bool,
    /// AVX-512 VBMI: byte permutes `vpermb`/`vpermi2b`.
    pub avx512vbmi: bool,
    /// AVX-512 FP16 arithmetic.
    pub avx512fp16: bool,
    /// NEON (Advanced SIMD) on aarch64.
    pub neon: bool,
    /// The aarch64 dot-product extension (`sdot`/`udot`).
    pub dotprod: bool,
}

impl CpuFeatures {
    /// The features of this machine, detected on the first call and cached for the process.
    pub fn get() -> &'static CpuFeatures {
        static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
        FEATURES.get_or_init(CpuFeatures::detect)
    }

    /// Detects the features now (uncached). Prefer [`CpuFeatures::get`].
    pub fn detect() -> CpuFeatures {
        cfg_if::cfg_if! {
            if #[cfg(target_arch = "x86_64")] {
                use std::arch::is_x86_feature_detected as has;
                CpuFeatures {
                    avx2: has!("avx2"),
                    fma: has!("fma"),
                    f16c: has!("f16c"),
                    // pulp's V3 does not check F16C, which x86-64-v3 includes and our kernels
                    // use (f16 scales): the level requires it too.
                    x86_64_v3: pulp::x86::V3::try_new().is_some() && has!("f16c"),
                    avx512f: has!("avx512f"),
                    avx512bw: has!("avx512bw"),
                    avx512dq: has!("avx512dq"),
                    avx512vl: has!("avx512vl"),
                    avx512cd: has!("avx512cd"),
                    x86_64_v4: pulp::x86::V4::try_new().is_some() && has!("f16c"),
                    avx512vnni: has!("avx512vnni"),
                    avxvnni: has!("avxvnni"),
                    avx512bf16: has!("avx512bf16"),
                    avx512vpopcntdq: has!("avx512vpopcntdq"),
                    avx512vbmi: has!("avx512vbmi"),
                    avx512fp16: has!("avx512fp16"),
                    ..CpuFeatures::default()
                }
            } else if #[cfg(target_arch = "aarch64")] {
                use std::arch::is_aarch64_feature_detected as has;
                CpuFeatures {
                    neon: has!("neon"),
                    dotprod: has!("dotprod"),
                    ..CpuFeatures::default()
                }
            } else {
                CpuFeatures::default()
            }
        }
    }

    /// Every feature with its name as the CPU manuals spell it, in a fixed order (for reports).
    pub fn list(&self) -> [(&'static str, bool); 18] {
        [
            ("avx2", self.avx2),
            ("fma", self.fma),
            ("f16c", self.f16c),
            ("x86-64-v3", self.x86_64_v3),
            ("avx512f", self.avx512f),
            ("avx512bw", self.avx512bw),
            ("avx512dq", self.avx512dq),
            ("avx512vl", self.avx512vl),
            ("avx512cd", self.avx512cd),
            ("x86-64-v4", self.x86_64_v4),
            ("avx512vnni", self.avx512vnni),
            ("avxvnni", self.avxvnni),
            ("avx512bf16", self.avx512bf16),
            ("avx512vpopcntdq", self.avx512vpopcntdq),
            ("avx512vbmi", self.avx512vbmi),
            ("avx512fp16", self.avx512fp16),
            ("neon", self.neon),
            ("dotprod", self.dotprod),
        ]
    }

    /// The names of the features present, space separated (for one-line reports).
    pub fn present_names(&self) -> String {
        self.list()
            .iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" ")
    }
}
