#!/usr/bin/env bash
# Measure what each size setting gives for the `panderm` runtime binary on one target.
#
#   scripts/size-ladder.sh [TARGET] [VARIANT...]
#
# TARGET defaults to aarch64-unknown-linux-gnu (needs scripts/arm-setup.sh; ARM targets are built
# with Debian's compiler, RUSTC=/usr/bin/rustc). Each variant is one cargo build with profile
# settings overridden with `cargo --config`, so Cargo.toml stays the single source of the shipped
# setting (`device`). Variants (default: all, in this order):
#
#   release-strip   `release` + strip: the baseline (thin local LTO, 16 codegen units, unwind)
#   device          release + fat LTO + 1 codegen unit + panic=unwind + strip (what ships)
#   device-abort    device with panic=abort (what shipped until 2026-11-30; a tract panic on a
#                   crafted model then kills the process instead of being refused)
#   device-s        device with opt-level = "s" for every crate
#   device-z        device with opt-level = "z" for every crate
#   device-s-tract3 device with opt-level = "s", except tract-linalg, tract-core and tract-data at 3
#                   (the crates every inference op runs in)
#
# Prints one line per variant: bytes, MiB, build seconds. Builds go to $SIZE_TARGET_DIR
# (default target/size-ladder) so they do not disturb the normal target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-aarch64-unknown-linux-gnu}
shift || true
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(release-strip device device-abort device-s device-z device-s-tract3)
export CARGO_TARGET_DIR=${SIZE_TARGET_DIR:-target/size-ladder}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
[ "$target" != x86_64-unknown-linux-gnu ] && export RUSTC=/usr/bin/rustc

build() {
  local variant=$1 profile=$2
  shift 2
  local start
  start=$(date +%s)
  cargo build "$@" --profile "$profile" -p panderm-edge --bin panderm --target "$target" >&2
  local bin="$CARGO_TARGET_DIR/$target/$profile/panderm"
  local size
  size=$(stat -c %s "$bin")
  awk -v v="$variant" -v s="$size" -v t="$(($(date +%s) - start))" \
    'BEGIN { printf "%-16s %12d %8.2f MiB %6d s\n", v, s, s / 1048576, t }'
}

echo "size-ladder: panderm for $target ($(${RUSTC:-rustc} --version))" >&2
for v in "${variants[@]}"; do
  case $v in
    release-strip) build "$v" release --config 'profile.release.strip=true' ;;
    device) build "$v" device ;;
    device-abort) build "$v" device --config 'profile.device.panic="abort"' ;;
    device-s) build "$v" device --config 'profile.device.opt-level="s"' ;;
    device-z) build "$v" device --config 'profile.device.opt-level="z"' ;;
    device-s-tract3)
      build "$v" device --config 'profile.device.opt-level="s"' \
        --config 'profile.device.package.tract-linalg.opt-level=3' \
        --config 'profile.device.package.tract-core.opt-level=3' \
        --config 'profile.device.package.tract-data.opt-level=3'
      ;;
    *) echo "size-ladder: unknown variant $v" >&2; exit 2 ;;
  esac
done
