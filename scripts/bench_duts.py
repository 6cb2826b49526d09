#!/usr/bin/env python3
"""DUTs through the contract: our accelerator's front door vs its back door, and the second
accelerator's speed, side by side in one run (what ``t2c-sim run --dut`` gives a user).

* Our accelerator on ``scripts/bench_cosim.py``'s layer (linear ``P = 3136``, ``K = 576``,
  ``C_out = 64``, 2:4, on its 8x8 2:4 array; Icarus runs 256 of the rows), per simulator in
  interleaved pairs: the back door (``--dut t2c_accel``: scratchpads loaded with ``$readmemh``
  per run) and the front door (``--dut t2c_axi_accel``: the axi profile plays IRQ_EN,
  DESC_ADDR, DESC_COUNT, START over AXI4-Lite, the DMA reads descriptors and operands from the
  memory model and writes outputs and accumulators back, the interrupt), for each AXI setting
  of :data:`SETTINGS`. Printed: host packing, simulator wall time, simulated cycles (the core's
  counters for the back door; first register write to interrupt for the front door), cycles/s,
  and the ratios front / back of wall time and of cycles.
* The weight-stationary systolic array of ``examples/systolic_ws`` (its own ``dut.yaml``, the
  stream profile) on its bench layer (a 3x3 conv, 14x14x32 -> 32, on an 8x8 array): cycles/s.

Every run is checked bit-exact against the golden model and its cycles against the DUT's model
(the framework's own check; a mismatch makes the section fail). No timed assertion.
Usage: ``python scripts/bench_duts.py [--sim verilator|icarus|both] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim import estimate  # noqa: E402
from t2c_sim.config import HwConfig  # noqa: E402
from t2c_sim.cosim.axi_frontdoor import run_layers_frontdoor  # noqa: E402
from t2c_sim.cosim.compare import compare, cycle_mismatch  # noqa: E402
from t2c_sim.cosim.dut import load_dut  # noqa: E402
from t2c_sim.cosim.engine import cosimulate  # noqa: E402
from t2c_sim.cosim.run import run_layers  # noqa: E402
from t2c_sim.estimate.frontdoor import AxiConfig, frontdoor_cycles  # noqa: E402
from t2c_sim.workloads.gen import random_conv_record, random_linear_record  # noqa: E402

HW = HwConfig(rows=8, cols=8, n=2, m=4, a_bits=8, w_bits=8, act_depth=8 * 4096,
              w_depth=8 * 2048, out_depth=8192, ch_depth=256)
ROWS = {"verilator": 3136, "icarus": 256}
K, C_OUT = 576, 64
SETTINGS = {"64b x16, lat 4/4": AxiConfig(),
            "128b x16, lat 20/10": AxiConfig(data_w=128, rd_latency=20, wr_latency=10)}
BUILD_ROOT = ROOT / "build" / "bench"
SWS = ROOT / "examples" / "systolic_ws" / "dut.yaml"
SWS_PARAMS = {"ROWS": 8, "COLS": 8, "LANES": 8, "ACC_DEPTH": 64}


def _exact(rec, r) -> bool:
    return compare(rec, rec.y, r.y) is None and cycle_mismatch(r) is None


def bench_ours(sim: str, repeats: int) -> bool:
    rows = ROWS[sim]
    rec = random_linear_record(np.random.default_rng(2024), c_in=K, c_out=C_OUT, rows=rows,
                               n=2, m=4, name=f"ref{rows}x{K}x{C_OUT}")
    plan = estimate.tile_plan(rec, HW)
    core = estimate.cycles(rec, HW)
    print(f"[{sim}] layer {rows}x{K}x{C_OUT} 2:4 on {HW.rows}x{HW.cols}: {len(plan.tiles)} tiles, "
          f"{plan.runs} runs, core {core:,} cycles")
    for name, axi in SETTINGS.items():
        fd = frontdoor_cycles(rec, HW, axi)
        print(f"[{sim}] model {name}: front door {fd.total:,} cycles = {fd.total / core:.3f} x "
              f"core ({fd.beats_read:,} beats read, {fd.beats_written:,} written)")
    t0 = time.monotonic()
    run_layers([rec], HW, sim, build_root=BUILD_ROOT, optimize=True, tiles=[[0]])
    for axi in SETTINGS.values():  # builds and warm-up outside the timing
        run_layers_frontdoor([rec], HW, sim, axi, build_root=BUILD_ROOT, optimize=True)
    print(f"[{sim}] builds and warm-up: {time.monotonic() - t0:.1f} s")
    ok = True
    walls: dict[str, list[float]] = {"back": [], **{n: [] for n in SETTINGS}}
    for rep in range(repeats):
        b = run_layers([rec], HW, sim, build_root=BUILD_ROOT, optimize=True)[0]
        ok &= _exact(rec, b) and b.cycles == core
        walls["back"].append(b.wall_s)
        print(f"[{sim}] run {rep} back door: packing {b.prep_s:.2f} s, simulator {b.wall_s:.2f} s, "
              f"{b.cycles:,} cycles, {b.cycles / b.wall_s / 1e3:.1f} k cycles/s; exact: "
              f"{_exact(rec, b)}")
        for name, axi in SETTINGS.items():
            f = run_layers_frontdoor([rec], HW, sim, axi, build_root=BUILD_ROOT, optimize=True)[0]
            fexact = _exact(rec, f) and np.array_equal(f.y, b.y) and np.array_equal(f.acc, b.acc) \
                and f.cycles == frontdoor_cycles(rec, HW, axi).total
            ok &= fexact
            walls[name].append(f.wall_s)
            print(f"[{sim}] run {rep} front door {name}: packing {f.prep_s:.2f} s, simulator "
                  f"{f.wall_s:.2f} s, {f.cycles:,} cycles, {f.cycles / f.wall_s / 1e3:.1f} k "
                  f"cycles/s; front/back wall {f.wall_s / b.wall_s:.2f}, cycles "
                  f"{f.cycles / b.cycles:.3f}; exact, = back door, cycles = model: {fexact}")
    med = {k: float(np.median(v)) for k, v in walls.items()}
    print(f"[{sim}] medians of {repeats}: back door {med['back']:.2f} s; " + "; ".join(
        f"front door {n} {med[n]:.2f} s ({med[n] / med['back']:.2f}x)" for n in SETTINGS))
    return ok


def bench_sws(sim: str, repeats: int) -> bool:
    rec = random_conv_record(np.random.default_rng(2024), c_in=32, c_out=32, h=14, w=14,
                             name="conv3x3")
    dut = load_dut(SWS).bind(overrides=SWS_PARAMS)
    cosimulate(dut, [rec], sim, build_root=BUILD_ROOT, optimize=True)  # build, warm-up
    ok, rates = True, []
    for rep in range(repeats):
        r = cosimulate(dut, [rec], sim, build_root=BUILD_ROOT, optimize=True)[0]
        ok &= _exact(rec, r) and r.cycles == r.cycles_predicted
        rates.append(r.cycles / r.wall_s)
        print(f"[{sim}] run {rep} {dut.name} (stream profile, 8x8, LANES 8): simulator "
              f"{r.wall_s:.2f} s, {r.cycles:,} cycles (model {r.cycles_predicted:,}), "
              f"{rates[-1] / 1e3:.1f} k cycles/s; exact: {_exact(rec, r)}")
    print(f"[{sim}] {dut.name}: median {float(np.median(rates)) / 1e3:.1f} k cycles/s")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="both", choices=("verilator", "icarus", "both"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv or [])
    logging.basicConfig(level=logging.WARNING)
    sims = ("verilator", "icarus") if args.sim == "both" else (args.sim,)
    ok = True
    for s in sims:
        ok &= bench_ours(s, args.repeats)
        ok &= bench_sws(s, args.repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
