"""The co-simulation part of a run: every selected MAC layer on every simulator, in parallel
(``-j``), plain or chained (``--chain``); verdicts, repro bundles and the stop rule.

:func:`cosimulate_layers` is what :func:`t2c_sim.regress.pipeline.evaluate` calls once the
layer table exists:

* plain: one wave of items (layer x simulator, report order), each layer on the golden model's
  input, run by :func:`t2c_sim.regress.parallel.cosim_items`;
* chained (:mod:`t2c_sim.regress.chain`): waves of the layers whose chained inputs are known,
  one chain per simulator, until the network is done.

Each item's result is judged against the golden results of its input
(:func:`t2c_sim.regress.outcome.judge`); a mismatch gets a repro bundle (waves of the failing
tile). The stop rule is the one of a run with one process: after the first item (in report
order) whose simulator failed, every later item is not run, and a layer none of whose items ran
is reported as not run. Everything here depends on the items' results only, never on how many
workers ran them, so reports are identical for any ``-j`` apart from timings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim.dut import Dut, default_dut
from t2c_sim.cosim.sim.tools import tool_options
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.regress.chain import Chain, chain_summary
from t2c_sim.regress.executors import LocalExecutor
from t2c_sim.regress.outcome import judge, safe_name
from t2c_sim.regress.parallel import (
    ERROR,
    MISMATCH,
    NOT_RUN,
    OK,
    Item,
    ItemResult,
    Settings,
    cosim_items,
    default_jobs,
)
from t2c_sim.regress.repro import write_bundle
from t2c_sim.regress.results import FAIL, LayerResult, SimOutcome

__all__ = ["cosimulate_layers", "outcome_of", "add_repro", "dut_ops"]

log = logging.getLogger(__name__)

NOT_RUN_NOTE = "not run after a simulator error"


def dut_ops(dut: Dut) -> tuple[OpKind, ...]:
    """The layers a run co-simulates on ``dut``: linear and conv, and the activation x activation
    matmul where the DUT's ``accepts.ops`` lists it (ours: its check then refuses a matmul on a
    build without operand zero points, naming the feature). Other layers run on the golden
    model only."""
    return (*MAC_OPS, OpKind.MATMUL) if OpKind.MATMUL in dut.spec.accepts.ops else MAC_OPS


def add_repro(out: SimOutcome, rec: LayerRecord, hw: HwConfig, sim: str, opts: Any,
              out_dir: Path, dut: Any = None) -> SimOutcome:
    """On a mismatch (and ``opts.repro``), write the repro bundle ``out_dir/repro/<layer>-<sim>``
    (the record with its input and golden results, the DUT, waves of the failing tile)."""
    if out.verdict == FAIL and opts.repro:
        with tool_options(opts.tool_path, opts.verilator_root):
            bundle = write_bundle(out_dir / "repro" / f"{safe_name(rec.name)}-{sim}", rec, hw, sim=sim,
                                  seed=opts.seed, command=opts.command,
                                  mismatch=out.mismatch or {"message": out.message},
                                  build_root=opts.build_root, timeout_s=opts.timeout_s,
                                  dut=dut or default_dut(hw), dut_file=opts.dut,
                                  dut_params=dict(opts.dut_params),
                                  backpressure=opts.backpressure)
        out.repro = str(bundle.folder)
        out.wave = bundle.wave
    return out


def outcome_of(item: Item, res: ItemResult) -> SimOutcome:
    """The :class:`SimOutcome` of an item that ran (``ok``: judged; ``mismatch``: the
    testbench's message; ``error``: the simulator's)."""
    if res.kind == OK:
        return judge(item.rec, item.sim, res.result, res.wall_s)
    verdict = FAIL if res.kind == MISMATCH else "error"
    return SimOutcome(item.sim, verdict, message=res.message, wall_s=res.wall_s)


def _settings(hw: HwConfig, opts: Any, dut: Any) -> Settings:
    return Settings(hw=hw, dut=dut, build_root=str(opts.build_root), timeout_s=opts.timeout_s,
                    waves=bool(opts.waves), tool_path=opts.tool_path,
                    verilator_root=opts.verilator_root,
                    backpressure=tuple(opts.backpressure), seed=opts.seed + 1,
                    fault=getattr(opts, "fault", None),
                    coverage_dir=getattr(opts, "coverage_dir", None))


class _Runner:
    """Runs waves and applies verdicts, repro bundles and the stop rule across them."""

    def __init__(self, hw: HwConfig, opts: Any, out_dir: Path, lrs: dict[str, LayerResult],
                 dut: Any, executor: Any, jobs: int,
                 progress: Callable[[str], None] | None) -> None:
        self.hw, self.opts, self.out_dir, self.lrs, self.dut = hw, opts, out_dir, lrs, dut
        self.executor, self.jobs, self.progress = executor, jobs, progress
        self.settings = _settings(hw, opts, dut)
        self.stopped = False

    def wave(self, items: Sequence[Item]) -> list[ItemResult]:
        """Run ``items`` (report order); record their outcomes; return the results after the
        stop rule (items after the first error: ``not run``)."""
        if self.stopped:
            results = [ItemResult(NOT_RUN) for _ in items]
        else:
            results = cosim_items(items, self.settings, jobs=self.jobs, executor=self.executor,
                                  progress=self.progress)
        out = []
        for it, r in zip(items, results):
            if self.stopped:
                r = ItemResult(NOT_RUN)
            out.append(r)
            if r.kind == NOT_RUN:
                continue
            o = outcome_of(it, r)
            self.lrs[it.rec.name].sims.append(add_repro(o, it.rec, self.hw, it.sim, self.opts,
                                                        self.out_dir, self.dut))
            self.stopped = self.stopped or r.kind == ERROR
        return out


def cosimulate_layers(records: Sequence[LayerRecord], hw: HwConfig, opts: Any,
                      lrs: Sequence[LayerResult], out_dir: Path, *, dut: Any = None,
                      executor: Any = None, progress: Callable[[str], None] | None = None,
                      ) -> dict[str, Any]:
    """Co-simulate the selected MAC layers of ``records`` (golden results attached) on every
    simulator of ``opts`` (a ``RunOptions``), filling each :class:`LayerResult`'s ``sims``
    (and ``chain`` with ``opts.chain``).

    Args:
        records: the network in execution order.
        hw: the array.
        opts: the run's options (simulators, layers, jobs, chain, waves, timeouts, tools).
        lrs: the layer table (one per record, same order); not-run layers get their note.
        out_dir: where repro bundles go.
        dut: the bound DUT (``None``: our accelerator for ``hw``); any DUT runs in parallel
            and chained (layers spread over processes; tile ranges on our accelerator).
        executor: run the units on this executor (e.g. Dask); default a local pool of
            ``opts.jobs`` workers (``None``: the cores), kept for every wave of the run.
        progress: called with ``"<layer> [<sim>]"`` as each item completes.

    Returns:
        The run-level chain summary (``{}`` without ``opts.chain``).
    """
    by_name = {lr.name: lr for lr in lrs}
    dut = dut if dut is not None else default_dut(hw)
    ops = dut_ops(dut)
    selected = [r for r in records if r.op in ops and
                (opts.layers is None or r.name in opts.layers)]
    if not opts.sims or not selected:
        return {}
    jobs = getattr(opts, "jobs", None) or default_jobs()
    own = executor is None and jobs > 1
    ex = LocalExecutor(jobs, keep=True) if own else executor
    runner = _Runner(hw, opts, out_dir, by_name, dut, ex, jobs, progress)
    try:
        if getattr(opts, "chain", False):
            summary = _chained(records, selected, opts.sims, runner)
        else:
            runner.wave([Item(r, s) for r in selected for s in opts.sims])
            summary = {}
    finally:
        if own:
            ex.close()
    for rec in selected:
        lr = by_name[rec.name]
        if not lr.sims:
            lr.skipped, lr.note = True, NOT_RUN_NOTE
    return summary


def _chained(records: Sequence[LayerRecord], selected: Sequence[LayerRecord],
             sims: Sequence[str], runner: _Runner) -> dict[str, Any]:
    """Waves of ready layers, one chain per simulator, until every chain is done."""
    names = {r.name for r in selected}
    order = {r.name: i for i, r in enumerate(records)}
    chains = [Chain(sim, records, set(names)) for sim in sims]
    while not all(ch.done for ch in chains):
        ready = [(rec, ch) for ch in chains for rec in ch.advance()]
        if not ready:
            break
        ready.sort(key=lambda p: (order[p[0].name], sims.index(p[1].sim)))
        results = runner.wave([Item(rec, ch.sim) for rec, ch in ready])
        for (rec, ch), r in zip(ready, results):
            if r.kind != NOT_RUN:  # an error or a flagged difference: no output, chain ends
                ch.feed(rec.name, r.result.y if r.kind == OK else None)
        if runner.stopped:
            break
    for ch in chains:
        for name, st in ch.stats.items():
            lr = runner.lrs.get(name)
            if lr is not None:
                lr.chain = {**(lr.chain or {}), ch.sim: st}
    return chain_summary(chains)
