#!/usr/bin/env bash
# Runs one fuzz target until it has used CPU_SECONDS of CPU time (default 600), at the lowest
# priority, in libFuzzer's fork mode (crashes, OOMs and timeouts are saved under
# fuzz/artifacts/<target>/ and fuzzing goes on), growing a working corpus in
# fuzz/work/<target>/ from the committed seeds in fuzz/corpus/<target>/.
#
#   cargo fuzz build -O -a -s none          # once, from fuzz/ (stable Rust is enough)
#   fuzz/run.sh image [CPU_SECONDS] [MAX_LEN]
#
# Prints the final libFuzzer statistics and the CPU seconds used. Afterwards, minimise the new
# inputs back into the committed corpus with fuzz/merge.sh <target>.
set -euo pipefail
target=$1
cpu_limit=${2:-600}
max_len=${3:-65536}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$target
work=$here/work/$target
mkdir -p "$work" "$here/artifacts/$target" "$here/logs"
log=$here/logs/$target.log
: > "$log"
nice -n 19 /usr/bin/time -f "time: user=%U sys=%S wall=%e maxrss_kb=%M" -o "$here/logs/$target.time" \
  "$bin" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len="$max_len" \
  -print_final_stats=1 -artifact_prefix="$here/artifacts/$target/" \
  "$work" "$here/corpus/$target" >>"$log" 2>&1 &
tpid=$!
pid=
while [ -z "$pid" ] && kill -0 "$tpid" 2>/dev/null; do
  sleep 1
  pid=$(pgrep -P "$tpid" || true)
done
# CPU seconds of the fuzzer, its finished jobs and the one running (`sh -c` + fuzzer under it).
cpu() {
  local total=0 tck
  tck=$(getconf CLK_TCK)
  # parent: utime stime cutime cstime (fields 14-17)
  total=$(awk '{print $14+$15+$16+$17}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  for c in $(pgrep -P "$pid" || true) ; do
    for g in "$c" $(pgrep -P "$c" || true); do
      total=$((total + $(awk '{print $14+$15}' "/proc/$g/stat" 2>/dev/null || echo 0)))
    done
  done
  echo $((total / tck))
}
used=0
while kill -0 "$pid" 2>/dev/null; do
  used=$(cpu)
  if [ "$used" -ge "$cpu_limit" ]; then
    # The fork-mode parent does not stop on SIGINT (it only ends the running job). Let the
    # running job finish (so /usr/bin/time counts it: a job killed while its parent is killed is
    # never reaped by it), then stop the parent and the job it has just started.
    job=$(pgrep -P "$pid" || true)
    while [ -n "$job" ] && [ "$(pgrep -P "$pid" || true)" = "$job" ]; do sleep 0.2; done
    jobs_=$(pgrep -P "$pid" || true)
    kill -KILL "$pid" 2>/dev/null || true
    for j in $jobs_; do
      kill -KILL $(pgrep -P "$j" || true) "$j" 2>/dev/null || true
    done
    break
  fi
  sleep 5
done
wait "$tpid" || true
cat "$here/logs/$target.time" >> "$log"
echo "target=$target cpu_seconds_polled=$used" | tee -a "$log"
cat "$here/logs/$target.time"
grep -E "^#[0-9]+|stat::|INFO: (fuzzed|exiting)|crash|deadly" "$log" | tail -8
