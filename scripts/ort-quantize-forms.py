#!/usr/bin/env python3
"""Write every quantized form ONNX Runtime's own tool makes of a PanDerm export, and compare
tract (`panderm run`) with ONNX Runtime on each.

Why: users quantize with `onnxruntime.quantization` (the standard way to make a quantized ONNX)
and then load the file with `panderm run`. This script makes those files the way such a user
would and measures whether tract computes what ONNX Runtime computes on the same file
(docs/quantization.md, "ONNX Runtime's quantized forms in tract"; issue 15 item 1).

Forms written into OUTDIR (file name = form name + .onnx):
    qdq_default      quantize_static, QDQ, the installed ORT's defaults (1.32: activations QInt8,
                     weights QInt8, per-tensor; older ORT defaulted to QUInt8 activations)
    qdq_u8s8         quantize_static, QDQ, activations QUInt8, weights QInt8, per-tensor
    qdq_s8s8         quantize_static, QDQ, activations QInt8, weights QInt8, per-tensor
    qdq_per_channel  quantize_static, QDQ, activations QUInt8, weights QInt8, per-channel
    qoperator        quantize_static, QOperator (QLinearMatMul, QLinearAdd, ...), QUInt8/QInt8
    dyn_qint8        quantize_dynamic, weights QInt8
    dyn_quint8       quantize_dynamic, weights QUInt8
Static forms are calibrated (MinMax, ORT's default) on the images in CALIB_DIR.

Inputs are preprocessed by the runtime itself, so ORT and tract see the same pixels: the script
writes a one-node ONNX (Reshape of `pixel_values`, the source model's metadata) and runs
`panderm run --json` on it. `.npy` files ([3,H,W] or [1,3,H,W] float32, already normalized) in
the image folders are used as they are (then ORT and tract are not compared on them).

Usage (project venv from scripts/setup-python.sh, plus `pip install onnx`):
    .venv/bin/python scripts/ort-quantize-forms.py MODEL.onnx CALIB_DIR -o OUTDIR \
        [--eval EVAL_DIR] [--panderm target/debug/panderm] [--compare target/debug/panderm] \
        [--forms qdq_default,dyn_qint8] [--threads 1] [--fix] [--repro]

With --compare BIN it runs ONNX Runtime (CPU, ORT_ENABLE_ALL, like scripts/ort_run.py) and
`BIN run --json --model FORM.onnx` on each evaluation image (default: the calibration images)
and prints one row per form: runs / refused (the last line of panderm's error), the minimum
and mean cosine of tract's output to ORT's output on the same file, the minimum cosine of
tract to ORT with graph optimizations off (ORT_DISABLE_ALL: QDQ evaluated literally, the
reference semantics), ORT's cosine to itself across the two optimization levels (how far two
correct engines can differ on this file), and ORT's and tract's minimum cosine to the fp32
model (ORT fp32). Exit code 0 even when a form is refused or wrong: this is a measurement, not
a test.

With --fix it also writes FORM.fixed.onnx for every static form and compares it against ORT on
the ORIGINAL form file: a Python reference of the load-time rewrite proposed in
docs/quantization.md ("ONNX Runtime's quantized forms in tract"):
  1. QOperator nodes (QLinearConv, QLinearMatMul, com.microsoft QLinearAdd / QLinearMul /
     QLinearSoftmax) are expanded into DequantizeLinear -> float op -> QuantizeLinear
     (the QDQ form ORT itself fuses back into the same QLinear kernels);
  2. every QuantizeLinear -> DequantizeLinear pair on a Softmax / LogSoftmax output becomes the
     same arithmetic in float (Div, Round, Add zp, Clip, Sub zp, Mul): tract 0.23.9 turns a
     DequantizeLinear -> Softmax -> QuantizeLinear chain into a 256-entry lookup table
     (tract-core src/ops/quant.rs, DequantizeLinearF32::declutter), and every entry is the
     softmax of a single element, i.e. 1.0;
  3. each MatMul of DequantizeLinear(activation) by DequantizeLinear(constant weight) becomes
     MatMulInteger(xq, wq) -> Cast(float) [-> Sub(x_zp * colsum(wq))] -> Mul(s_x * s_w), the
     integer GEMM of the form `panderm-tools quantize` emits, with the activation zero point
     moved into a constant per-column correction.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover
    sys.exit("ort-quantize-forms.py needs the `onnx` package: .venv/bin/pip install onnx")

from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORMS = ["qdq_default", "qdq_u8s8", "qdq_s8s8", "qdq_per_channel", "qoperator", "dyn_qint8", "dyn_quint8"]


def list_inputs(folder):
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS + (".npy",))
    )


def pixel_dump_model(model_path, out_path):
    """One Reshape: pixel_values [1,3,H,W] -> features [1,3*H*W], with the source's metadata."""
    src = onnx.load(model_path, load_external_data=False)
    inp = src.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    c, h, w = dims[1] or 3, dims[2] or 224, dims[3] or 224
    shape = helper.make_tensor("dump_shape", TensorProto.INT64, [2], [1, c * h * w])
    graph = helper.make_graph(
        [helper.make_node("Reshape", [inp.name, "dump_shape"], ["features"])],
        "pixel_dump",
        [helper.make_tensor_value_info(inp.name, TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, c * h * w])],
        [shape],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for p in src.metadata_props:
        m.metadata_props.add(key=p.key, value=p.value)
    onnx.save(m, out_path)
    return (c, h, w)


def panderm_outputs(panderm, model, images, threads):
    """Runs `panderm run --json`; returns ({image: {output: array}}, None) or (None, error line)."""
    cmd = [panderm, "run", "--json", "--threads", str(threads), "--model", model] + images
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        lines = [l for l in p.stderr.strip().splitlines() if l.strip()]
        return None, (lines[-1] if lines else f"exit {p.returncode}")
    res = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            res[obj["image"]] = {k: np.asarray(v, dtype=np.float32) for k, v in obj["outputs"].items()}
    return res, None


def preprocess(paths, model_path, panderm, threads, tmp):
    """{path: float32 [1,3,H,W]} as the runtime preprocesses them."""
    out = {}
    images = [p for p in paths if not p.endswith(".npy")]
    for p in paths:
        if p.endswith(".npy"):
            a = np.load(p).astype(np.float32)
            out[p] = a[None] if a.ndim == 3 else a
    if images:
        if not panderm:
            sys.exit("images need --panderm BIN (or --compare BIN) for the runtime's preprocessing")
        dump = os.path.join(tmp, "pixel_dump.onnx")
        chw = pixel_dump_model(model_path, dump)
        res, err = panderm_outputs(panderm, dump, images, threads)
        if err:
            sys.exit(f"preprocessing with {panderm} failed: {err}")
        for p in images:
            out[p] = res[p]["features"].reshape((1,) + chw)
    return out


class Reader(CalibrationDataReader):
    def __init__(self, input_name, tensors):
        self.items = iter([{input_name: t} for t in tensors])

    def get_next(self):
        return next(self.items, None)


def write_form(name, src, dst, input_name, calib):
    static = {
        "qdq_default": dict(quant_format=QuantFormat.QDQ),
        "qdq_u8s8": dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8),
        "qdq_s8s8": dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8),
        "qdq_per_channel": dict(
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        ),
        "qoperator": dict(
            quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8
        ),
    }
    if name in static:
        quantize_static(src, dst, Reader(input_name, calib), **static[name])
    elif name == "dyn_qint8":
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    elif name == "dyn_quint8":
        quantize_dynamic(src, dst, weight_type=QuantType.QUInt8)
    else:
        raise ValueError(name)


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def expand_qoperator(model):
    """Step 1 of --fix: QOperator nodes -> DequantizeLinear -> float op -> QuantizeLinear."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, extra, k = [], [], [0]

    def dq(x, s, z, axis=None):
        k[0] += 1
        out = f"{x}_qop_dq{k[0]}"
        kw = {"axis": axis} if axis is not None else {}
        nodes.append(helper.make_node("DequantizeLinear", [x, s] + ([z] if z else []), [out], name=out, **kw))
        return out

    def wire(op, ins, n, s, z, **kw):
        f = n.output[0] + "_qop_f"
        nodes.append(helper.make_node(op, ins, [f], name=n.name + "_float", **kw))
        nodes.append(helper.make_node("QuantizeLinear", [f, s, z], [n.output[0]], name=n.name + "_q"))

    for n in g.node:
        t, ms = n.op_type, n.domain == "com.microsoft"
        if t == "QLinearMatMul":
            per_col = inits.get(n.input[4], np.zeros(())).ndim == 1
            wire("MatMul", [dq(*n.input[0:3]), dq(*n.input[3:6], axis=1 if per_col else None)], n, n.input[6], n.input[7])
        elif t == "QLinearConv":
            per_ch = inits[n.input[4]].ndim == 1
            ins = [dq(*n.input[0:3]), dq(*n.input[3:6], axis=0 if per_ch else None)]
            if len(n.input) > 8 and n.input[8]:
                bs = (np.float32(inits[n.input[1]]) * inits[n.input[4]].astype(np.float32)).astype(np.float32)
                extra.append(numpy_helper.from_array(bs, n.input[8] + "_qop_scale"))
                ins.append(dq(n.input[8], n.input[8] + "_qop_scale", None, axis=0 if bs.ndim == 1 else None))
            wire("Conv", ins, n, n.input[6], n.input[7], **_attrs(n))
        elif ms and t in ("QLinearAdd", "QLinearMul"):
            wire(t[len("QLinear"):], [dq(*n.input[0:3]), dq(*n.input[3:6])], n, n.input[6], n.input[7])
        elif ms and t == "QLinearSoftmax":
            wire("Softmax", [dq(*n.input[0:3])], n, n.input[3], n.input[4], axis=_attrs(n).get("axis", -1))
        elif ms or t.startswith("QLinear"):
            raise ValueError(f"QOperator node {n.name} ({n.domain}:{t}) has no QDQ expansion here")
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    return model


def float_fake_quant_after_softmax(model):
    """Step 2 of --fix: QuantizeLinear -> DequantizeLinear on a (Log)Softmax output, in float."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replace, drop, rename, extra = {}, set(), {}, []
    for sm in g.node:
        if sm.op_type not in ("Softmax", "LogSoftmax"):
            continue
        for q in consumers.get(sm.output[0], []):
            dqs = consumers.get(q.output[0], [])
            if q.op_type != "QuantizeLinear" or not dqs or any(d.op_type != "DequantizeLinear" for d in dqs):
                continue
            s = inits[q.input[1]]
            zp = inits[q.input[2]] if len(q.input) > 2 and q.input[2] else np.uint8(0)
            if s.ndim or zp.ndim:
                continue
            lim = np.iinfo(zp.dtype)
            p = q.name or q.output[0]
            for suffix, v in (("s", s), ("zp", zp), ("min", lim.min), ("max", lim.max)):
                extra.append(numpy_helper.from_array(np.asarray(v, np.float32), f"{p}_fq_{suffix}"))
            mk = lambda op, ins, out: helper.make_node(op, ins, [out], name=out)  # noqa: E731
            replace[id(q)] = [
                mk("Div", [sm.output[0], p + "_fq_s"], p + "_fq_div"),
                mk("Round", [p + "_fq_div"], p + "_fq_round"),
                mk("Add", [p + "_fq_round", p + "_fq_zp"], p + "_fq_add"),
                mk("Clip", [p + "_fq_add", p + "_fq_min", p + "_fq_max"], p + "_fq_clip"),
                mk("Sub", [p + "_fq_clip", p + "_fq_zp"], p + "_fq_sub"),
                mk("Mul", [p + "_fq_sub", p + "_fq_s"], p + "_fq_out"),
            ]
            for d in dqs:
                drop.add(id(d))
                rename[d.output[0]] = p + "_fq_out"
    nodes = []
    for n in g.node:
        if id(n) not in drop:
            nodes.extend(replace.get(id(n), [n]))
    for n in nodes:
        for i, name in enumerate(n.input):
            n.input[i] = rename.get(name, name)
    for o in g.output:
        if o.name in rename:
            raise ValueError(f"graph output {o.name} is a DequantizeLinear after a Softmax")
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    return model, len(replace)


def matmul_integer(model):
    """Step 3 of --fix: DQ(x) x DQ(const W) MatMul -> MatMulInteger -> Cast -> Mul(s_x*s_w)."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    replace, extra = {}, []
    for n in g.node:
        if n.op_type != "MatMul":
            continue
        da, db = producer.get(n.input[0]), producer.get(n.input[1])
        if not (da and db and da.op_type == db.op_type == "DequantizeLinear" and db.input[0] in inits):
            continue
        sa, sb = inits.get(da.input[1]), inits[db.input[1]]
        if sa is None or sa.ndim:
            continue
        if sb.ndim == 1 and _attrs(db).get("axis", 1) not in (inits[db.input[0]].ndim - 1, -1):
            continue
        p = n.name or n.output[0]
        w = inits[db.input[0]].astype(np.int64)
        if len(db.input) > 2 and db.input[2]:
            w = w - inits[db.input[2]].astype(np.int64)  # per-column weight zero point (ORT writes 0)
        wq = db.input[0]
        if (len(db.input) > 2 and db.input[2] and inits[db.input[2]].any()):
            continue  # a non-zero weight zero point: not written by ORT's quantizer; left as it is
        za = int(inits[da.input[2]]) if len(da.input) > 2 and da.input[2] else 0
        # sum_k (a_k - za) w_kn = sum_k (a_k - z0) w_kn - (za - z0) * sum_k w_kn: the activation
        # zero point becomes a constant per-column correction, and tract sees only the zero point
        # it folds for free (z0 = 128 for uint8 activations, none for int8), as in
        # `panderm-tools quantize` output. Any other zero point makes tract add a Reduce<Sum> over
        # the activations (30% of the run time on Base).
        a_u8 = inits[da.input[2]].dtype == np.uint8 if len(da.input) > 2 and da.input[2] else True
        z0 = 128 if a_u8 else 0
        corr = ((za - z0) * w.sum(axis=-2)).astype(np.float32)
        scale = (np.float32(sa) * sb.astype(np.float32)).astype(np.float32)
        extra.append(numpy_helper.from_array(scale, p + "_mmi_scale"))
        ins = [da.input[0], wq]
        if a_u8:
            extra.append(numpy_helper.from_array(np.uint8(128), p + "_mmi_zp128"))
            ins.append(p + "_mmi_zp128")
        za = za - z0
        mmi = [helper.make_node("MatMulInteger", ins, [p + "_mmi"], name=p + "_mmi"),
               helper.make_node("Cast", [p + "_mmi"], [p + "_mmi_f"], name=p + "_mmi_cast", to=TensorProto.FLOAT)]
        last = p + "_mmi_f"
        if za:
            extra.append(numpy_helper.from_array(corr, p + "_mmi_zpcorr"))
            mmi.append(helper.make_node("Sub", [last, p + "_mmi_zpcorr"], [p + "_mmi_c"], name=p + "_mmi_zp"))
            last = p + "_mmi_c"
        mmi.append(helper.make_node("Mul", [last, p + "_mmi_scale"], [n.output[0]], name=p))
        replace[id(n)] = mmi
    nodes = [m for n in g.node for m in replace.get(id(n), [n])]
    live = {o.name for o in g.output}
    kept = []
    for n in reversed(nodes):  # drop the weight DequantizeLinears nobody reads any more
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(i for i in n.input if i)
    kept.reverse()
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(extra)
    used = {i for n in kept for i in n.input}
    keep_init = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_init)
    return model, len(replace)


def write_softmax_repro(model_path, out_path, log_softmax=False):
    """The minimal graph of the tract bug: Q -> DQ -> Softmax -> Q -> DQ on the image input
    (`panderm run` wants an image model; any shape shows it). ORT: k/255, rows sum to ~1;
    tract 0.23.9: 1.0 everywhere (LogSoftmax: 0.0 everywhere)."""
    src = onnx.load(model_path, load_external_data=False)
    inp = src.graph.input[0]
    dims = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    dims[0] = 1
    op = "LogSoftmax" if log_softmax else "Softmax"
    out_scale, out_zp = (0.05, 127) if log_softmax else (1 / 255, -128)
    inits = [
        numpy_helper.from_array(np.float32(0.02), "s_in"),
        numpy_helper.from_array(np.int8(0), "zp_in"),
        numpy_helper.from_array(np.float32(out_scale), "s_out"),
        numpy_helper.from_array(np.int8(out_zp), "zp_out"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", [inp.name, "s_in", "zp_in"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "zp_in"], ["xd"]),
        helper.make_node(op, ["xd"], ["p"], axis=-1),
        helper.make_node("QuantizeLinear", ["p", "s_out", "zp_out"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "s_out", "zp_out"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "softmax_qdq_repro",
        [helper.make_tensor_value_info(inp.name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)], inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for prop in src.metadata_props:
        m.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(m, out_path)


def write_fixed(src, dst):
    m = onnx.load(src)
    m = expand_qoperator(m)
    m, n_sm = float_fake_quant_after_softmax(m)
    m, n_mm = matmul_integer(m)
    onnx.save(m, dst)
    return n_sm, n_mm


def ort_run(model, input_name, tensors, threads, optimize=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    out_name = sess.get_outputs()[0].name
    return out_name, [sess.run([out_name], {input_name: t})[0].ravel() for t in tensors]


def cosine(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def main():
    ap = argparse.ArgumentParser(
        description="Write every quantized form ONNX Runtime's tool makes of a PanDerm export; "
        "with --compare, compare tract (panderm run) with ORT on each.",
        epilog="See the header of this script and docs/quantization.md.",
    )
    ap.add_argument("model", help="fp32 PanDerm ONNX (panderm-tools convert output)")
    ap.add_argument("calib", help="folder of calibration images (or .npy pixel tensors)")
    ap.add_argument("-o", "--output", required=True, help="folder for the quantized files")
    ap.add_argument("--eval", help="folder of evaluation images (default: the calibration folder)")
    ap.add_argument("--forms", default=",".join(FORMS), help=f"comma-separated subset of {FORMS}")
    ap.add_argument("--compare", metavar="PANDERM_BIN", help="run ORT and this panderm binary on each form")
    ap.add_argument("--panderm", metavar="BIN", help="panderm binary for preprocessing (default: --compare's)")
    ap.add_argument("--threads", type=int, default=1, help="threads for ORT and panderm (default 1)")
    ap.add_argument("--fix", action="store_true", help="also write and compare FORM.fixed.onnx (see above)")
    ap.add_argument(
        "--repro", action="store_true",
        help="also write softmax_repro.onnx / logsoftmax_repro.onnx (the minimal graph of the tract "
        "bug) and, with --compare, print ORT's and tract's max abs difference and row sums",
    )
    args = ap.parse_args()

    forms = [f for f in args.forms.split(",") if f]
    for f in forms:
        if f not in FORMS:
            ap.error(f"unknown form {f}; known: {FORMS}")
    panderm = args.panderm or args.compare
    os.makedirs(args.output, exist_ok=True)
    input_name = onnx.load(args.model, load_external_data=False).graph.input[0].name

    with tempfile.TemporaryDirectory() as tmp:
        calib_paths = list_inputs(args.calib)
        if not calib_paths:
            sys.exit(f"{args.calib}: no images")
        calib = preprocess(calib_paths, args.model, panderm, args.threads, tmp)
        calib_tensors = [calib[p] for p in calib_paths]
        print(f"calibration: {len(calib_tensors)} inputs from {args.calib}", file=sys.stderr)

        written = {}
        for f in forms:
            dst = os.path.join(args.output, f + ".onnx")
            try:
                write_form(f, args.model, dst, input_name, calib_tensors)
                written[f] = dst
                print(f"wrote {dst}", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{f}: ORT quantizer failed: {e}", file=sys.stderr)
        fixed = {}
        if args.fix:
            for f, path in written.items():
                if f.startswith("dyn_"):
                    continue
                dst = os.path.join(args.output, f + ".fixed.onnx")
                n_sm, n_mm = write_fixed(path, dst)
                fixed[f] = dst
                print(f"wrote {dst} ({n_sm} softmax Q/DQ in float, {n_mm} MatMulInteger)", file=sys.stderr)

        if args.repro:
            for name, log in (("softmax_repro", False), ("logsoftmax_repro", True)):
                dst = os.path.join(args.output, name + ".onnx")
                write_softmax_repro(args.model, dst, log)
                print(f"wrote {dst}", file=sys.stderr)
                if args.compare:
                    img = [p for p in calib_paths if not p.endswith(".npy")][:1]
                    so = ort.SessionOptions()
                    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                    o = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"]).run(
                        None, {input_name: calib[img[0]]})[0]
                    res, err = panderm_outputs(args.compare, dst, img, args.threads)
                    if err:
                        print(f"{name}: tract refused: {err}")
                        continue
                    t = res[img[0]]["y"].reshape(o.shape)
                    print(
                        f"{name}: max|tract-ORT| {np.abs(t - o).max():.4g}; first row sum ORT "
                        f"{o[(0,) * (o.ndim - 1)].sum():.4f}, tract {t[(0,) * (t.ndim - 1)].sum():.4f}"
                    )
        if not args.compare:
            return
        eval_paths = list_inputs(args.eval) if args.eval else calib_paths
        ev = preprocess(eval_paths, args.model, panderm, args.threads, tmp)
        images = [p for p in eval_paths if not p.endswith(".npy")]
        if not images:
            sys.exit("--compare needs image files (not .npy) in the evaluation folder")
        tensors = [ev[p] for p in images]
        _, ref = ort_run(args.model, input_name, tensors, args.threads)
        rows = []
        runs = [("fp32", args.model, args.model)]
        for f, path in written.items():
            runs.append((f, path, path))
            if f in fixed:
                runs.append((f + " +fix", fixed[f], path))
        ort_cache = {}
        for f, path, ort_path in runs:
            if ort_path not in ort_cache:
                out_name, ort_out = ort_run(ort_path, input_name, tensors, args.threads)
                _, ort_lit = ort_run(ort_path, input_name, tensors, args.threads, optimize=False)
                ort_cache[ort_path] = (out_name, ort_out, ort_lit)
            out_name, ort_out, ort_lit = ort_cache[ort_path]
            self_c = min(cosine(a, b) for a, b in zip(ort_out, ort_lit))
            ort_fp = min(cosine(o, r) for o, r in zip(ort_out, ref))
            res, err = panderm_outputs(args.compare, path, images, args.threads)
            if err:
                rows.append((f, "refused", None, None, None, self_c, ort_fp, None, err))
                continue
            tr = [res[p][out_name].ravel() for p in images]
            c = [cosine(t, o) for t, o in zip(tr, ort_out)]
            c_lit = min(cosine(t, o) for t, o in zip(tr, ort_lit))
            tr_fp = min(cosine(t, r) for t, r in zip(tr, ref))
            note = "" if path == ort_path else f"ORT columns: {os.path.basename(ort_path)}"
            rows.append((f, "runs", min(c), float(np.mean(c)), c_lit, self_c, ort_fp, tr_fp, note))

    print(f"\n{len(images)} evaluation images; onnxruntime {ort.__version__}; cosines are per image (min / mean)")
    print(
        "| form | tract | cos tract–ORT min | mean | cos tract–ORT(no opt) min | cos ORT–ORT(no opt) min "
        "| cos ORT–fp32 min | cos tract–fp32 min | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "" if v is None else f"{v:.5f}"  # noqa: E731
    for f, st, cmin, cmean, clit, selfc, of, tf, note in rows:
        print(f"| {f} | {st} | {fmt(cmin)} | {fmt(cmean)} | {fmt(clit)} | {fmt(selfc)} | {fmt(of)} | {fmt(tf)} | {note} |")


if __name__ == "__main__":
    main()
