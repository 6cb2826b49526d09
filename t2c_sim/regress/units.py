"""Unit testbenches as regression jobs (``testbench:`` entries of a suite).

A suite entry ``testbench: requant`` runs one of the target's benches
(:class:`t2c_sim.closure.target.Bench`: a cocotb module against one toplevel, or layers
through the AXI front door, :mod:`t2c_sim.closure.benches`) with one
toplevel parameter set and the job's seed, on the job's simulator. Its result is a
:class:`~t2c_sim.regress.results.RunResult` with one "layer" (op ``testbench``), so reports,
JUnit and resumption treat it like any job. With code coverage (``--coverage``) a Verilator
run is a coverage build and leaves its ``coverage.dat`` for the job's merge: the top's port
testbench, the reset test and the unit benches reach what layer co-simulation through the
harness cannot (the host ports, the start-time error flags, a unit's parameter corners).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from t2c_sim.closure.benches import run_bench
from t2c_sim.closure.codecov import COVERAGE_ARGS
from t2c_sim.closure.target import Target
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.regress.outcome import take_coverage
from t2c_sim.regress.results import ERROR, FAIL, PASS, LayerResult, RunResult, SimOutcome

__all__ = ["run_testbench", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 600.0


def run_testbench(target: Target, bench_name: str, params: dict[str, int],
                  payload: dict[str, Any], *, sim: str, seed: int, title: str,
                  build_root: str, timeout_s: float | None, command: str = "",
                  coverage_dat: Path | None = None) -> RunResult:
    """Build and run one bench with ``params``; ``pass``/``fail``/``error`` as one layer.

    ``coverage_dat``: on Verilator, build with coverage and move the run's ``coverage.dat``
    there (a passing run only).
    """
    bench = target.bench(bench_name)
    cov = coverage_dat is not None and sim == "verilator"
    t0 = time.perf_counter()
    shape = " ".join(f"{k}={v}" for k, v in params.items())
    run = RunResult(title=title, source=f"testbench {bench.tb.name} on {bench.top}",
                    hw=dict(params), sims=[sim], seed=seed, command=command)
    lr = LayerResult(name=bench.name, op="testbench", shape=shape)
    run.layers.append(lr)
    try:
        run_dir = run_bench(target, bench, params, {**payload, "seed": seed}, sim=sim,
                            build_root=build_root, timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
                            build_args=COVERAGE_ARGS if cov else ())
        out = SimOutcome(sim, PASS)
        if cov:
            take_coverage(run_dir, coverage_dat)
    except MismatchError as e:
        out = SimOutcome(sim, FAIL, message=str(e))
    except SimulationError as e:
        out = SimOutcome(sim, ERROR, message=str(e))
    out.wall_s = time.perf_counter() - t0
    lr.sims.append(out)
    run.wall_s = out.wall_s
    return run
