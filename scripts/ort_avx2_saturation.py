#!/usr/bin/env python3
"""One ONNX MatMulInteger (uint8 activations, zero point 128, int8 weights 127) run by ONNX Runtime,
against the exact integer product: on CPUs without VNNI, ONNX Runtime's MLAS computes uint8 x int8
products with `vpmaddubsw`, which saturates a pair of products at 32767.

    scripts/ort_avx2_saturation.py                    # this CPU
    gcc -O2 -shared -fPIC -o /tmp/libcpuid_mask.so scripts/cpuid_mask.c
    PANDERM_CPU_CLASS=avx2 LD_PRELOAD=/tmp/libcpuid_mask.so scripts/ort_avx2_saturation.py

Prints the exact value, ONNX Runtime's, and whether they agree; exits 1 when they do not.
(Our AVX2 GEMM multiplies in int16 with `vpmaddwd`, exact for any codes: src/ops/qmatmul_kernel.rs.)
"""
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

K, N = 64, 16


def main() -> int:
    w = np.full((K, N), 127, dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a0"], ["y"])],
        "saturation",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, N])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(128, np.uint8), "a0")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.full((4, K), 255, dtype=np.uint8)
    got = sess.run(None, {"a": a})[0]
    exact = (a.astype(np.int64) - 128) @ w.astype(np.int64)
    same = bool((got == exact).all())
    print(f"onnxruntime {ort.__version__}: exact {exact[0, 0]}, ONNX Runtime {got[0, 0]}: {'agree' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
