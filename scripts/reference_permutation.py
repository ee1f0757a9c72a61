#!/usr/bin/env python3
"""Write the numpy/pandas golden data for `panderm_tools::numpy_rng` and `panderm_tools::dataset`.

Maintainer script: it needs numpy and pandas (`scripts/requirements-reference.txt`; the repo venv
has them after `.venv/bin/pip install -r scripts/requirements-reference.txt`) and is not run by
the test suite, which only reads its output. Run it from anywhere:

    .venv/bin/python scripts/reference_permutation.py

What it writes
--------------
* `tools/tests/fixtures/percent_50.csv`: a fixed 50-row PanDerm-style CSV (a leading unnamed
  index column as `DataFrame.to_csv` writes it, `image,label,split`, an extra `patient` column;
  36 train / 7 val / 7 test rows, interleaved). Its content is a pure function of the row number.
* `tools/tests/fixtures/numpy_permutation_golden.json` (a few tens of KB):
  - `permutations`: `numpy.random.RandomState(seed).permutation(n)` for n in
    {0, 1, 2, 3, 10, 100, 1000, 8207, 100000} (seed 42) and a few other seeds. Small n are
    stored in full; for n > 1000 the first and last 50 entries, the sum and the SHA-256 of the
    whole permutation as little-endian u64 values.
  - `pandas_sample`: the row order of `DataFrame.sample(frac=1, random_state=seed)` (the
    positions of the sampled rows), stored the same way. The script asserts it equals the
    permutation: pandas calls `RandomState(seed).choice(n, size=n, replace=False)`, which is
    `permutation(n)[:n]` in numpy's legacy code.
  - `seeding`: the MT19937 key after `RandomState(seed)` (int seeds use `mt19937_seed`, array
    seeds `init_by_array`), as head + SHA-256 of the 624 words.
  - `percent_subsets`: PanDerm's `percent_data` subset (`datasets/derm_data.py::Derm_Dataset`:
    train rows, `sample(frac=1, random_state=42)`, `head(int(len * percent))`) of
    `percent_50.csv` as 0-based CSV data-row indices, for several percentages.
  - `percent_counts`: `int(n * percent)` with Python float semantics for tricky pairs (for
    example 100 * 0.29 = 28.999999999999996, so 28 rows).
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tools" / "tests" / "fixtures"
CSV_PATH = FIXTURES / "percent_50.csv"
GOLDEN_PATH = FIXTURES / "numpy_permutation_golden.json"

SIZES = [0, 1, 2, 3, 10, 100, 1000, 8207, 100000]
EXTRA_SEEDS = [0, 1, 12345, 2**32 - 1]
EXTRA_SIZES = [10, 1000, 8207]
FULL_MAX = 1000
EDGE = 50
PERCENTS = [0.1, 0.3, 0.5, 0.29, 1.0]


def digest(values):
    """SHA-256 of the values as little-endian u64, the form the Rust test hashes."""
    arr = np.asarray(values, dtype="<u8")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def summarise(values):
    values = [int(v) for v in values]
    entry = {"len": len(values), "sum": sum(values), "sha256": digest(values)}
    if len(values) <= FULL_MAX:
        entry["full"] = values
    else:
        entry["head"] = values[:EDGE]
        entry["tail"] = values[-EDGE:]
    return entry


def pandas_order(seed, n):
    df = pd.DataFrame({"row": np.arange(n)})
    return df.sample(frac=1, random_state=seed)["row"].to_numpy()


def write_csv():
    lines = [",image,label,split,patient"]
    for i in range(50):
        if i % 7 == 3:
            split = "val"
        elif i % 7 == 5:
            split = "test"
        else:
            split = "train"
        label = (i * 3) % 5
        lines.append(f"{i},img_{i:03d}.jpg,{label},{split},P{(i * 17) % 23:02d}")
    CSV_PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")


def panderm_percent_subset(df, percent):
    # Verbatim logic of PanDerm's Derm_Dataset(train=True, data_percent=percent), keeping the
    # original index (the 0-based data row) instead of reset_index(drop=True).
    train = df[df["split"] == "train"]
    train = train.sample(frac=1, random_state=42)
    rows = int(len(train) * percent)
    return [int(i) for i in train.head(rows).index]


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_csv()

    cases = [(42, n) for n in SIZES] + [(s, n) for s in EXTRA_SEEDS for n in EXTRA_SIZES]
    permutations = []
    pandas_sample = []
    for seed, n in cases:
        perm = np.random.RandomState(seed).permutation(n)
        choice = np.random.RandomState(seed).choice(n, size=n, replace=False) if n else perm
        order = pandas_order(seed, n)
        assert np.array_equal(perm, choice), (seed, n)
        assert np.array_equal(perm, order), (seed, n)
        permutations.append({"seed": seed, "n": n, **summarise(perm)})
        pandas_sample.append({"seed": seed, "n": n, **summarise(order)})

    seeding = []
    for seed in [42, 0, 2**32 - 1, [1, 2, 3], [42]]:
        state = np.random.RandomState(seed).get_state()
        key = [int(k) for k in state[1]]
        seeding.append({"seed": seed, "pos": int(state[2]), "head": key[:8], "sha256": digest(key)})

    df = pd.read_csv(CSV_PATH)
    n_train = int((df["split"] == "train").sum())
    percent_subsets = [
        {"percent": p, "n_train": n_train, "rows": panderm_percent_subset(df, p)} for p in PERCENTS
    ]

    count_pairs = [(100, 0.29), (100, 0.57), (37, 0.3), (8207, 0.1), (8207, 0.3), (49, 0.7),
                   (10, 0.7), (1000, 0.001), (3, 1.0), (1, 0.5), (0, 0.5), (1493, 0.01)]
    percent_counts = [{"n": n, "percent": p, "count": int(n * p)} for n, p in count_pairs]

    golden = {
        "generator": "scripts/reference_permutation.py",
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "hash": "sha256 of the values as little-endian u64",
        "permutations": permutations,
        "pandas_sample": pandas_sample,
        "seeding": seeding,
        "percent_csv": "percent_50.csv",
        "percent_subsets": percent_subsets,
        "percent_counts": percent_counts,
    }
    GOLDEN_PATH.write_text(json.dumps(golden, separators=(",", ":")) + "\n", encoding="utf-8")
    size = GOLDEN_PATH.stat().st_size
    print(f"wrote {CSV_PATH.relative_to(REPO)} and {GOLDEN_PATH.relative_to(REPO)} ({size} bytes)")
    print(f"numpy {np.__version__}, pandas {pd.__version__}")


if __name__ == "__main__":
    main()
