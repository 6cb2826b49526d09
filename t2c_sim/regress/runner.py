"""The resumable regression runner.

Each finished job's result is written atomically to ``<out>/jobs/<job_id>.json`` the moment
it arrives, so a crash or Ctrl-C loses nothing finished. A rerun loads the stored results and
skips every job already finished with a verdict (``pass``, ``fail``, ``golden``); jobs that ended
in ``error`` (infrastructure trouble) are retried. ``force=True`` reruns everything.

While it runs, the runner holds an exclusive lock on ``<out>`` and ``<out>/jobs`` (a second
runner, or a ``t2c-sim run``, on the same folder is refused) and first removes temp files a
killed run left there.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from t2c_sim.errors import T2CError
from t2c_sim.files import atomic_write_json, folder_lock, remove_stale_temps
from t2c_sim.readers import read_json
from t2c_sim.regress.jobs import run_job
from t2c_sim.regress.progress import Progress
from t2c_sim.regress.report.write import write_suite_reports
from t2c_sim.regress.results import ERROR, RunResult
from t2c_sim.regress.suite import Suite

log = logging.getLogger(__name__)

FINISHED = ("pass", "fail", "golden")


class ResultStore:
    """One JSON file per job, keyed by job id, in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def get(self, job_id: str) -> dict[str, Any] | None:
        p = self.path(job_id)
        if not p.is_file():
            return None
        try:
            d = read_json(p, "stored job result")
        except T2CError as e:
            log.warning("%s; the job will run again", e)
            return None
        return d if isinstance(d, dict) and d.get("job_id") == job_id else None

    def finished(self, job_id: str) -> bool:
        d = self.get(job_id)
        return d is not None and d.get("status") in FINISHED

    def put(self, job_id: str, result: dict[str, Any]) -> Path:
        return atomic_write_json(self.path(job_id), result)


@dataclass
class SuiteOutcome:
    """What a regression run did: counts and the stored result of every job of the suite."""

    suite: Suite
    out_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    coverage: dict[str, Any] | None = None

    def status_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results.values():
            out[r.get("status", ERROR)] = out.get(r.get("status", ERROR), 0) + 1
        return out

    @property
    def verdict(self) -> str:
        c = self.status_counts()
        if len(self.results) < len(self.suite.jobs):
            return ERROR
        for v in ("fail", ERROR, "pass"):
            if c.get(v):
                return v
        return "golden"

    def rows(self) -> list[tuple[str, RunResult | None, dict[str, Any]]]:
        """``(job_id, run, info)`` per suite job, in suite order, for the reports."""
        out = []
        for job in self.suite.jobs:
            r = self.results.get(job.job_id)
            info = dict(job.info())
            if r is None:
                info.update(status="not run", message="not run")
                out.append((job.job_id, None, info))
                continue
            info.update(status=r.get("status", ERROR), message=r.get("message", ""),
                        wall_s=r.get("wall_s", 0.0))
            run = RunResult.from_dict(r["run"]) if r.get("run") else None
            out.append((job.job_id, run, info))
        return out


def run_suite(suite: Suite, out_dir: str | Path, executor: Any, *,
              run_fn: Callable[..., dict[str, Any]] = run_job, build_root: str = "build/sim",
              cache_dir: str = "build/cache", force: bool = False,
              progress: bool = False, on_result: Callable[[dict[str, Any]], None] | None = None,
              sim_options: dict[str, Any] | None = None,
              finish: Callable[[SuiteOutcome], dict[str, Any]] | None = None) -> SuiteOutcome:
    """Run the suite's unfinished jobs on ``executor``; store each result as it ends.

    Args:
        suite: the loaded suite.
        out_dir: results folder (``jobs/<id>.json``, per-job bundles, reports).
        executor: a :class:`LocalExecutor` or :class:`DaskExecutor`.
        run_fn: the job function ``run_fn(job, out_root, build_root, cache_dir) -> dict``.
        force: rerun jobs that already have a stored result.
        progress: draw a progress bar on stderr.
        on_result: called with each new result (after it is stored).
        sim_options: extra keyword arguments of ``run_fn`` (``timeout_s``, ``tool_path``,
            ``verilator_root``, ``coverage``, ``funcov`` of :func:`run_job`); ``None`` values
            are left out.
        finish: called with the outcome once every job ran (not after an interrupt), before
            the reports are written; its dict is the regression's ``coverage`` section
            (:func:`t2c_sim.regress.coverage.suite_coverage`).

    KeyboardInterrupt propagates after the finished results (including those the executor
    had already completed but not yet handed over) are on disk and the reports are written.

    Raises:
        ConfigError: another runner is using ``out_dir``.
    """
    out = Path(out_dir)
    with folder_lock(out), folder_lock(out / "jobs"):
        remove_stale_temps(out)
        remove_stale_temps(out / "jobs")
        return _run_locked(suite, out, executor, run_fn=run_fn, build_root=build_root,
                           cache_dir=cache_dir, force=force, progress=progress,
                           on_result=on_result, finish=finish,
                           extra={k: v for k, v in (sim_options or {}).items() if v is not None})


def _run_locked(suite: Suite, out: Path, executor: Any, *, run_fn: Callable[..., dict[str, Any]],
                build_root: str, cache_dir: str, force: bool, progress: bool,
                on_result: Callable[[dict[str, Any]], None] | None,
                extra: dict[str, Any],
                finish: Callable[[SuiteOutcome], dict[str, Any]] | None = None) -> SuiteOutcome:
    store = ResultStore(out / "jobs")
    oc = SuiteOutcome(suite=suite, out_dir=out)
    todo = []
    for job in suite.jobs:
        if not force and store.finished(job.job_id):
            oc.skipped.append(job.job_id)
        else:
            todo.append(job)
    log.info("suite %s: %d jobs, %d already finished, %d to run", suite.name, len(suite.jobs),
             len(oc.skipped), len(todo))
    bar = Progress(len(todo), enabled=progress, prefix=f"{suite.name} ")
    fn = partial(run_fn, out_root=str(out / "jobs"), build_root=os.fspath(build_root),
                 cache_dir=os.fspath(cache_dir), **extra)
    complete = False
    try:
        with contextlib.closing(executor.map_unordered(fn, todo)) as results:
            for job, res in results:
                if isinstance(res, BaseException):
                    res = {"job_id": job.job_id, "info": job.info(), "status": ERROR,
                           "message": f"executor: {type(res).__name__}: {res}", "wall_s": 0.0,
                           "run": None}
                store.put(job.job_id, res)
                oc.ran.append(job.job_id)
                bar.advance(f"{job.name} {res.get('status', '?')}")
                if on_result:
                    on_result(res)
        complete = True
    finally:
        bar.close()
        for job in suite.jobs:
            r = store.get(job.job_id)
            if r is not None:
                oc.results[job.job_id] = r
        if complete and finish is not None:
            oc.coverage = finish(oc)
        oc.reports = write_suite_reports(suite.name, oc.rows(), out, coverage=oc.coverage)
    return oc
