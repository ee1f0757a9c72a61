#!/usr/bin/env bash
# tract (panderm bench) and ONNX Runtime (PyPI wheel, scripts/ort_bench.py) on the same ONNX files,
# same thread counts, same input, in one run; prints a Markdown table with the tract/ORT ratio.
#
#   scripts/bench-vs-ort.sh [--runs R] [--threads "1 2"] [--repeat K] [--cpu-class C] MODEL.onnx...
#
# --cpu-class avx2|avx512-vnni runs both engines with CPUID bits hidden (scripts/cpuid_mask.c,
# LD_PRELOAD; needs the `cpuid_fault` CPU flag), so tract, ONNX Runtime and our ops all dispatch as
# on that older CPU class, on this same silicon. The default, native, hides nothing.
#
# Each (model, engine, threads) cell is measured K times (default 3) in fresh processes, in an
# interleaved order, and the median of the K medians is reported: the machine may be shared.
# Needs: a release build of panderm (built here) and .venv from scripts/setup-python.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20 threads="1 2" repeat=3 class=native models=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --cpu-class) class=$2; shift 2 ;;
    -*) echo "bench-vs-ort: unknown option $1" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[ ${#models[@]} -gt 0 ] || { echo "usage: scripts/bench-vs-ort.sh [--runs R] [--threads \"1 2\"] MODEL.onnx..." >&2; exit 2; }
PY=.venv/bin/python
[ -x $PY ] || { echo "bench-vs-ort: run scripts/setup-python.sh first" >&2; exit 2; }
cargo build --release -p panderm-edge --bin panderm >&2
BIN=${CARGO_TARGET_DIR:-target}/release/panderm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mask=()
if [ "$class" != native ]; then
  grep -qw cpuid_fault /proc/cpuinfo || { echo "bench-vs-ort: --cpu-class needs CPUID faulting (no cpuid_fault flag in /proc/cpuinfo)" >&2; exit 2; }
  ${CC:-cc} -O2 -shared -fPIC -o "$tmp/libcpuid_mask.so" scripts/cpuid_mask.c
  mask=(env PANDERM_CPU_CLASS="$class" LD_PRELOAD="$tmp/libcpuid_mask.so")
  echo "CPU class: $class (CPUID masked); tract kernels: $("${mask[@]}" $BIN info --model "${models[0]}" | sed -n 's/^kernels: //p')" >&2
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)" >&2
for k in $(seq "$repeat"); do
  for m in "${models[@]}"; do
    for t in $threads; do
      echo "  pass $k/$repeat: $(basename "$m") $t thread(s)" >&2
      "${mask[@]}" $BIN bench --model "$m" --threads "$t" --runs "$runs" --json >>"$tmp/tract-$(basename "$m")-$t.jsonl"
      "${mask[@]}" $PY scripts/ort_bench.py "$m" "$t" "$runs" >>"$tmp/ort-$(basename "$m")-$t.jsonl"
    done
  done
done

$PY - "$tmp" "$threads" "${models[@]}" <<'PY'
import json, os, statistics, sys
tmp, threads, models = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def load(engine, m, t):
    rows = [json.loads(l) for l in open(os.path.join(tmp, f"{engine}-{os.path.basename(m)}-{t}.jsonl"))]
    med = lambda k: statistics.median(r[k] for r in rows if r.get(k) is not None)
    return {k: med(k) for k in ("load_s", "first_run_ms", "median_ms", "p90_ms", "peak_rss_mib")}, [r["median_ms"] for r in rows]
print("| model | MB | threads | tract load s | tract median ms (runs) | tract p90 | tract RSS MiB | ORT load s | ORT median ms (runs) | ORT RSS MiB | tract/ORT |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in models:
    mb = os.path.getsize(m) / 1e6
    for t in threads:
        a, am = load("tract", m, t)
        b, bm = load("ort", m, t)
        fmt = lambda xs: "/".join(f"{x:.0f}" for x in xs)
        print(f"| {os.path.basename(m)} | {mb:.0f} | {t} | {a['load_s']:.2f} | **{a['median_ms']:.1f}** ({fmt(am)}) | {a['p90_ms']:.1f} | "
              f"{a['peak_rss_mib']:.0f} | {b['load_s']:.2f} | **{b['median_ms']:.1f}** ({fmt(bm)}) | {b['peak_rss_mib']:.0f} | "
              f"**{a['median_ms'] / b['median_ms']:.2f}×** |")
PY
