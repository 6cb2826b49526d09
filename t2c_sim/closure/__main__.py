"""``python -m t2c_sim.closure mutate|codecov ...`` (until the ``t2c-sim`` CLI has them).

``mutate`` writes ``<out>/mutation.json`` (every mutant, its status and evidence, survivors'
diffs) and logs the summary. ``--suite layers`` is the random-layer co-simulation suite alone;
``--suite all`` adds today's unit testbenches (accelerator top, requantizer, PE) after it;
``--closure`` adds the records that close functional coverage (:mod:`.generate`).

``codecov`` runs the same suites on Verilator with line/toggle/user coverage, merges the
``coverage.dat`` files into ``<out>/coverage.dat``, writes ``coverage.info``, ``html/`` and
logs the per-file table and the biggest holes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from t2c_sim.closure.mutate import Mutant, enumerate_mutants, load_waivers, select_mutants
from t2c_sim.closure.mutrun import MutantResult, results_by, run_campaign
from t2c_sim.closure.suites import (
    ChainSuite,
    CosimSuite,
    Stage,
    UnitSuite,
    closure_stages,
    closure_unit_suites,
    unit_suites,
)
from t2c_sim.cosim.sim import RTL_DIR

log = logging.getLogger("t2c_sim.closure")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m t2c_sim.closure")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mutate", help="mutation campaign over rtl/")
    m.add_argument("--count", type=int, default=220)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--suite", choices=("layers", "all"), default="all")
    m.add_argument("--sim", choices=("icarus", "verilator"), default="icarus")
    m.add_argument("--out", type=Path, default=Path("build/mutation"))
    m.add_argument("--no-equivalence", action="store_true")
    m.add_argument("--closure", action="store_true", help="add coverage-closure records")
    m.add_argument("--closure-tests", action="store_true",
                   help="all unit parameter sets plus the tests added for survivors")
    m.add_argument("--rerun", type=Path, help="a mutation.json: re-run only its survivors")
    c = sub.add_parser("codecov", help="code coverage of rtl/ from the suites (Verilator)")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--out", type=Path, default=Path("build/codecov"))
    c.add_argument("--closure", action="store_true", help="add coverage-closure records")
    c.add_argument("--no-units", action="store_true", help="layer suites only")
    c.add_argument("--build-root", type=Path, help="simulator builds (default <out>/build)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("t2c_sim.cosim", "t2c_sim.cosim.sim", "t2c_sim.cosim.run"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if a.cmd == "codecov":
        return _codecov(a)
    muts = select_mutants(enumerate_mutants(RTL_DIR), a.count, a.seed)
    suite = CosimSuite.random(a.seed, sim=a.sim)
    if a.closure:
        suite.stages += closure_stages(suite, a.seed)
    if a.suite == "all":
        units = unit_suites(a.sim, all_sets=a.closure_tests)
        if a.closure_tests:
            units += closure_unit_suites(a.sim)
        suite = ChainSuite([suite, *units])
    a.out.mkdir(parents=True, exist_ok=True)
    waivers = load_waivers(RTL_DIR / "mutation_waivers.yaml")
    prev: dict = {}
    if a.rerun:
        data = json.loads(a.rerun.read_text())
        prev = {r["mutant"]["id"]: r for r in data["results"]}
        muts = [m for m in muts if prev.get(m.id, {}).get("status") in ("survived", "waived")]
        log.info("re-running %d survivors of %s", len(muts), a.rerun)
    rep = run_campaign(muts, suite, a.out / "work", waivers=waivers,
                       equivalence=not a.no_equivalence)
    if a.rerun:  # the earlier verdicts of every other mutant stand
        again = {r.mutant.id for r in rep.results}
        old = [MutantResult(Mutant(**r["mutant"]), r["status"], r["detail"], r["seconds"],
                            r.get("build_s", 0.0)) for i, r in prev.items() if i not in again]
        rep.results = sorted([*old, *rep.results], key=lambda r: r.mutant.id)
    rep.write_json(a.out / "mutation.json")
    log.info("%s", rep.summary())
    for k, v in results_by(rep.results, "operator").items():
        log.info("  %-10s %s", k, v)
    for r in rep.survivors():
        log.info("survivor %s\n%s", r.mutant.id, rep.diffs.get(r.mutant.id, ""))
    return 0


def top_b_suite(build_args: tuple[str, ...]) -> UnitSuite:
    """The top's port testbench with tests/test_cosim_top.py's PARAMS_B (3x1, 1:8, odd widths)."""
    from t2c_sim.cosim.run import RTL_MODULES

    top_b = {"ROWS": 3, "COLS": 1, "N": 1, "M": 8, "A_BITS": 5, "W_BITS": 6, "ACC_BITS": 32,
             "MULT_BITS": 32, "SHIFT_MAX": 40, "ACT_DEPTH": 30, "W_DEPTH": 9, "OUT_DEPTH": 12,
             "CH_DEPTH": 3}
    return UnitSuite("t2c_accel_top", [top_b], {"seed": 8}, modules=RTL_MODULES, sim="verilator",
                     build_args=build_args)


def _codecov(a: argparse.Namespace) -> int:
    from t2c_sim.closure import codecov as cc
    from t2c_sim.config import HwConfig
    from t2c_sim.workloads.gen import random_conv_record, random_linear_record

    args = cc.COVERAGE_ARGS
    suite = CosimSuite.random(a.seed, sim="verilator", build_args=args, keep=True,
                              timeout_s=600.0)
    import numpy as np

    r = np.random.default_rng(a.seed + 100)
    hw_b = HwConfig(rows=4, cols=4, n=2, m=8, a_bits=4, w_bits=4, act_depth=256, w_depth=128,
                    out_depth=64, ch_depth=16)
    suite.stages.append(Stage("hw_b", hw_b, (
        random_linear_record(r, name="fc_b", c_in=40, c_out=9, rows=13, n=2, m=8, a_bits=4,
                             w_bits=4),
        random_conv_record(r, name="conv_b", c_in=8, c_out=5, h=6, w=6, n=1, m=8, a_bits=4,
                           w_bits=4, mode="half_up"))))
    if a.closure:
        suite.stages += closure_stages(suite, a.seed)
    suites = [suite]
    if not a.no_units:
        suites += [*unit_suites("verilator", args, all_sets=True), top_b_suite(args)]
        if a.closure:
            suites += closure_unit_suites("verilator", args)
    a.out.mkdir(parents=True, exist_ok=True)
    broot = a.build_root or a.out / "build"
    chain = ChainSuite(suites)
    chain.build(RTL_DIR, broot)
    why = chain.run(RTL_DIR, broot)
    if why:
        log.error("the suites fail on rtl/: %s", why)
        return 1
    dats = cc.collect([d for s in suites for d in s.run_dirs])
    counts = cc.merge(dats, a.out / "coverage.dat")
    waivers = cc.load_waivers(RTL_DIR / "coverage_waivers.yaml")
    cc.write_info(counts, a.out / "coverage.info", RTL_DIR, waivers)
    html = cc.genhtml(a.out / "coverage.info", a.out / "html")
    log.info("%d coverage files merged; html %s\n%s", len(dats), html,
             cc.format_table(cc.table(counts, RTL_DIR, waivers)))
    for f, items in cc.holes(counts, RTL_DIR, waivers).items():
        log.info("holes in %s (%d):\n  %s", f, len(items), "\n  ".join(items))
    return 0


if __name__ == "__main__":
    sys.exit(main())
