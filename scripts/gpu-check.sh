#!/usr/bin/env bash
# GPU check for `panderm-tools extract --device cuda` and `finetune --device cuda` (run on a machine
# with an NVIDIA GPU; no network needed: build here with `cargo build --release -p panderm-tools
# --features cuda`, carry target/release/panderm-tools).
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
  [ -f "$W/base.pth" ] || "$B" synth --embed-dim 768 --depth 12 --seed 0 -o "$W/base.pth"
  [ -f "$W/base.onnx" ] || "$B" convert "$W/base.pth" -o "$W/base.onnx"
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

# Fine-tuning (docs/finetune.md, docs/gpu.md): PanDerm's PyTorch steps on CUDA. CubeCL's f32 matmuls
# may use TF32 tensor cores (10-bit mantissa, ~1e-3 relative per product), so the tolerances are
# wider than the CPU test's 1e-4 / 5e-3.
FT=tests/fixtures/ft_steps
rm -rf "$RES/ft-cuda"
"$B" finetune --init tests/fixtures/panderm_tiny_ft.pth --csv $FT/data.csv --root $FT/images --nb-classes 3 \
  --output-dir "$RES/ft-cuda" --epochs 4 --batch-size 6 --lr 5e-4 --min-lr 1e-6 --warmup-epochs 1 --layer-decay 0.65 \
  --weight-decay 0.05 --drop-path 0 --smoothing 0.1 --mixup 0 --cutmix 0 --no-augment --device cuda --quiet
python3 scripts/ft_compare.py "$RES/ft-cuda" --loss-tol 1e-3 --update-tol 2e-2
# Throughput of the training engine on full-size Base (synthetic weights and batches), with the
# GPU memory high-water mark sampled by nvidia-smi.
for b in 64 128; do
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$RES/mem-$b.txt" & SMI=$!
  "$B" bench-finetune --init "$W/base.pth" --batch-size $b --steps 10 --device cuda || echo "bench-finetune batch $b failed"
  kill $SMI; echo "batch $b: peak GPU memory $(sort -n "$RES/mem-$b.txt" | tail -1) MiB"
done
