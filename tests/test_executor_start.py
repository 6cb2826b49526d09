"""LocalExecutor.start: pool workers spawned (and their imports done) before the first map.

``t2c-sim regress -j N`` starts its workers while it loads and checks the suite; these tests pin
what that must mean: the workers exist right after ``start``, the first map runs on them with the
preloaded modules already imported, and nothing is left running when no map uses them (a map of
one item, ``close``, or a suite that fails to load).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from t2c_sim.cli import main
from t2c_sim.regress.executors import LocalExecutor

# a standard-library module that a fresh interpreter does not import by itself
PRELOAD = "xml.dom.minidom"


def _worker_view(_item: int) -> tuple[int, bool]:
    return os.getpid(), PRELOAD in sys.modules


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def test_started_workers_run_the_first_map_with_their_modules_imported():
    before = _children()
    ex = LocalExecutor(2)
    try:
        ex.start(8, preload=(PRELOAD,))
        started = _children() - before
        assert len(started) == 2  # min(workers, n), spawned now, not at the first submit
        out = [res for _it, res in ex.map_unordered(_worker_view, list(range(6)))]
    finally:
        ex.close()
    assert {pid for pid, _ in out} <= started  # the map ran on the started workers
    assert all(loaded for _, loaded in out)
    assert _children() - before == set()


def test_a_map_without_start_does_not_preload():
    ex = LocalExecutor(2)
    try:
        out = [res for _it, res in ex.map_unordered(_worker_view, [0, 1])]
    finally:
        ex.close()
    assert not any(loaded for _, loaded in out)  # the check above can fail


def test_unused_workers_are_stopped_by_close_and_by_a_one_item_map():
    before = _children()
    ex = LocalExecutor(2)
    ex.start(4)
    assert len(_children() - before) == 2
    ex.close()
    assert _children() - before == set()

    ex = LocalExecutor(2)
    ex.start(4)
    try:
        out = [res for _it, res in ex.map_unordered(_worker_view, [0])]
        assert out[0][0] == os.getpid()  # one item runs here
        assert _children() - before == set()  # and the idle workers are gone
    finally:
        ex.close()


def test_one_worker_or_one_item_starts_nothing():
    before = _children()
    ex = LocalExecutor(1)
    ex.start(8)
    ex2 = LocalExecutor(4)
    ex2.start(1)
    assert _children() - before == set()
    ex.close()
    ex2.close()


def test_regress_with_a_bad_suite_leaves_no_worker_behind(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\njobs: [\n")
    before = _children()
    code = main(["regress", str(bad), "-j", "2", "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml" in err[0]
    assert _children() - before == set()
    assert not (tmp_path / "o").exists()
