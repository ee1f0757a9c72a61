#!/usr/bin/env bash
# Rebuilds models/demo/ and models/demo-int8/: PIPELINE DEMO bundles (random-weight tiny
# PanDerm-layout backbone made by `synth`, heads trained by `probe` on features of synthetic
# skin-like images). They show the whole workstation -> device path; they are not medical models
# and their outputs mean nothing.
#
#   scripts/make-demo-bundle.sh              # both bundles
#   scripts/make-demo-bundle.sh --int8-only  # only models/demo-int8/, leaving models/demo/ as committed
#
# models/demo-int8/ is models/demo/ with the backbone quantized by `panderm-tools quantize`
# (default static-u8 scheme, calibrated on the 150 synthetic images made below): the same heads,
# thresholds and abstention rule. Its backbone stays ONNX like models/demo's (tests read and
# compare the file; `bundle` writes int8 backbones as NNEF by default). Every step is deterministic; --int8-only checks that the backbone and heads it
# rebuilds are byte-identical to the committed models/demo/ before quantizing, so the int8 bundle
# is always the int8 form of the committed fp32 one.
#
# PROFILE=dev reuses the test build (same numerics: the dependencies are optimized in both).
# BUILD=0 skips `cargo build` and uses the binaries already in target/ (e.g. from
# `cargo build --workspace --all-features`, which a plain `-p` build would not reuse).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
INT8_ONLY=0
case ${1:-} in
  "") ;;
  --int8-only) INT8_ONLY=1 ;;
  *) echo "usage: scripts/make-demo-bundle.sh [--int8-only]" >&2; exit 2 ;;
esac
PROFILE=${PROFILE:-release}
[ "${BUILD:-1}" = 0 ] || cargo build --profile "$PROFILE" -p panderm-tools -p panderm-edge
DIR=$PROFILE
[ "$PROFILE" = dev ] && DIR=debug
T=$(cd "${CARGO_TARGET_DIR:-target}/$DIR" && pwd)
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
HEADS=(--head "lesion_pattern=$WORK/probe-binary" --threshold lesion_pattern=0.5
  --head "lesion_colour=$WORK/probe-colour")

if [ $INT8_ONLY = 1 ]; then
  cmp "$WORK/backbone.onnx" models/demo/backbone.onnx ||
    { echo "make-demo-bundle: models/demo/backbone.onnx is not what this script makes; run it without --int8-only" >&2; exit 1; }
else
  rm -rf models/demo
  # ONNX backbone: tests read models/demo/backbone.onnx directly (quantize, ORT parity); NNEF bundles
  # (the `bundle` default) are exercised by tools/tests/pipeline_e2e.rs.
  $T/panderm-tools bundle --backbone "$WORK/backbone.onnx" "${HEADS[@]}" \
    --name panderm-demo --version 0.1.0 --demo --format onnx \
    --description "Pipeline demo: random-weight tiny PanDerm-layout backbone (D=128, depth 2) with toy heads trained on synthetic images. Not a medical model." \
    -o models/demo
  cp "$WORK/images/synth_0149.png" models/demo/sample.png
  $T/panderm verify --bundle models/demo
fi

# Relative paths from $WORK: the int8 file records its calibration source, which must not name
# the temporary directory (the bundle would change on every run).
(cd "$WORK" && $T/panderm-tools quantize backbone.onnx -o backbone.int8.onnx --calibration images \
  --bundle "$ROOT/models/demo" --quiet)
rm -rf models/demo-int8
$T/panderm-tools bundle --backbone "$WORK/backbone.int8.onnx" "${HEADS[@]}" \
  --name panderm-demo-int8 --version 0.1.0 --demo --format onnx \
  --description "Pipeline demo, int8 variant: the demo backbone (random-weight tiny PanDerm-layout, D=128, depth 2) quantized by panderm-tools quantize (static-u8), with the demo's toy heads. Not a medical model." \
  -o models/demo-int8
for f in heads/lesion_pattern.onnx heads/lesion_colour.onnx abstention/centroids.npy; do
  cmp "models/demo-int8/$f" "models/demo/$f" ||
    { echo "make-demo-bundle: models/demo-int8/$f differs from models/demo/$f" >&2; exit 1; }
done
$T/panderm verify --bundle models/demo-int8
