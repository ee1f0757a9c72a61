#!/usr/bin/env bash
# Full-size PanDerm_Base (random weights, `synth` D=768 depth 12) end to end: synth, convert,
# load, run. Prints the numbers recorded in docs/performance.md. Needs ~1.5 GB of disk in $WORK.
#   scripts/measure-base.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-${TMPDIR:-/tmp}/panderm-base-measure}
mkdir -p "$WORK"
cargo build --release -p panderm-tools -p panderm-edge
T=${CARGO_TARGET_DIR:-target}/release
IMG=tests/fixtures/images/clinical_forearm_iphone14.jpg
rss() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== synth PanDerm_Base (D=768, depth 12, lp layout)"
rss $T/panderm-tools synth --embed-dim 768 --depth 12 --layout lp -o "$WORK/base.pth"
ls -l "$WORK/base.pth"
echo "== convert"
rss $T/panderm-tools convert "$WORK/base.pth" -o "$WORK/base.onnx"
echo "== run (1 image, cold process: load + preprocess + inference)"
rss $T/panderm run --timings --model "$WORK/base.onnx" "$IMG"
echo "== run (5 images in one process: steady-state latency)"
rss $T/panderm run --timings --model "$WORK/base.onnx" "$IMG" "$IMG" "$IMG" "$IMG" "$IMG" >/dev/null
