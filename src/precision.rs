//! Which backbone precision to run on this CPU, when a bundle carries both an int8 backbone and
//! an fp32 fallback (`[backbone_fallback]` in the manifest, docs/bundles.md).
//!
//! Measured (docs/performance.md, issue 15): on x86_64 with our int8 GEMM
//! ([`crate::ops::qmatmul`]) int8 PanDerm_Base is faster than fp32 on every class we can run —
//! 5.7× with AMX, 3.8× with AVX-512 VNNI, 1.63× with AVX2 only (1 thread; 4.5×, 3.3×, 1.46× at 2),
//! the older classes measured on one Xeon with CPUID masked (`scripts/cpuid_mask.c`). With tract's
//! own int8 GEMM an AVX2-only x86_64 (most field laptops before 2021) ran int8 **2.8× slower**
//! than fp32 (issue 15's report). So the fp32 fallback runs on x86_64 only where neither VNNI nor
//! our AVX2 GEMM is in use (`PANDERM_TRACT_OPS_ONLY`, `PANDERM_INT8_GEMM=tract`, no AVX2). On
//! ARM nothing was timed (qemu gives no timings) and the boards without dot product choose int8
//! for memory, so the bundle's own backbone runs there.
//!
//! A board profile's `model.precision` wins when the bundle carries that precision
//! ([`choose_preferring`]; `panderm --board`). `PANDERM_INT8=fast|slow` overrides the CPU's verdict (to test the fallback on any machine, or
//! to force a choice in the field); anything else is an error at load.

use crate::board::Precision;
use crate::error::{Error, ErrorKind, Result};

/// Whether int8 is faster than fp32 on this CPU, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Speed {
    /// 8-bit dot-product instructions: int8 measured faster.
    Fast(&'static str),
    /// No such instructions, where int8 was measured slower than fp32.
    Slow(&'static str),
    /// Not measured on this kind of CPU: keep the bundle's own precision.
    Unknown(&'static str),
}

impl Int8Speed {
    /// The reason, for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Int8Speed::Fast(r) | Int8Speed::Slow(r) | Int8Speed::Unknown(r) => r,
        }
    }
}

/// This CPU's verdict, from its features (or `PANDERM_INT8`).
pub fn int8_speed() -> Result<Int8Speed> {
    match std::env::var("PANDERM_INT8") {
        Ok(v) if v == "fast" => return Ok(Int8Speed::Fast("PANDERM_INT8=fast")),
        Ok(v) if v == "slow" => return Ok(Int8Speed::Slow("PANDERM_INT8=slow")),
        Ok(v) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("PANDERM_INT8 = {v:?}: expected `fast` or `slow` (or unset: decided by the CPU)"),
            ));
        }
        Err(_) => {}
    }
    Ok(detected())
}

#[cfg(target_arch = "x86_64")]
fn detected() -> Int8Speed {
    use crate::ops::qmatmul_kernel::Kernel;
    let ours = if crate::ops::disabled() { None } else { Kernel::detect().ok().flatten() };
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        Int8Speed::Fast("x86_64 with AVX-512 VNNI")
    } else if std::arch::is_x86_feature_detected!("avxvnni") {
        Int8Speed::Fast("x86_64 with AVX-VNNI")
    } else if ours == Some(Kernel::Avx2) {
        Int8Speed::Fast(
            "x86_64 with AVX2: PanDerm Edge's int16 GEMM (int8 Base measured 1.63x faster than fp32 at 1 thread, CPUID-masked AVX2 class)",
        )
    } else {
        Int8Speed::Slow("x86_64 without VNNI and without our AVX2 GEMM (tract's int8 measured 2.8x slower than fp32)")
    }
}

#[cfg(target_arch = "aarch64")]
fn detected() -> Int8Speed {
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        Int8Speed::Fast("aarch64 with dot product (SDOT)")
    } else {
        Int8Speed::Unknown("aarch64 without dot product (int8 vs fp32 not measured)")
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detected() -> Int8Speed {
    Int8Speed::Unknown("this CPU (int8 vs fp32 not measured)")
}

/// The precision to load: the bundle's own `primary`, or its `fallback` when the primary is int8,
/// the fallback fp32 and int8 is slow here.
pub fn choose(primary: Precision, fallback: Option<Precision>, speed: Int8Speed) -> Precision {
    match (primary, fallback, speed) {
        (Precision::Int8, Some(Precision::Fp32), Int8Speed::Slow(_)) => Precision::Fp32,
        _ => primary,
    }
}

/// [`choose`], except that a `preferred` precision (a board profile's `model.precision`: the
/// deployer's explicit choice) wins when the bundle carries it.
pub fn choose_preferring(
    primary: Precision,
    fallback: Option<Precision>,
    speed: Int8Speed,
    preferred: Option<Precision>,
) -> Precision {
    match preferred {
        Some(p) if p == primary || Some(p) == fallback => p,
        _ => choose(primary, fallback, speed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Precision::{Fp32, Int8};

    #[test]
    fn the_fallback_runs_only_where_int8_is_slow() {
        let (fast, slow, unknown) = (Int8Speed::Fast("f"), Int8Speed::Slow("s"), Int8Speed::Unknown("u"));
        let cases = [
            (Int8, Some(Fp32), slow, Fp32),
            (Int8, Some(Fp32), fast, Int8),
            (Int8, Some(Fp32), unknown, Int8),
            (Int8, None, slow, Int8),
            (Fp32, None, slow, Fp32),
            (Fp32, None, fast, Fp32),
        ];
        for (primary, fallback, speed, want) in cases {
            assert_eq!(choose(primary, fallback, speed), want, "{primary:?} {fallback:?} {speed:?}");
        }
    }

    #[test]
    fn a_board_preference_wins_when_the_bundle_has_it() {
        let (fast, slow) = (Int8Speed::Fast("f"), Int8Speed::Slow("s"));
        // (primary, fallback, speed, preferred, chosen)
        let cases = [
            (Int8, Some(Fp32), fast, Some(Fp32), Fp32),
            (Int8, Some(Fp32), slow, Some(Int8), Int8),
            (Int8, Some(Fp32), slow, None, Fp32),
            (Int8, None, fast, Some(Fp32), Int8), // not in the bundle: the bundle's own runs
            (Fp32, None, slow, Some(Int8), Fp32),
        ];
        for (primary, fallback, speed, preferred, want) in cases {
            assert_eq!(
                choose_preferring(primary, fallback, speed, preferred),
                want,
                "{primary:?} {fallback:?} {preferred:?}"
            );
        }
    }

    #[test]
    fn this_cpu_has_a_verdict() {
        let s = detected();
        assert!(!s.reason().is_empty());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            matches!(s, Int8Speed::Fast(_)),
            std::arch::is_x86_feature_detected!("avx512vnni")
                || std::arch::is_x86_feature_detected!("avxvnni")
                || (std::arch::is_x86_feature_detected!("avx2") && !crate::ops::disabled())
        );
    }
}
