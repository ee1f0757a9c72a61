#!/usr/bin/env bash
# Fetch ONNX Runtime's aarch64 Linux library, for the runtime's `--backend ort` tests under
# qemu-aarch64 (scripts/arm-test.sh --ort, docs/npu.md). Prints the library's path.
#
#   scripts/fetch-ort-aarch64.sh [DIR]      (default DIR: target/ort-aarch64)
#
# The same onnxruntime version as the reference venv's (scripts/setup-python.sh), so native and
# emulated runs load the same release. Its PyPI wheel for manylinux_2_28 aarch64 is downloaded (not
# installed: one file is unpacked from it). pip checks the wheel against PyPI's published hash.
# Older manylinux2014 aarch64 wheels stop at 1.16.3, which has no libonnxruntime.so and is below
# the runtime's API floor (1.17). Idempotent: a second run only prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/ort-aarch64}
py=.venv/bin/python
[ -x "$py" ] || { echo "fetch-ort-aarch64: no .venv: run scripts/setup-python.sh first" >&2; exit 1; }
version=$("$py" -c 'import onnxruntime; print(onnxruntime.__version__)')
lib="$dir/$version/onnxruntime/capi/libonnxruntime.so.$version"
if [ ! -s "$lib" ]; then
  mkdir -p "$dir/$version"
  "$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --python-version 3.11 "onnxruntime==$version" -d "$dir/$version" >&2
  wheel=$(ls "$dir/$version"/onnxruntime-"$version"-*manylinux_2_28_aarch64.whl)
  "$py" - "$wheel" "$dir/$version" "onnxruntime/capi/libonnxruntime.so.$version" <<'PY'
import sys, zipfile
wheel, dest, member = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    z.extract(member, dest)
PY
  rm -f "$wheel"
  echo "fetch-ort-aarch64: ONNX Runtime $version for aarch64 -> $lib" >&2
fi
# ELF e_machine (2 bytes at offset 18): 183 = EM_AARCH64.
[ "$(od -An -tu2 -j18 -N2 "$lib" | tr -d ' ')" = 183 ] || { echo "fetch-ort-aarch64: $lib is not an aarch64 library" >&2; exit 1; }
realpath "$lib"
