#!/usr/bin/env python3
"""Picks the committed corpus of one target within a byte budget: each candidate input's
coverage features (libFuzzer, edges only) are read one input at a time, then a greedy weighted
set cover takes, while the budget allows, the input adding the most not-yet-covered features per
byte. Used by fuzz/merge.sh.

    cmin.py BINARY MAX_LEN BUDGET_BYTES OUT_DIR INPUT...
"""
import os
import subprocess
import sys
import tempfile


def features(binary, max_len, path, scratch):
    one = os.path.join(scratch, "one")
    out = os.path.join(scratch, "out")
    for d in (one, out):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
    os.symlink(os.path.abspath(path), os.path.join(one, "x"))
    ctl = os.path.join(scratch, "ctl")
    if os.path.exists(ctl):
        os.unlink(ctl)
    subprocess.run(
        ["nice", "-n", "19", binary, "-merge=1", "-use_counters=0", "-rss_limit_mb=2048", "-timeout=10",
         f"-max_len={max_len}", f"-merge_control_file={ctl}", out, one],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)
    feats = set()
    try:
        with open(ctl) as f:
            for line in f:
                if line.startswith("FT "):
                    feats.update(int(x) for x in line.split()[2:])
    except FileNotFoundError:
        pass
    return feats


def main():
    binary, max_len, budget, out_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    inputs = sys.argv[5:]
    with tempfile.TemporaryDirectory() as scratch:
        cands = []
        for p in inputs:
            size = os.path.getsize(p)
            if 0 < size <= max_len:
                cands.append((p, size, features(binary, max_len, p, scratch)))
    every = set().union(*(c[2] for c in cands)) if cands else set()
    covered, used, chosen = set(), 0, []
    while True:
        best, score = None, 0.0
        for c in cands:
            if used + c[1] > budget:
                continue
            gain = len(c[2] - covered)
            if gain and gain / c[1] > score:
                best, score = c, gain / c[1]
        if best is None:
            break
        chosen.append(best)
        covered |= best[2]
        used += best[1]
        cands.remove(best)
    os.makedirs(out_dir, exist_ok=True)
    for p, _, _ in chosen:
        with open(p, "rb") as src, open(os.path.join(out_dir, os.path.basename(p)), "wb") as dst:
            dst.write(src.read())
    print(f"{len(chosen)} inputs, {used} bytes, features {len(covered)} of {len(every)}")


if __name__ == "__main__":
    main()
