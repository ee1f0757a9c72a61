#!/usr/bin/env python3
"""Generate tools/tests/fixtures/ft_metrics_golden.json: PanDerm's fine-tuning metrics from scikit-learn.

Maintainer script, never needed at run time. For a table of small fixed cases (K = 2, 3, 4, 6, 7;
ties in the probabilities, within a row and across rows; a class absent from y_true; a class
neither true nor predicted; a single-class split) it records what PanDerm's
`furnace/engine_for_finetuning.py::evaluate` computes with scikit-learn (spec section 6):

* predictions = argmax of the probabilities (first maximum, as torch.max);
* balanced_accuracy_score, accuracy_score, top_k_accuracy_score(k=3/5, labels=arange(K)),
  macro sensitivity/specificity from multilabel_confusion_matrix (0 when 0/0),
  roc_auc_score(one_hot, probs, multi_class='ovr', average='macro'), f1_score(weighted),
  recall_score(macro), recall_score(weighted).

A call that raises (top-k with K = 2) is recorded as null; so is a nan (AUROC with a class absent
from y_true: scikit-learn >= 1.6 returns nan with a warning where older versions raised).

Usage:  .venv/bin/python scripts/reference_ft_metrics.py   (needs numpy and scikit-learn)
"""

import json
import math
import os
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    multilabel_confusion_matrix,
    recall_score,
    roc_auc_score,
    top_k_accuracy_score,
)

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tools", "tests", "fixtures", "ft_metrics_golden.json"
)


def guarded(fn):
    """The value, or None where scikit-learn raises or returns nan."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = float(fn())
    except ValueError:
        return None
    return None if math.isnan(v) else v


def panderm_ft_metrics(y_true, probs, k):
    """The metric block of PanDerm's evaluate(), on integer labels and [n, K] probabilities."""
    pred = np.argmax(probs, axis=1)
    one_hot = np.eye(k, dtype=np.int64)[y_true]
    sens, spec = [], []
    for cm in multilabel_confusion_matrix(y_true, pred):
        tn, fp, fn, tp = cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]
        sens.append(tp / (tp + fn) if (tp + fn) > 0 else 0)
        spec.append(tn / (tn + fp) if (tn + fp) > 0 else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
            "accuracy": float(accuracy_score(y_true, pred)),
            "top3_accuracy": guarded(lambda: top_k_accuracy_score(y_true, probs, k=3, labels=np.arange(k))),
            "top5_accuracy": guarded(lambda: top_k_accuracy_score(y_true, probs, k=5, labels=np.arange(k))),
            "sensitivity": float(np.mean(np.array(sens))),
            "specificity": float(np.mean(np.array(spec))),
            "auc_roc": guarded(lambda: roc_auc_score(one_hot, probs, multi_class="ovr", average="macro")),
            "weighted_f1": float(f1_score(y_true, pred, average="weighted")),
            "recall_macro": float(recall_score(y_true, pred, average="macro")),
            "recall_weighted": float(recall_score(y_true, pred, average="weighted")),
        }


def fixed_cases():
    """Hand-written cases: (name, K, y_true, probs)."""
    return [
        (
            "K=3, ties within rows and across rows",
            3,
            [0, 0, 1, 1, 2, 2, 0, 1],
            [
                [0.5, 0.25, 0.25],
                [0.25, 0.5, 0.25],
                [0.25, 0.5, 0.25],
                [0.4, 0.4, 0.2],
                [0.25, 0.25, 0.5],
                [0.4, 0.2, 0.4],
                [0.5, 0.25, 0.25],
                [0.2, 0.4, 0.4],
            ],
        ),
        (
            "K=2, ties",
            2,
            [0, 1, 0, 1, 1, 0],
            [[0.5, 0.5], [0.5, 0.5], [0.75, 0.25], [0.25, 0.75], [0.75, 0.25], [0.25, 0.75]],
        ),
        (
            "K=2, single class in y_true",
            2,
            [1, 1, 1],
            [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]],
        ),
        (
            "K=3, class 2 predicted but never true",
            3,
            [0, 0, 1, 1],
            [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3]],
        ),
        (
            "K=4, class 3 neither true nor predicted",
            4,
            [0, 1, 2, 0, 1, 2],
            [
                [0.7, 0.1, 0.1, 0.1],
                [0.1, 0.7, 0.1, 0.1],
                [0.1, 0.1, 0.7, 0.1],
                [0.1, 0.7, 0.1, 0.1],
                [0.4, 0.4, 0.1, 0.1],
                [0.1, 0.1, 0.7, 0.1],
            ],
        ),
        (
            "K=6, every score tied in some rows",
            6,
            [0, 5, 3, 2, 1, 4, 0, 5],
            [
                [1 / 6] * 6,
                [1 / 6] * 6,
                [0.1, 0.1, 0.3, 0.3, 0.1, 0.1],
                [0.05, 0.05, 0.05, 0.05, 0.4, 0.4],
                [0.3, 0.2, 0.2, 0.1, 0.1, 0.1],
                [0.2, 0.2, 0.2, 0.2, 0.1, 0.1],
                [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],
                [0.5, 0.1, 0.1, 0.1, 0.1, 0.1],
            ],
        ),
    ]


def random_cases(rng):
    """Softmax of random logits rounded to 2 decimals (many ties), all classes present."""
    cases = []
    for k, n in [(3, 40), (7, 60), (2, 30), (5, 25)]:
        y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
        logits = rng.normal(0.0, 1.5, (n, k)) + 1.2 * np.eye(k)[y]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = np.round(p / p.sum(axis=1, keepdims=True), 2)
        cases.append((f"random K={k} n={n}, rounded to 2 decimals", k, y.tolist(), p.tolist()))
    return cases


def main():
    rng = np.random.default_rng(20250614)
    cases = []
    for name, k, y, probs in fixed_cases() + random_cases(rng):
        y_arr = np.array(y, dtype=np.int64)
        p_arr = np.array(probs, dtype=np.float64)
        cases.append(
            {
                "name": name,
                "k": k,
                "y_true": y,
                "probs": p_arr.reshape(-1).tolist(),
                "expected": panderm_ft_metrics(y_arr, p_arr, k),
            }
        )
    doc = {"sklearn": sklearn.__version__, "numpy": np.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
