"""Spread the co-simulation of a run over simulator processes: plan the units, merge the parts.

Plan, then execute (:mod:`t2c_sim.regress.parallel` executes):

* an *item* is one MAC layer on one simulator; the items of a wave are in report order (layer,
  then simulator), each with the cost of each of its tiles (the cycle model) when the DUT's
  tiles can run separately, else one cost for the whole layer;
* :func:`plan_units` cuts each simulator's items, in order, into *units*: consecutive pieces of
  work that ONE simulator process runs (a piece is a whole layer or a contiguous range of its
  tiles). Cuts fall where the accumulated cost reaches the total over the number of units
  wanted (so a large layer is split into tile ranges and small layers share a process and its
  start-up), and before a unit would hold more runs than the harness's plan (a piece holds
  the runs of its own tiles only: a layer with more runs than one process holds is cut into
  tile ranges that fit, whatever the number of units wanted);
* :func:`merge_parts` puts the parts of a split layer back together: each part's outputs
  inside its own tiles (a part never writes outside them), tiles in plan order.

The plan depends only on the costs, the number of units and the limits, never on timing, so
a run's results do not depend on how many workers executed it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError, SimulationError

__all__ = ["Work", "Piece", "Unit", "plan_units", "units_wanted", "merge_parts", "START_COST_S",
           "RUN_COST_S", "OUT_COST_S", "POOL_START_S", "sim_rate", "pool_pays", "pool_start_s"]

#: Wall seconds of one simulator process start: our back-door harness runs without cocotb
#: (the model's own main, the plan read by the harness), ~0.05 s, plus a worker's unit set-up
#: (the task file, operand files); a DUT started through cocotb costs ~0.5 s idle, ~1 s loaded.
START_COST_S = 0.2
#: Host and harness seconds per accelerator run (operand files, ``$readmemh``, dumps).
RUN_COST_S = 4.3e-4
#: Host seconds per output value of a run (its dump parsed, placed and compared).
OUT_COST_S = 4.4e-7


def sim_rate(sim: str, pes: int) -> float:
    """Simulated cycles per second of a ``pes``-PE array (the cost model's unit; a rough rate
    is enough: it only weighs units against each other).

    Verilator: 0.38 us a cycle plus 0.0134 us a PE (~0.8M cycles/s at 8x8, ~1.7M at 4x4);
    with :data:`RUN_COST_S` and :data:`OUT_COST_S`, fitted on the 21 MAC layers of a CIFAR
    ResNet-18 on the 8x8 and the 4x4 2:4 arrays (42 layer runs of 0.1-6.5 s: rms 0.16 s).
    Icarus, event-driven, ~26k cycles/s at 8x8, taken as proportional to the PEs."""
    if sim == "verilator":
        return 1.0 / (0.38e-6 + 0.0134e-6 * max(1, pes))
    return 1.6e6 / max(1, pes)


@dataclass(frozen=True)
class Work:
    """One item to co-simulate: a layer on a simulator, and what it costs.

    Attributes:
        sim: simulator.
        tile_costs: estimated seconds of each tile (its runs), in plan order; ``None`` when
            the layer runs only whole (another DUT, waves, back-pressure).
        tile_runs: harness runs of each tile (K-chunks), in plan order (with ``tile_costs``).
        cost: estimated seconds of the whole layer.
        runs: harness runs of the whole layer.
    """

    sim: str
    cost: float
    runs: int = 1
    tile_costs: tuple[float, ...] | None = None
    tile_runs: tuple[int, ...] | None = None

    @property
    def splittable(self) -> bool:
        return self.tile_costs is not None and len(self.tile_costs) > 1


@dataclass(frozen=True)
class Piece:
    """Part of one item in a unit: the item's index in the wave and its tiles (``None``: all)."""

    item: int
    tiles: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Unit:
    """What one simulator process runs: pieces of items on one simulator, in wave order."""

    sim: str
    pieces: tuple[Piece, ...]
    cost: float = 0.0
    runs: int = 0

    @property
    def first(self) -> int:
        return self.pieces[0].item


@dataclass
class _Open:
    sim: str
    pieces: list[Piece] = field(default_factory=list)
    cost: float = 0.0
    runs: int = 0


#: Wall seconds to start a local pool's worker (a spawned Python importing numpy and t2c_sim):
#: measured ~0.3 s idle, ~0.6 s loaded. ``T2C_POOL_START_S`` overrides it (the test suite sets 0
#: so that its small networks still go through the pool).
POOL_START_S = 0.5


def pool_pays(total_cost: float, workers: int) -> bool:
    """Whether spreading ``total_cost`` estimated seconds over ``workers`` new processes beats
    running them here: the time saved, ``total_cost * (1 - 1/workers)``, must exceed a worker's
    start (a layer of a second on 2 cores: no; the 17.6M-cycle CIFAR ResNet-18: yes)."""
    return workers > 1 and total_cost * (1 - 1 / workers) > pool_start_s()


def pool_start_s() -> float:
    """A worker's start in seconds: ``T2C_POOL_START_S`` if set (0 to 3600), else
    :data:`POOL_START_S`.

    Raises:
        ConfigError: the variable is not a number of seconds in that range.
    """
    raw = os.environ.get("T2C_POOL_START_S")
    if raw is None:
        return POOL_START_S
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not 0.0 <= v <= 3600.0:  # also refuses nan and inf
        raise ConfigError(f"expected seconds from 0 to 3600, got {raw!r}",
                          key="environment variable T2C_POOL_START_S")
    return v


def units_wanted(total_cost: float, workers: int, start_cost: float = START_COST_S) -> int:
    """How many units to cut ``total_cost`` seconds of work into for ``workers`` processes.

    One per worker, two when the work is long enough that a second start-up per worker costs
    less than the imbalance it absorbs (a unit finishing early leaves its worker idle).
    """
    if workers <= 1:
        return 1
    return workers * (2 if total_cost > 40 * start_cost * workers else 1)


def plan_units(work: Sequence[Work], n_units: int, *, max_runs: int,
               split: bool = True) -> list[Unit]:
    """Cut the items of ``work`` (in order) into about ``n_units`` units (see the module doc).

    Args:
        work: the wave's items in report order.
        n_units: units wanted in total (:func:`units_wanted`); 1 runs each simulator's items in
            as few processes as the run limit allows.
        max_runs: harness runs one simulator process holds.
        split: allow splitting a layer into tile ranges.

    Returns:
        Units in order of their first item (then simulator); every tile of every item is in
        exactly one unit.

    Raises:
        SimulationError: one tile needs more runs than a process holds (a plan bug).
    """
    if not work:
        return []
    target = sum(w.cost for w in work) / max(1, n_units)
    units: list[Unit] = []
    for sim in dict.fromkeys(w.sim for w in work):
        units += _cut(sim, work, target, n_units, max_runs, split)
    units.sort(key=lambda u: (u.first, u.pieces[0].tiles[0] if u.pieces[0].tiles else -1))
    return units


def _cut(sim: str, work: Sequence[Work], target: float, n_units: int, max_runs: int,
         split: bool) -> list[Unit]:
    """The units of one simulator's items (see :func:`plan_units`).

    A unit's runs count the runs of the tiles its pieces select (the harness holds only
    those); a unit is closed before it would exceed ``max_runs``.
    """
    units: list[Unit] = []
    cur = _Open(sim)

    def close() -> None:
        nonlocal cur
        if cur.pieces:
            units.append(Unit(sim, tuple(cur.pieces), cur.cost, cur.runs))
        cur = _Open(sim)

    for i, w in enumerate(work):
        if w.sim != sim:
            continue
        splits = split and w.splittable
        if w.runs > max_runs and not splits:
            raise SimulationError(f"one layer needs {w.runs} runs, more than the {max_runs} one "
                                  "simulator process holds, and its tiles cannot run apart")
        if cur.pieces and not splits and (cur.runs + w.runs > max_runs or
                                          (n_units > 1 and cur.cost + w.cost / 2 > target)):
            close()
        if not splits:
            cur.runs += w.runs
            cur.pieces.append(Piece(i))
            cur.cost += w.cost
            continue
        tiles: list[int] = []
        costs = w.tile_costs or ()
        runs = w.tile_runs or (1,) * len(costs)
        for t, (c, r) in enumerate(zip(costs, runs)):
            if r > max_runs:
                raise SimulationError(f"one tile needs {r} runs, more than the {max_runs} one "
                                      "simulator process holds")
            full = cur.runs + r > max_runs
            if full or (n_units > 1 and cur.cost > 0 and cur.cost + c / 2 > target):
                if tiles:
                    cur.pieces.append(Piece(i, tuple(tiles)))
                    tiles = []
                close()
            tiles.append(t)
            cur.cost += c
            cur.runs += r
        if tiles:
            cur.pieces.append(Piece(i, None if len(tiles) == len(costs) else tuple(tiles)))
    close()
    return units


def _region(y: np.ndarray, c_out: int, matmul: bool = False) -> np.ndarray:
    """Outputs in the GEMM's ``[P, columns]`` view (a matmul ``[*lead, P, C]``: ``[P, lead*C]``,
    leading index ``g`` at columns ``g*C ..``, as its tiles are planned)."""
    a = np.asarray(y)
    if matmul and a.ndim >= 2:
        p = a.shape[-2]
        return np.ascontiguousarray(a.reshape(-1, p, c_out).transpose(1, 0, 2)).reshape(p, -1)
    return a.reshape(-1, c_out)


def _unregion(a: np.ndarray, shape: tuple[int, ...], c_out: int, matmul: bool) -> np.ndarray:
    """The inverse of :func:`_region`."""
    if matmul and len(shape) >= 2:
        p = shape[-2]
        return np.ascontiguousarray(a.reshape(p, -1, c_out).transpose(1, 0, 2)).reshape(shape)
    return a.reshape(shape)


def merge_parts(parts: Sequence[Any], c_out: int, matmul: bool = False) -> Any:
    """One result from the results of a layer's tile ranges (``CosimResult``-like objects).

    ``y`` and ``acc`` take each part's values inside that part's tiles (``p0, rows, c0, cols``
    in the GEMM's ``[P, C_out]`` view; a matmul's ``[P, lead x C]``); tiles are listed in plan
    order; cycles and wall times add up. A single part is returned as it is.
    """
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    y = np.zeros_like(_region(first.y, c_out, matmul))
    has_acc = all(p.acc is not None for p in parts)
    acc = np.zeros_like(_region(first.acc, c_out, matmul)) if has_acc else None
    tiles = []
    for p in parts:
        py = _region(p.y, c_out, matmul)
        pa = _region(p.acc, c_out, matmul) if has_acc else None
        for t in p.tiles:
            rs, cs = slice(t.p0, t.p0 + t.rows), slice(t.c0, t.c0 + t.cols)
            y[rs, cs] = py[rs, cs]
            if acc is not None:
                acc[rs, cs] = pa[rs, cs]
            tiles.append(t)
    tiles.sort(key=lambda t: t.index)
    shape = np.shape(first.y)
    extra = dict(first.extra)
    extra["parts"] = float(len(parts))
    return replace(first, y=_unregion(y, shape, c_out, matmul),
                   acc=None if acc is None else _unregion(acc, shape, c_out, matmul),
                   cycles=sum(p.cycles for p in parts), tiles=tiles,
                   wall_s=sum(p.wall_s for p in parts), prep_s=sum(p.prep_s for p in parts),
                   build_s=max(p.build_s for p in parts), run_dir=first.run_dir, extra=extra)
