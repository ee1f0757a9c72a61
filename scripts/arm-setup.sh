#!/usr/bin/env bash
# Install what cross builds for the ARM boards need, on a Debian 12 (bookworm) x86_64 host, as root.
# Idempotent: a second run with everything present takes about a second.
#
#   scripts/arm-setup.sh [--no-update] [TRIPLE...]     (default: both ARM triples)
#
# What it installs (see docs/arm.md for why each piece):
#   * Debian's rustc-web/cargo-web (>= 1.92: the `ort` crate; tract needs 1.91; bookworm-security has 1.96). rustup cannot
#     download target standard libraries here, Debian ships them as packages.
#   * gcc cross linkers and C libraries (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, libc6-dev-*-cross).
#   * qemu-user, the test runner configured in .cargo/config.toml (binfmt_misc is not assumed).
#   * The target standard library: libstd-rust-web-dev_<exact rustc-web version>_<arch>.deb is downloaded
#     with a private apt configuration and only its usr/lib/rustlib/<triple>/ is unpacked. No
#     `dpkg --add-architecture`: a stale foreign-arch index on the mirror would make every later
#     `apt-get update` fail, and the multiarch libc it pulls in hangs threaded programs under qemu.
#
# Cross commands then use Debian's compiler for the target only:
#   RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc cargo test -p panderm-edge --target aarch64-unknown-linux-gnu
set -euo pipefail

MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=${SUITE:-bookworm-security}
CACHE=${ARM_SETUP_CACHE:-/var/cache/panderm-arm-setup}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MIN_RUSTC=1.92
export DEBIAN_FRONTEND=noninteractive

say() { echo "arm-setup: $*" >&2; }
fail() { say "error: $*"; exit 1; }

update=1
targets=()
for arg in "$@"; do
  case $arg in
    --no-update) update=0 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) fail "unknown option $arg" ;;
    *) targets+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

deb_arch() {
  case $1 in
    aarch64-unknown-linux-gnu) echo arm64 ;;
    armv7-unknown-linux-gnueabihf) echo armhf ;;
    *) fail "no ARM setup for target '$1' (supported: aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" ;;
  esac
}
gnu_triple() { case $1 in arm64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# --- host packages ---------------------------------------------------------------------------------
packages=(rustc-web cargo-web libstd-rust-web-dev qemu-user)
for t in "${targets[@]}"; do
  a=$(deb_arch "$t")
  packages+=("gcc-$(gnu_triple "$a")" "libc6-dev-$a-cross")
done
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
rustc_ok() {
  [ -x /usr/bin/rustc ] || return 1
  local v; v=$(/usr/bin/rustc --version | awk '{print $2}')
  [ "$(printf '%s\n%s\n' "$MIN_RUSTC" "$v" | sort -V | head -1)" = "$MIN_RUSTC" ]
}
if [ ${#missing[@]} -gt 0 ] || ! rustc_ok; then
  # rustc-web >= 1.92 lives in bookworm-security only; a machine that never ran `apt-get update`
  # sees bookworm main's 1.85.
  if [ $update = 1 ]; then $SUDO apt-get update -q || say "warning: apt-get update reported errors"; fi
  say "installing: ${missing[*]:-rustc-web (upgrade)}"
  $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
else
  say "host packages present"
fi
rustc_ok || fail "/usr/bin/rustc is $(/usr/bin/rustc --version 2>/dev/null || echo missing); need >= $MIN_RUSTC from $SUITE"
VERSION=$(dpkg-query -W -f='${Version}' rustc-web)
say "Debian rustc-web $VERSION"

# --- target standard libraries ----------------------------------------------------------------------
fetch_std() { # $1 = Debian arch; prints the path of the downloaded, hash-checked .deb
  local a=$1 dir="$CACHE/$1"
  local want="$dir/debs/libstd-rust-web-dev_${VERSION/:/%3a}_$a.deb"
  [ -s "$want" ] && { echo "$want"; return 0; }
  $SUDO mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts" "$dir/debs"
  $SUDO chown -R _apt:root "$dir/lists" "$dir/debs" 2>/dev/null || true
  echo "deb [arch=$a signed-by=$KEYRING] $MIRROR $SUITE main" | $SUDO tee "$dir/sources.list" >/dev/null
  local opts=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts="$dir/parts"
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Architectures::="$a")
  # Signed route: InRelease -> Packages -> .deb, all verified by apt.
  if $SUDO apt-get "${opts[@]}" -q update >&2 &&
    (cd "$dir/debs" && $SUDO apt-get "${opts[@]}" -q download "libstd-rust-web-dev:$a=$VERSION" >&2) &&
    [ -s "$want" ]; then
    echo "$want"
    return 0
  fi
  # The mirror's armhf index has been seen out of step with its signed InRelease. Fall back to the
  # index's SHA-256 for the .deb (integrity-checked; the index itself is then not signature-checked).
  say "warning: signed $a index unusable, using the mirror's Packages.xz hash for the .deb"
  local tmp; tmp=$(mktemp -d); $SUDO chown _apt "$tmp" 2>/dev/null || true
  $SUDO /usr/lib/apt/apt-helper download-file "$MIRROR/dists/$SUITE/main/binary-$a/Packages.xz" "$tmp/Packages.xz" >&2
  local file sum
  read -r file sum < <(xz -dc "$tmp/Packages.xz" | awk -v want="$VERSION" '
    BEGIN { RS = "" }
    {
      pkg = ver = fn = sha = ""
      n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^Package: /) pkg = substr(line[i], 10)
        else if (line[i] ~ /^Version: /) ver = substr(line[i], 10)
        else if (line[i] ~ /^Filename: /) fn = substr(line[i], 11)
        else if (line[i] ~ /^SHA256: /) sha = substr(line[i], 9)
      }
      if (pkg == "libstd-rust-web-dev" && ver == want) { print fn, sha; exit }
    }') || true
  rm -rf "$tmp"
  [ -n "${file:-}" ] && [ -n "${sum:-}" ] || fail "libstd-rust-web-dev:$a=$VERSION is not in the mirror's index"
  $SUDO /usr/lib/apt/apt-helper download-file "$MIRROR/$file" "$dir/debs/${file##*/}" "SHA256:$sum" >&2
  echo "$dir/debs/${file##*/}"
}

for t in "${targets[@]}"; do
  a=$(deb_arch "$t")
  dest=/usr/lib/rustlib/$t
  if [ "$(cat "$dest/.panderm-arm-setup" 2>/dev/null)" = "$VERSION" ] && ls "$dest"/lib/libstd-*.rlib >/dev/null 2>&1; then
    say "$t: standard library $VERSION present"
    continue
  fi
  deb=$(fetch_std "$a")
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  [ -d "$tmp/usr/lib/rustlib/$t/lib" ] || fail "$deb holds no usr/lib/rustlib/$t"
  $SUDO rm -rf "$dest"
  $SUDO cp -a "$tmp/usr/lib/rustlib/$t" "$dest"
  echo "$VERSION" | $SUDO tee "$dest/.panderm-arm-setup" >/dev/null
  rm -rf "$tmp"
  say "$t: standard library $VERSION unpacked into $dest"
done

# --- smoke test: a threaded program per target, run the way the cargo runner runs it ------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo 'fn main() { println!("{}", std::thread::spawn(|| std::env::consts::ARCH).join().unwrap()); }' >"$tmp/smoke.rs"
for t in "${targets[@]}"; do
  a=$(deb_arch "$t")
  g=$(gnu_triple "$a")
  qemu=qemu-aarch64
  [ "$a" = armhf ] && qemu=qemu-arm
  /usr/bin/rustc --edition 2021 --target "$t" -C linker="$g-gcc" -o "$tmp/smoke-$a" "$tmp/smoke.rs"
  arch=$(timeout 60 "$qemu" -L "/usr/$g" -E "LD_LIBRARY_PATH=/usr/$g/lib" "$tmp/smoke-$a") ||
    fail "$t: the threaded smoke program failed or hung under $qemu"
  say "$t: cross build and $qemu run OK ($arch)"
done
