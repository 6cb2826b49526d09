"""LocalExecutor.start: pool workers started (and their imports done) before the first map.

``t2c-sim regress -j N`` starts its workers while it loads and checks the suite; these tests pin
what that must mean: the workers exist right after ``start``, the first map runs on them with the
preloaded modules already imported, and nothing is left running when no map uses them (a map of
one item, ``close``, or a suite that fails to load).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2c_sim.cli import main
from t2c_sim.regress import executors
from t2c_sim.regress.executors import LocalExecutor

# a standard-library module that a fresh interpreter does not import by itself
PRELOAD = "xml.dom.minidom"


def _worker_view(_item: int) -> tuple[int, bool]:
    return os.getpid(), PRELOAD in sys.modules


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def _left(before: set[int], wait_s: float = 10.0) -> set[int]:
    """Children started since ``before`` still running after up to ``wait_s``: the pool's own
    thread reaps stopped workers too, so one may be reported alive for a moment after it was
    stopped; a worker nobody stopped waits for work forever and stays."""
    end = time.monotonic() + wait_s
    while (left := _children() - before) and time.monotonic() < end:
        time.sleep(0.02)
    return left


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
    assert _left(before) == set()


def test_a_map_without_start_does_not_preload(monkeypatch):
    # spawned workers (a forked one would carry whatever this process imported: the probe
    # below covers forking)
    monkeypatch.setattr(executors, "fork_is_safe", lambda: False)
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
    assert _left(before) == set()

    ex = LocalExecutor(2)
    ex.start(4)
    try:
        out = [res for _it, res in ex.map_unordered(_worker_view, [0])]
        assert out[0][0] == os.getpid()  # one item runs here
        assert _left(before) == set()  # and the idle workers are gone
    finally:
        ex.close()


def test_one_worker_or_one_item_starts_nothing():
    before = _children()
    ex = LocalExecutor(1)
    ex.start(8)
    ex2 = LocalExecutor(4)
    ex2.start(1)
    assert _left(before) == set()
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
    assert _left(before) == set()
    assert not (tmp_path / "o").exists()


def test_run_with_a_bad_recipe_leaves_no_worker_behind(tmp_path, capsys, monkeypatch):
    """``t2c-sim run -j 2`` starts its workers before it loads the source: a source that fails
    to load exits 2 with one line and stops them."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nmodel: [\n")
    before = _children()
    started: list[int] = []
    real_start = LocalExecutor.start

    def start(self, n, preload=()):
        real_start(self, n, preload)
        started.append(len(_children() - before))

    monkeypatch.setattr(LocalExecutor, "start", start)
    code = main(["run", str(bad), "-j", "2", "--sim", "verilator", "--out", str(tmp_path / "o"),
                 "--no-progress"])
    assert started == [2]  # the workers were running while the recipe was read
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml" in err[0]
    assert _left(before) == set()
    assert not (tmp_path / "o").exists()


_FORK_PROBE = r"""
import sys, threading, time
from t2c_sim.regress.executors import LocalExecutor, fork_is_safe

def view(_):
    return "wave" in sys.modules, "xml.dom.minidom" in sys.modules

if __name__ == "__main__":
    import wave  # noqa: F401  (here: a spawned worker imports this file, but not this block)
    if sys.argv[1] == "thread":  # a second thread: forking would copy its held locks
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
    safe = fork_is_safe()
    ex = LocalExecutor(2)
    if sys.argv[2] == "start":
        ex.start(4, preload=("xml.dom.minidom",))
    res = [r for _i, r in ex.map_unordered(view, [0, 1, 2])]
    ex.close()
    print(safe, all(w for w, _ in res), any(w for w, _ in res), all(p for _, p in res))
"""


@pytest.mark.parametrize("how", ["start", "map"])
@pytest.mark.parametrize("case, forked", [("plain", True), ("thread", False)])
def test_pools_fork_only_a_single_threaded_process(tmp_path, case, forked, how):
    """Workers started early (``start``) or by the first map: forked when safe, else spawned."""
    script = tmp_path / "probe.py"
    script.write_text(_FORK_PROBE)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, str(script), case, how], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    safe, all_w, any_w, preloaded = r.stdout.split()
    assert safe == str(forked)
    # forked workers carry the parent's modules (wave); spawned ones start empty
    assert (all_w, any_w) == (("True", "True") if forked else ("False", "False"))
    assert preloaded == str(how == "start")  # only start preloads
