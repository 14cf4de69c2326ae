//! Detection, forcing and the ceiling, end to end.

use bitnet_simd::dispatch::{
    Avx512Bf16Token, Avx512VbmiToken, Avx512VnniToken, Avx512VpopcntdqToken, AvxVnniToken,
};
use bitnet_simd::isa::{self, testable_isas};
use bitnet_simd::pulp::{Simd, WithSimd};
use bitnet_simd::{
    Ceiling, CpuFeatures, ExtSet, Extension, Isa, IsaError, Level, dispatch, with_ceiling, with_isa,
};

/// Reports the register width in bytes the kernel was compiled for.
struct Width;
impl WithSimd for Width {
    type Output = usize;
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> usize {
        size_of::<S::f32s>()
    }
}

fn width_of(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => 4,
        Isa::Neon => 16,
        Isa::Avx2 => 32,
        Isa::Avx512 => 64,
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn detection_agrees_with_std() {
    use std::arch::is_x86_feature_detected as has;
    let f = CpuFeatures::get();
    assert_eq!(f.avx2, has!("avx2"));
    assert_eq!(f.fma, has!("fma"));
    assert_eq!(f.f16c, has!("f16c"));
    assert_eq!(f.avx512f, has!("avx512f"));
    assert_eq!(f.avx512bw, has!("avx512bw"));
    assert_eq!(f.avx512dq, has!("avx512dq"));
    assert_eq!(f.avx512vl, has!("avx512vl"));
    assert_eq!(f.avx512cd, has!("avx512cd"));
    assert_eq!(f.avx512vnni, has!("avx512vnni"));
    assert_eq!(f.avxvnni, has!("avxvnni"));
    assert_eq!(f.avx512bf16, has!("avx512bf16"));
    assert_eq!(f.avx512vpopcntdq, has!("avx512vpopcntdq"));
    assert_eq!(f.avx512vbmi, has!("avx512vbmi"));
    assert_eq!(f.avx512fp16, has!("avx512fp16"));
    let v3 = [
        "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe",
    ];
    let v3_std = has!("avx")
        && has!("avx2")
        && has!("fma")
        && has!("f16c")
        && has!("bmi1")
        && has!("bmi2")
        && has!("lzcnt");
    assert_eq!(f.x86_64_v3, v3_std, "v3 = {v3:?}");
    let v4_std = v3_std
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    assert_eq!(f.x86_64_v4, v4_std);
    assert_eq!(Isa::Avx2.is_supported(), v3_std);
    assert_eq!(Isa::Avx512.is_supported(), v4_std);
    assert!(!Isa::Neon.is_supported());
    assert_eq!(
        Extension::Avx512Vnni.is_supported(),
        v4_std && has!("avx512vnni")
    );
    assert_eq!(Extension::AvxVnni.is_supported(), v3_std && has!("avxvnni"));
    // Detection is computed once: the same value every time.
    assert!(std::ptr::eq(CpuFeatures::get(), CpuFeatures::get()));
}

#[test]
fn every_available_level_can_be_forced() {
    let levels = testable_isas().unwrap();
    assert!(levels.contains(&Isa::Scalar));
    for isa in levels {
        let (active, width) = with_isa(isa, || {
            (isa::active_isa().unwrap(), dispatch(Width).unwrap())
        })
        .unwrap();
        assert_eq!(active, isa);
        assert_eq!(width, width_of(isa), "{isa} ran at width {width}");
        assert_eq!(Level::of(isa).unwrap().isa(), isa);
        assert_eq!(Level::of(isa).unwrap().run(Width), width_of(isa));
    }
    println!(
        "levels tested: {:?}; not available here: {:?}",
        testable_isas().unwrap(),
        isa::untestable_isas()
    );
}

#[test]
fn unavailable_level_is_an_error_not_a_fallback() {
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        let ran = std::cell::Cell::new(false);
        let result = with_isa(isa, || ran.set(true));
        assert_eq!(
            result,
            Err(IsaError::Unavailable {
                requested: isa,
                best: Isa::best_supported()
            })
        );
        assert!(!ran.get(), "the closure must not run at a fallback level");
        assert!(Level::of(isa).is_err());
    }
}

#[test]
fn override_is_scoped_and_nests() {
    let outside = isa::active_isa().unwrap();
    with_isa(Isa::Scalar, || {
        assert_eq!(isa::active_isa().unwrap(), Isa::Scalar);
        // A nested override may not go above the process ceiling, but may differ from the outer.
        let best = *testable_isas().unwrap().last().unwrap();
        with_isa(best, || assert_eq!(isa::active_isa().unwrap(), best)).unwrap();
        assert_eq!(isa::active_isa().unwrap(), Isa::Scalar);
    })
    .unwrap();
    assert_eq!(isa::active_isa().unwrap(), outside);
    // Restored after a panic too.
    let _ = std::panic::catch_unwind(|| {
        with_isa(Isa::Scalar, || panic!("inside")).unwrap();
    });
    assert_eq!(isa::active_isa().unwrap(), outside);
}

fn tokens_present() -> [(Extension, bool); 5] {
    [
        (
            Extension::Avx512Vnni,
            Avx512VnniToken::get().unwrap().is_some(),
        ),
        (Extension::AvxVnni, AvxVnniToken::get().unwrap().is_some()),
        (
            Extension::Avx512Bf16,
            Avx512Bf16Token::get().unwrap().is_some(),
        ),
        (
            Extension::Avx512Vpopcntdq,
            Avx512VpopcntdqToken::get().unwrap().is_some(),
        ),
        (
            Extension::Avx512Vbmi,
            Avx512VbmiToken::get().unwrap().is_some(),
        ),
    ]
}

#[test]
fn ceiling_holds_for_extensions() {
    for isa in testable_isas().unwrap() {
        with_isa(isa, || {
            for (ext, present) in tokens_present() {
                let expected = ext.is_supported() && ext.level() <= isa;
                assert_eq!(present, expected, "{ext} under ceiling {isa}");
            }
        })
        .unwrap();
        // The plain ceiling of a level turns every extension off.
        with_ceiling(Ceiling::plain(isa), || {
            assert!(tokens_present().iter().all(|(_, p)| !p));
        })
        .unwrap();
    }
    // Asking for an extension the machine lacks, at a level that has its registers, is an error.
    let process = isa::process_ceiling().unwrap();
    for ext in Extension::ALL {
        if ext.level().is_supported() && ext.level() <= process && !ext.is_supported() {
            let c = Ceiling {
                isa: ext.level(),
                extensions: ExtSet::only(ext),
            };
            assert_eq!(
                with_ceiling(c, || ()),
                Err(IsaError::ExtensionUnavailable(ext))
            );
        }
    }
}

#[test]
fn par_workers_inherit_the_override() {
    for isa in testable_isas().unwrap() {
        let widths = std::sync::Mutex::new(Vec::new());
        with_isa(isa, || {
            bitnet_simd::Par::threads_or_seq(4).for_each_range(64, 1, |_| {
                widths.lock().unwrap().push(dispatch(Width).unwrap());
            });
        })
        .unwrap();
        let widths = widths.into_inner().unwrap();
        assert!(!widths.is_empty());
        assert!(
            widths.iter().all(|&w| w == width_of(isa)),
            "{isa}: {widths:?}"
        );
    }
}

/// Run by `env_ceiling_end_to_end` in a child process with `BITNET_ISA` set; prints what it saw.
#[test]
fn child_probe() {
    if std::env::var("BITNET_CHILD_PROBE").is_err() {
        return;
    }
    match isa::active_isa() {
        Ok(isa) => {
            let tokens: Vec<_> = tokens_present()
                .iter()
                .filter(|(_, p)| *p)
                .map(|(e, _)| e.name())
                .collect();
            println!(
                "PROBE active={isa} width={} tokens={tokens:?}",
                dispatch(Width).unwrap()
            );
            for above in Isa::ALL
                .into_iter()
                .filter(|i| *i > isa && i.is_supported())
            {
                println!("PROBE above {above}: {:?}", with_isa(above, || ()).err());
            }
        }
        Err(e) => println!("PROBE error={e:?} dispatch_err={:?}", dispatch(Width).err()),
    }
}

fn run_child(value: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env("BITNET_CHILD_PROBE", "1")
        .env(isa::ENV_VAR, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // libtest prints "test child_probe ... " before the probe's first line: cut at "PROBE".
    stdout
        .lines()
        .filter_map(|l| l.find("PROBE").map(|i| &l[i..]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn env_ceiling_end_to_end() {
    // Each supported level, set through the environment, is what kernels run.
    for isa in Isa::supported() {
        let out = run_child(isa.name());
        assert!(
            out.contains(&format!("PROBE active={isa} width={}", width_of(isa))),
            "BITNET_ISA={isa}: {out}"
        );
        if isa == Isa::Scalar {
            assert!(
                out.contains("tokens=[]"),
                "no extension under scalar: {out}"
            );
        }
        for above in Isa::ALL
            .into_iter()
            .filter(|i| *i > isa && i.is_supported())
        {
            assert!(
                out.contains(&format!("PROBE above {above}: Some(AboveCeiling")),
                "{out}"
            );
        }
    }
    // A level this machine lacks, or a name that is no level, is an error from every dispatch.
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        let out = run_child(isa.name());
        assert!(
            out.contains("PROBE error=Unavailable"),
            "BITNET_ISA={isa}: {out}"
        );
        assert!(out.contains("dispatch_err=Some(Unavailable"), "{out}");
    }
    let out = run_child("avx1024");
    assert!(out.contains("PROBE error=UnknownName"), "{out}");
}
