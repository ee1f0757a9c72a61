#!/usr/bin/env python3
"""Generate tools/tests/fixtures/metrics_golden.json: PanDerm's linear-probe metrics from scikit-learn.

Maintainer script, never needed at run time. It draws fixed random test cases (binary and
multiclass, ties in the probabilities, classes absent from the predictions or from y_true, labels
above the column count, unnormalised scores, a single class) and records what PanDerm's
`metrics.py::get_eval_metrics` obtains from scikit-learn for each, with the exact branch logic of
`linear_probe.py::test_linear_probe` (spec 4.4/4.5):

* binary branch when y_true has exactly 2 distinct labels (scores = probs[:, 1], roc_kwargs={}),
  else the full matrix with roc_auc_score(multi_class="ovo", average="macro");
* AUROC then AUPR inside one try/except: a raise leaves the metric (and, for AUROC, AUPR) out.

Values scikit-learn returns as nan are written as the string "nan"; metrics left out as null.
It also records Python/numpy float formatting (for the per-image CSV) and `.4f` (summary CSV).

Usage:  .venv/bin/python scripts/reference_metrics.py   (needs numpy and scikit-learn)
"""

import json
import math
import os
import struct
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    classification_report,
    cohen_kappa_score,
    roc_auc_score,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "tests", "fixtures", "metrics_golden.json")


def panderm_metrics(y_true, y_pred, probs):
    """PanDerm's get_eval_metrics (lin_ prefix dropped), with test_linear_probe's branch choice."""
    out = {
        "acc": accuracy_score(y_true, y_pred),
        "bacc": balanced_accuracy_score(y_true, y_pred),
        "kappa": cohen_kappa_score(y_true, y_pred, weights="quadratic"),
        "weighted_f1": classification_report(y_true, y_pred, output_dict=True, zero_division=0)["weighted avg"][
            "f1-score"
        ],
        "auroc": None,
        "aupr": None,
    }
    if len(set(y_true.tolist())) == 2:
        scores, roc_kwargs = probs[:, 1], {}
    else:
        scores, roc_kwargs = probs, {"multi_class": "ovo", "average": "macro"}
    try:
        out["auroc"] = roc_auc_score(y_true, scores, **roc_kwargs)
        out["aupr"] = average_precision_score(y_true, scores, average="macro")
    except Exception:  # noqa: BLE001 - PanDerm catches everything here
        pass
    return {key: encode(value) for key, value in out.items()}


def encode(value):
    if value is None:
        return None
    value = float(value)
    return "nan" if math.isnan(value) else value


def informative_probs(rng, y_true, k, signal, decimals=6):
    """Softmax of noise + signal on the true class (labels >= k get no signal), rounded."""
    logits = rng.normal(size=(len(y_true), k))
    for i, y in enumerate(y_true):
        if y < k:
            logits[i, y] += signal
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.round(p, decimals)


def quantized_probs(rng, y_true, k, total):
    """Probabilities c / total from small integer counts: many exact ties, rows sum to 1."""
    weights = np.ones((len(y_true), k))
    for i, y in enumerate(y_true):
        if y < k:
            weights[i, y] += 2.0
    rows = [rng.multinomial(total, w / w.sum()) for w in weights]
    return np.array(rows, dtype=np.float64) / total


def draw_labels(rng, n, classes):
    """n labels from `classes`, each present at least once (n >= len(classes)), imbalanced."""
    classes = list(classes)
    p = rng.dirichlet(np.full(len(classes), 2.0))
    y = list(classes) + list(rng.choice(classes, size=n - len(classes), p=p))
    return np.array(rng.permutation(y), dtype=np.int64)


def corrupt(rng, y_pred, k, fraction):
    y = y_pred.copy()
    mask = rng.random(len(y)) < fraction
    y[mask] = rng.integers(0, k, size=mask.sum())
    return y


def sizes(rng, count, low=5, high=300):
    return [int(round(math.exp(rng.uniform(math.log(low), math.log(high))))) for _ in range(count)]


def build_cases(rng):
    cases = []

    def add(name, y_true, y_pred, probs, k):
        assert probs.shape == (len(y_true), k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = panderm_metrics(np.asarray(y_true), np.asarray(y_pred), probs)
        cases.append(
            {
                "name": name,
                "k": k,
                "y_true": [int(v) for v in y_true],
                "y_pred": [int(v) for v in y_pred],
                "probs": [float(v) for v in probs.reshape(-1)],
                "expected": expected,
            }
        )

    # Binary, informative scores, 6 decimals.
    for n in sizes(rng, 8):
        y = draw_labels(rng, max(n, 2), [0, 1])
        p = informative_probs(rng, y, 2, rng.uniform(0.0, 3.0))
        add(f"binary n={len(y)}", y, p.argmax(axis=1), p, 2)
    # Binary with heavy ties (probabilities c/10, c/20) and noisy predictions.
    for n, total in zip(sizes(rng, 6), [4, 8, 10, 20, 10, 20]):
        y = draw_labels(rng, max(n, 2), [0, 1])
        p = quantized_probs(rng, y, 2, total)
        add(f"binary ties total={total} n={len(y)}", y, corrupt(rng, p.argmax(axis=1), 2, 0.2), p, 2)
    # Multiclass, k = 3..7, informative scores.
    for k in range(3, 8):
        for n in sizes(rng, 3, low=max(12, 2 * k)):
            y = draw_labels(rng, n, range(k))
            p = informative_probs(rng, y, k, rng.uniform(0.5, 3.0))
            add(f"multiclass k={k} n={n}", y, p.argmax(axis=1), p, k)
    # Multiclass with ties (quantized), argmax takes the first maximum.
    for k in range(3, 8):
        for total in (10, 20):
            n = sizes(rng, 1, low=max(12, 2 * k))[0]
            y = draw_labels(rng, n, range(k))
            p = quantized_probs(rng, y, k, total)
            add(f"multiclass ties k={k} total={total} n={n}", y, p.argmax(axis=1), p, k)
    # A class absent from the predictions (argmax over the other columns).
    for k in (3, 5, 7):
        n = sizes(rng, 1, low=30)[0]
        y = draw_labels(rng, n, range(k))
        p = informative_probs(rng, y, k, 1.5)
        masked = p.copy()
        masked[:, k - 2] = -1.0
        add(f"class absent from predictions k={k} n={n}", y, masked.argmax(axis=1), p, k)
    # Predictions of classes absent from y_true (noise), multiclass and binary.
    for k in (3, 6):
        n = sizes(rng, 1, low=20)[0]
        y = draw_labels(rng, n, range(k))
        p = informative_probs(rng, y, k, 1.0)
        add(f"noisy predictions k={k} n={n}", y, corrupt(rng, p.argmax(axis=1), k, 0.4), p, k)
    # A class absent from y_true, multiclass: sklearn raises (3 labels vs k columns).
    for k in (4, 6):
        n = sizes(rng, 1, low=20)[0]
        y = draw_labels(rng, n, range(k - 1))
        p = informative_probs(rng, y, k, 1.5)
        add(f"class absent from y_true k={k} n={n}", y, p.argmax(axis=1), p, k)
    # Two test labels with a k > 2 model: PanDerm's binary branch on probs[:, 1].
    for k, labels in ((3, [0, 1]), (4, [0, 1]), (3, [0, 2]), (4, [1, 2]), (5, [1, 3]), (5, [2, 4])):
        n = sizes(rng, 1, low=10)[0]
        y = draw_labels(rng, n, labels)
        p = informative_probs(rng, y, k, 1.5)
        add(f"two test labels {labels} of k={k} n={n}", y, p.argmax(axis=1), p, k)
    # Labels above the column count: sklearn's ovo encodes the sorted labels onto the columns.
    for labels, k in (([0, 1, 3], 3), ([1, 2, 5, 6], 4)):
        n = sizes(rng, 1, low=20)[0]
        y = draw_labels(rng, n, labels)
        p = informative_probs(rng, y, k, 1.0)
        add(f"labels {labels} with k={k} n={n}", y, p.argmax(axis=1), p, k)
    # Unnormalised multiclass scores (rows do not sum to 1): multiclass AUROC raises.
    for k in (3, 5):
        n = sizes(rng, 1, low=20)[0]
        y = draw_labels(rng, n, range(k))
        p = np.round(rng.random((n, k)), 4)
        add(f"unnormalised scores k={k} n={n}", y, p.argmax(axis=1), p, k)
    # Unnormalised binary scores: the binary branch never checks sums.
    y = draw_labels(rng, 40, [0, 1])
    p = np.round(rng.random((40, 2)), 4)
    add("unnormalised binary scores n=40", y, p.argmax(axis=1), p, 2)
    # Rows summing to 1 only within np.allclose's tolerance (4 decimals -> |1 - s| up to 2e-4 fails,
    # 6 decimals passes).
    for decimals in (3, 6):
        y = draw_labels(rng, 30, range(4))
        p = informative_probs(rng, y, 4, 1.0, decimals=decimals)
        add(f"rounded to {decimals} decimals k=4 n=30", y, p.argmax(axis=1), p, 4)
    # A single test class: 2 columns -> AUROC nan, AUPR raises; 3 columns -> both raise.
    for k, label in ((2, 0), (2, 1), (3, 1), (4, 2)):
        y = np.full(12, label, dtype=np.int64)
        p = informative_probs(rng, y, k, 1.0)
        add(f"single test class {label} k={k}", y, corrupt(rng, p.argmax(axis=1), k, 0.3), p, k)
    # Undefined kappa: one label everywhere.
    y = np.zeros(7, dtype=np.int64)
    p = informative_probs(rng, y, 2, 5.0)
    add("one label everywhere k=2", y, np.zeros(7, dtype=np.int64), p, 2)
    # Tiny splits.
    for k in (2, 3, 7):
        y = draw_labels(rng, 5, range(min(k, 5)))
        p = quantized_probs(rng, y, k, 10)
        add(f"tiny n=5 k={k}", y, p.argmax(axis=1), p, k)
    return cases


def f64_bits(v):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def f32_bits(v):
    return "%08x" % int(np.array([v], dtype=np.float32).view(np.uint32)[0])


def float_formats(rng):
    specials = [0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-4, 1e-5, 9.999e-5, 0.00012, 1e15, 1e16, 9999999999999998.0,
                123456789.0, 1e6, 999999.94, 1e7, 1e8, 1.5e-7, 5e-324, 2.2250738585072014e-308,
                1.7976931348623157e308, 1e22, 1e-300, 0.3, 2.0 / 3.0, 1e-45, 3.4028234663852886e38,
                float("inf"), float("-inf"), float("nan")]
    values = list(specials)
    values += list(rng.random(60))
    values += list(10.0 ** rng.uniform(-12, 20, size=80) * rng.choice([-1.0, 1.0], size=80))
    softmax = rng.dirichlet(np.ones(7), size=10).reshape(-1)
    values += list(softmax)
    values += list(np.round(rng.random(20), 6))
    f64 = [[f64_bits(v), repr(float(v))] for v in values]
    with np.errstate(over="ignore"):
        f32 = [[f32_bits(v), str(np.float32(v))] for v in values + list(rng.random(60).astype(np.float32))]
    # numpy float32 softmax outputs, as PanDerm's predict_proba produces them.
    logits = rng.normal(size=(20, 7)).astype(np.float32) * np.float32(4.0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p32 = (e / e.sum(axis=1, keepdims=True)).astype(np.float32).reshape(-1)
    f32 += [[f32_bits(v), str(v)] for v in p32]
    fixed = list(rng.random(40)) + [i / 32 for i in range(33)] + [0.00005, 0.99995, 0.99996, 0.12345, -0.0, 1.0,
                                                                  0.000049999, float("nan")]
    fixed4 = [[f64_bits(v), f"{v:.4f}"] for v in fixed]
    return {"f64_repr": f64, "f32_str": f32, "fixed4": fixed4}


def main():
    rng = np.random.default_rng(20240817)
    doc = {
        "generator": "scripts/reference_metrics.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "cases": build_cases(rng),
        "float_formats": float_formats(rng),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"{len(doc['cases'])} cases -> {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
