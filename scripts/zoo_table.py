#!/usr/bin/env python3
"""The zoo table of ``docs/frontend.md`` ("The zoo, measured"), measured, as Markdown.

Runs every zoo recipe through ``t2c-sim run`` (the user's path: defaults, the default array,
``-j`` the cores) on one simulator and prints one row per recipe from its ``results.json``:
MAC layers and MACs, the end-to-end figures (trained recipes: float / fake-quant / integer top-1
on the held-out data; untrained ImageNet recipes: the integer model's top-1 agreement with the
float and the fake-quant model on random inputs), the worst layer LSB against the fake-quant
model, how many MAC layers were bit-exact on the RTL, whether every measured cycle count equals
the model, and the wall time.

Usage: ``python scripts/zoo_table.py [--sim verilator|none] [--out build/zoo] [RECIPE ...]``
(``make zoo-table``). Nothing is asserted: a failing layer shows in its row.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim.cli import main as cli_main  # noqa: E402

ZOO = ["lenet5_2of4", "qsparse_mnist_2of4", "inception_mini_2of4", "digits_cnn_w8a8_2of4",
       "vit_digits_2of4", "deit_tiny_block", "resnet18_cifar_2of4", "resnet18_imagenet_2of4",
       "resnet50_imagenet_2of4", "mobilenet_v2_imagenet_2of4", "vgg11_bn_imagenet_2of4"]
GEMMS = ("conv2d", "linear", "matmul")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def row(name: str, res: dict, wall: float, rc: int) -> str:
    s = res.get("summary", {})
    macs = [ly for ly in res["layers"] if ly["op"] in GEMMS]
    if s.get("float_acc") is not None:
        e2e = f"{_pct(s['float_acc'])} / {_pct(s['fake_quant_acc'])} / {_pct(s['integer_acc'])} %"
    else:
        e2e = (f"agree {_pct(s.get('float_agreement'))} (float), "
               f"{_pct(s.get('top1_agreement'))} % (fake-quant)")
    lsbs = [ly["lsb"] for ly in res["layers"] if ly.get("lsb")]
    worst = max((lb["max"] for lb in lsbs), default=0)
    rate = max((lb["nonzero_rate"] for lb in lsbs), default=0.0)
    sims = [o for ly in macs for o in ly["sims"]]
    exact = sum(1 for ly in macs if ly["sims"] and all(o["verdict"] == "pass" for o in ly["sims"]))
    cyc = [o.get("cycles_measured") == ly["cycles_est"] for ly in macs for o in ly["sims"]]
    cycles = sum(ly["cycles_est"] or 0 for ly in macs)
    rtl = f"{exact}/{len(macs)}" if sims else "not run"
    cyc_ok = ("yes" if all(cyc) else "NO") if cyc else "-"
    return (f"| `{name}` | {len(macs)} | {sum(ly['macs'] for ly in macs) / 1e6:,.1f} M | {e2e} | "
            f"{worst:g} / {rate * 100:.3f} % | {rtl} | {cycles:,} ({cyc_ok}) | {wall:.0f} s"
            f"{'' if rc == 0 else f' (exit {rc})'} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipes", nargs="*", default=ZOO)
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--out", default=str(ROOT / "build" / "zoo"))
    a = ap.parse_args(argv)
    print("| recipe | MAC layers | MACs | float / fake-quant / integer top-1 | worst layer LSB "
          "(max / rate) | bit-exact on the RTL | cycles (measured = model) | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.recipes:
        out = Path(a.out) / name
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            rc = cli_main(["run", str(ROOT / "models" / f"{name}.yaml"), "--sim", a.sim,
                           "--out", str(out), "--no-progress", "--cache-dir",
                           str(ROOT / "build" / "cache")])
        wall = time.perf_counter() - t0
        res_f = out / "results.json"
        if not res_f.is_file():
            print(f"| `{name}` | exit {rc}, no results | | | | | | |", flush=True)
            continue
        print(row(name, json.loads(res_f.read_text()), wall, rc), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
