"""``python -m t2c_sim.closure mutate ...``: a mutation campaign over ``rtl/`` (until the CLI has it).

Writes ``<out>/mutation.json`` (every mutant, its status and evidence, survivors' diffs) and
logs the summary. ``--suite layers`` is the random-layer co-simulation suite alone;
``--suite all`` adds today's unit testbenches (accelerator top, requantizer, PE) after it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from t2c_sim.closure.mutate import enumerate_mutants, load_waivers, select_mutants
from t2c_sim.closure.mutrun import ChainSuite, CosimSuite, results_by, run_campaign, unit_suites
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
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("t2c_sim.cosim", "t2c_sim.cosim.sim", "t2c_sim.cosim.run"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    muts = select_mutants(enumerate_mutants(RTL_DIR), a.count, a.seed)
    suite = CosimSuite.random(a.seed, sim=a.sim)
    if a.suite == "all":
        suite = ChainSuite([suite, *unit_suites(a.sim)])
    a.out.mkdir(parents=True, exist_ok=True)
    rep = run_campaign(muts, suite, a.out / "work", waivers=load_waivers(RTL_DIR / "mutation_waivers.yaml"),
                       equivalence=not a.no_equivalence)
    rep.write_json(a.out / "mutation.json")
    log.info("%s", rep.summary())
    for k, v in results_by(rep.results, "operator").items():
        log.info("  %-10s %s", k, v)
    for r in rep.survivors():
        log.info("survivor %s\n%s", r.mutant.id, rep.diffs.get(r.mutant.id, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
