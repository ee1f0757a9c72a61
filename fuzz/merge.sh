#!/usr/bin/env bash
# Minimises fuzz/corpus/<target>/ plus everything fuzz/run.sh found in fuzz/work/<target>/ into
# the smallest set of inputs with the same coverage (libFuzzer -merge=1), inputs up to MAX_LEN
# bytes (default 65536), and makes that the committed corpus.
set -euo pipefail
target=$1
max_len=${2:-65536}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$target
new=$here/work/$target.merged
rm -rf "$new"
mkdir -p "$new"
nice -n 19 "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
  "$new" "$here/corpus/$target" "$here/work/$target" 2>&1 | grep -E "MERGE-OUTER|INFO: (Loaded|seed)" | tail -4
rm -rf "$here/corpus/$target"
mv "$new" "$here/corpus/$target"
echo "$target: $(ls "$here/corpus/$target" | wc -l) files, $(du -sk "$here/corpus/$target" | cut -f1) KiB"
