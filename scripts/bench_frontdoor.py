#!/usr/bin/env python3
"""Front door vs back door: wall time and cycles of the same layer, side by side in one run.

The layer is ``scripts/bench_cosim.py``'s (linear ``P = 3136``, ``K = 576``, ``C_out = 64``, 2:4,
on its 8x8 2:4 array; Icarus runs 256 of the rows). Per simulator, in interleaved pairs:

* back door: :func:`t2c_sim.cosim.run.run_layers` (``$readmemh`` into the scratchpads per run);
* front door: :func:`t2c_sim.cosim.axi_frontdoor.run_layers_frontdoor` (one command: three
  AXI4-Lite writes, descriptors and operands read by the DMA from the memory model, outputs and
  accumulators written back, interrupt), for each AXI setting of :data:`SETTINGS`.

Printed per run: host packing, simulator wall time, simulated cycles (the core's counter for
the back door; first register write to interrupt for the front door), cycles/s, and the ratios
front / back of wall time and of cycles. Both are checked bit-exact against the golden model,
and the front door's cycles against :mod:`t2c_sim.estimate.frontdoor`. Usage:
``python scripts/bench_frontdoor.py [--sim verilator|icarus|both] [--repeats N]``.
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
from t2c_sim.cosim.run import run_layers  # noqa: E402
from t2c_sim.estimate.frontdoor import AxiConfig, frontdoor_cycles  # noqa: E402
from t2c_sim.workloads.gen import random_linear_record  # noqa: E402

HW = HwConfig(rows=8, cols=8, n=2, m=4, a_bits=8, w_bits=8, act_depth=8 * 4096,
              w_depth=8 * 2048, out_depth=8192, ch_depth=256)
ROWS = {"verilator": 3136, "icarus": 256}
K, C_OUT = 576, 64
SETTINGS = {"64b x16, lat 4/4": AxiConfig(),
            "128b x16, lat 20/10": AxiConfig(data_w=128, rd_latency=20, wr_latency=10)}
BUILD_ROOT = ROOT / "build" / "bench"


def bench(sim: str, repeats: int) -> bool:
    rows = ROWS[sim]
    rec = random_linear_record(np.random.default_rng(2024), c_in=K, c_out=C_OUT, rows=rows,
                               n=2, m=4, name=f"ref{rows}x{K}x{C_OUT}")
    plan = estimate.tile_plan(rec, HW)
    core = estimate.cycles(rec, HW)
    print(f"[{sim}] layer {rows}x{K}x{C_OUT} 2:4 on {HW.rows}x{HW.cols}: {len(plan.tiles)} tiles, "
          f"{plan.runs} runs, core {core} cycles")
    for name, axi in SETTINGS.items():
        fd = frontdoor_cycles(rec, HW, axi)
        print(f"[{sim}] model {name}: front door {fd.total} cycles = {fd.total / core:.3f} x core "
              f"({fd.beats_read} beats read, {fd.beats_written} written)")
    ok = True
    t0 = time.monotonic()
    run_layers([rec], HW, sim, build_root=BUILD_ROOT, optimize=True, tiles=[[0]])
    for axi in SETTINGS.values():
        run_layers_frontdoor([rec], HW, sim, axi, build_root=BUILD_ROOT, optimize=True)
    print(f"[{sim}] builds and warm-up: {time.monotonic() - t0:.1f} s")
    walls: dict[str, list[float]] = {"back": [], **{n: [] for n in SETTINGS}}
    for rep in range(repeats):
        b = run_layers([rec], HW, sim, build_root=BUILD_ROOT, optimize=True)[0]
        exact = np.array_equal(b.y, rec.y) and b.cycles == core
        walls["back"].append(b.wall_s)
        print(f"[{sim}] run {rep} back door: packing {b.prep_s:.2f} s, simulator {b.wall_s:.2f} s, "
              f"{b.cycles} cycles, {b.cycles / b.wall_s / 1e3:.0f} k cycles/s; exact: {exact}")
        ok &= exact
        for name, axi in SETTINGS.items():
            f = run_layers_frontdoor([rec], HW, sim, axi, build_root=BUILD_ROOT,
                                     optimize=True)[0]
            fexact = (np.array_equal(f.y, rec.y) and np.array_equal(f.y, b.y)
                      and f.frontdoor == f.predicted)
            walls[name].append(f.wall_s)
            print(f"[{sim}] run {rep} front door {name}: packing {f.prep_s:.2f} s, simulator "
                  f"{f.wall_s:.2f} s, {f.frontdoor} cycles ({f.frontdoor / f.wall_s / 1e3:.0f} k "
                  f"cycles/s); front/back wall {f.wall_s / b.wall_s:.2f}, cycles "
                  f"{f.frontdoor / b.cycles:.3f}; exact and cycles == model: {fexact}")
            ok &= fexact
    med = {k: float(np.median(v)) for k, v in walls.items()}
    print(f"[{sim}] medians of {repeats}: back door {med['back']:.2f} s; " + "; ".join(
        f"front door {n} {med[n]:.2f} s ({med[n] / med['back']:.2f}x)" for n in SETTINGS))
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus", "both"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sims = ("verilator", "icarus") if args.sim == "both" else (args.sim,)
    ok = all([bench(s, args.repeats) for s in sims])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
