#!/usr/bin/env bash
# Cross-build the runtime crate for an ARM target and run its test suite under qemu-user.
#
#   scripts/arm-test.sh aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf [--ort] [cargo test args...]
#
# Needs scripts/arm-setup.sh first (Debian rustc-web with the ARM standard libraries, cross gcc,
# qemu-user). The qemu runner comes from .cargo/config.toml; the same command line is exported as
# PANDERM_TEST_RUNNER so that tests can start the cross-built `panderm` binary (no binfmt_misc).
# Only the runtime crate (`panderm-edge`) runs on boards; the workstation tools are x86_64 only.
# PANDERM_TEST_CC (the cross gcc) lets tests/capi.rs build the C example against the cross-built
# library and run it under qemu, on both targets.
#
# QEMU_CPU picks the emulated core (defaults below; docs/arm.md maps each board profile to one).
# PANDERM_EXPECT_DOTPROD tells tests/simd_kernels.rs whether that core must report FEAT_DotProd
# (and so get tract's SDOT int8 kernel): set here from QEMU_CPU, unless already set.
#
# aarch64 builds always have the `ort` feature (the ONNX Runtime engine, issue 16), so every aarch64
# invocation shares one set of test binaries. `--ort` (aarch64 only) runs the given tests with
# ONNX Runtime's aarch64 library (scripts/fetch-ort-aarch64.sh) as ORT_DYLIB_PATH, in a private
# mount namespace whose /proc/cpuinfo is an ARM one for QEMU_CPU's core: qemu-user 7.2 shows the
# guest the host's x86 /proc/cpuinfo, and ONNX Runtime's static initialisation crashes inside
# dlopen on it. Needs root (or CAP_SYS_ADMIN) for `unshare -m` and the bind mount; CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/arm-test.sh TARGET [--ort] [cargo test args...]}
shift
ort=0
if [ "${1:-}" = --ort ]; then
  ort=1
  shift
fi
features=()

case $target in
  aarch64-unknown-linux-gnu)
    gnu=aarch64-linux-gnu
    qemu=qemu-aarch64
    # qemu's default `max` CPU has SVE2 and tract would pick its SVE kernels; a Cortex-A72 (the
    # Raspberry Pi 4's core) exercises the NEON kernels every supported aarch64 board uses.
    export QEMU_CPU=${QEMU_CPU:-cortex-a72}
    # FEAT_DotProd (SDOT/UDOT) in the HWCAP qemu-user 7.2 gives each CPU model (checked with
    # std::arch::is_aarch64_feature_detected!: docs/arm.md).
    case $QEMU_CPU in
      cortex-a76 | neoverse-n1 | max) export PANDERM_EXPECT_DOTPROD=${PANDERM_EXPECT_DOTPROD:-1} ;;
      cortex-a35 | cortex-a53 | cortex-a57 | cortex-a72 | a64fx) export PANDERM_EXPECT_DOTPROD=${PANDERM_EXPECT_DOTPROD:-0} ;;
    esac
    # tests/capi.rs compiles examples/c/classify.c with it against the cross-built
    # libpanderm_edge.so and runs it under qemu (docs/c-api.md).
    export PANDERM_TEST_CC=${PANDERM_TEST_CC:-aarch64-linux-gnu-gcc}
    features=(--features ort)
    ;;
  armv7-unknown-linux-gnueabihf)
    gnu=arm-linux-gnueabihf
    qemu=qemu-arm
    # qemu 7.2 shows the guest the host's x86 /proc/cpuinfo, so tract cannot see NEON by itself
    # (real Cortex-A7 boards report it). tests/simd_kernels.rs fails if this is lost.
    export TRACT_CPU_ARM32_NEON=1
    # The armv7-a7 profile's core (qemu-arm's default `any` is a `max`-like ARMv8 in AArch32).
    export QEMU_CPU=${QEMU_CPU:-cortex-a7}
    export PANDERM_TEST_CC=${PANDERM_TEST_CC:-arm-linux-gnueabihf-gcc}
    ;;
  *)
    echo "arm-test: unsupported target $target" >&2
    exit 2
    ;;
esac

export PANDERM_TEST_RUNNER="$qemu -L /usr/$gnu -E LD_LIBRARY_PATH=/usr/$gnu/lib"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
# Our crate at opt-level 1 (dependencies are at 2 already, Cargo.toml): under qemu the runtime's
# own image code (decode checks, resize, quality gate, TTA) dominated the emulated run time at
# opt-level 0 (tests/quality_gate.rs 110 s -> 33 s, tests/classify_tta.rs 77 s -> 41 s on
# aarch64). Debug assertions and overflow checks stay on.
export CARGO_PROFILE_DEV_OPT_LEVEL=${CARGO_PROFILE_DEV_OPT_LEVEL:-1}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
echo "arm-test: $target under $qemu (QEMU_CPU=$QEMU_CPU, PANDERM_EXPECT_DOTPROD=${PANDERM_EXPECT_DOTPROD:-unset}, TRACT_CPU_ARM32_NEON=${TRACT_CPU_ARM32_NEON:-unset})"
start=$(date +%s)
if [ $ort = 1 ]; then
  [ "$target" = aarch64-unknown-linux-gnu ] || { echo "arm-test: --ort is for aarch64 only (no armv7 ONNX Runtime wheel)" >&2; exit 2; }
  ORT_DYLIB_PATH=$(scripts/fetch-ort-aarch64.sh)
  export ORT_DYLIB_PATH
  # What the board's kernel shows in /proc/cpuinfo: CPU part and Features of QEMU_CPU's core.
  v80="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
  v82="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
  case $QEMU_CPU in
    cortex-a35) part=0xd04 feat=$v80 ;;
    cortex-a53) part=0xd03 feat=$v80 ;;
    cortex-a57) part=0xd07 feat=$v80 ;;
    cortex-a72) part=0xd08 feat=$v80 ;;
    cortex-a76) part=0xd0b feat=$v82 ;;
    neoverse-n1) part=0xd0c feat=$v82 ;;
    *) echo "arm-test: --ort has no /proc/cpuinfo for QEMU_CPU=$QEMU_CPU" >&2; exit 2 ;;
  esac
  cpuinfo=$PWD/target/ort-aarch64/cpuinfo-$QEMU_CPU
  for i in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 0\n\n' "$i" "$feat" "$part"
  done >"$cpuinfo"
  echo "arm-test: ONNX Runtime $ORT_DYLIB_PATH, /proc/cpuinfo of a $QEMU_CPU"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -E"
  if ! $SUDO unshare -m sh -c "mount --bind '$cpuinfo' /proc/cpuinfo" 2>/dev/null; then
    # A container without CAP_SYS_ADMIN: the ORT library cannot load under qemu 7.2 without the
    # ARM cpuinfo, so these tests cannot run here. Loud, not a failure of the code under test.
    echo "arm-test: SKIPPED --ort: cannot bind-mount /proc/cpuinfo in a private mount namespace (needs root or CAP_SYS_ADMIN)" >&2
    exit 0
  fi
  $SUDO unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && shift && exec "$@"' "$cpuinfo" _ \
    cargo test --no-fail-fast -p panderm-edge --target "$target" "${features[@]}" "$@"
else
  cargo test --no-fail-fast -p panderm-edge --target "$target" "${features[@]}" "$@"
fi
echo "arm-test: $target passed in $(($(date +%s) - start)) s"
