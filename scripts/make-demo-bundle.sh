#!/usr/bin/env bash
# Rebuilds models/demo/: a PIPELINE DEMO bundle (random-weight tiny PanDerm-layout backbone made
# by `synth`, heads trained by `probe` on features of synthetic skin-like images). It shows the
# whole workstation -> device path; it is not a medical model and its outputs mean nothing.
#   scripts/make-demo-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# PROFILE=dev reuses the test build (same numerics: the dependencies are optimized in both).
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" -p panderm-tools -p panderm-edge
DIR=$PROFILE
[ "$PROFILE" = dev ] && DIR=debug
T=${CARGO_TARGET_DIR:-target}/$DIR
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
$T/panderm-tools synth --embed-dim 128 --depth 2 --layout lp --seed 2026 -o "$WORK/backbone.pth"
$T/panderm-tools convert "$WORK/backbone.pth" -o "$WORK/backbone.onnx"
$T/panderm-tools synth-images --count 150 --width 320 --height 256 --seed 7 -o "$WORK/images"
$T/panderm-tools extract --model "$WORK/backbone.onnx" --csv "$WORK/images/multiclass.csv" \
  --root "$WORK/images" -o "$WORK/features.npy" --quiet
$T/panderm-tools probe --features "$WORK/features.npy" --csv "$WORK/images/binary.csv" \
  --output-dir "$WORK/probe-binary" --labels regular,dark_irregular
$T/panderm-tools probe --features "$WORK/features.npy" --csv "$WORK/images/multiclass.csv" \
  --output-dir "$WORK/probe-colour" --labels brown,red,pale
rm -rf models/demo
# ONNX backbone: tests read models/demo/backbone.onnx directly (quantize, ORT parity); NNEF bundles
# (the `bundle` default) are exercised by tools/tests/pipeline_e2e.rs.
$T/panderm-tools bundle --backbone "$WORK/backbone.onnx" \
  --head "lesion_pattern=$WORK/probe-binary" --threshold lesion_pattern=0.5 \
  --head "lesion_colour=$WORK/probe-colour" \
  --name panderm-demo --version 0.1.0 --demo --format onnx \
  --description "Pipeline demo: random-weight tiny PanDerm-layout backbone (D=128, depth 2) with toy heads trained on synthetic images. Not a medical model." \
  -o models/demo
cp "$WORK/images/synth_0149.png" models/demo/sample.png
$T/panderm verify --bundle models/demo
