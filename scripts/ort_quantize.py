#!/usr/bin/env python3
"""Quantize an ONNX model with ONNX Runtime's own tool (`onnxruntime.quantization`), the way a
user would, in one named form; for the tests of the quantized-graph import (src/onnx_quant,
tests/ort_parity.rs). The full comparison table is scripts/ort-quantize-forms.py.

    ort_quantize.py FORM MODEL.onnx CALIB.npy OUT.onnx

FORM: qdq_default (the installed version's defaults: QDQ, 1.32 = QInt8 activations and
weights, per tensor), qdq_u8s8, qdq_s8s8, qdq_per_channel (u8/s8), qoperator (u8/s8),
dyn_qint8, dyn_quint8. CALIB.npy: float32 [N, C, H, W] model inputs (already normalized), one
calibration sample per row (MinMax, ORT's default). Exit code 3 if onnxruntime or onnx is missing.
"""
import sys

try:
    import numpy as np
    import onnx  # noqa: F401  (onnxruntime.quantization needs it)
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"onnxruntime quantization unavailable: {e}", file=sys.stderr)
    sys.exit(3)

STATIC = {
    "qdq_default": dict(quant_format=QuantFormat.QDQ),
    "qdq_u8s8": dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
    "qdq_s8s8": dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8),
    "qdq_per_channel": dict(
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8
    ),
    "qoperator": dict(quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
}
DYNAMIC = {"dyn_qint8": QuantType.QInt8, "dyn_quint8": QuantType.QUInt8}


class Reader(CalibrationDataReader):
    def __init__(self, input_name, samples):
        self.items = iter([{input_name: s[None]} for s in samples])

    def get_next(self):
        return next(self.items, None)


def main() -> None:
    form, model, calib, out = sys.argv[1:5]
    if form in STATIC:
        name = onnx.load(model, load_external_data=False).graph.input[0].name
        samples = np.load(calib).astype(np.float32)
        quantize_static(model, out, Reader(name, samples), **STATIC[form])
    elif form in DYNAMIC:
        quantize_dynamic(model, out, weight_type=DYNAMIC[form])
    else:
        sys.exit(f"unknown form {form}; one of {', '.join([*STATIC, *DYNAMIC])}")
    print(f"onnxruntime {onnxruntime.__version__}: wrote {form} {out}")


if __name__ == "__main__":
    main()
