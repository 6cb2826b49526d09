"""The nightly closure run (``make nightly``): full coverage and mutation, targets vs measured.

1. ``t2c-sim regress suites/closure.yaml --coverage --until-covered`` on Verilator: code
   coverage of ``rtl/`` (every job's coverage merged, lcov + HTML) and functional coverage
   closed by coverage-driven random layers;
2. ``t2c-sim mutate --suite full --max-mutants 220`` on Icarus;
3. prints each target of issue 13 next to the measured figure (and the reports' paths), and
   exits 1 if a target is missed (2/3 when a step itself failed).

Usage: ``python scripts/nightly_closure.py [--out results/nightly] [-j 2] [--skip-coverage]
[--skip-mutation] [--markdown FILE]`` (a skipped step's figures are read from an earlier run in
``--out``; ``--markdown`` also writes the figures, the per-file coverage and the per-operator
split as markdown tables).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from t2c_sim.cli import main as t2c

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"lines": 95.0, "toggles": 90.0, "mutation": 95.0, "mutants": 200}


def _run(argv: list[str]) -> int:
    print("$ t2c-sim " + " ".join(argv), flush=True)
    return t2c(argv)


def figures(cov_dir: Path, mut_dir: Path) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` rows from the two runs' JSON (a missing run is a miss)."""
    rows: list[tuple[str, str, bool]] = []
    s = cov_dir / "summary.json"
    if s.is_file():
        cov = json.loads(s.read_text()).get("coverage") or {}
        code = cov.get("code")
        if code:
            t = code["total"]
            rows.append((f"line coverage of rtl/ >= {TARGETS['lines']:.0f}%", f"{t['lines']:.1f}%",
                         t["lines"] >= TARGETS["lines"]))
            rows.append((f"toggle coverage of rtl/ >= {TARGETS['toggles']:.0f}%",
                         f"{t['toggles']:.1f}%", t["toggles"] >= TARGETS["toggles"]))
            rows.append(("(branch arms of rtl/, reported)", f"{t['branches']:.1f}%", True))
        fun = cov.get("functional", [])
        hit = sum(e["summary"]["hit"] for e in fun)
        tot = sum(e["summary"]["reachable"] for e in fun)
        rows.append(("every functional bin hit", f"{hit}/{tot} bins on {len(fun)} arrays",
                     bool(fun) and hit == tot))
    else:
        rows.append(("coverage", f"no {s}", False))
    m = mut_dir / "mutation.json"
    if m.is_file():
        rep = json.loads(m.read_text())
        c, n = rep["counts"], len(rep["results"])
        rows.append((f"mutation score >= {TARGETS['mutation']:.0f}% of non-equivalent mutants",
                     f"{100 * rep['score']:.1f}% ({c['killed'] + c['timeout']}/"
                     f"{c['killed'] + c['timeout'] + c['survived']})",
                     100 * rep["score"] >= TARGETS["mutation"]))
        rows.append((f"over >= {TARGETS['mutants']} mutants", f"{n} ({c['equivalent']} "
                     f"equivalent, {c['waived']} waived, {c['build-error']} build errors)",
                     n >= TARGETS["mutants"] and not rep.get("partial")))
        rows.append(("every survivor killed or explained", f"{c['survived']} unexplained",
                     c["survived"] == 0))
    else:
        rows.append(("mutation", f"no {m}", False))
    return rows


def markdown(cov_dir: Path, mut_dir: Path, rows: list[tuple[str, str, bool]]) -> str:
    """The figures as markdown tables (docs/closure.md "Measured on the current RTL")."""
    out = ["| target | measured | met |", "| --- | --- | --- |"]
    out += [f"| {t} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in rows]
    s = cov_dir / "summary.json"
    code = (json.loads(s.read_text()).get("coverage") or {}).get("code") if s.is_file() else None
    if code:
        out += ["", "| file | lines | toggles | branch arms | waived points |",
                "| --- | --- | --- | --- | --- |"]
        for f in code.get("files", []):
            def pct(h: int, t: int) -> str:
                return f"{h}/{t} ({100 * h / t:.1f}%)" if t else "-"
            out.append(f"| {f['file']} | {pct(f['lines_hit'], f['lines_total'])} | "
                       f"{pct(f['toggles_hit'], f['toggles_total'])} | "
                       f"{pct(f.get('branches_hit', 0), f.get('branches_total', 0))} | "
                       f"{f['waived']} |")
    m = mut_dir / "mutation.json"
    if m.is_file():
        rep = json.loads(m.read_text())
        sts = list(rep["counts"])
        by: dict[str, dict[str, int]] = {}
        for r in rep["results"]:
            for key in (r["mutant"]["operator"], "all"):
                d = by.setdefault(key, {})
                d[r["status"]] = d.get(r["status"], 0) + 1
        out += ["", "| operator | " + " | ".join(sts) + " |", "| --- |" + " --- |" * len(sts)]
        for op in sorted(k for k in by if k != "all") + ["all"]:
            out.append(f"| {op} | " + " | ".join(str(by[op].get(x, 0)) for x in sts) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "nightly")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--skip-coverage", action="store_true")
    ap.add_argument("--skip-mutation", action="store_true")
    ap.add_argument("--markdown", type=Path, default=None,
                    help="also write the figures as markdown tables to this file")
    a = ap.parse_args(argv)
    cov_dir, mut_dir = a.out / "coverage", a.out / "mutation"
    worst = 0
    walls: list[tuple[str, str, bool]] = []
    if not a.skip_coverage:
        t0 = time.monotonic()
        rc = _run(["regress", str(ROOT / "suites" / "closure.yaml"), "--coverage",
                   "--until-covered", "-j", str(a.jobs), "--out", str(cov_dir), "--no-progress"])
        walls.append(("(coverage + until-covered wall time)", f"{time.monotonic() - t0:.0f} s", True))
        worst = max(worst, rc if rc != 1 else 0)
    if not a.skip_mutation:
        t0 = time.monotonic()
        rc = _run(["mutate", "-v", "--suite", "full", "--max-mutants", "220", "-j", str(a.jobs),
                   "--out", str(mut_dir), "--no-progress"])
        walls.append(("(mutation campaign wall time)", f"{time.monotonic() - t0:.0f} s", True))
        worst = max(worst, rc if rc != 1 else 0)
    rows = figures(cov_dir, mut_dir) + walls
    w = max(len(r[0]) for r in rows)
    print(f"\n{'target':{w}s}  {'measured':40s}  met")
    for t, m, ok in rows:
        print(f"{t:{w}s}  {m:40s}  {'yes' if ok else 'NO'}")
    print(f"reports: {cov_dir / 'report.html'}, {mut_dir / 'report.html'}")
    if a.markdown is not None:
        a.markdown.write_text(markdown(cov_dir, mut_dir, rows))
    if worst:
        return worst
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
