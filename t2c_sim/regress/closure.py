"""``t2c-sim regress --until-covered``: close a regression's functional coverage.

After the suite has run (every job sampled into functional coverage, :mod:`.coverage`),
:func:`until_covered` looks at the holes of each simulated array, generates coverage-driven
random layers for them on the host (:func:`t2c_sim.closure.generate.close_coverage`, seeded:
the same suite, seed and budget give the same layers), saves them as a records folder
``<out>/until_covered/r<round>-<array>/`` and co-simulates them as extra jobs of the
regression (resumable and reported like every job). Only layers that pass count, so a round
is followed by another (new seed) while bins remain, the budget lasts (``--budget N``
records generated, or ``Ns`` seconds of the closure phase) and the last round hit something
new. It returns which bins remain per array.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from t2c_sim.closure.coverdb import Coverage
from t2c_sim.closure.generate import close_coverage
from t2c_sim.closure.target import Target
from t2c_sim.config import HwConfig
from t2c_sim.errors import ConfigError
from t2c_sim.export import save_network
from t2c_sim.files import make_dirs
from t2c_sim.regress.coverage import functional_of
from t2c_sim.regress.dut import current_target
from t2c_sim.regress.runner import SuiteOutcome, run_suite
from t2c_sim.regress.suite import Job, Suite, hw_short

__all__ = ["Budget", "until_covered", "MAX_BUDGET_RECORDS", "MAX_BUDGET_SECONDS"]

log = logging.getLogger(__name__)

MAX_BUDGET_RECORDS = 100_000
MAX_BUDGET_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Budget:
    """``--budget``: records generated (``N``) or wall seconds (``Ns``) for the closure phase."""

    records: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"400"`` -> 400 records, ``"600s"`` -> 600 seconds.

        Raises:
            ConfigError: Anything else, zero, or beyond the bounds (names ``--budget``).
        """
        t = str(text).strip().lower()
        try:
            if t.endswith("s"):
                v = float(t[:-1])
                if not 0 < v <= MAX_BUDGET_SECONDS:
                    raise ValueError
                return cls(seconds=v)
            n = int(t)
            if not 0 < n <= MAX_BUDGET_RECORDS:
                raise ValueError
            return cls(records=n)
        except ValueError:
            raise ConfigError(f"must be a number of records (1..{MAX_BUDGET_RECORDS}) or of "
                              f"seconds with an s (e.g. 600s, at most {MAX_BUDGET_SECONDS:.0f}s), "
                              f"got {text!r}", key="--budget") from None


def _arrays(suite: Suite, prefer: str) -> list[tuple[dict[str, int], str]]:
    """Each simulated array of the suite once, with the simulator to close it on."""
    out: dict[str, tuple[dict[str, int], str]] = {}
    for j in suite.jobs:
        if j.sim and j.kind not in ("testbench",) and j.hw:
            k = repr(sorted(j.hw.items()))
            if k not in out or j.sim == prefer:
                out[k] = (j.hw, j.sim)
    return list(out.values())


def until_covered(suite: Suite, out: Path, executor: Any, *, budget: Budget, seed: int = 0,
                  prefer_sim: str = "icarus", target: Target | None = None,
                  run: Callable[..., SuiteOutcome] = run_suite,
                  **run_kw: Any) -> tuple[SuiteOutcome, dict[str, list[str]]]:
    """Run ``suite``, then close its functional coverage (see the module docstring).

    Args:
        prefer_sim: Where an array runs on several simulators, close it on this one.
        run: The suite runner (:func:`t2c_sim.regress.runner.run_suite`); ``run_kw`` go to it.

    Returns:
        The last outcome (every job, closure jobs included) and the holes left per array
        (``hw_tag -> ["point/bin", ...]``; empty when every bin is hit).

    Raises:
        ConfigError: The suite simulates no layer (nothing to close).
    """
    target = target or current_target()
    arrays = _arrays(suite, prefer=prefer_sim)
    if not arrays:
        raise ConfigError("the suite co-simulates no layer on any array, so there is no "
                          "functional coverage to close", file=suite.path, key="--until-covered")
    t0 = time.monotonic()
    oc = run(suite, out, executor, **run_kw)
    extra: list[Job] = []
    tried, rnd = 0, 0
    while True:
        merged = {e["coverage"]["key"]: Coverage.from_dict(e["coverage"])
                  for e in functional_of(oc.results)}
        todo = []
        for hw, sim in arrays:
            model = target.cover_model(HwConfig.from_dict(hw))
            cov = merged.get(model.key, model.empty())
            if cov.holes():
                todo.append((hw, sim, model, cov))
        left_s = None if budget.seconds is None else budget.seconds - (time.monotonic() - t0)
        left_n = None if budget.records is None else budget.records - tried
        if not todo or (left_s is not None and left_s <= 0) or (left_n is not None and left_n <= 0):
            break
        before = sum(len(c.holes()) for *_, c in todo)
        new = []
        for hw, sim, model, cov in todo:
            per = max(1, (left_n if left_n is not None else 400) // len(todo))
            res = close_coverage(model, seed + 1000 * rnd, max_records=per,
                                 max_seconds=left_s, start=cov, prefix=f"uc{rnd}_")
            tried += res.tried
            if not res.records:
                continue
            folder = out / "until_covered" / f"r{rnd}-{_slug(hw_short(hw))}"
            make_dirs(folder.parent)
            save_network(res.records, folder)
            new.append(Job(name=f"until_covered_r{rnd}_{_slug(hw_short(hw))}", kind="records",
                           hw=hw, sim=sim, seed=seed + 1000 * rnd, recipe=str(folder),
                           recipe_sha=_folder_sha(folder)))
        if not new:
            break
        extra += new
        rnd += 1
        log.info("until covered: round %d, %d closure job(s), %d records tried so far", rnd,
                 len(new), tried)
        oc = run(replace(suite, jobs=suite.jobs + tuple(extra)), out, executor, **run_kw)
        after = sum(len(Coverage.from_dict(e["coverage"]).holes())
                    for e in functional_of(oc.results))
        if after >= before:  # the round hit nothing new (its layers failed): stop
            break
    left: dict[str, list[str]] = {}
    merged = {e["coverage"]["key"]: Coverage.from_dict(e["coverage"])
              for e in functional_of(oc.results)}
    for hw, _sim in arrays:
        model = target.cover_model(HwConfig.from_dict(hw))
        cov = merged.get(model.key, model.empty())
        left[hw_short(hw)] = [f"{p}/{b}" for p, b in cov.holes()]
    return oc, left


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_")


def _folder_sha(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()
