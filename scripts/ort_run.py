#!/usr/bin/env python3
"""Run an ONNX model with ONNX Runtime (CPU) on a float32 .npy input; write each output as .npy.

Used by the test suite as an independent second engine for exported PanDerm graphs:
    ort_run.py MODEL.onnx INPUT.npy OUTDIR [--literal]
writes OUTDIR/<output name>.npy for every model output. Exit code 3 if onnxruntime is missing.
"""
import os
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"onnxruntime unavailable: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> None:
    args = sys.argv[1:]
    literal = "--literal" in args
    model, inp, outdir = [a for a in args if a != "--literal"][:3]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    # Full graph optimizations, as a deployment would use; the comparison tolerance covers
    # the different accumulation order. --literal turns them off: every node is evaluated as
    # written (a quantized QDQ graph by its definition, not by ORT's fused integer kernels).
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if literal else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    x = np.load(inp).astype(np.float32)
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: x})
    os.makedirs(outdir, exist_ok=True)
    for meta, value in zip(sess.get_outputs(), outs):
        np.save(os.path.join(outdir, meta.name + ".npy"), np.ascontiguousarray(value, dtype=np.float32))
    print(f"onnxruntime {ort.__version__}: ran {os.path.basename(model)} on {x.shape}")


if __name__ == "__main__":
    main()
