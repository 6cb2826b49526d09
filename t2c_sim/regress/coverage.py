"""Coverage of runs and regressions: Verilator code coverage and functional coverage.

* ``t2c-sim run --coverage``: every MAC layer co-simulated on Verilator runs on a coverage
  build (line, toggle and user coverage; its own build in the cache); each simulator process
  (``-j N``: one per unit of layers or tile range, :mod:`t2c_sim.regress.parallel`) leaves
  one ``coverage.dat`` naming its layers; the files whose layers all passed are merged into
  ``<out>/coverage/coverage.dat``, exported to ``coverage.info`` (lcov) and ``html/``
  (``genhtml``), and the per-file table goes into ``results.json`` and the reports.
* ``t2c-sim regress --coverage``: the same per job, merged into one ``coverage.dat`` per job
  (``<out>/jobs/<id>/coverage.dat``), then over the regression into ``<out>/coverage/``.
* Functional coverage (:mod:`t2c_sim.closure.funcov`) is sampled from every layer that was
  co-simulated and passed on every simulator (records and golden results: shapes, N:M
  patterns, requantizer ties and saturation, wraps, K-split shapes), per array
  configuration, stored with the run (``results.json``: ``coverage.functional``) and merged
  across a regression (``summary.json``: ``coverage.functional``), holes listed.
* ``--until-covered`` (:func:`until_covered`): after the suite, coverage-driven random layers
  (:func:`t2c_sim.closure.generate.close_coverage`, seeded) are generated on the host for the
  holes of each simulated array, saved as a records folder under ``<out>/until_covered/``
  and co-simulated as extra jobs of the regression, round after round, until every bin is
  hit or the budget (records generated, or seconds) is spent.

What is verified comes from :func:`t2c_sim.regress.dut.current_target` (today the accelerator of ``rtl/``; the
accelerator contract will hand a DUT's target here).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2c_sim.closure.codecov import find_genhtml, load_waivers, merge, summarize
from t2c_sim.closure.coverdb import Coverage, merge_all
from t2c_sim.closure.target import Target
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim.dut import load_dut
from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.regress.dut import current_target
from t2c_sim.regress.outcome import LAYERS_SUFFIX, safe_name
from t2c_sim.regress.results import PASS, RunResult
from t2c_sim.regress.suite import hw_short

__all__ = ["CODE_DIR", "PARTS_DIR", "current_target", "check_coverage_tools", "functional",
           "scope", "functional_model_ok",
           "functional_of", "finish_run", "finish_job", "suite_coverage", "coverage_lines"]

log = logging.getLogger(__name__)

CODE_DIR = "coverage"
PARTS_DIR = ".coverage-parts"


def scope(target: Target, dut_files: Sequence[str | None] = ()) -> list[Path]:
    """The source files code coverage reports: the target's RTL folder, and the sources of
    every other DUT file a run or job used (``--dut``; a user's own RTL)."""
    files = sorted(target.rtl_dir.glob("*.v"))
    for f in sorted({str(d) for d in dut_files if d}):
        try:
            spec = load_dut(f)
        except T2CError as e:  # reported where the DUT was loaded; not again here
            log.warning("code coverage: DUT file %s: %s", f, e)
            continue
        files += [p for p in spec.sources if p not in files]
    return files


def functional_model_ok(dut_name: str | None) -> bool:
    """Functional coverage samples the accelerator's tile plan: our DUTs only (the back and
    the front door); another DUT's layers get code coverage only."""
    return dut_name in (None, "t2c_accel", "t2c_axi_accel")


def check_coverage_tools(sims: Sequence[str | None]) -> None:
    """``--coverage`` needs Verilator among the simulators and ``genhtml`` on the machine.

    Raises:
        ConfigError: No Verilator run (names ``--coverage``).
        SimulationError: ``genhtml`` is missing.
    """
    if "verilator" not in sims:
        raise ConfigError("code coverage needs Verilator, and nothing here runs on it (add "
                          "verilator to the simulators)", key="--coverage")
    find_genhtml()


# ------------------------------------------------------------------------------ one run
def _passed(run: RunResult, sim: str | None = None) -> set[str]:
    """Layers co-simulated and passing on every simulator (or on ``sim``)."""
    out = set()
    for lr in run.layers:
        outs = [o for o in lr.sims if sim is None or o.sim == sim]
        if outs and all(o.verdict == PASS for o in outs):
            out.add(lr.name)
    return out


def functional(records: Sequence[LayerRecord], run: RunResult, hw: HwConfig,
               target: Target | None = None) -> list[dict[str, Any]]:
    """Functional coverage of the passing co-simulated MAC layers of ``run`` on ``hw``.

    Returns:
        ``[{"hw", "hw_tag", "layers", "coverage": Coverage.to_dict(), "summary"}]`` (one
        entry: one array per run), or ``[]`` when no layer counts.
    """
    model = (target or current_target()).cover_model(hw)
    cov = model.empty()
    ok = _passed(run)
    n = 0
    for rec in records:
        if (rec.op in MAC_OPS or rec.op is OpKind.MATMUL) and rec.name in ok:
            cov.add(model.sample(rec))
            n += 1
    if not n:
        return []
    return [{"hw": hw.to_dict(), "hw_tag": hw_short(hw.to_dict()), "layers": n,
             "coverage": cov.to_dict(), "summary": cov.summary()}]


def _passing_dats(parts: Path, run: RunResult) -> list[Path]:
    """The coverage files of ``parts`` whose layers all passed on Verilator: a simulator
    process's file names its layers in ``<file>.layers`` (:mod:`t2c_sim.regress.parallel`);
    a file of one layer without it is ``<layer>-verilator.dat`` (``cosim_layer``)."""
    ok = _passed(run, "verilator")
    safe = {safe_name(n) for n in ok}
    out = []
    for p in parts.glob("*.dat"):
        note = p.with_suffix(LAYERS_SUFFIX)
        if note.is_file():
            layers = note.read_text(encoding="utf-8").split()
            if layers and all(n in ok for n in layers):
                out.append(p)
        elif p.name.endswith("-verilator.dat") and p.name.removesuffix("-verilator.dat") in safe:
            out.append(p)
    return sorted(out)


def finish_run(run: RunResult, records: Sequence[LayerRecord], hw: HwConfig, out_dir: Path,
               *, code: bool, target: Target | None = None, dut_file: str | None = None,
               dut_name: str | None = None) -> None:
    """Fill ``run.coverage`` for ``t2c-sim run``: functional coverage, and with ``code`` the
    merged Verilator coverage of the passing layers in ``out_dir/coverage/`` (HTML too) over
    the target's RTL and the sources of ``dut_file`` (``--dut``)."""
    target = target or current_target()
    run.coverage = {"functional": functional(records, run, hw, target)
                    if functional_model_ok(dut_name) else []}
    if not code:
        return
    parts = out_dir / PARTS_DIR
    try:
        dats = _passing_dats(parts, run)
        run.coverage["code"] = summarize(dats, out_dir / CODE_DIR, scope(target, [dut_file]),
                                         load_waivers(target.coverage_waivers)) if dats else None
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def finish_job(run: RunResult, records: Sequence[LayerRecord], hw: HwConfig | None,
               job_dir: Path, *, code: bool, funcov: bool, target: Target | None = None,
               dut_name: str | None = None) -> None:
    """Fill ``run.coverage`` for one regression job: functional coverage (``funcov``; our
    DUTs only), and with ``code`` one merged ``job_dir/coverage.dat`` (``code_dat``, relative
    to the job)."""
    target = target or current_target()
    run.coverage = {}
    if funcov and hw is not None and functional_model_ok(dut_name):
        run.coverage["functional"] = functional(records, run, hw, target)
    if not code:
        return
    parts = job_dir / PARTS_DIR
    try:
        dats = _passing_dats(parts, run) + sorted(parts.glob("*-bench.dat"))
        if dats:
            merge(dats, job_dir / "coverage.dat")
            run.coverage["code_dat"] = "coverage.dat"
    finally:
        shutil.rmtree(parts, ignore_errors=True)


# ------------------------------------------------------------------------------ a regression
def functional_of(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    covs: list[Coverage] = []
    meta: dict[str, dict[str, Any]] = {}
    for r in results.values():
        run = r.get("run") or {}
        for e in (run.get("coverage") or {}).get("functional", []) or []:
            c = Coverage.from_dict(e.get("coverage"))
            covs.append(c)
            m = meta.setdefault(c.key, {"hw": e.get("hw"), "hw_tag": e.get("hw_tag"),
                                        "layers": 0, "jobs": 0})
            m["layers"] += int(e.get("layers", 0))
            m["jobs"] += 1
    out = []
    for key, cov in merge_all(covs).items():
        out.append({**meta[key], "coverage": cov.to_dict(), "summary": cov.summary()})
    return out


def suite_coverage(results: dict[str, dict[str, Any]], out_dir: Path, *, code: bool,
                   target: Target | None = None) -> dict[str, Any]:
    """Merge a regression's coverage (``results``: job id -> stored result): functional per
    array, code over every job's ``coverage.dat`` into ``out_dir/coverage/``."""
    target = target or current_target()
    out: dict[str, Any] = {"functional": functional_of(results)}
    if code:
        dats, missing, duts = [], [], []
        for jid, r in results.items():
            rel = ((r.get("run") or {}).get("coverage") or {}).get("code_dat")
            if rel:
                p = out_dir / "jobs" / jid / rel
                (dats if p.is_file() else missing).append(p)
                duts.append((r.get("info") or {}).get("dut_file"))
        out["code"] = summarize(dats, out_dir / CODE_DIR, scope(target, duts),
                                load_waivers(target.coverage_waivers)) if dats else None
        out["code_missing"] = [str(p) for p in missing]
    return out


def coverage_lines(cov: dict[str, Any]) -> list[str]:
    """Terminal lines: the code coverage totals against the targets, functional per array."""
    lines = []
    code = cov.get("code")
    if code:
        t, g = code["total"], code["targets"]
        tot = code["files"][-1]
        user = f"{t['user']:.1f}%" if tot.get("user_total") else "none in the RTL"
        lines.append(f"code coverage of the RTL ({code['inputs']} file(s) merged): lines "
                     f"{t['lines']:.1f}% (target {g['lines']:.0f}%), toggles {t['toggles']:.1f}% "
                     f"(target {g['toggles']:.0f}%), branches {t.get('branches', 100.0):.1f}%, "
                     f"user points {user}; HTML {code['html']}")
        for f in code["files"][:-1]:
            lines.append(f"  {f['file']:20s} lines {f['lines_hit']}/{f['lines_total']}  toggles "
                         f"{f['toggles_hit']}/{f['toggles_total']}  branches "
                         f"{f.get('branches_hit', 0)}/{f.get('branches_total', 0)}  waived "
                         f"{f['waived']}")
    elif "code" in cov:
        lines.append("code coverage: no passing Verilator co-simulation to measure")
    for e in cov.get("functional", []):
        s = e["summary"]
        lines.append(f"functional coverage on {e['hw_tag']}: {s['percent']:.1f}% ({s['hit']}/"
                     f"{s['reachable']} bins, {e['layers']} layers, {s['unreachable']} "
                     "unreachable)")
        if s["holes"]:
            more = s["holes_total"] - len(s["holes"])
            lines.append("  holes: " + ", ".join(s["holes"][:20])
                         + (f" and {s['holes_total'] - 20} more" if s["holes_total"] > 20
                            else "") + (f" ({more} not listed)" if more > 0 else ""))
    if not cov.get("functional"):
        lines.append("functional coverage: no passing co-simulated layer to sample")
    return lines
