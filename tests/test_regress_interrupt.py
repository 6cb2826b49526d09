"""`t2c-sim regress` as a real process: Ctrl-C, SIGKILL, resume, a real Dask cluster.

Every job goes through the real ``run_job``; a ``sitecustomize`` put on ``PYTHONPATH`` (so it
also loads in spawned pool workers and Dask workers) wraps it to sleep ``DELAY_S`` and to
append ``start|end <job-id> <pid> <unix time>`` to an execution log. The log is the
independent record of which jobs ran where; the oracle of the results is ``run_job`` called
directly in this process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2c_sim.cli import EXIT_INFRA, EXIT_INTERRUPT, EXIT_OK, EXIT_USAGE, main
from t2c_sim.regress.jobs import run_job
from t2c_sim.regress.suite import load_suite

DELAY_S = 0.4
N_JOBS = 6
SUITE = """
name: slowish
sims: none
seeds: [0, 1, 2]
hw: [{rows: 4, cols: 4, n: 2, m: 4}]
jobs:
  - random: linear
    name: fc
    params: {c_in: 16, c_out: 6, rows: 3}
  - random: conv
    name: conv
    params: {c_in: 4, c_out: 4, h: 5, w: 5}
"""

SITECUSTOMIZE = '''
import os
_log = os.environ.get("T2C_TEST_JOB_LOG")
if _log:
    import functools
    import time

    import t2c_sim.regress.jobs as _jobs

    _orig = _jobs.run_job
    _delay = float(os.environ.get("T2C_TEST_JOB_DELAY", "0"))

    def _note(what, job):
        with open(_log, "a") as f:
            f.write(f"{what} {job.job_id} {os.getpid()} {time.time()}\\n")

    @functools.wraps(_orig)
    def run_job(job, *args, **kw):
        _note("start", job)
        time.sleep(_delay)
        result = _orig(job, *args, **kw)
        _note("end", job)
        return result

    _jobs.run_job = run_job
'''


class Harness:
    """A suite file, an execution log and the environment that turns the wrapper on."""

    def __init__(self, root: Path) -> None:
        self.root = root
        site = root / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.suite = root / "slowish.yaml"
        self.suite.write_text(SUITE)
        self.log = root / "exec.log"
        self.out = root / "out"
        self.env = dict(os.environ, PYTHONPATH=str(site), T2C_TEST_JOB_LOG=str(self.log),
                        T2C_TEST_JOB_DELAY=str(DELAY_S), CI="true")
        self.ids = [j.job_id for j in load_suite(self.suite).jobs]
        assert len(self.ids) == N_JOBS

    def start(self, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "t2c_sim.cli", "regress", str(self.suite),
               "--out", str(self.out), *extra]
        # Own session: killpg() then reaches the whole tree, as a terminal's Ctrl-C does.
        return subprocess.Popen(cmd, cwd=self.root, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def run(self, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
        p = self.start(*extra)
        out, err = p.communicate(timeout=timeout)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def events(self) -> list[tuple[str, str, int]]:
        """``(start|end, job_id, pid)`` in log order."""
        return [(w, j, pid) for w, j, pid, _ in self.timed_events()]

    def timed_events(self) -> list[tuple[str, str, int, float]]:
        if not self.log.exists():
            return []
        return [(w, j, int(pid), float(t)) for w, j, pid, t in
                (ln.split() for ln in self.log.read_text().splitlines() if ln.strip())]

    def stored(self) -> dict[str, Path]:
        folder = self.out / "jobs"
        return {p.stem: p for p in folder.glob("*.json")} if folder.is_dir() else {}

    def wait_for_results(self, proc: subprocess.Popen, n: int, timeout: float = 30) -> None:
        t_end = time.monotonic() + timeout
        while len(self.stored()) < n:
            if proc.poll() is not None:
                pytest.fail(f"regress ended early (rc {proc.returncode}): "
                            f"{proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > t_end:
                proc.kill()
                pytest.fail(f"no {n} results after {timeout} s")
            time.sleep(0.02)


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path)


def _strip(d):
    """A result without what legitimately differs between runs (times, folders)."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in ("wall_s", "out_dir")}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def _oracle(h: Harness, tmp: Path) -> dict[str, dict]:
    return {j.job_id: _strip(run_job(j, out_root=str(tmp / "oracle")))
            for j in load_suite(h.suite).jobs}


def _check_store_is_clean(h: Harness) -> dict[str, dict]:
    """Every stored result parses completely and names its job; no temp files remain."""
    results = {}
    for jid, p in h.stored().items():
        d = json.loads(p.read_text())  # a half-written file would not parse
        assert d["job_id"] == jid and d["status"] == "golden", p
        results[jid] = d
    leftovers = [p.name for p in (h.out / "jobs").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    return results


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _finish_and_check(h: Harness, before: dict[str, Path], tmp: Path, j: str) -> None:
    """Rerun to the end: only the missing jobs execute, earlier files stay, results are right."""
    mtimes = {jid: p.stat().st_mtime_ns for jid, p in before.items()}
    n_events = len(h.events())
    r = h.run("-j", j)
    assert r.returncode == EXIT_OK, r.stderr
    assert f"{N_JOBS - len(before)} ran, {len(before)} already finished" in r.stdout
    started = [jid for w, jid, _ in h.events()[n_events:] if w == "start"]
    assert sorted(started) == sorted(set(h.ids) - set(before))  # each missing job exactly once
    assert {jid: h.stored()[jid].stat().st_mtime_ns for jid in before} == mtimes
    final = _check_store_is_clean(h)
    assert set(final) == set(h.ids)
    assert {jid: _strip(d) for jid, d in final.items()} == _oracle(h, tmp)
    summary = json.loads((h.out / "summary.json").read_text())
    assert len(summary["jobs"]) == N_JOBS


@pytest.mark.parametrize("j", ["1", "2"])
def test_ctrl_c_keeps_finished_jobs_and_rerun_runs_only_the_rest(h, tmp_path, j):
    p = h.start("-j", j)
    h.wait_for_results(p, 2)
    t0, t_kill = time.monotonic(), time.time()
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    out, err = p.communicate(timeout=20)
    assert time.monotonic() - t0 < 5.0, "regress did not stop promptly"
    late = [jid for w, jid, _, t in h.timed_events() if w == "end" and t > t_kill + 0.2]
    assert late == [], "jobs kept running (and finished unrecorded) after Ctrl-C"
    assert p.returncode == EXIT_INTERRUPT
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    before = h.stored()
    assert 2 <= len(before) < N_JOBS
    assert f"{len(before)} of {N_JOBS} jobs finished" in lines[0]
    _check_store_is_clean(h)
    # a stored job really ran to its end; no worker outlives the command
    ended = {jid for w, jid, _ in h.events() if w == "end"}
    assert set(before) <= ended
    ended_well_before = {jid for w, jid, _, t in h.timed_events() if w == "end" and t < t_kill - 0.1}
    assert ended_well_before <= set(before)
    assert not [pid for _, _, pid in h.events() if _alive(pid)]
    _finish_and_check(h, before, tmp_path, j)


def test_sigkill_mid_run_loses_nothing_finished(h, tmp_path):
    p = h.start("-j", "2")
    h.wait_for_results(p, 2)
    os.kill(p.pid, signal.SIGKILL)  # the runner crashes; its pool workers are orphaned
    p.communicate(timeout=20)  # the pipes close only when every worker has gone too
    assert p.returncode == -signal.SIGKILL
    workers = {pid for _, _, pid in h.events()}
    t_end = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < t_end:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)], "orphaned pool workers kept running"
    before = h.stored()
    assert 2 <= len(before) < N_JOBS
    _check_store_is_clean(h)
    # What a kill in the middle of a write can leave, and a half-written file of an older
    # writer: the rerun removes the temp file and runs the truncated job again.
    jobs_dir = h.out / "jobs"
    (jobs_dir / f".{h.ids[0]}.json.k2j4.tmp").write_text('{"job_id": ')
    victim = sorted(before)[0]
    before[victim].write_text(before[victim].read_text()[:40])
    del before[victim]
    _finish_and_check(h, before, tmp_path, "2")


def test_second_runner_on_the_same_folder_is_refused(h, capsys):
    from t2c_sim.files import folder_lock

    with folder_lock(h.out / "jobs"):
        assert main(["regress", str(h.suite), "-j", "1", "--out", str(h.out)]) == EXIT_USAGE
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "in use" in lines[0] and str(h.out / "jobs") in lines[0]
    assert h.stored() == {}
    assert main(["regress", str(h.suite), "-j", "1", "--out", str(h.out), "-q"]) == EXIT_OK
    assert len(h.stored()) == N_JOBS


# ---------------------------------------------------------------------------------- Dask
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_cluster_through_the_cli_and_resume(h, tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    # The worker processes inherit this environment: the wrapper logs there too.
    for k in ("PYTHONPATH", "T2C_TEST_JOB_LOG", "T2C_TEST_JOB_DELAY"):
        monkeypatch.setenv(k, h.env[k])
    monkeypatch.setenv("T2C_TEST_JOB_DELAY", "0")
    h.env["T2C_TEST_JOB_DELAY"] = "0"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        addr = cluster.scheduler_address
        assert addr.startswith("tcp://127.0.0.1:")
        (worker_pid,) = client.run(os.getpid).values()
        r = h.run("--executor", "dask", "--scheduler", addr)
        assert r.returncode == EXIT_OK, r.stderr
        assert f"{N_JOBS} ran, 0 already finished" in r.stdout
        assert {pid for _, _, pid in h.events()} == {worker_pid}  # ran on the cluster
        results = _check_store_is_clean(h)
        assert {jid: _strip(d) for jid, d in results.items()} == _oracle(h, tmp_path)

        # resume on the cluster: only the jobs without a stored result are submitted
        gone = sorted(results)[:2]
        for jid in gone:
            h.stored()[jid].unlink()
        kept = {jid: p.stat().st_mtime_ns for jid, p in h.stored().items()}
        n_events = len(h.events())
        r = h.run("--executor", "dask", "--scheduler", addr)
        assert r.returncode == EXIT_OK, r.stderr
        assert f"2 ran, {N_JOBS - 2} already finished" in r.stdout
        assert sorted(jid for w, jid, _ in h.events()[n_events:] if w == "start") == gone
        assert {jid: h.stored()[jid].stat().st_mtime_ns for jid in kept} == kept
        assert set(h.stored()) == set(h.ids)


def test_unreachable_dask_scheduler_is_one_line_exit_3(h):
    t0 = time.monotonic()
    r = h.run("--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{_closed_port()}",
              "--connect-timeout", "1", timeout=30)
    assert time.monotonic() - t0 < 15
    assert r.returncode == EXIT_INFRA
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Dask scheduler" in lines[0] and "127.0.0.1" in lines[0], r.stderr
    assert not h.out.exists()


@pytest.mark.parametrize("addr", ["127.0.0.1:notaport", "bogus://127.0.0.1:1", "tcp://"])
def test_malformed_dask_scheduler_address_is_a_usage_error(h, capsys, addr):
    pytest.importorskip("dask.distributed")
    assert main(["regress", str(h.suite), "--executor", "dask", "--scheduler", addr,
                 "--out", str(h.out)]) == EXIT_USAGE
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--scheduler" in lines[0] and addr in lines[0]
    assert not h.out.exists()
