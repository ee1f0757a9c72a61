#!/usr/bin/env bash
# GPU check for `panderm-tools extract --device cuda` (run on a machine with an NVIDIA GPU).
# Expects a release binary built with `--features cuda` and CPU reference features made by
#   scripts/gpu-check.sh --cpu-reference DIR     (on any machine, same binary)
# then, on the GPU machine:
#   scripts/gpu-check.sh DIR                     (DIR holds cpu.npy; results go to $OUT or DIR)
# Same synthetic full-size PanDerm_Base (synth seed 0) and the same 256 synthetic images on both
# sides, so features must agree (cosine >= 0.9999).
set -euo pipefail
B=${PANDERM_TOOLS:-target/release/panderm-tools}
W=${WORK:-/tmp/panderm-gpu-check}
mkdir -p "$W"
prepare() {
  [ -f "$W/base.onnx" ] || { "$B" synth --embed-dim 768 --depth 12 --seed 0 -o "$W/base.pth" && "$B" convert "$W/base.pth" -o "$W/base.onnx" && rm "$W/base.pth"; }
  [ -f "$W/imgs/multiclass.csv" ] || "$B" synth-images --count 256 --width 320 --height 256 --seed 11 -o "$W/imgs" >/dev/null
}
if [ "${1:-}" = "--cpu-reference" ]; then
  DIR=$2; mkdir -p "$DIR"; prepare
  /usr/bin/time -f "cpu extract: %e s wall, %M KB peak RSS" "$B" extract --model "$W/base.onnx" --csv "$W/imgs/multiclass.csv" \
    --root "$W/imgs" -o "$DIR/cpu.npy" --device cpu --quiet
  "$B" bench-extract --model "$W/base.onnx" --device cpu --batch-size 8 --images 32
  exit 0
fi
DIR=$1; RES=${OUT:-$DIR}
# CUDA libraries: the driver is mounted; cudart/nvrtc/cublas/cudnn may live in pip wheels.
LIBS=$(find / -xdev \( -path '*site-packages/nvidia/*/lib' -o -path '/usr/local/cuda*/lib64' \) -type d 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:-}"
nvidia-smi -L || true
prepare
/usr/bin/time -f "cuda extract: %e s wall, %M KB peak RSS" "$B" extract --model "$W/base.onnx" --csv "$W/imgs/multiclass.csv" \
  --root "$W/imgs" -o "$RES/gpu.npy" --device cuda --quiet
for b in 1 16 64 128; do "$B" bench-extract --model "$W/base.onnx" --device cuda --batch-size $b --images 512; done
python3 - "$DIR/cpu.npy" "$RES/gpu.npy" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
print(f"rows {a.shape} vs {b.shape}; cosine min {cos.min():.7f} median {np.median(cos):.7f}; max abs diff {np.abs(a-b).max():.3e}")
print("PASS" if cos.min() >= 0.9999 else "FAIL")
PY
