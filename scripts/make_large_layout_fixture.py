#!/usr/bin/env python3
"""Make tests/fixtures/panderm_tiny_ll.pth: the tiny PanDerm model in the *Large* checkpoint layout.

Maintainer script: it needs PyTorch (any 2.x; `pip install torch`) and is not run by the test
suite, which only reads its output. Run it from anywhere:

    python3 scripts/make_large_layout_fixture.py

What it writes
--------------
The released PanDerm Large weights, `panderm_ll_data6_checkpoint-499.pth`, are a flat state dict
saved by `torch.save` from CAE pre-training (PanDerm's `models/builder.py` loads them with
`torch.load(path, weights_only=True)` and strips `"encoder."` from the keys). Compared with the
Base/linear-probe file (bare keys such as `cls_token`, `blocks.0.attn.qkv.weight`), it

* prefixes every encoder key with `encoder.` (`encoder.cls_token`, `encoder.pos_embed`,
  `encoder.patch_embed.proj.weight`, `encoder.blocks.N.*`, `encoder.norm.*`), and
* carries CAE pre-training extras that inference must ignore: `rd_pos_embed`, `mask_token`,
  `regresser.*`, `decoder.*` and `teacher.*`.

This script reads `tests/fixtures/panderm_tiny_lp.pth` (D=128, depth 2, 2 heads, patch 16,
224x224, made with PanDerm's own model code) and writes `tests/fixtures/panderm_tiny_ll.pth` as a
`collections.OrderedDict` with

1. the LP file's tensors, unchanged and in their original order, under `encoder.<key>`;
2. then the extras, random but deterministic (`torch.manual_seed(0)`):
   - `rd_pos_embed` [1, 197, D]: the fixed 2-D sin-cos table CAE uses (zero row for CLS);
   - `mask_token` [1, 1, D];
   - `regresser.regressor_blocks.{0,1}.*`: `norm1_q.weight/bias` [D], `cross_attn.q.weight`
     [D, D], `cross_attn.q_bias` [D], `mlp.fc1.weight` [4D, D], `mlp.fc1.bias` [4D],
     `gamma_1_cross` [D];
   - `regresser.norm.weight/bias` [D];
   - `decoder.norm.weight` [D], `decoder.head.weight` [64, D];
   - `teacher.cls_token` [1, 1, D], `teacher.blocks.0.attn.qkv.weight` [3D, D],
     `teacher.norm.weight` [D]. These deliberately share their suffix with encoder keys but hold
     *different* values, so a loader that strips the wrong prefix (or takes the last match) gets
     wrong weights and the feature test fails.

Because the encoder weights are bit-for-bit those of `panderm_tiny_lp.pth`, the features
(`forward_features`, the CLS token after the final norm) of this checkpoint equal the
`panderm_tiny_lp.pth` entries of `tests/fixtures/reference_outputs.json`, with the same tolerances.

The script checks its output after writing: it reloads the file with `weights_only=True`, applies
PanDerm's own key mapping (`k.replace("encoder.", "")`) and compares every encoder tensor with the
LP file bit for bit.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SOURCE = FIXTURES / "panderm_tiny_lp.pth"
TARGET = FIXTURES / "panderm_tiny_ll.pth"

REGRESSOR_DEPTH = 2
DECODER_VOCAB = 64  # tiny stand-in for CAE's 8192-entry visual-token vocabulary


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """CAE/MAE 2-D sin-cos position table for a grid x grid patch layout, CLS row zero: [1, 1+grid^2, dim]."""
    assert dim % 4 == 0
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    coords = torch.arange(grid, dtype=torch.float64)
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    table = torch.cat([encode(gy), encode(gx)], dim=1)  # [grid^2, dim]
    table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table], dim=0)
    return table.unsqueeze(0).to(torch.float32)


def main() -> None:
    torch.manual_seed(0)
    lp = torch.load(SOURCE, map_location="cpu", weights_only=True)
    dim = lp["cls_token"].shape[-1]
    num_tokens = lp["pos_embed"].shape[1]
    grid = math.isqrt(num_tokens - 1)
    assert grid * grid + 1 == num_tokens, num_tokens

    def randn(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape) * std

    out: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
    for key, value in lp.items():
        out[f"encoder.{key}"] = value.clone()

    out["rd_pos_embed"] = sincos_pos_embed(dim, grid)
    out["mask_token"] = randn(1, 1, dim)
    for i in range(REGRESSOR_DEPTH):
        prefix = f"regresser.regressor_blocks.{i}."
        out[prefix + "norm1_q.weight"] = 1.0 + randn(dim)
        out[prefix + "norm1_q.bias"] = randn(dim)
        out[prefix + "cross_attn.q.weight"] = randn(dim, dim)
        out[prefix + "cross_attn.q_bias"] = randn(dim)
        out[prefix + "mlp.fc1.weight"] = randn(4 * dim, dim)
        out[prefix + "mlp.fc1.bias"] = randn(4 * dim)
        out[prefix + "gamma_1_cross"] = torch.full((dim,), 0.1) + randn(dim, std=0.01)
    out["regresser.norm.weight"] = 1.0 + randn(dim)
    out["regresser.norm.bias"] = randn(dim)
    out["decoder.norm.weight"] = 1.0 + randn(dim)
    out["decoder.head.weight"] = randn(DECODER_VOCAB, dim)
    # Same suffixes as encoder keys, different values: see the module docstring.
    out["teacher.cls_token"] = randn(1, 1, dim, std=1.0)
    out["teacher.blocks.0.attn.qkv.weight"] = randn(3 * dim, dim, std=1.0)
    out["teacher.norm.weight"] = randn(dim, std=1.0)

    torch.save(out, TARGET)

    # Check: PanDerm's own loading path gives back exactly the LP encoder.
    back = torch.load(TARGET, map_location="cpu", weights_only=True)
    assert list(back) == list(out)
    mapped = {k.replace("encoder.", ""): v for k, v in back.items()}
    for key, value in lp.items():
        got = mapped[key]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        assert torch.equal(got.view(torch.int32), value.view(torch.int32)), key
    for key in ("cls_token", "blocks.0.attn.qkv.weight", "norm.weight"):
        assert not torch.equal(back[f"teacher.{key}"], lp[key]), key
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes, {len(out)} tensors, "
          f"{len(lp)} encoder + {len(out) - len(lp)} extras; torch {torch.__version__})")


if __name__ == "__main__":
    main()
