#!/usr/bin/env python3
"""Golden model on a DeiT-tiny encoder block vs PyTorch float32, side by side in one run.

The block is ``models/deit_tiny_block.yaml``'s (t2c_sim/models/vit.py: embedding 192, 3 heads,
MLP 768, 197 tokens, PyTorch's default random weights) quantized as that recipe does (8-bit,
token-wise linear inputs, 2:4 on the linears), calibrated on synthetic tokens and fused on the
one input timed (token-wise records are specific to their input). Contestants, batch 1:

- ``golden``: ``run_network(records, x_q)``, the whole integer block exactly as ``t2c-sim run``
  and the Python API call it (every record: 4 linears, 2 matmuls, softmax, 2 LayerNorms, GELU,
  2 residual adds, the head split and merge);
- ``torch int``: the independent PyTorch integer path, ``run_network_torch`` (int64 tensors);
- ``torch fp32``: the float block's forward in float32 (``torch.no_grad``), same thread count.

Timing: warmup, then ``ROUNDS`` rounds of one call per contestant in turn (the same machine
load for all), median per contestant; ``ratio = torch fp32 time / golden time`` is the golden
model's speed relative to float32 PyTorch. Reported, never asserted (the machine is shared).
The golden time per op kind (one ``run_layer`` per record) shows where it goes. Returns 0 iff
golden and the PyTorch integer path give the same integers on every record.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2c_sim.fuse import fuse, quantize_input  # noqa: E402
from t2c_sim.golden import attach_results, run_layer, run_network  # noqa: E402
from t2c_sim.models.vit import deit_tiny_block  # noqa: E402
from t2c_sim.quant.calibrate import calibrate  # noqa: E402
from t2c_sim.quant.quantize import quantize_model  # noqa: E402
from t2c_sim.train import apply_masks, nm_masks  # noqa: E402
from t2c_sim.verify.torch_int import run_network_torch  # noqa: E402

ROUNDS = 7
SPEC = {"weight": {"quantizer": "minmax_channel", "nbit": 8},
        "act": {"quantizer": "minmax", "nbit": 8}, "output": {"quantizer": "minmax", "nbit": 8},
        "types": {"linear": {"act": {"quantizer": "minmax_token", "nbit": 8}}}}


def medians(fns: list, rounds: int = ROUNDS) -> list[float]:
    """Median seconds of each callable over ``rounds`` alternating calls (after one warmup)."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(rounds + 1):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            if r:
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> int:
    torch.manual_seed(0)
    model = deit_tiny_block().eval()
    x = torch.randn(5, 197, 192, generator=torch.Generator().manual_seed(0))
    masks = nm_masks(model, 2, 4, x[:1])
    apply_masks(model, masks, 2, 4)
    q = quantize_model(model, SPEC)
    apply_masks(q, masks, 2, 4)
    calibrate(q, x[:4])
    xt = x[4:5]
    records = fuse(q, xt)
    xq = quantize_input(q, xt)
    records = attach_results(records, run_network(records, xq))
    ti = run_network_torch(records, xq)
    bad = [r.name for r in records if not np.array_equal(ti[r.name][1].numpy(), r.y)]
    with torch.no_grad():
        t_g, t_i, t_f = medians([lambda: run_network(records, xq),
                                 lambda: run_network_torch(records, xq),
                                 lambda: model(xt)])
    print(f"DeiT-tiny block, 197 tokens x 192, 3 heads, MLP 768, batch 1, {len(records)} records, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'contestant':<12} {'median ms':>10} {'torch fp32 / it':>16}")
    for name, t in (("golden", t_g), ("torch int", t_i), ("torch fp32", t_f)):
        print(f"{name:<12} {1e3 * t:>10.2f} {t_f / t:>15.3f}x")
    per: dict[str, float] = defaultdict(float)
    for rec in records:
        ins = (rec.x_q,) if rec.b_q is None else (rec.x_q, rec.b_q)
        t0 = time.perf_counter()
        run_layer(rec, *ins)
        per[rec.op.value] += time.perf_counter() - t0
    total = sum(per.values())
    print("golden time by op: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                                            sorted(per.items(), key=lambda kv: -kv[1])))
    print(f"golden == PyTorch integer path on every record: {not bad}"
          + (f" (differ: {', '.join(bad)})" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
