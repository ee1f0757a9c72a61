#!/usr/bin/env bash
# Minimises fuzz/corpus/<target>/ plus everything fuzz/run.sh found in fuzz/work/<target>/ into
# the committed corpus, within BUDGET_KIB (default 40): libFuzzer -set_cover_merge=1 on edge
# coverage (-use_counters=0: an input is kept for a new edge, not for a new hit count), then
# fuzz/cmin.py keeps, while the budget allows, the inputs adding the most coverage per byte.
# Prints the coverage features the committed corpus reaches against those of everything merged.
#
#   fuzz/merge.sh <target> [MAX_LEN] [BUDGET_KIB]
set -euo pipefail
target=$1
max_len=${2:-65536}
budget=$(( ${3:-40} * 1024 ))
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$target
merged=$here/work/$target.merged
final=$here/work/$target.final
rm -rf "$merged" "$final"
mkdir -p "$merged" "$here/work/$target"
nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
  "$merged" "$here/corpus/$target" "$here/work/$target" >/dev/null 2>&1
summary=$(python3 "$here/cmin.py" "$bin" "$max_len" "$budget" "$final" "$merged"/*)
rm -rf "$merged" "$here/corpus/$target"
mv "$final" "$here/corpus/$target"
echo "$target: $summary"
