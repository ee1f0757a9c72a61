//! The CPU this process runs on, as speed figures must name it: the model name and the SIMD
//! features that change which kernels run (tract's int8 kernels differ several-fold between
//! AVX-512 VNNI and AVX2 only, or NEON with and without dot product). Read the way the kernels'
//! own dispatch reads them (CPUID / the OS's hardware capabilities), so a CPUID-masked process
//! (`scripts/cpuid_mask.c`) reports the class it emulates.

/// The CPU's model name from `/proc/cpuinfo` (`model name`, or on ARM `Model`/`CPU part`), if
/// there is one.
pub fn model_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    ["model name", "Model", "CPU part"].iter().find_map(|key| {
        info.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == *key)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// The kernel-relevant SIMD features this CPU reports, in a fixed order.
pub fn simd_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! x86 {
            ($($f:tt),*) => { $(if std::arch::is_x86_feature_detected!($f) { found.push($f); })* };
        }
        x86!("avx2", "fma", "avx512f", "avx512bw", "avx512vnni", "avxvnni");
        // CPUID.(EAX=7, ECX=0):EDX bit 25: AMX-INT8 (std has no stable name for it).
        if std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 25) != 0 {
            found.push("amx-int8");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! arm {
            ($($f:tt),*) => { $(if std::arch::is_aarch64_feature_detected!($f) { found.push($f); })* };
        }
        arm!("neon", "dotprod", "i8mm", "fp16", "sve");
    }
    #[cfg(target_arch = "arm")]
    {
        // std cannot detect NEON on 32-bit ARM at run time; the kernel's hwcaps line says it.
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if info.lines().any(|l| l.starts_with("Features") && l.split_whitespace().any(|w| w == "neon")) {
            found.push("neon");
        }
    }
    found
}
