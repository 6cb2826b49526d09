"""Co-simulate the MAC layers of a run in parallel simulator processes (``-j N``).

:func:`cosim_items` takes a wave of items (a MAC layer record on one simulator, in report
order), plans units (:mod:`t2c_sim.regress.shard`: layers and tile ranges, by the cycle model),
builds each simulator's model ONCE in this process before anything fans out, runs the units on
an executor (:class:`~t2c_sim.regress.executors.LocalExecutor`: a process pool whose workers
each start their own simulator; :class:`~t2c_sim.regress.executors.DaskExecutor`: a cluster),
and merges the parts of each item back in order. With one unit, or ``jobs == 1``, everything
runs in this process.

The outcome of an item does not depend on the number of workers: the cycle counts of a tile do
not depend on which process ran it, a split layer is merged tile by tile, and a unit whose
simulator fails (a hang, error flags, X/Z) or whose testbench flags a difference re-runs its
items one by one, so the error is attributed to the first item that has it, as a run with
one process per layer would. The caller applies the stop rule (:func:`stop_after_error`).

Code coverage (``Settings.coverage_dir``): Verilator models are coverage builds (prebuilt here
like any other), every simulator process keeps its run directory and moves the
``coverage.dat`` it wrote to a file of its own in ``coverage_dir``
(``<first layer>-verilator-<unique>.dat``); the caller merges them
(:mod:`t2c_sim.regress.coverage`). A piece re-run alone after its unit failed leaves its own.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim import estimate
from t2c_sim.closure.codecov import COVERAGE_ARGS
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim.accel import T2cAccelAdapter, sel_run, selection
from t2c_sim.cosim.dut import default_dut
from t2c_sim.cosim.engine import cosimulate
from t2c_sim.cosim.profiles.backdoor import build_backdoor
from t2c_sim.cosim.sim.tools import tool_options
from t2c_sim.errors import MismatchError, SimulationError, T2CError
from t2c_sim.export.iface import MAX_RUNS
from t2c_sim.record import ARRAY_FIELDS, LayerRecord
from t2c_sim.regress.executors import LocalExecutor, map_via_files
from t2c_sim.regress.outcome import LAYERS_SUFFIX, safe_name, take_coverage
from t2c_sim.regress.shard import (
    OUT_COST_S,
    RUN_COST_S,
    START_COST_S,
    Piece,
    Unit,
    Work,
    merge_parts,
    plan_units,
    pool_pays,
    sim_rate,
    units_wanted,
)

__all__ = ["Item", "ItemResult", "Settings", "cosim_items", "default_jobs", "stop_after_error",
           "OK", "MISMATCH", "ERROR", "NOT_RUN"]

log = logging.getLogger(__name__)

OK, MISMATCH, ERROR, NOT_RUN = "ok", "mismatch", "error", "not run"


def default_jobs() -> int:
    """Worker processes by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Item:
    """One MAC layer (its record carries the input ``x_q`` and the golden results of that
    input) to co-simulate on ``sim``."""

    rec: LayerRecord
    sim: str


@dataclass
class ItemResult:
    """What co-simulating an item gave: ``ok`` (``result``, the merged ``CosimResult``),
    ``mismatch`` (the testbench itself flagged a difference: ``message``), ``error`` (the
    simulator could not produce a result: ``message``) or ``not run``."""

    kind: str
    result: Any = None
    message: str = ""
    wall_s: float = 0.0


@dataclass(frozen=True)
class Settings:
    """What every unit of a run shares (picklable: it travels to the workers; a bound DUT is
    re-read and re-bound there).

    Attributes:
        hw: the array the DUT was bound from.
        dut: the bound DUT (``None``: our accelerator for ``hw``).
        build_root, timeout_s, waves, tool_path, verilator_root: as in ``RunOptions``.
        backpressure, seed: stall probabilities and their seed (stream DUTs).
        fault: fault-injection hook (``RunOptions.fault``; our back door only).
        coverage_dir: Verilator runs are coverage builds leaving one coverage file per
            simulator process here (``RunOptions.coverage_dir``); ``None``: none.
    """

    hw: HwConfig
    dut: Any = None
    build_root: str = "build/sim"
    timeout_s: float | None = None
    waves: bool = False
    tool_path: str | None = None
    verilator_root: str | None = None
    backpressure: tuple[int, int] = (0, 0)
    seed: int = 1
    fault: Callable[[Path, dict[str, dict[tuple[int, int], int]]], None] | None = None
    coverage_dir: str | None = None

    def build_args(self, sim: str) -> tuple[str, ...]:
        """Extra build arguments of ``sim`` (coverage flags on a Verilator coverage run)."""
        return COVERAGE_ARGS if self.coverage_dir is not None and sim == "verilator" else ()

    @property
    def bound(self) -> Any:
        return self.dut if self.dut is not None else default_dut(self.hw)

    @property
    def ours(self) -> HwConfig | None:
        """The array, when the DUT is our accelerator on the back door (tiles can be split
        and costed by the cycle model), else ``None``."""
        d = self.bound
        if d.spec.profile == "backdoor" and isinstance(d.adapter, T2cAccelAdapter):
            return d.adapter.hw
        return None


@dataclass(frozen=True)
class _Slim:
    """A record as a unit carries it to a worker: no golden results, and each integer array in
    the narrowest integer type that holds its values (the record's own arrays are ``int64``:
    the weights of ResNet-18's layer4 are 38 MB so, 5 MB in ``int8``). :meth:`load` gives the
    record back with ``int64`` arrays, value for value."""

    rec: LayerRecord  # the record without the arrays below
    arrays: tuple[tuple[str, np.ndarray], ...]

    @classmethod
    def of(cls, rec: LayerRecord, narrow: bool = True) -> _Slim:
        """``narrow=False``: a unit run in this process: the record's own arrays, nothing
        converted or copied."""
        if not narrow:
            same = copy.copy(rec)  # shares the arrays (replace() would copy each one)
            same.y = same.acc = None
            return cls(same, ())
        arrays = tuple((f, _narrow(a)) for f in ARRAY_FIELDS
                       if f not in ("y", "acc") and (a := getattr(rec, f)) is not None)
        return cls(rec.replace(y=None, acc=None, **{f: None for f, _ in arrays}), arrays)

    def load(self) -> LayerRecord:
        if not self.arrays:
            return self.rec
        return self.rec.replace(**dict(self.arrays))  # the record widens them to int64


def _narrow(a: np.ndarray) -> np.ndarray:
    """``a`` in the narrowest of int8/16/32 that holds every value, else as it is."""
    if a.size == 0:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return a.astype(dt)
    return a


@dataclass(frozen=True)
class _Task:
    """One unit for a worker: its pieces as (record without golden results, tiles)."""

    sim: str
    pieces: tuple[tuple[_Slim, tuple[int, ...] | None], ...]
    settings: Settings
    layers: int = 1

    def loaded(self) -> list[tuple[LayerRecord, tuple[int, ...] | None]]:
        return [(s.load(), t) for s, t in self.pieces]


@dataclass
class _PieceOut:
    kind: str
    result: Any = None
    message: str = ""
    wall_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _cosim(task: _Task, pieces: Sequence[tuple[LayerRecord, tuple[int, ...] | None]],
           ) -> list[Any]:
    """Co-simulate ``pieces`` in one simulator process (the one call into :mod:`t2c_sim.cosim`)."""
    st = task.settings
    tiles = [None if t is None else list(t) for _, t in pieces]
    timeout = None if st.timeout_s is None else st.timeout_s * max(1, len(pieces))
    mutate = None
    hw = st.ours
    if st.fault is not None and hw is not None:
        runs = _layer_runs(pieces, hw)

        def mutate(run_dir: Path) -> None:
            st.fault(run_dir, runs)

    cov = bool(st.build_args(task.sim))
    res = cosimulate(st.bound, [(rec, None) for rec, _ in pieces], task.sim,
                     build_root=st.build_root, waves=st.waves,
                     tiles=None if all(t is None for t in tiles) else tiles,
                     timeout_s=timeout, mutate=mutate, backpressure=st.backpressure,
                     seed=st.seed, keep=cov, build_args=st.build_args(task.sim))
    if cov:
        _take_coverage(res, [rec.name for rec, _ in pieces], st, task.sim)
    return res


def _take_coverage(results: Sequence[Any], names: Sequence[str], st: Settings, sim: str) -> None:
    """Move the ``coverage.dat`` of each run directory of ``results`` (one simulator process)
    into a file of its own in ``st.coverage_dir`` (unique across processes and re-runs), with
    the layers it ran beside it (``<file>.layers``, one name a line: only a file whose layers
    all passed is merged); remove the directory unless waves live there."""
    groups: dict[Any, list[str]] = {}
    for r, name in zip(results, names):
        groups.setdefault(r.run_dir, []).append(name)
    for rd, layers in groups.items():
        fd, dest = tempfile.mkstemp(prefix=f"{safe_name(layers[0])}-{sim}-", suffix=".dat",
                                    dir=_mkdir(st.coverage_dir))
        os.close(fd)
        take_coverage(rd, Path(dest), keep_dir=st.waves)
        Path(dest).with_suffix(LAYERS_SUFFIX).write_text("".join(f"{n}\n" for n in layers),
                                                         encoding="utf-8")
        if not st.waves:
            for r in results:
                if r.run_dir == rd:
                    r.run_dir = None


def _layer_runs(pieces: Sequence[tuple[LayerRecord, tuple[int, ...] | None]], hw: HwConfig,
                ) -> dict[str, dict[tuple[int, int], int]]:
    """``{layer: {(tile, chunk): run number}}`` of the runs in one simulator process running
    ``pieces`` (only the selected tiles' runs, numbered in layer order, tile by tile, each
    tile's K-chunks in order: :func:`t2c_sim.cosim.accel.sel_run`)."""
    out, base = {}, 0
    for rec, tiles in pieces:
        plan = estimate.tile_plan(rec, hw)
        sel = selection(plan, tiles)
        out[rec.name] = {(t, c): base + sel_run(plan, k, c)
                         for k, t in enumerate(sel) for c in range(len(plan.chunks))}
        base += len(sel) * len(plan.chunks)
    return out


def run_task(task: _Task) -> list[_PieceOut]:
    """Worker entry (module level: pools and Dask pickle it): run one unit, one result per
    piece. On a simulator error or a flagged difference with several pieces, re-run them one
    by one: pieces before the failing one keep their results, a flagged difference does not
    stop the others, an error does (the pieces after it are ``not run``)."""
    pieces = task.loaded()
    with tool_options(task.settings.tool_path, task.settings.verilator_root):
        t0 = time.perf_counter()
        try:
            res = _cosim(task, pieces)
            wall = time.perf_counter() - t0
            return [_PieceOut(OK, r, wall_s=wall / len(res)) for r in res]
        except MismatchError as e:
            if len(pieces) == 1:
                return [_PieceOut(MISMATCH, message=str(e), wall_s=time.perf_counter() - t0)]
        except SimulationError as e:
            if len(pieces) == 1:
                return [_PieceOut(ERROR, message=str(e), wall_s=time.perf_counter() - t0)]
        log.info("unit of %d pieces on %s failed: re-running them one by one", len(pieces),
                 task.sim)
        out: list[_PieceOut] = []
        stopped = False
        for piece in pieces:
            if stopped:
                out.append(_PieceOut(NOT_RUN))
                continue
            t1 = time.perf_counter()
            try:
                out.append(_PieceOut(OK, _cosim(task, [piece])[0],
                                     wall_s=time.perf_counter() - t1))
            except MismatchError as e:
                out.append(_PieceOut(MISMATCH, message=str(e), wall_s=time.perf_counter() - t1))
            except SimulationError as e:
                out.append(_PieceOut(ERROR, message=str(e), wall_s=time.perf_counter() - t1))
                stopped = True
        return out


def work_of(item: Item, settings: Settings, split: bool) -> Work:
    """The cost of an item (see :mod:`t2c_sim.regress.shard`): on our accelerator the cycle
    model per tile (tiles can be split); on another DUT its cycle model (or the MACs) for the
    whole layer."""
    hw = settings.ours
    if hw is None:
        try:
            cyc = settings.bound.layer_cycles(item.rec)
        except T2CError:
            cyc = None
        pes = int(settings.bound.params.get("ROWS", 8)) * int(settings.bound.params.get("COLS", 8))
        cost = (cyc if cyc else max(1, item.rec.macs())) / sim_rate(item.sim, pes)
        outs = item.rec.y.size if item.rec.y is not None else 0
        return Work(item.sim, cost=cost + RUN_COST_S + outs * OUT_COST_S)
    rate = sim_rate(item.sim, hw.rows * hw.cols)
    try:
        plan = estimate.tile_plan(item.rec, hw)
    except T2CError:
        return Work(item.sim, cost=1.0)
    nk = len(plan.chunks)
    costs = tuple(sum(estimate.tile_cycles(t, gs, hw, last=ci == nk - 1)
                      for ci, (_, gs) in enumerate(plan.chunks)) / rate + nk * RUN_COST_S
                  + t.rows * t.cols * OUT_COST_S for t in plan.tiles)
    runs = (nk,) * len(plan.tiles)
    if not split:
        return Work(item.sim, cost=sum(costs), runs=sum(runs))
    return Work(item.sim, cost=sum(costs), runs=sum(runs), tile_costs=costs, tile_runs=runs)


def prebuild(sims: Sequence[str], settings: Settings) -> dict[str, str]:
    """Build each simulator's model here, once, before any worker starts (workers then reuse
    it; two processes never build the same model). Returns ``{sim: message}`` of the builds
    that failed."""
    failed: dict[str, str] = {}
    dut = settings.bound
    if dut.spec.profile != "backdoor":  # a generated harness is sized by the layers it runs:
        return failed                   # built by the first unit, the others wait on its lock
    with tool_options(settings.tool_path, settings.verilator_root):
        for sim in dict.fromkeys(sims):
            try:
                build_backdoor(dut, sim, settings.build_root, waves=settings.waves,
                               build_args=settings.build_args(sim))
            except SimulationError as e:
                failed[sim] = str(e)
    return failed


def cosim_items(items: Sequence[Item], settings: Settings, *, jobs: int = 1,
                executor: Any = None, progress: Callable[[str], None] | None = None,
                ) -> list[ItemResult]:
    """Co-simulate ``items`` over ``jobs`` processes (or ``executor``); results in item order.

    A build that fails is the error of the first item on that simulator; the items after it
    are not run (the stop rule), the ones before it run.

    Args:
        items: the wave's items in report order.
        settings: array, build cache, timeouts, waves, tool options.
        jobs: worker processes (1: this process).
        executor: an executor to run the units on (``map_unordered``); default a
            :class:`LocalExecutor` of ``jobs`` workers, created and closed here.
        progress: called with ``"<layer> [<sim>]"`` as each item completes.

    Raises:
        KeyboardInterrupt: after the workers were stopped (their simulators with them).
    """
    if not items:
        return []
    failed = prebuild([it.sim for it in items], settings)
    first_bad = next((i for i, it in enumerate(items) if it.sim in failed), len(items))
    out = _run(items[:first_bad], settings, jobs, executor, progress)
    if first_bad < len(items):
        out.append(ItemResult(ERROR, message=failed[items[first_bad].sim]))
        out += [ItemResult(NOT_RUN) for _ in items[first_bad + 1:]]
    return out


def _run(items: Sequence[Item], settings: Settings, jobs: int, executor: Any,
         progress: Callable[[str], None] | None) -> list[ItemResult]:
    if not items:
        return []
    split = not settings.waves and settings.ours is not None
    work = [work_of(it, settings, split) for it in items]
    workers = jobs if executor is None else max(jobs, 1)
    total = sum(w.cost for w in work)
    per_item = settings.waves or any(settings.backpressure) or settings.ours is None
    local = executor is None or isinstance(executor, LocalExecutor)
    if not per_item and local and not pool_pays(total, workers):
        # our self-sequenced back door, cut by cost: a local pool's workers would take longer
        # to start than they save (a process per item through cocotb is never run here instead)
        workers = 1
    n_units = 1 if workers <= 1 else units_wanted(total, workers, START_COST_S)
    if per_item:
        # one layer per process, never split: one wave file per layer; seeded stall patterns
        # and generated harnesses as a run with one process per layer has them
        units = [Unit(it.sim, (Piece(i),)) for i, it in enumerate(items)]
    else:
        units = plan_units(work, n_units, max_runs=MAX_RUNS, split=split)
    here = len(units) == 1 or (workers <= 1 and local)
    tasks = [_Task(u.sim, tuple((_Slim.of(items[p.item].rec, narrow=not here), p.tiles)
                                for p in u.pieces), settings, len(u.pieces)) for u in units]
    unit_of = {id(t): u for u, t in zip(units, tasks)}
    parts: dict[int, list[tuple[tuple[int, ...] | None, _PieceOut]]] = {}
    left = {i: sum(1 for u in units for p in u.pieces if p.item == i) for i in range(len(items))}

    def take(u: Unit, outs: list[_PieceOut]) -> None:
        for p, o in zip(u.pieces, outs):
            parts.setdefault(p.item, []).append((p.tiles, o))
            left[p.item] -= 1
            if left[p.item] == 0 and progress:
                progress(f"{items[p.item].rec.name} [{items[p.item].sim}]")

    if here:
        for u, t in zip(units, tasks):
            take(u, run_task(t))
    else:
        own = executor is None
        ex = LocalExecutor(min(jobs, len(tasks))) if own else executor
        try:  # a local pool gets each unit as a small file (executors.map_via_files)
            for t, outs in map_via_files(ex, run_task, tasks, settings.build_root):
                if isinstance(outs, BaseException):  # the executor lost the unit
                    outs = [_PieceOut(ERROR, message=f"executor: {type(outs).__name__}: {outs}")
                            for _ in unit_of[id(t)].pieces]
                take(unit_of[id(t)], outs)
        finally:
            if own:
                ex.close()
    return [_merge(items[i], parts.get(i, [])) for i in range(len(items))]


def _mkdir(p: str) -> Path:
    out = Path(p)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _merge(item: Item, parts: list[tuple[tuple[int, ...] | None, _PieceOut]]) -> ItemResult:
    """One item's result from its parts: the first part (in tile order) that failed decides,
    as the first failing tile decides in one process; else the merged outputs."""
    if not parts:
        return ItemResult(NOT_RUN)
    parts.sort(key=lambda p: -1 if p[0] is None else p[0][0])
    wall = sum(o.wall_s for _, o in parts)
    bad = next((o for _, o in parts if o.kind != OK), None)
    if bad is not None:
        return ItemResult(bad.kind, message=bad.message, wall_s=wall)
    res = merge_parts([o.result for _, o in parts], item.rec.c_out,
                      matmul=item.rec.op is OpKind.MATMUL)
    return ItemResult(OK, res, wall_s=wall)


def stop_after_error(results: list[ItemResult]) -> list[ItemResult]:
    """The stop rule of a run: after the first item (in report order) whose simulator failed,
    every later item is ``not run``, whatever it produced."""
    out = []
    stopped = False
    for r in results:
        out.append(ItemResult(NOT_RUN) if stopped else r)
        stopped = stopped or r.kind == ERROR
    return out
