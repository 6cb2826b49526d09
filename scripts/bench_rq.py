#!/usr/bin/env python3
"""What the requantizer features cost in simulation speed, and what attention costs in cycles.

The features of ``t2c_accel_top`` (``HwConfig.profiles``, ``row_params``, ``zero_points``:
rounding profiles in the requantizers, the per-row parameter memory, operand zero points in
the PE array; docs/rtl.md "Run mode and build features") are build parameters. This script
runs, per simulator, in one process each and interleaved ``REPEATS`` times:

* ``plain``: a section-2 linear layer (``P x K x C`` below, 2:4) on a build WITHOUT the features;
* ``featured``: the same record on the default build (every feature), and the same layer as a
  token-wise ``tflite_double`` record (per-row parameters, a profile);
* ``Q @ K^T``: one head of a DeiT-tiny block (197 tokens, ``d_head`` 64) as an activation x
  activation matmul with both zero points, dense on the 2:4 array.

Each run is checked bit-exact against the golden model and cycle-exact against the model, then
wall time (median) and simulated cycles/s are printed side by side with the ratio featured /
plain. Build times are reported separately (a reused build reports 0).

    python scripts/bench_rq.py [--sims icarus,verilator] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim import estimate  # noqa: E402
from t2c_sim.config import HwConfig  # noqa: E402
from t2c_sim.cosim.run import build_accel, run_layers  # noqa: E402
from t2c_sim.workloads.gen import random_linear_record, random_matmul_record, with_profile  # noqa: E402

HW = HwConfig()                                           # 4x4 2:4, every feature
HW_PLAIN = HwConfig(profiles=0, row_params=0, zero_points=0)
SIZES = {"icarus": (256, 576, 64), "verilator": (1024, 576, 64)}   # P, K, C of the linear layer


def records(sim: str) -> dict:
    rng = np.random.default_rng(0)
    p, k, c = SIZES[sim]
    lin = random_linear_record(rng, name="lin", c_in=k, c_out=c, rows=p, n=2, m=4)
    tw = random_linear_record(rng, name="lin_tw", c_in=k, c_out=c, rows=p, n=2, m=4,
                              token_wise=True)
    tw = with_profile(rng, tw, "tflite_double")
    qk = random_matmul_record(rng, name="qk", p=197, k=64, c=197, trans_b=True, params="row")
    return {"plain": (lin, HW_PLAIN), "featured": (lin, HW), "token-wise tflite_double": (tw, HW),
            "Q @ K^T (197x64x197)": (qk, HW)}


def run_once(rec, hw: HwConfig, sim: str) -> float:
    (res,) = run_layers([rec], hw, sim, build_root=ROOT / "build" / "sim")
    assert np.array_equal(res.y, rec.y) and np.array_equal(res.acc, rec.acc), rec.name
    assert res.cycles == estimate.cycles(rec, hw), rec.name
    return res.wall_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", default="icarus,verilator")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    for sim in args.sims.split(","):
        cases = records(sim)
        for hw in (HW_PLAIN, HW):
            t0 = time.monotonic()
            info = build_accel(hw, sim, ROOT / "build" / "sim")
            print(f"{sim}: build {'with' if hw.profiles else 'without'} the features: "
                  f"{0.0 if info.reused else time.monotonic() - t0:.1f} s")
        walls: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, (rec, hw) in cases.items():
                walls[name].append(run_once(rec, hw, sim))
        base = statistics.median(walls["plain"])
        print(f"{'case':28s} {'cycles':>10s} {'wall (median)':>14s} {'cycles/s':>11s} "
              f"{'vs plain':>9s}")
        for name, (rec, hw) in cases.items():
            cyc = estimate.cycles(rec, hw)
            w = statistics.median(walls[name])
            print(f"{name:28s} {cyc:10,d} {w:12.2f} s {cyc / w:11,.0f} {w / base:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
