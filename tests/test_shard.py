"""Planning units of parallel co-simulation and merging a split layer (regress/shard.py).

Oracles: the partition is checked tile by tile against the items (every tile exactly once,
one simulator per unit, order kept, the run limit held), the balance against the largest
piece of work, and the merge against a layer rebuilt independently from its tile regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from t2c_sim.errors import SimulationError
from t2c_sim.regress.shard import Piece, Unit, Work, merge_parts, plan_units, units_wanted


def _w(sim: str, costs: list[float] | None, runs: list[int] | None = None,
       cost: float | None = None) -> Work:
    if costs is None:
        return Work(sim, cost=cost or 1.0, runs=1)
    runs = runs or [1] * len(costs)
    return Work(sim, cost=sum(costs), runs=sum(runs), tile_costs=tuple(costs),
                tile_runs=tuple(runs))


def _coverage(work: list[Work], units: list[Unit]) -> dict[tuple[int, int], int]:
    seen: dict[tuple[int, int], int] = {}
    for u in units:
        for p in u.pieces:
            n = len(work[p.item].tile_costs or (0,))
            for t in (p.tiles if p.tiles is not None else range(n)):
                seen[(p.item, t)] = seen.get((p.item, t), 0) + 1
    return seen


def check_partition(work: list[Work], units: list[Unit], max_runs: int) -> None:
    want = {(i, t) for i, w in enumerate(work) for t in range(len(w.tile_costs or (0,)))}
    seen = _coverage(work, units)
    assert set(seen) == want and set(seen.values()) == {1}
    for u in units:
        assert {work[p.item].sim for p in u.pieces} == {u.sim}
        runs = 0
        for p in u.pieces:
            w = work[p.item]
            # a piece holds the runs of its own tiles only (the harness numbers the selection)
            if w.tile_runs is None:
                runs += w.runs
            else:
                tiles = range(len(w.tile_runs)) if p.tiles is None else p.tiles
                runs += sum(w.tile_runs[t] for t in tiles)
            if p.tiles is not None:  # contiguous tile ranges, in order
                assert list(p.tiles) == list(range(p.tiles[0], p.tiles[-1] + 1))
        assert runs <= max_runs
        items = [p.item for p in u.pieces]
        assert items == sorted(items)
    firsts = [(u.first, u.pieces[0].tiles[0] if u.pieces[0].tiles else -1) for u in units]
    assert firsts == sorted(firsts)


PLAN_CASES = [  # (id, work, n_units, max_runs, split, expected units or None)
    ("one-unit", [_w("v", [1, 1]), _w("v", None, cost=3)], 1, 100, True, 1),
    ("two-even-layers", [_w("v", None, cost=5), _w("v", None, cost=5)], 2, 100, True, 2),
    ("big-layer-split", [_w("v", [1.0] * 10)], 2, 100, True, 2),
    ("big-layer-no-split", [_w("v", [1.0] * 10)], 2, 100, False, 1),
    ("uneven", [_w("v", [3, 3, 3, 3]), _w("v", None, cost=1), _w("v", [1, 1])], 2, 100, True,
     2),
    ("run-limit", [_w("v", [1, 1], runs=[3, 3]), _w("v", [1], runs=[3]),
                   _w("v", None, cost=1), _w("v", [1, 1], runs=[2, 2])], 1, 7, True, 3),
    ("run-limit-each", [_w("v", [1] * 3, runs=[2] * 3) for _ in range(4)], 1, 6, True, 4),
    ("k-chunks", [_w("v", [2, 2, 2], runs=[4, 4, 4])], 2, 12, True, 2),
    # a layer with more runs than a process holds (VGG-11's fc1: 50,176) is cut into tile
    # ranges that fit, even when one unit is wanted
    ("layer-beyond-the-limit", [_w("v", [1] * 10, runs=[3] * 10)], 1, 8, True, 5),
    ("beyond-the-limit-after-others", [_w("v", None, cost=1), _w("v", [1] * 4, runs=[4] * 4),
                                      _w("v", None, cost=1)], 1, 8, True, 3),
    ("two-sims", [_w("v", [1, 1]), _w("i", [5, 5]), _w("v", [1, 1]), _w("i", [5, 5])], 2,
     100, True, None),
    ("many-small", [_w("v", None, cost=0.1) for _ in range(30)], 4, 100, True, 4),
    ("one-tile-layers", [_w("v", [2.0]), _w("v", [2.0]), _w("v", [2.0])], 3, 100, True, 3),
]


@pytest.mark.parametrize("cid,work,n,max_runs,split,want", PLAN_CASES,
                         ids=[c[0] for c in PLAN_CASES])
def test_plan_partitions_the_work(cid, work, n, max_runs, split, want) -> None:
    units = plan_units(work, n, max_runs=max_runs, split=split)
    check_partition(work, units, max_runs)
    if want is not None:
        assert len(units) == want
    if split and n > 1 and len({w.sim for w in work}) == 1:
        # balance: no unit exceeds the even share by more than its largest tile / layer
        share = sum(w.cost for w in work) / n
        biggest = max(max(w.tile_costs) if w.tile_costs else w.cost for w in work)
        assert max(u.cost for u in units) <= share + biggest


def test_plan_is_deterministic_and_independent_of_timing() -> None:
    work = [_w("v", [float(i % 5 + 1) for i in range(40)]), _w("v", None, cost=7)]
    assert plan_units(work, 4, max_runs=1000) == plan_units(list(work), 4, max_runs=1000)


@pytest.mark.parametrize("work,split,text", [
    ([_w("v", [1, 1], runs=[2, 9])], True, "one tile needs 9 runs, more than the 8"),
    ([_w("v", [1, 1], runs=[5, 5])], False, "one layer needs 10 runs, more than the 8"),
    ([Work("v", cost=1.0, runs=9)], True, "one layer needs 9 runs, more than the 8"),
], ids=["one-tile-too-long", "no-split", "whole-only"])
def test_what_cannot_fit_a_process_is_refused(work, split, text) -> None:
    with pytest.raises(SimulationError, match=text):
        plan_units(work, 1, max_runs=8, split=split)


@pytest.mark.parametrize("total,workers,want", [(10.0, 1, 1), (10.0, 2, 2), (1000.0, 2, 4),
                                                (1000.0, 1, 1), (5.0, 8, 8)])
def test_units_wanted(total: float, workers: int, want: int) -> None:
    assert units_wanted(total, workers, start_cost=1.0) == want


# ------------------------------------------------------------------------------ merge
@dataclass(frozen=True)
class _T:
    index: int
    p0: int
    rows: int
    c0: int
    cols: int


@dataclass(frozen=True)
class _R:
    y: np.ndarray
    acc: np.ndarray | None
    tiles: list
    cycles: int
    wall_s: float = 1.0
    prep_s: float = 0.5
    build_s: float = 0.0
    run_dir: object = None
    extra: dict = field(default_factory=dict)


MERGE_CASES = [  # (P, C_out, row tile, col tile, parts as lists of tile indices)
    (10, 6, 4, 3, [[0, 1, 2], [3, 4, 5]]),
    (10, 6, 4, 3, [[0], [1, 2, 3, 4], [5]]),
    (7, 5, 7, 5, [[0]]),
    (9, 8, 2, 8, [[0, 1], [2], [3, 4]]),
]


@pytest.mark.parametrize("p,c,pt,ct,parts", MERGE_CASES)
def test_merge_rebuilds_the_layer_from_its_tile_ranges(p, c, pt, ct, parts) -> None:
    rng = np.random.default_rng(p * c)
    truth = rng.integers(-100, 100, size=(2, p, c))  # y and acc of the whole layer
    tiles = [_T(len(t), p0, min(pt, p - p0), c0, min(ct, c - c0))
             for t in [[]] for c0 in range(0, c, ct) for p0 in range(0, p, pt)]
    tiles = [_T(i, t.p0, t.rows, t.c0, t.cols) for i, t in enumerate(tiles)]
    assert sorted(i for part in parts for i in part) == list(range(len(tiles)))
    results = []
    for part in parts:  # each part: its own tiles right, garbage elsewhere
        y = rng.integers(-9, 9, size=(p, c))
        a = rng.integers(-9, 9, size=(p, c))
        for i in part:
            t = tiles[i]
            y[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = truth[0, t.p0:t.p0 + t.rows,
                                                               t.c0:t.c0 + t.cols]
            a[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = truth[1, t.p0:t.p0 + t.rows,
                                                               t.c0:t.c0 + t.cols]
        results.append(_R(y.reshape(1, p, c), a.reshape(1, p, c), [tiles[i] for i in part],
                          cycles=10 * len(part)))
    m = merge_parts(results, c)
    if len(parts) == 1:
        assert m is results[0]
        return
    assert np.array_equal(m.y.reshape(p, c), truth[0]) and m.y.shape == (1, p, c)
    assert np.array_equal(m.acc.reshape(p, c), truth[1])
    assert [t.index for t in m.tiles] == list(range(len(tiles)))
    assert m.cycles == 10 * len(tiles)


def test_merge_detects_a_part_that_lost_its_region() -> None:
    """The merge is not a sum: a part's garbage outside its tiles never leaks in (mutant)."""
    t0, t1 = _T(0, 0, 2, 0, 2), _T(1, 2, 2, 0, 2)
    y0 = np.array([[1, 1], [1, 1], [7, 7], [7, 7]])
    y1 = np.array([[5, 5], [5, 5], [2, 2], [2, 2]])
    m = merge_parts([_R(y0, None, [t0], 1), _R(y1, None, [t1], 1)], 2)
    assert np.array_equal(m.y, [[1, 1], [1, 1], [2, 2], [2, 2]]) and m.acc is None
    assert Piece(0) == Piece(0, None)


@pytest.mark.parametrize("cost, workers, start, pays", [
    (0.96, 2, None, False),   # the bench layer (one second) on 2 cores: the pool costs more
    (37.0, 2, None, True),    # the CIFAR ResNet-18 at batch 8
    (1.2, 2, None, True),     # saves 0.6 s > 0.5 s
    (1.0, 2, None, False),    # saves exactly 0.5 s: not more than a worker's start
    (0.8, 4, None, True),     # saves 0.6 s on 4 workers
    (100.0, 1, None, False),  # one worker: never a pool
    (0.01, 2, "0", True),     # the test session's setting: any work goes through the pool
])
def test_the_pool_runs_only_when_it_pays(monkeypatch, cost: float, workers: int,
                                         start: str | None, pays: bool) -> None:
    from t2c_sim.regress.shard import pool_pays

    if start is None:
        monkeypatch.delenv("T2C_POOL_START_S", raising=False)
    else:
        monkeypatch.setenv("T2C_POOL_START_S", start)
    assert pool_pays(cost, workers) is pays


@pytest.mark.parametrize("raw", ["abc", "", "nan", "inf", "-1", "3601", "1e9"])
def test_a_bad_pool_start_is_refused_naming_the_variable(monkeypatch, raw: str) -> None:
    from t2c_sim.errors import ConfigError
    from t2c_sim.regress.shard import pool_pays

    monkeypatch.setenv("T2C_POOL_START_S", raw)
    with pytest.raises(ConfigError, match=r"T2C_POOL_START_S.*expected seconds from 0 to 3600"):
        pool_pays(10.0, 2)
