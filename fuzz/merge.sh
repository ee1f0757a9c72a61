#!/usr/bin/env bash
# Minimises fuzz/corpus/<target>/ plus everything fuzz/run.sh found in fuzz/work/<target>/ into
# the committed corpus: libFuzzer -set_cover_merge=1 (greedy set cover) on edge coverage only
# (-use_counters=0: an input is kept for a new edge, not for a new hit count); then, while the
# corpus is over BUDGET_KIB (default 40), the largest inputs are dropped. Prints the coverage
# features the committed corpus reaches against those of everything merged.
#
#   fuzz/merge.sh <target> [MAX_LEN] [BUDGET_KIB]
set -euo pipefail
target=$1
max_len=${2:-65536}
budget=$(( ${3:-40} * 1024 ))
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$target
new=$here/work/$target.merged
check=$here/work/$target.check
rm -rf "$new" "$check"
mkdir -p "$new" "$check" "$here/work/$target"
feats() { grep -oE "with [0-9]+ new features" | tail -1 | cut -d' ' -f2; }
all=$(nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
  "$new" "$here/corpus/$target" "$here/work/$target" 2>&1 | feats)
# Over budget: drop the largest inputs.
while [ "$(cat "$new"/* | wc -c)" -gt "$budget" ]; do
  rm "$(ls -S "$new"/* | head -1)"
done
kept=$(nice -n 19 "$bin" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
  "$check" "$new" 2>&1 | feats)
rm -rf "$check" "$here/corpus/$target"
mv "$new" "$here/corpus/$target"
echo "$target: $(ls "$here/corpus/$target" | wc -l) files, $(cat "$here/corpus/$target"/* | wc -c) bytes, features $kept of $all"
