"""Execute one regression :class:`~t2c_sim.regress.suite.Job` (in a worker process).

:func:`run_job` never raises for a problem of the job itself: it returns a result dict with
``status`` = the run's verdict (``pass``, ``fail``, ``golden``) or ``error`` plus a one-line
``message``. It is a module-level function so process pools and Dask can pickle it.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

from t2c_sim.cosim.sim.tools import tool_options
from t2c_sim.errors import T2CError
from t2c_sim.regress.coverage import PARTS_DIR, finish_job
from t2c_sim.regress.dut import current_target
from t2c_sim.regress.onnx_job import PARITY_LEVELS
from t2c_sim.regress.pipeline import RunOptions, check_run, check_tools, evaluate
from t2c_sim.regress.results import RunResult
from t2c_sim.regress.sources import (
    records_from_dir,
    records_from_onnx,
    records_from_random,
    records_from_recipe,
)
from t2c_sim.regress.suite import Job
from t2c_sim.regress.units import run_testbench

log = logging.getLogger(__name__)


def run_job(job: Job, out_root: str, build_root: str = "build/sim",
            cache_dir: str = "build/cache", *, timeout_s: float | None = None,
            tool_path: str | None = None, verilator_root: str | None = None,
            jobs: int = 1, coverage: bool = False, funcov: bool = False) -> dict[str, Any]:
    """Build/generate the job's records, evaluate them, and return the result dict.

    ``timeout_s`` (the command line's ``--timeout``) overrides the suite's ``timeout_s``;
    ``tool_path`` and ``verilator_root`` choose the simulators as in ``t2c-sim run``; ``jobs``
    spreads the job's own layers over simulator processes (1 inside a pool worker: the suite's
    jobs are what runs in parallel there).
    ``coverage``: Verilator runs are coverage builds (each simulator process leaves its own
    file), merged into ``<job>/coverage.dat``; ``funcov``: the passing layers are sampled into
    functional coverage (:mod:`t2c_sim.regress.coverage`; both end up in ``run.coverage``).

    Returns:
        ``{"job_id", "info", "status", "message", "wall_s", "run"}`` where ``run`` is a
        :meth:`RunResult.to_dict` (``None`` if the job failed before evaluating anything).
    """
    t0 = time.perf_counter()
    jid = job.job_id
    out_dir = Path(out_root) / jid
    bp = f" backpressure={job.backpressure[0]},{job.backpressure[1]}" \
        if any(job.backpressure) else ""
    cmd = f"t2c-sim regress (job {jid}: {job.name} dut={job.dut_name} " \
          f"hw[{job.info()['hw_tag']}] sim={job.sim or 'none'} seed={job.seed}{bp})"
    result: dict[str, Any] = {"job_id": jid, "info": job.info(), "status": "error",
                              "message": "", "wall_s": 0.0, "run": None}
    parts = out_dir / PARTS_DIR
    try:
        opts = RunOptions(sims=(job.sim,) if job.sim else (),
                          timeout_s=timeout_s if timeout_s is not None else job.timeout_s,
                          build_root=build_root, tool_path=tool_path,
                          verilator_root=verilator_root, seed=job.seed, command=cmd,
                          dut=job.dut, dut_params=tuple(sorted(job.dut_params.items())),
                          backpressure=job.backpressure, jobs=jobs,
                          coverage_dir=str(parts) if coverage else None)
        check_tools(opts)
        hw, records = None, []
        if job.kind == "testbench":
            with tool_options(tool_path, verilator_root):
                run = run_testbench(current_target(), job.params["testbench"],
                                    job.params["params"], job.params.get("payload", {}),
                                    sim=job.sim or "icarus", seed=job.seed, title=job.name,
                                    build_root=build_root, timeout_s=opts.timeout_s,
                                    command=cmd,
                                    coverage_dat=parts / "tb-bench.dat" if coverage else None)
        else:
            if job.kind == "recipe":
                src = records_from_recipe(job.recipe, seed=job.seed, cache_dir=cache_dir)
                src.title = job.name
            elif job.kind == "records":
                src = records_from_dir(job.recipe)
                src.title = job.name
            elif job.kind == "onnx":
                src = records_from_onnx(job.onnx, rounding=job.params["profile"],
                                        nm=None if job.params["nm"] == "auto" else job.params["nm"],
                                        m=job.hw["m"], input_path=job.input, seed=job.seed,
                                        parity=PARITY_LEVELS if job.params["parity"] == "ort"
                                        else ())
                src.title = job.name
            else:
                src = records_from_random(job.kind, job.params, job.seed, job.name)
            hw = job.hw_config
            records = check_run(src.records, hw, opts)
            run = evaluate(records, hw, opts, out_dir=out_dir, title=src.title,
                           source=src.source, crosscheck=src.crosscheck, summary=src.summary,
                           checked=True)
            attach_parity(run, src.parity)
        if coverage or funcov:
            finish_job(run, records, hw, out_dir, code=coverage, funcov=funcov,
                       dut_name=job.dut_name)
        result["run"] = run.to_dict()
        if run.stop_error is not None:   # a simulator error ended the run
            result["message"] = run.stop_error
        else:
            result["status"] = run.verdict
            fails = [f"{lr.name}[{o.sim}]: {o.message}" for lr in run.layers for o in lr.sims
                     if o.verdict != "pass"]
            result["message"] = fails[0] if fails else ""
    except T2CError as e:
        result["message"] = str(e)
    except Exception as e:  # noqa: BLE001 - a crash of one job must not stop the suite
        log.debug("job %s crashed:\n%s", jid, traceback.format_exc())
        result["message"] = f"{type(e).__name__}: {e}"
    result["wall_s"] = time.perf_counter() - t0
    result["info"]["wall_s"] = result["wall_s"]
    return result


def attach_parity(run: RunResult, parity: dict[str, Any]) -> None:
    """Put an ONNX Runtime parity check (:func:`t2c_sim.verify.ort_parity.ort_parity`) into the
    run: per layer in ``layers[i].parity`` (a ``fail`` fails the layer), the rest in
    ``run.parity`` (a quantized input that differs fails the run)."""
    if not parity:
        return
    for lr in run.layers:
        lr.parity = parity.get("layers", {}).get(lr.name)
    run.parity = {k: v for k, v in parity.items() if k != "layers"}
