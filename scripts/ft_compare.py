#!/usr/bin/env python3
"""Compare a `panderm-tools finetune` run on tests/fixtures/ft_steps with PanDerm's PyTorch steps.

    scripts/ft_compare.py RUN_DIR [--loss-tol 1e-4] [--update-tol 5e-3]

Reads the .pth files without torch (a restricted unpickler that rebuilds tensors as numpy arrays
from the archive's raw storages), so it runs on the GPU machine with numpy only. Prints every
step's loss against PyTorch's and the worst per-tensor relative L2 error of the update
(final - initial); exits 1 when a tolerance is exceeded. The CPU test (tools/tests/finetune.rs)
applies the same checks with 1e-4 / 5e-3.
"""
import argparse, json, pickle, sys, zipfile
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests/fixtures/ft_steps"
DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64, "HalfStorage": np.float16}


def load_pth(path):
    z = zipfile.ZipFile(path)
    names = z.namelist()
    prefix = names[0].split("/")[0]
    pkl = next(n for n in names if n.endswith("data.pkl"))

    class Storage:
        def __init__(self, dtype, key):
            self.dtype, self.key = dtype, key

    def rebuild(storage, offset, size, stride, *rest):
        raw = np.frombuffer(z.read(f"{prefix}/data/{storage.key}"), dtype=storage.dtype)
        n = int(np.prod(size)) if len(size) else 1
        return raw[offset:offset + n].reshape(size).copy()

    class Namespace:
        def __init__(self, *a, **k):
            pass

        def __setstate__(self, state):
            self.__dict__.update(state)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return dict
            if (module, name) == ("argparse", "Namespace"):
                return Namespace
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key, _location, _numel = pid
            return Storage(DTYPES[kind], key)

    obj = Unpickler(z.open(pkl)).load()
    sd = obj.get("model", obj) if isinstance(obj, dict) else obj
    return {k: v for k, v in sd.items() if isinstance(v, np.ndarray)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--loss-tol", type=float, default=1e-4)
    ap.add_argument("--update-tol", type=float, default=5e-3)
    a = ap.parse_args()
    run = Path(a.run)
    expected = json.loads((FIX / "expected.json").read_text())
    ok = True
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    for got, want in zip(log, expected["steps"]):
        d = abs(got["loss"] - want["loss"])
        print(f"step {want['step']}: lr {got['lr']:.6g} (PyTorch {want['lr']:.6g}) loss {got['loss']:.6f} (PyTorch {want['loss']:.6f}, |d| {d:.2e})")
        ok &= d <= a.loss_tol and abs(got["lr"] - want["lr"]) <= 1e-12
    ok &= len(log) == len(expected["steps"])
    init = load_pth(ROOT / "tests/fixtures/panderm_tiny_ft.pth")
    ours, theirs = load_pth(run / "checkpoint-last.pth"), load_pth(FIX / "expected_last.pth")
    worst = (0.0, "")
    for k, w0 in init.items():
        if w0.dtype != np.float32:
            continue
        ref = np.linalg.norm(theirs[k].astype(np.float64) - w0)
        err = np.linalg.norm(ours[k].astype(np.float64) - theirs[k])
        rel = err / ref if ref > 0 else (0.0 if err == 0 else float("inf"))
        worst = max(worst, (rel, k))
    print(f"worst relative update error {worst[0]:.3e} ({worst[1]}); tolerance {a.update_tol}")
    ok &= worst[0] <= a.update_tol
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
