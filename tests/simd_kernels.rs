//! The optimized plan must use this CPU's SIMD matrix kernels, never tract's portable fallback.
//!
//! Under qemu, tract can silently pick slow kernels: on armv7 it reads the *host's*
//! /proc/cpuinfo and drops to VFPv2 unless `TRACT_CPU_ARM32_NEON=1` is set, and on aarch64 the
//! default emulated CPU selects SVE. Numbers stay right in both cases, so only this test notices.
//!
//! The int8 backbone (models/demo-int8) must also get this CPU's int8 kernel: on aarch64 the SDOT
//! kernel where the core has FEAT_DotProd (Cortex-A76/A55: Raspberry Pi 5, RK3588) and the SMLAL
//! one where it has not (Cortex-A72/A53: Raspberry Pi 4, i.MX 8M Plus). `scripts/arm-test.sh`
//! says which one the emulated CPU must give through `PANDERM_EXPECT_DOTPROD`, so that a qemu or
//! tract change that hides the feature fails here instead of silently running the slower kernel.

mod common;

use panderm_edge::engine::Model;

/// Kernel-name prefixes accepted per architecture, and the ones that mean a fallback.
fn accepted() -> (&'static [&'static str], &'static [&'static str]) {
    match std::env::consts::ARCH {
        "x86_64" => (&["fma_", "avx512_", "avx2_"], &["generic_"]),
        "aarch64" => (&["arm64simd_", "arm64fp16_", "sve_"], &["generic_"]),
        "arm" => (&["armv7neon_"], &["generic_", "armvfpv2_"]),
        other => panic!("no kernel expectations for {other}"),
    }
}

#[test]
fn backbone_and_head_use_simd_kernels() {
    let (good, bad) = accepted();
    for model in
        [common::tiny_model("panderm_tiny_lp.onnx"), common::root().join("models/demo/heads/lesion_colour.onnx")]
    {
        let m = Model::load(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
        let kernels = m.matmul_kernels();
        eprintln!("{} on {}: {kernels:?}", model.display(), std::env::consts::ARCH);
        assert!(!kernels.is_empty(), "{}: no matrix kernel found in the plan", model.display());
        for k in &kernels {
            assert!(
                !bad.iter().any(|b| k.starts_with(b)),
                "{}: fallback kernel {k} in the plan (armv7 under qemu needs TRACT_CPU_ARM32_NEON=1)",
                model.display()
            );
        }
        assert!(
            kernels.iter().any(|k| good.iter().any(|g| k.starts_with(g))),
            "{}: none of {kernels:?} is a SIMD kernel for {}",
            model.display(),
            std::env::consts::ARCH
        );
    }
}

/// Whether tract can use the SDOT int8 kernel here: FEAT_DotProd in the kernel's HWCAP, which is
/// also what tract-linalg 0.23.9 reads (`arm64::has_dotprod`: `getauxval(AT_HWCAP) & HWCAP_ASIMDDP`;
/// qemu-user sets that bit for `-cpu cortex-a76`, not for `cortex-a72` or `cortex-a53`).
#[cfg(target_arch = "aarch64")]
fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// The int8 (i8×u8 → i32) matrix kernels tract-linalg 0.23.9 picks for this CPU's int8 MatMuls
/// at n > 1 (`arm64::neon_qmmm_i32`, `arm32::preferred`, the x86_64 tiers in `x86_64/mmm.rs`):
/// the exact names or name prefixes accepted.
fn expected_int8_kernels() -> Vec<&'static str> {
    #[cfg(target_arch = "aarch64")]
    {
        let detected = has_dotprod();
        eprintln!(
            "aarch64: dotprod {detected} (QEMU_CPU={}, PANDERM_EXPECT_DOTPROD={})",
            std::env::var("QEMU_CPU").unwrap_or_default(),
            std::env::var("PANDERM_EXPECT_DOTPROD").unwrap_or_default()
        );
        match std::env::var("PANDERM_EXPECT_DOTPROD").as_deref() {
            Ok("1") => assert!(detected, "PANDERM_EXPECT_DOTPROD=1 but this CPU does not report FEAT_DotProd"),
            Ok("0") => assert!(!detected, "PANDERM_EXPECT_DOTPROD=0 but this CPU reports FEAT_DotProd"),
            _ => {}
        }
        if std::arch::is_aarch64_feature_detected!("sve2") {
            // qemu's `max` CPU; no supported board has SVE2 (scripts/arm-test.sh avoids it).
            return vec!["sve_mmm_i32_"];
        }
        if detected { vec!["arm64simd_mmm_i32_8x8_dot"] } else { vec!["arm64simd_mmm_i32_8x8"] }
    }
    #[cfg(target_arch = "arm")]
    {
        vec!["armv7neon_mmm_i32_"]
    }
    #[cfg(target_arch = "x86_64")]
    {
        // Our GEMM (src/ops/qmatmul_kernel.rs) with AVX-512 VNNI, and with AVX2 where there is
        // no VNNI at all; tract's AVX-VNNI kernel where there is only that.
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            // AMX tiles where the CPU has AMX-INT8 and Linux grants the tile state.
            vec!["panderm_avx512amx_i8_", "panderm_avx512vnni_i8_"]
        } else if is_x86_feature_detected!("avxvnni") {
            vec!["avxvnni_mmm_i32_"]
        } else if is_x86_feature_detected!("avx2") {
            vec!["panderm_avx2_i16_"]
        } else {
            vec!["avx_mmm_i32_"]
        }
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "arm", target_arch = "x86_64")))]
    {
        panic!("no int8 kernel expectations for {}", std::env::consts::ARCH)
    }
}

/// Whether `kernel` is one of `expected`: an exact name, or a prefix ending in `_`.
fn matches(kernel: &str, expected: &[&str]) -> bool {
    expected.iter().any(|e| if e.ends_with('_') { kernel.starts_with(e) } else { kernel == *e })
}

#[test]
fn int8_backbone_uses_the_cpus_int8_kernel() {
    let model = common::root().join("models/demo-int8/backbone.onnx");
    let m = Model::load(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let kernels = m.matmul_kernels();
    eprintln!("{} on {}: {kernels:?}", model.display(), std::env::consts::ARCH);
    let (_, bad) = accepted();
    for k in &kernels {
        assert!(!bad.iter().any(|b| k.starts_with(b)), "fallback kernel {k} in the int8 plan: {kernels:?}");
    }
    let int8: Vec<&String> = kernels.iter().filter(|k| k.contains("_i32_") || k.starts_with("panderm_")).collect();
    assert!(!int8.is_empty(), "no int8 (i32) matrix kernel in the int8 plan: {kernels:?}");
    let expected = expected_int8_kernels();
    for k in int8 {
        assert!(matches(k, &expected), "int8 kernel {k} on {}; expected {expected:?}", std::env::consts::ARCH);
    }
}

/// Our int8 GEMM ([`panderm_edge::ops::qmatmul`]) gives tract's int8 GEMM's numbers bit for bit:
/// the int8 demo backbone's features with each kernel this CPU can run (`PANDERM_INT8_GEMM`, one
/// process each: the variable is read at load) equal those with tract's own GEMM; the scalar
/// kernel runs everywhere (so the op's wiring is checked under qemu too). A kernel the CPU lacks,
/// or an unknown name, is one line at load.
#[test]
fn our_int8_gemm_gives_tracts_numbers_bit_for_bit() {
    use panderm_edge::ops::qmatmul_kernel::Kernel;
    let model = common::root().join("models/demo-int8/backbone.onnx").to_string_lossy().into_owned();
    let img = common::image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned();
    let run = |gemm: &str| {
        let out = common::panderm_command()
            .env("PANDERM_INT8_GEMM", gemm)
            .env("RUST_LOG", "panderm_edge::engine=debug")
            .args(["run", "--json", "--model", &model, &img])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stderr)
    };
    let features = |gemm: &str, mine: usize| -> Vec<u32> {
        let (out, stderr) = run(gemm);
        assert!(out.status.success(), "PANDERM_INT8_GEMM={gemm}: {stderr}");
        assert!(stderr.contains(&format!("int8 weight MatMuls on our GEMM: {mine}")), "{gemm}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        common::floats(&v["outputs"]["features"]).iter().map(|f| f.to_bits()).collect()
    };
    let tract = features("tract", 0);
    // The attention products (2 blocks × q·kᵀ, attn·v) on ours where the CPU has AVX-512F or
    // AVX2+FMA (x86_64), tract's on ARM.
    let batched = if panderm_edge::ops::batched_matmul_kernel::Kernel::best().is_some() { 4 } else { 0 };
    let (_, stderr) = run("tract");
    assert!(stderr.contains(&format!("float batched MatMuls on ours: {batched}")), "{stderr}");
    // The demo backbone: depth 2 × (q, k, v, proj, fc1, fc2).
    for (name, kernel) in
        [("scalar", Kernel::Scalar), ("avx2", Kernel::Avx2), ("vnni", Kernel::Vnni512), ("amx", Kernel::Amx)]
    {
        if kernel.available() {
            assert_eq!(features(name, 12), tract, "PANDERM_INT8_GEMM={name}");
        } else {
            let (out, stderr) = run(name);
            assert!(!out.status.success() && stderr.contains("cannot run"), "{name}: {stderr}");
            assert_eq!(stderr.trim().lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
        }
    }
    let (out, stderr) = run("fastest");
    assert!(!out.status.success() && stderr.contains("PANDERM_INT8_GEMM=fastest"), "{stderr}");
}

/// The x86_64 CPU classes below this one, on this machine: `scripts/cpuid_mask.c` (LD_PRELOAD)
/// hides CPUID bits from the whole `panderm` process, so tract and our ops dispatch as on an
/// AVX2 + FMA laptop (no AVX-512, AVX-VNNI or AMX) and as on an AVX-512 VNNI CPU without AMX.
/// Each class must choose its own kernels (tract's `fma_` fp32 kernel and our AVX2 int8 GEMM;
/// the AVX-512 ones and our VNNI GEMM), `panderm bench` must name that class's SIMD features, and
/// the class must give the native run's int8 demo features: the int8
/// products are exact on every kernel, and the float kernels around them (tract's FMA or AVX-512
/// patch embedding, our AVX2/AVX-512 attention products: one `mul_add` chain per element) gave
/// identical features here (measured max abs 0.0); the bound 1e-4 (features ≈ 3) leaves room for
/// another CPU's float rounding yet fails on a wrong kernel (a wrong product moves features by
/// far more). Needs the `cpuid_fault` CPU flag (this KVM guest and CI's have it) and a C compiler.
#[cfg(target_arch = "x86_64")]
#[test]
fn older_x86_classes_choose_their_kernels_and_compute_the_same_features() {
    let Some(cc) = common::c_compiler() else {
        eprintln!("SKIPPED: no C compiler for this target");
        return;
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if !cpuinfo.split_whitespace().any(|w| w == "cpuid_fault") {
        eprintln!("SKIPPED: this CPU cannot fault CPUID (no `cpuid_fault` in /proc/cpuinfo)");
        return;
    }
    let dir = common::temp_dir("cpuid-mask");
    let lib = dir.join("libcpuid_mask.so");
    let src = common::root().join("scripts/cpuid_mask.c");
    let status =
        std::process::Command::new(&cc).args(["-O2", "-shared", "-fPIC", "-o"]).arg(&lib).arg(&src).status().unwrap();
    assert!(status.success(), "{cc} could not build {}", src.display());
    let model = common::root().join("models/demo-int8/backbone.onnx").to_string_lossy().into_owned();
    let img = common::image("clinical_forearm_iphone14.jpg").to_string_lossy().into_owned();
    let run = |class: &str, args: &[&str]| {
        let out = common::panderm_command()
            .env("PANDERM_CPU_CLASS", class)
            .env("LD_PRELOAD", &lib)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{class}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let kernels = |class: &str| -> Vec<String> {
        let info = run(class, &["info", "--model", &model]);
        let line = info.lines().find_map(|l| l.strip_prefix("kernels: ")).unwrap_or_else(|| panic!("{info}"));
        line.split(", ").map(str::to_owned).collect()
    };
    let features = |class: &str| -> Vec<f32> {
        let v: serde_json::Value =
            serde_json::from_str(&run(class, &["run", "--json", "--model", &model, &img])).unwrap();
        common::floats(&v["outputs"]["features"])
    };
    let native = features("native");
    let host_vnni = std::arch::is_x86_feature_detected!("avx512vnni");
    // (class, int8 GEMM, fp32 kernel prefix); the VNNI class only where the host has VNNI.
    let classes = [
        ("avx2", "panderm_avx2_i16_6x16", "fma_mmm_f32_"),
        ("avx512-vnni", "panderm_avx512vnni_i8_8x48", "avx512_mmm_f32_"),
    ];
    for (class, gemm, fp32) in classes {
        if class == "avx512-vnni" && !host_vnni {
            eprintln!("SKIPPED: {class}: this CPU has no AVX-512 VNNI to keep");
            continue;
        }
        let k = kernels(class);
        assert!(k.iter().any(|x| x == gemm), "{class}: {k:?}");
        assert!(k.iter().any(|x| x.starts_with(fp32)), "{class}: {k:?}");
        assert!(!k.iter().any(|x| x.contains("amx")), "{class}: {k:?}");
        if class == "avx2" {
            assert!(!k.iter().any(|x| x.contains("avx512")), "{class}: {k:?}");
        }
        // `panderm bench` names the CPU features of its figure: the emulated class's.
        let bench: serde_json::Value =
            serde_json::from_str(&run(class, &["bench", "--model", &model, "--runs", "1", "--json"])).unwrap();
        let simd: Vec<&str> = bench["cpu"]["simd"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
        assert!(simd.contains(&"avx2") && !simd.contains(&"amx-int8"), "{class}: {simd:?}");
        assert_eq!(simd.contains(&"avx512vnni"), class == "avx512-vnni", "{class}: {simd:?}");
        let bench_kernels: Vec<&str> = bench["kernels"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
        assert!(bench_kernels.contains(&gemm), "{class}: {bench_kernels:?}");
        let got = features(class);
        let d = common::max_abs(&got, &native);
        eprintln!("{class}: kernels {k:?}; features vs native: max abs {d:.2e}");
        assert!(d <= 1e-4, "{class}: features differ from the native run's by {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
