"""Simulation speed of sws_top: cycles/s on Icarus and Verilator (-O0 and -O2), cocotb vs raw HDL.

One mid-size layer (a 3x3 conv, 14x14x32 -> 32, pad 1: a GEMM of P = 196 rows, K = 288,
C_out = 32) on an 8 x 8 array (LANES = 8, ACC_DEPTH = 64), without back-pressure, driven two ways:

* cocotb: the unit-test testbench (``tests/sws_tb.py``: cocotbext-axi AxiStreamSource/Sink and a
  per-cycle monitor, i.e. Python on every cycle), through ``t2c_sim.cosim.sim``;
* raw: the Python-free harness ``tests/hdl/sws_stream_tb.v`` (frame loaded with ``$readmemh``).

Every run must be bit-exact against the golden model and take exactly the modelled cycles.
Wall time is the simulator process only (start-up included, build excluded).
Usage: ``python examples/systolic_ws/bench_sws.py [--rows P] [--sims icarus,verilator]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tests"))
import sws_cases as sc  # noqa: E402

from t2c_sim.cosim import sim  # noqa: E402

PARAMS = {"ROWS": 8, "COLS": 8, "LANES": 8, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
          "MULT_BITS": 32, "Y_BITS": 8, "ACC_DEPTH": 64}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", type=int, default=14, help="conv input height = width (default 14)")
    ap.add_argument("--sims", default="icarus,verilator")
    args = ap.parse_args(argv)
    rec = sc.random_conv_record(np.random.default_rng(2024), c_in=32, c_out=32, h=args.hw,
                                w=args.hw, name="conv3x3")
    case = sc.cases_of(rec)[0]
    model = sc.model_cycles(case.shape, PARAMS)
    print(f"layer P={case.shape['rows']} K={case.shape['K']} C_out={case.shape['C_out']} on "
          f"{PARAMS['ROWS']}x{PARAMS['COLS']}: {model} cycles (model)")
    root = sim.default_build_root()
    rows = []
    for simulator in args.sims.split(","):
        opts = ["-O0", "-O2"] if simulator == "verilator" else ["-"]
        for opt in opts:
            b = ("-CFLAGS", "-O2") if opt == "-O2" else ()
            sc.run_cases(simulator, PARAMS, sc.fast_cases(np.random.default_rng(1))[:1],
                         build_args=b)  # build (and warm up) outside the timing
            t0 = time.monotonic()
            res = sc.run_cases(simulator, PARAMS, [case], build_args=b)[0]
            wall = time.monotonic() - t0
            assert res["measured"] == model, res
            rows.append((simulator, opt, "cocotb", res["measured"], wall))
            cmd = sc.raw_build(simulator, PARAMS, root, opt="-O2" if opt == "-" else opt)
            with tempfile.TemporaryDirectory() as d:
                r = sc.raw_run(cmd, case, PARAMS, Path(d), simulator=simulator)
            if not np.array_equal(r["y"], case.y) or r["cycles"] != model:
                print(f"raw {simulator} {opt}: WRONG (cycles {r['cycles']})")
                return 1
            rows.append((simulator, opt, "raw", r["cycles"], r["wall_s"]))
    print(f"{'simulator':<10} {'C++ opt':<8} {'driver':<7} {'cycles':>8} {'wall s':>8} {'cycles/s':>10}")
    for s, o, drv, cyc, wall in rows:
        print(f"{s:<10} {o:<8} {drv:<7} {cyc:>8} {wall:>8.2f} {cyc / wall:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
