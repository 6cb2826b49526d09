#!/usr/bin/env python3
"""Measure the model zoo through the Python flow: one markdown row per recipe.

For each recipe in ``models/`` named on the command line (default: every zoo recipe): build it
exactly as ``t2c-sim run`` does (train or load the cached float weights, 2:4 prune, quantize,
calibrate, fuse, golden, cross-check), then time ``fuse`` and the golden model at batch 1 once
more on their own. Columns: parameters, MAC layers / all records, build time, fuse time, golden
time (batch 1), layer-local LSBs vs fake-quant (max over layers, largest share of outputs at 1
LSB, number of layers with a nonzero difference), end to end (float / fake-quant / integer top-1
accuracy for labelled data, else top-1 agreement of integer with float and with fake-quant),
NumPy == PyTorch integer paths, peak RSS. Numbers are reported, never asserted (shared machine).

    python scripts/measure_zoo.py lenet5_2of4 resnet50_imagenet_2of4
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim.fuse import fuse, quantize_input  # noqa: E402
from t2c_sim.golden import run_network  # noqa: E402
from t2c_sim.recipe import build, load_recipe  # noqa: E402

ZOO = ["lenet5_2of4", "qsparse_mnist_2of4", "inception_mini_2of4", "resnet18_cifar_2of4",
       "mobilenet_v2_imagenet_2of4", "resnet18_imagenet_2of4", "resnet50_imagenet_2of4",
       "vgg11_bn_imagenet_2of4"]


def row(name: str) -> str:
    r = load_recipe(ROOT / "models" / f"{name}.yaml")
    t0 = time.perf_counter()
    res = build(r, cache_dir=ROOT / "build" / "cache")
    t_build = time.perf_counter() - t0
    x1 = res.split.x_test[:1]
    t0 = time.perf_counter()
    recs = fuse(res.qmodel, x1, acc_bits=r.fuse.acc_bits, mult_bits=r.fuse.mult_bits,
                shift_max=r.fuse.shift_max, mode=r.fuse.mode, wrap_ok=r.fuse.wrap_ok)
    t_fuse = time.perf_counter() - t0
    xq = quantize_input(res.qmodel, x1)
    run_network(recs, xq)                        # warm up (the compiled kernel loads once)
    t0 = time.perf_counter()
    run_network(recs, xq)
    t_gold = time.perf_counter() - t0
    params = sum(p.numel() for p in res.float_model.parameters())
    macs = sum(x.op.value in ("conv2d", "linear") for x in recs)
    lay = res.crosscheck["layers"]
    lmax = max(v["max"] for v in lay.values())
    rate = max(v["nonzero_rate"] for v in lay.values())
    n_nz = sum(v["max"] > 0 for v in lay.values())
    e = res.crosscheck["end_to_end"]
    if "integer_acc" in e:
        e2e = f"{e['float_acc']:.2f} / {e['fake_quant_acc']:.2f} / {e['integer_acc']:.2f} % (n={e['n']})"
    else:
        e2e = f"agree float {e['float_agreement']:.0f} %, fq {e['top1_agreement']:.0f} % (n={e['n']})"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return (f"| `{name}` | {params / 1e6:.2f}M | {macs} / {len(recs)} | {t_build:.1f} s | "
            f"{t_fuse:.2f} s | {t_gold:.2f} s | {lmax} LSB, {100 * rate:.3f} %, {n_nz}/{len(lay)} "
            f"| {e2e} | {e['numpy_torch_identical']} | {rss:.1f} GB |")


def main(argv: list[str]) -> int:
    names = argv or ZOO
    print("| recipe | params | MAC / records | build | fuse | golden (batch 1) | layer LSB (max, "
          "worst rate, layers != 0) | end to end | NumPy == torch | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        print(row(n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
