"""``t2c-sim mutate``: a mutation campaign over the design's RTL, with its reports.

:func:`mutate` generates the mutants (:mod:`t2c_sim.closure.mutate`, on the files of
:func:`t2c_sim.regress.dut.current_target`), runs the chosen suite
(:func:`t2c_sim.closure.suites.named_suite`) against the original RTL (it must pass) and then
against each mutant, ``jobs`` at a time in worker processes (the regression runner's
:class:`~t2c_sim.regress.executors.LocalExecutor`: Ctrl-C and SIGTERM stop every worker and
simulator; each mutant's task reaches a worker as a small file,
:func:`~t2c_sim.regress.executors.map_via_files`), and writes ``<out>/mutation.json`` and
``<out>/report.html`` together (a stopped campaign writes what finished, marked ``partial``).
Mutant copies and their builds live under ``<build_root>/mutation/`` and are removed as each
mutant ends.

With ``rerun`` (``--rerun-survivors REPORT``) only the survivors of an earlier report run
again, with that report's suite, seed and simulator, against today's RTL, suite and waivers
(after a killing test or a waiver was added); every other result is kept. A survivor whose
source line changed since is found again by its file, operator, line text, original,
replacement and offset in the line; one that no longer exists is dropped and counted
(``meta.stale``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from t2c_sim.closure.mutate import Mutant, enumerate_mutants, load_waivers, select_mutants
from t2c_sim.closure.mutrun import (
    MutantResult,
    MutantTask,
    MutationReport,
    load_report,
    run_campaign,
    run_task,
)
from t2c_sim.closure.netlist import find_yosys
from t2c_sim.closure.suites import SUITES, named_suite
from t2c_sim.cosim.sim.tools import tool_options
from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.files import atomic_write_set, json_text, make_dirs, text_writer
from t2c_sim.regress.dut import current_target
from t2c_sim.regress.executors import LocalExecutor, map_via_files
from t2c_sim.regress.report.html import render_mutation_html

__all__ = ["MutateOptions", "mutate", "rerun_options", "write_mutation_reports", "MAX_MUTANTS", "MAX_JOBS"]

log = logging.getLogger(__name__)

MAX_MUTANTS = 10_000
MAX_JOBS = 256


@dataclass(frozen=True)
class MutateOptions:
    """What ``t2c-sim mutate`` was asked for (checked by :meth:`check`)."""

    suite: str = "smoke"
    max_mutants: int = 220
    seed: int = 1
    sim: str = "icarus"
    jobs: int = 1
    equivalence: bool = True
    timeout_s: float | None = None
    build_root: str = "build/sim"
    tool_path: str | None = None
    verilator_root: str | None = None
    rerun: str | None = None

    def check(self) -> None:
        """Bounds and names, before any work.

        Raises:
            ConfigError: Naming the option.
        """
        if self.suite not in SUITES:
            raise ConfigError(f"unknown suite {self.suite!r} (known: {', '.join(SUITES)})",
                              key="--suite")
        if not 1 <= self.max_mutants <= MAX_MUTANTS:
            raise ConfigError(f"must be in 1..{MAX_MUTANTS}, got {self.max_mutants}",
                              key="--max-mutants")
        if not 1 <= self.jobs <= MAX_JOBS:
            raise ConfigError(f"must be in 1..{MAX_JOBS}, got {self.jobs}", key="-j")
        if self.sim not in ("icarus", "verilator"):
            raise ConfigError(f"must name one simulator, icarus or verilator, got {self.sim!r}",
                              key="--sim")
        if not 0 <= self.seed < 2 ** 32:
            raise ConfigError(f"must be in 0..2^32-1, got {self.seed}", key="--seed")


def check_mutation_tools(opts: MutateOptions) -> None:
    """pyslang (mutant sites) and, for the equivalence check, Yosys; one line if missing.

    Raises:
        SimulationError: A tool is missing (exit 3).
    """
    try:
        import pyslang  # noqa: F401
    except ImportError:
        raise SimulationError("pyslang not found (it finds the mutant sites): pip install "
                              "pyslang (the dev extra has it)") from None
    if opts.equivalence:
        try:
            find_yosys()
        except SimulationError as e:
            raise SimulationError(f"{e}; or run with --no-equivalence") from None


def _task(task: MutantTask, tool_path: str | None, verilator_root: str | None) -> MutantResult:
    with tool_options(tool_path, verilator_root):
        return run_task(task)


def mutate(opts: MutateOptions, *, on_result: Callable[[MutantResult], None] | None = None,
           executor: Any = None) -> MutationReport:
    """Run the campaign (see the module docstring); returns the report (not yet written).

    Raises:
        SimulationError: The original RTL fails the suite, or a tool is missing.
        KeyboardInterrupt: Stopped; ``on_result`` has seen every finished mutant.
    """
    target = current_target()
    cands = enumerate_mutants(target.rtl_dir, target.files)
    opts, prev = rerun_options(opts)
    stale = 0
    if prev is not None:
        muts, stale = _current(prev.survivors(), cands)
    else:
        muts = select_mutants(cands, opts.max_mutants, opts.seed)
    timeout = opts.timeout_s or 300.0
    suite = named_suite(opts.suite, target, sim=opts.sim, seed=opts.seed, timeout_s=timeout)
    root = make_dirs(Path(opts.build_root) / "mutation")
    work = Path(tempfile.mkdtemp(prefix=f"{opts.suite}-", dir=root))
    ex = executor or LocalExecutor(opts.jobs)
    fn = partial(_task, tool_path=opts.tool_path, verilator_root=opts.verilator_root)

    def mapper(f: Callable[[Any], Any], items: Any) -> Any:  # run_task -> _task with tools
        # each task (the whole suite: ~1 MB for `full`) reaches a pool worker as a small file
        return map_via_files(ex, fn, items, work)

    try:
        with tool_options(opts.tool_path, opts.verilator_root):
            rep = run_campaign(muts, suite, work, target=target,
                               waivers=load_waivers(target.mutation_waivers),
                               equivalence=opts.equivalence, map_unordered=mapper,
                               on_result=on_result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if prev is not None:
        rep = _merge_rerun(prev, rep)
    rep.meta = meta(opts, target, len(rep.results))
    if prev is not None:
        rep.meta.update(rerun_of=str(opts.rerun), rerun=len(muts), stale=stale)
    return rep


def rerun_options(opts: MutateOptions) -> tuple[MutateOptions, MutationReport | None]:
    """``opts`` as a ``--rerun-survivors`` campaign runs them: the suite, seed and simulator of
    the report it reruns (and that report); ``(opts, None)`` without ``rerun``.

    Raises:
        ConfigError: Not a mutation report, or its options out of bounds (names the file or
            the option).
    """
    if opts.rerun is None:
        return opts, None
    prev = load_report(opts.rerun)
    try:
        opts = replace(opts, suite=str(prev.meta.get("suite", opts.suite)),
                       seed=int(prev.meta.get("seed", opts.seed)),
                       sim=str(prev.meta.get("sim", opts.sim)))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"not a mutation report (meta: {e})", file=str(opts.rerun)) from None
    opts.check()
    return opts, prev


def _key(m: Mutant) -> tuple:
    return (m.file, m.operator, m.line_text, m.original, m.replacement, m.line_off)


def _current(survivors: list[MutantResult], cands: list[Mutant]) -> tuple[list[Mutant], int]:
    """Today's version of each survivor's mutant (offsets move with edits above it), and how
    many no longer exist."""
    by_key: dict[tuple, list[Mutant]] = {}
    for m in cands:
        by_key.setdefault(_key(m), []).append(m)
    out, stale = [], 0
    for r in survivors:
        found = by_key.get(_key(r.mutant), [])
        if len(found) == 1 or any(m.id == r.mutant.id for m in found):
            out.append(next((m for m in found if m.id == r.mutant.id), found[0]))
        else:
            stale += 1
            log.warning("survivor %s no longer matches the RTL: dropped", r.mutant.id)
    return out, stale


def _merge_rerun(prev: MutationReport, new: MutationReport) -> MutationReport:
    """``prev`` with its survivors replaced by ``new``'s results (stale ones dropped)."""
    got = {_key(r.mutant): r for r in new.results}
    out = MutationReport(prev.suite, wall_s=new.wall_s)
    for r in prev.results:
        if r.status != "survived":
            out.results.append(r)
        elif _key(r.mutant) in got:
            out.results.append(got[_key(r.mutant)])
    out.diffs = {r.mutant.id: r.diff for r in out.results if r.status == "survived"}
    return out


def meta(opts: MutateOptions, target: Any, n: int) -> dict[str, Any]:
    return {"rtl": str(target.rtl_dir), "files": list(target.files), "top": target.top,
            "sim": opts.sim, "suite": opts.suite, "seed": opts.seed, "mutants": n,
            "jobs": opts.jobs, "equivalence": opts.equivalence}


def write_mutation_reports(rep: MutationReport, out_dir: str | Path, *,
                           partial_run: bool = False) -> dict[str, Path]:
    """Write ``mutation.json`` and ``report.html`` into ``out_dir`` together (all or none)."""
    out = Path(out_dir)
    d = rep.to_dict()
    d["partial"] = partial_run
    files = {"html": (out / "report.html", render_mutation_html(d)),
             "json": (out / "mutation.json", json_text(d))}
    atomic_write_set([(p, text_writer(t)) for p, t in files.values()])
    return {k: p for k, (p, _) in files.items()}
