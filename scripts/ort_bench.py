#!/usr/bin/env python3
"""Time an ONNX model with ONNX Runtime (CPU), like `panderm bench` does with tract.

    ort_bench.py MODEL.onnx THREADS RUNS

Prints one JSON object: load_s (InferenceSession creation), first_run_ms, median_ms, p90_ms,
min_ms, images_per_s, peak_rss_mib (whole process, including the Python interpreter and numpy,
about 45 MB). Input: the same deterministic pseudo-random tensor as `panderm bench`, batch 1.
"""
import json
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def synthetic(shape):
    n = int(np.prod(shape))
    state = 0x2545F491
    out = np.empty(n, dtype=np.float32)
    # Same LCG as src/bench.rs (the values do not change a dense ViT's timing; kept identical anyway).
    for i in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = (state >> 8) / float(1 << 24) * 4.0 - 2.0
    return out.reshape(shape)


def main() -> None:
    model, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t = time.perf_counter()
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t
    inp = sess.get_inputs()[0]
    shape = [1] + [d if isinstance(d, int) else 1 for d in inp.shape[1:]]
    x = synthetic(shape)
    t = time.perf_counter()
    sess.run(None, {inp.name: x})
    first = (time.perf_counter() - t) * 1e3
    sess.run(None, {inp.name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    med = float(np.percentile(times, 50))
    print(json.dumps({
        "engine": f"onnxruntime {ort.__version__}",
        "model": model,
        "threads": threads,
        "load_s": load_s,
        "first_run_ms": first,
        "runs": runs,
        "median_ms": med,
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": times[0],
        "images_per_s": 1e3 / med,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
