"""Run mutants against a suite: killed / survived / timeout / build-error / equivalent / waived.

Suites are in :mod:`t2c_sim.closure.suites`. One build per mutant and simulator (the build
cache keys on source hashes, and each mutant has its own copy of the target's RTL), stages in
order, each built just before it runs (:func:`~t2c_sim.closure.suites.parts`: a stage, a
parameter set), stop at the first kill; the suites of a chain that do not compile the mutated
file are skipped (they cannot kill it). A build failure in any piece reached is a build
error. Survivors are then checked for equivalence
(:mod:`t2c_sim.closure.netlist`, per simulated parameter set of the target's top) and against
the waiver file. The score is ``killed / (killed + survived)``, timeouts counted as killed
(the suite noticed), equivalent, waived and build-error mutants left out of the denominator.

Mutants are independent: :func:`run_campaign` maps :func:`run_task` over them with any
``map_unordered(fn, items) -> iterator of (item, result)`` (default: in this process, in
order), e.g. the regression runner's process pool (``t2c-sim mutate -j N``).

Example::

    target = accel_target()
    suite = named_suite("full", target)
    muts = select_mutants(enumerate_mutants(target.rtl_dir, target.files), 200, 1)
    rep = run_campaign(muts, suite, "build/mut", target=target)
    print(rep.summary())
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2c_sim.closure.mutate import Mutant, Waiver, find_waiver, write_mutant_tree
from t2c_sim.closure.netlist import design_signature
from t2c_sim.closure.suites import ChainSuite, Suite, parts
from t2c_sim.closure.target import Target
from t2c_sim.errors import ConfigError, SimulationError, SimulationTimeout

__all__ = ["STATUSES", "Suite", "MutantResult", "MutationReport", "MutantTask", "run_mutant",
           "run_task", "run_campaign", "results_by", "apply_waivers", "load_report"]

log = logging.getLogger(__name__)

STATUSES = ("killed", "survived", "timeout", "build-error", "equivalent", "waived")

MapUnordered = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[tuple[Any, Any]]]


@dataclass
class MutantResult:
    """Outcome of one mutant (``status`` in :data:`STATUSES`) with its evidence."""

    mutant: Mutant
    status: str
    detail: str = ""
    seconds: float = 0.0
    build_s: float = 0.0
    diff: str = ""

    def to_dict(self) -> dict:
        return {"mutant": self.mutant.to_dict(), "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 3), "build_s": round(self.build_s, 3)}


def run_mutant(mutant: Mutant | None, suite: Suite, rtl_dir: Path, work: Path,
               keep: bool = False) -> MutantResult | str | None:
    """Build and run one mutant (``None``: the original RTL) in ``work``; see the module doc.

    Returns:
        A :class:`MutantResult` for a mutant; for ``None`` the suite's verdict on the
        original RTL (``None`` when it passes).
    """
    t0 = time.monotonic()
    if mutant is not None and isinstance(suite, ChainSuite):
        suite = suite.restricted(Path(mutant.file).stem)
    src = write_mutant_tree(mutant, rtl_dir, work / "rtl")
    broot = work / "build"
    build_s = 0.0
    try:
        # piece by piece (a stage, a parameter set): build, run, stop at the first kill, so a
        # mutant the first stage kills does not wait for every other build
        for part in parts(suite):
            t1 = time.monotonic()
            try:
                part.build(src, broot)
            except SimulationError as e:
                if mutant is None:
                    raise
                return MutantResult(mutant, "build-error", str(e)[:400], time.monotonic() - t0,
                                    build_s + time.monotonic() - t1)
            t2 = time.monotonic()
            build_s += t2 - t1
            try:
                why = part.run(src, broot)
            except SimulationError as e:
                if mutant is None:
                    raise
                hung = isinstance(e, SimulationTimeout)
                return MutantResult(mutant, "timeout" if hung else "killed", str(e)[:400],
                                    time.monotonic() - t0, build_s)
            if why:
                if mutant is None:
                    return why
                return MutantResult(mutant, "killed", why[:400], time.monotonic() - t0, build_s)
        if mutant is None:
            return None
        return MutantResult(mutant, "survived", "", time.monotonic() - t0, build_s)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class MutantTask:
    """Everything one mutant's run needs (picklable: it crosses into a worker process)."""

    index: int
    mutant: Mutant
    suite: Suite
    target: Target
    work: Path
    waivers: tuple[Waiver, ...] = ()
    equivalence: bool = True
    keep: bool = False


def run_task(task: MutantTask) -> MutantResult:
    """Run one mutant; a survivor is then checked for equivalence and waivers, and gets its diff."""
    m, rtl = task.mutant, task.target.rtl_dir
    work = task.work / f"m{task.index:04d}"
    r = run_mutant(m, task.suite, rtl, work, task.keep)
    if r.status == "survived":
        if task.equivalence:
            eq = equivalent(m, task.target, task.suite, task.work / f"m{task.index:04d}-eq")
            if eq:
                r.status, r.detail = "equivalent", eq
        w = find_waiver(m, task.waivers)
        if r.status == "survived" and w is not None:
            r.status, r.detail = "waived", f"{w.kind}: {w.reason}"
        if r.status == "survived":
            r.diff = m.diff(rtl)
    return r


def _in_order(fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    for it in items:
        yield it, fn(it)


@dataclass
class MutationReport:
    """A campaign's results (JSON-serializable through :meth:`to_dict`)."""

    suite: str
    results: list[MutantResult] = field(default_factory=list)
    wall_s: float = 0.0
    diffs: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.results)
        return {s: c.get(s, 0) for s in STATUSES}

    @property
    def score(self) -> float:
        """``(killed + timeout) / (killed + timeout + survived)``; 1.0 when nothing counts."""
        c = self.counts()
        det = c["killed"] + c["timeout"]
        den = det + c["survived"]
        return det / den if den else 1.0

    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if r.status == "survived"]

    def summary(self) -> str:
        c = self.counts()
        b = sum(r.build_s for r in self.results)
        s = sum(r.seconds for r in self.results)
        return (f"{self.suite}: {len(self.results)} mutants, score {100 * self.score:.1f}% "
                + ", ".join(f"{k} {v}" for k, v in c.items())
                + f" ({self.wall_s:.0f} s wall; per mutant {s / max(1, len(self.results)):.1f} s"
                f" of which build {b / max(1, len(self.results)):.1f} s)")

    def to_dict(self) -> dict:
        return {"suite": self.suite, "score": self.score, "counts": self.counts(),
                "wall_s": round(self.wall_s, 1), "meta": self.meta,
                "results": [r.to_dict() for r in self.results],
                "survivor_diffs": {r.mutant.id: self.diffs.get(r.mutant.id, "")
                                   for r in self.survivors()}}

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def run_campaign(mutants: Sequence[Mutant], suite: Suite, work: str | Path, *,
                 target: Target, waivers: Sequence[Waiver] = (), equivalence: bool = True,
                 keep: bool = False, map_unordered: MapUnordered | None = None,
                 on_result: Callable[[MutantResult], None] | None = None) -> MutationReport:
    """Run every mutant (see the module doc); results in the mutants' order.

    Args:
        map_unordered: Runs :func:`run_task` over the tasks (default: here, in order).
        on_result: Called with each result as it arrives (progress).

    Raises:
        SimulationError: The ORIGINAL RTL fails the suite (a campaign needs a passing baseline).
        KeyboardInterrupt: From ``map_unordered``; the results that arrived were passed to
            ``on_result``.
    """
    work = Path(work)
    t0 = time.monotonic()
    why = run_mutant(None, suite, target.rtl_dir, work / "baseline", keep)
    if why:
        raise SimulationError(f"suite {suite.name} fails on the original RTL in "
                              f"{target.rtl_dir}: {why}")
    rep = MutationReport(suite.name)
    tasks = [MutantTask(i, m, suite, target, work, tuple(waivers), equivalence, keep)
             for i, m in enumerate(mutants)]
    got: dict[int, MutantResult] = {}
    for task, r in (map_unordered or _in_order)(run_task, tasks):
        if isinstance(r, BaseException):  # the executor lost the worker
            r = MutantResult(task.mutant, "build-error", f"executor: {type(r).__name__}: {r}")
        got[task.index] = r
        log.info("mutant %d/%d %s: %s %s", len(got), len(tasks), task.mutant.id, r.status,
                 r.detail[:120])
        if on_result is not None:
            on_result(r)
    rep.results = [got[i] for i in sorted(got)]
    rep.diffs = {r.mutant.id: r.diff for r in rep.results if r.status == "survived"}
    rep.wall_s = time.monotonic() - t0
    return rep


def apply_waivers(results: Sequence[MutantResult], waivers: Sequence[Waiver]) -> int:
    """Mark survivors that a waiver explains as ``waived`` (in place); return how many."""
    n = 0
    for r in results:
        w = find_waiver(r.mutant, waivers) if r.status == "survived" else None
        if w is not None:
            r.status, r.detail = "waived", f"{w.kind}: {w.reason}"
            n += 1
    return n


def load_report(path: str | Path) -> MutationReport:
    """A :class:`MutationReport` back from its JSON (:meth:`MutationReport.write_json`).

    Raises:
        ConfigError: Not a mutation report (names the file).
    """
    try:
        d = json.loads(Path(path).read_text())
        rep = MutationReport(d["suite"], wall_s=d.get("wall_s", 0.0), meta=d.get("meta", {}))
        rep.results = [MutantResult(Mutant(**r["mutant"]), r["status"], r["detail"],
                                    r["seconds"], r.get("build_s", 0.0))
                       for r in d["results"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"not a mutation report ({type(e).__name__}: {e})",
                          file=str(path)) from None
    rep.diffs = dict(d.get("survivor_diffs", {}))
    for r in rep.results:
        r.diff = rep.diffs.get(r.mutant.id, "")
    return rep


_BASE_SIGS: dict[tuple, str] = {}


def equivalent(m: Mutant, target: Target, suite: Suite, work: Path) -> str | None:
    """Reason string if the mutant's optimized netlist equals the original's for every design
    the suite simulates that contains the mutated file; ``None`` otherwise (or if none does)."""
    designs = [d for d in suite.designs() if f"{Path(m.file).stem}" in d.modules]
    if not designs:
        return None
    src = write_mutant_tree(m, target.rtl_dir, work)
    try:
        for d in designs:
            key = (str(target.rtl_dir), d)
            if key not in _BASE_SIGS:
                try:
                    _BASE_SIGS[key] = design_signature(target.sources(modules=d.modules), d.top,
                                                       dict(d.params))
                except SimulationError as e:  # undecided: the survivor stays a survivor
                    log.warning("equivalence check of %s impossible: the original %s does not "
                                "go through Yosys: %s", m.id, d.top, e)
                    return None
            try:
                sig = design_signature(target.sources(src, d.modules), d.top, dict(d.params))
            except SimulationError:
                return None
            if sig != _BASE_SIGS[key]:
                return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tops = sorted({d.top for d in designs})
    return (f"Yosys opt netlist identical to the original for all {len(designs)} simulated "
            f"design(s) containing it ({', '.join(tops)} and their parameter sets)")


def results_by(results: Sequence[MutantResult], key: str) -> dict[str, dict[str, int]]:
    """Counts of statuses grouped by a mutant attribute (``operator`` or ``file``)."""
    out: dict[str, Counter] = {}
    for r in results:
        out.setdefault(getattr(r.mutant, key), Counter())[r.status] += 1
    return {k: dict(v) for k, v in sorted(out.items())}
