#!/usr/bin/env bash
# Build the stripped `panderm` runtime binary for every board profile and print the sizes.
#
#   scripts/release-binaries.sh [--profile device|device-small|release] [--out DIR] [BOARD...]
#
# One build per distinct Rust target (boards sharing a target share the binary); binaries are
# copied to DIR/<board>/panderm (default dist/). ARM targets need scripts/arm-setup.sh first and
# are built with Debian's compiler (RUSTC=/usr/bin/rustc); x86_64 with the default toolchain.
# The `device` profile (Cargo.toml) is release + fat LTO, one codegen unit, panic=unwind, stripped;
# docs/performance.md records what each of those settings gives.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=device
out=dist
boards=()
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "release-binaries: unknown option $1" >&2; exit 2 ;;
    *) boards+=("$1"); shift ;;
  esac
done
if [ ${#boards[@]} -eq 0 ]; then
  for f in boards/*.toml; do boards+=("$(basename "$f" .toml)"); done
fi
target_of() { sed -n 's/^target *= *"\(.*\)"/\1/p' "boards/$1.toml" | head -1; }
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

declare -A built
for b in "${boards[@]}"; do
  [ -f "boards/$b.toml" ] || { echo "release-binaries: no profile boards/$b.toml" >&2; exit 2; }
  t=$(target_of "$b")
  if [ -z "${built[$t]:-}" ]; then
    echo "== building panderm for $t (profile $profile)" >&2
    start=$(date +%s)
    if [ "$t" = x86_64-unknown-linux-gnu ]; then
      cargo build --profile "$profile" -p panderm-edge --bin panderm --target "$t" >&2
    else
      RUSTC=/usr/bin/rustc cargo build --profile "$profile" -p panderm-edge --bin panderm --target "$t" >&2
    fi
    echo "   built in $(($(date +%s) - start)) s" >&2
    built[$t]=1
  fi
  mkdir -p "$out/$b"
  cp "target/$t/$profile_dir/panderm" "$out/$b/panderm"
done

printf '%-10s %-31s %12s %9s\n' board target bytes MiB
for b in "${boards[@]}"; do
  t=$(target_of "$b")
  size=$(stat -c %s "$out/$b/panderm")
  awk -v b="$b" -v t="$t" -v s="$size" 'BEGIN { printf "%-10s %-31s %12d %9.2f\n", b, t, s, s / 1048576 }'
done
