//! The optimized plan must use this CPU's SIMD matrix kernels, never tract's portable fallback.
//!
//! Under qemu, tract can silently pick slow kernels: on armv7 it reads the *host's*
//! /proc/cpuinfo and drops to VFPv2 unless `TRACT_CPU_ARM32_NEON=1` is set, and on aarch64 the
//! default emulated CPU selects SVE. Numbers stay right in both cases, so only this test notices.

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
