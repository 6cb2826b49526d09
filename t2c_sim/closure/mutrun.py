"""Run mutants against a suite: killed / survived / timeout / build-error / equivalent / waived.

Suites are in :mod:`t2c_sim.closure.suites`. One build per mutant and simulator (the build
cache keys on source hashes, and each mutant has its own copy of ``rtl/``), stages in
order, stop at the first kill. Survivors are then checked for equivalence
(:mod:`t2c_sim.closure.netlist`, per simulated parameter set) and against the waiver file.
The score is ``killed / (killed + survived)``, timeouts counted as killed (the suite
noticed), equivalent, waived and build-error mutants left out of the denominator.

Example::

    suite = full_suite(1)
    rep = run_campaign(select_mutants(enumerate_mutants(RTL_DIR), 200, 1), suite, "build/mut")
    print(rep.summary())
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from t2c_sim.closure.mutate import Mutant, Waiver, find_waiver, write_mutant_tree
from t2c_sim.closure.suites import Suite
from t2c_sim.errors import SimulationError

__all__ = ["STATUSES", "Suite", "MutantResult", "MutationReport", "run_mutant", "run_campaign",
           "results_by", "apply_waivers", "load_report"]

log = logging.getLogger(__name__)

STATUSES = ("killed", "survived", "timeout", "build-error", "equivalent", "waived")


@dataclass
class MutantResult:
    """Outcome of one mutant (``status`` in :data:`STATUSES`) with its evidence."""

    mutant: Mutant
    status: str
    detail: str = ""
    seconds: float = 0.0
    build_s: float = 0.0

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
    src = write_mutant_tree(mutant, rtl_dir, work / "rtl")
    broot = work / "build"
    try:
        try:
            suite.build(src, broot)
        except SimulationError as e:
            if mutant is None:
                raise
            return MutantResult(mutant, "build-error", str(e)[:400], time.monotonic() - t0)
        timeout = getattr(suite, "timeout_s", None)
        t1 = time.monotonic()
        build_s = t1 - t0
        try:
            why = suite.run(src, broot)
        except SimulationError as e:
            if mutant is None:
                raise
            hung = timeout is not None and "timeout; killed" in str(e) and \
                time.monotonic() - t1 >= timeout
            return MutantResult(mutant, "timeout" if hung else "killed", str(e)[:400],
                                time.monotonic() - t0, build_s)
        if mutant is None:
            return why
        return MutantResult(mutant, "killed" if why else "survived", (why or "")[:400],
                            time.monotonic() - t0, build_s)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class MutationReport:
    """A campaign's results (JSON-serializable through :meth:`to_dict`)."""

    suite: str
    results: list[MutantResult] = field(default_factory=list)
    wall_s: float = 0.0
    diffs: dict[str, str] = field(default_factory=dict)

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
                "wall_s": round(self.wall_s, 1), "results": [r.to_dict() for r in self.results],
                "survivor_diffs": {r.mutant.id: self.diffs.get(r.mutant.id, "")
                                   for r in self.survivors()}}

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def run_campaign(mutants: Sequence[Mutant], suite: Suite, work: str | Path, *,
                 rtl_dir: str | Path | None = None, waivers: Sequence[Waiver] = (),
                 equivalence: bool = True, keep: bool = False) -> MutationReport:
    """Run every mutant; check survivors for equivalence and waivers (see the module doc).

    Raises:
        SimulationError: The ORIGINAL RTL fails the suite (a campaign needs a passing baseline).
    """
    from t2c_sim.cosim.sim import RTL_DIR

    rtl = Path(rtl_dir) if rtl_dir is not None else RTL_DIR
    work = Path(work)
    t0 = time.monotonic()
    why = run_mutant(None, suite, rtl, work / "baseline", keep)
    if why:
        raise SimulationError(f"suite {suite.name} fails on the original RTL in {rtl}: {why}")
    rep = MutationReport(suite.name)
    base_sigs: dict[int, str] = {}
    for i, m in enumerate(mutants):
        r = run_mutant(m, suite, rtl, work / f"m{i:04d}", keep)
        if r.status == "survived":
            w = find_waiver(m, waivers)
            if equivalence:
                eq = _equivalent(m, rtl, suite, work / f"m{i:04d}-eq", base_sigs)
                if eq:
                    r.status, r.detail = "equivalent", eq
            if r.status == "survived" and w is not None:
                r.status, r.detail = "waived", f"{w.kind}: {w.reason}"
            if r.status == "survived":
                rep.diffs[m.id] = m.diff(rtl)
        log.info("mutant %d/%d %s: %s %s", i + 1, len(mutants), m.id, r.status, r.detail[:120])
        rep.results.append(r)
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
    """A :class:`MutationReport` back from its JSON (:meth:`MutationReport.write_json`)."""
    d = json.loads(Path(path).read_text())
    rep = MutationReport(d["suite"], wall_s=d.get("wall_s", 0.0))
    rep.results = [MutantResult(Mutant(**r["mutant"]), r["status"], r["detail"], r["seconds"],
                                r.get("build_s", 0.0)) for r in d["results"]]
    rep.diffs = dict(d.get("survivor_diffs", {}))
    return rep


def _equivalent(m: Mutant, rtl: Path, suite: Suite, work: Path, cache: dict[int, str],
                ) -> str | None:
    """Reason string if the mutant's optimized netlist equals the original for every parameter set."""
    from t2c_sim.closure.netlist import design_signature
    from t2c_sim.cosim.run import RTL_MODULES

    psets = suite.parameter_sets()
    if not psets:
        return None
    src = write_mutant_tree(m, rtl, work)
    try:
        for i, p in enumerate(psets):
            if i not in cache:
                cache[i] = design_signature([rtl / f"{n}.v" for n in RTL_MODULES],
                                            "t2c_accel_top", p)
            try:
                sig = design_signature([src / f"{n}.v" for n in RTL_MODULES], "t2c_accel_top", p)
            except SimulationError:
                return None
            if sig != cache[i]:
                return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return (f"Yosys opt netlist identical to the original for all {len(psets)} simulated "
            "parameter set(s)")


def results_by(results: Sequence[MutantResult], key: str) -> dict[str, dict[str, int]]:
    """Counts of statuses grouped by a mutant attribute (``operator`` or ``file``)."""
    out: dict[str, Counter] = {}
    for r in results:
        out.setdefault(getattr(r.mutant, key), Counter())[r.status] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


