#!/usr/bin/env python3
"""Measure the transformer recipes (``models/vit_digits_2of4.yaml``, ``models/deit_tiny_block.yaml``)
through the Python flow, as ``t2c-sim run`` builds them: the numbers of docs/frontend.md.

Per recipe: the dense float model (trained or random) and, after 2:4 pruning and fine-tuning,
float / fake-quant / integer top-1 (labelled data) or the top-1 agreement of the integer model
with the float and the fake-quant models (per token for a block), the layer-local LSB table
summarized per op kind (max difference, largest share of outputs at 1 LSB, layers with any
difference), the record count per op, NumPy == PyTorch integer paths, the build time. Reported,
never asserted (shared machine).

    python scripts/measure_transformers.py [vit_digits_2of4] [deit_tiny_block]
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim.recipe import build, load_recipe  # noqa: E402
from t2c_sim.recipe.flow import _float_model  # noqa: E402
from t2c_sim.recipe.inputs import load_data  # noqa: E402
from t2c_sim.train import accuracy  # noqa: E402

RECIPES = ["vit_digits_2of4", "deit_tiny_block"]


def measure(name: str) -> None:
    r = load_recipe(ROOT / "models" / f"{name}.yaml")
    cache = ROOT / "build" / "cache"
    t0 = time.perf_counter()
    res = build(r, cache_dir=cache)
    t_build = time.perf_counter() - t0
    e = res.crosscheck["end_to_end"]
    print(f"## {name}: {len(res.records)} records "
          f"({', '.join(f'{k} {v}' for k, v in Counter(x.op.value for x in res.records).items())})")
    if "integer_acc" in e:
        split = load_data(r.data_source, r.seed, r.calibration.samples, r.path)
        dense = _float_model(r, split, r.seed, cache)
        print(f"top-1 (n={e['n']}): float dense {accuracy(dense, split.x_test, split.y_test):.2f} %, "
              f"float 2:4 {e['float_acc']:.2f} %, fake-quant {e['fake_quant_acc']:.2f} %, "
              f"integer {e['integer_acc']:.2f} %, integer vs fake-quant agreement "
              f"{e['top1_agreement']:.2f} %")
    else:
        print(f"top-1 agreement (n={e['n']}, per token): integer vs float "
              f"{e['float_agreement']:.2f} %, integer vs fake-quant {e['top1_agreement']:.2f} %")
    by: dict[str, list] = defaultdict(list)
    kinds = {x.name: x.op.value for x in res.records}
    for lay, s in res.crosscheck["layers"].items():
        by[kinds[lay]].append((lay, s))
    print("| op | layers | max LSB | largest share at 1 LSB | layers with a difference |")
    print("|---|---|---|---|---|")
    for op, rows in by.items():
        mx = max(s["max"] for _, s in rows)
        rate = max(s["nonzero_rate"] for _, s in rows)
        print(f"| {op} | {len(rows)} | {mx} | {100 * rate:.3f} % | "
              f"{sum(s['max'] > 0 for _, s in rows)} |")
    print(f"NumPy == PyTorch integer paths: {e['numpy_torch_identical']}; build {t_build:.1f} s\n")


def main(argv: list[str]) -> int:
    for name in argv or RECIPES:
        measure(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
