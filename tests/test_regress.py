"""Regression runner: suite expansion, stable job ids, resume after an interrupt, executors."""

from __future__ import annotations

import json

import pytest

from t2c_sim.cli import EXIT_OK, main
from t2c_sim.errors import ConfigError
from t2c_sim.regress.executors import LocalExecutor
from t2c_sim.regress.jobs import run_job
from t2c_sim.regress.runner import ResultStore, run_suite
from t2c_sim.regress.suite import load_suite

SUITE = """
name: tiny
sims: none
seeds: [0, 1]
hw:
  - {rows: 4, cols: 4, n: 2, m: 4}
  - {rows: 2, cols: 8, n: 2, m: 4}
jobs:
  - random: linear
    name: fc
    params: {c_in: 16, c_out: 6, rows: 3}
  - random: conv
    name: conv
    params: {c_in: 4, c_out: 4, h: 5, w: 5}
"""


@pytest.fixture
def suite_file(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(SUITE)
    return p


def test_suite_expands_entries_hw_seeds(suite_file):
    s = load_suite(suite_file)
    assert len(s.jobs) == 2 * 2 * 2
    assert {(j.name, j.hw["rows"], j.seed) for j in s.jobs} == {
        (n, r, sd) for n in ("fc", "conv") for r in (4, 2) for sd in (0, 1)}
    # random layers default to the hardware's N:M
    assert all(j.params["n"] == 2 and j.params["m"] == 4 for j in s.jobs)
    # ids are unique and stable across loads
    assert len({j.job_id for j in s.jobs}) == len(s.jobs)
    assert [j.job_id for j in load_suite(suite_file).jobs] == [j.job_id for j in s.jobs]


def test_job_id_changes_with_what_determines_the_result(suite_file, tmp_path):
    base = {j.job_id for j in load_suite(suite_file).jobs}
    p2 = tmp_path / "t2.yaml"
    p2.write_text(SUITE.replace("c_in: 16", "c_in: 20"))
    changed = {j.job_id for j in load_suite(p2).jobs}
    assert len(base & changed) == 4  # only the conv jobs are the same
    p3 = tmp_path / "t3.yaml"
    p3.write_text(SUITE.replace("name: tiny", "name: renamed"))
    assert {j.job_id for j in load_suite(p3).jobs} == base  # the suite name is not part of it


@pytest.mark.parametrize("text,key", [
    ("name: x\njobs: []\n", "jobs"),
    ("name: x\nbogus: 1\njobs: [{random: linear}]\n", "bogus"),
    ("name: x\nsims: [vcs]\njobs: [{random: linear}]\n", "sims"),
    ("name: x\njobs: [{random: lstm}]\n", "jobs[0].random"),
    ("name: x\njobs: [{recipe: nowhere.yaml}]\n", "jobs[0].recipe"),
    ("name: x\nhw: [{rowz: 2}]\njobs: [{random: linear}]\n", "hw[0].rowz"),
    ("name: x\nseeds: [a]\njobs: [{random: linear}]\n", "seeds"),
])
def test_suite_errors_name_file_and_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_suite(p)
    assert str(p) in str(ei.value) and f"'{key}'" in str(ei.value)


class _Interrupt:
    """A job function that raises KeyboardInterrupt when the ``after``-th job starts."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.calls: list[str] = []

    def __call__(self, job, **kw):
        self.calls.append(job.job_id)
        if len(self.calls) > self.after:
            raise KeyboardInterrupt
        return run_job(job, **kw)


def test_resume_after_interrupt(suite_file, tmp_path):
    s = load_suite(suite_file)
    out = tmp_path / "res"
    first = _Interrupt(after=3)
    with pytest.raises(KeyboardInterrupt):
        run_suite(s, out, LocalExecutor(1), run_fn=first)
    store = ResultStore(out / "jobs")
    done = [j.job_id for j in s.jobs if store.finished(j.job_id)]
    assert done == first.calls[:3]
    mtimes = {jid: store.path(jid).stat().st_mtime_ns for jid in done}
    # no temp files left behind
    assert not [p for p in (out / "jobs").iterdir() if p.name.startswith(".")]

    second = _Interrupt(after=10**6)
    oc = run_suite(s, out, LocalExecutor(1), run_fn=second)
    assert set(second.calls) == {j.job_id for j in s.jobs} - set(done)
    assert sorted(oc.skipped) == sorted(done) and len(oc.ran) == len(s.jobs) - 3
    assert {jid: store.path(jid).stat().st_mtime_ns for jid in done} == mtimes
    assert set(oc.results) == {j.job_id for j in s.jobs}
    assert all(r["status"] == "golden" for r in oc.results.values())
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["jobs"]) == len(s.jobs)

    third = _Interrupt(after=10**6)
    oc3 = run_suite(s, out, LocalExecutor(1), run_fn=third)
    assert third.calls == [] and len(oc3.skipped) == len(s.jobs)


def test_error_jobs_are_retried(suite_file, tmp_path):
    s = load_suite(suite_file)
    out = tmp_path / "res"
    store = ResultStore(out / "jobs")
    j0 = s.jobs[0]
    store.put(j0.job_id, {"job_id": j0.job_id, "status": "error", "message": "boom",
                          "info": j0.info(), "run": None})
    calls = _Interrupt(after=10**6)
    run_suite(s, out, LocalExecutor(1), run_fn=calls)
    assert j0.job_id in calls.calls and store.get(j0.job_id)["status"] == "golden"


def test_job_results_carry_layers_and_estimates(suite_file, tmp_path):
    s = load_suite(suite_file)
    j = next(j for j in s.jobs if j.name == "fc")
    r = run_job(j, out_root=str(tmp_path))
    assert r["status"] == "golden" and r["job_id"] == j.job_id
    (layer,) = r["run"]["layers"]
    assert layer["name"] == "fc" and layer["macs"] == 3 * 16 * 6
    assert layer["cycles_est"] > 0 and 0 < layer["utilization"] <= 1


def test_cli_regress_local_pool_and_resume(suite_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["regress", str(suite_file), "-j", "2", "--out", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "8 ran, 0 already finished" in text
    assert len(list((out / "jobs").glob("*.json"))) == 8
    assert main(["regress", str(suite_file), "-j", "2", "--out", str(out)]) == EXIT_OK
    assert "0 ran, 8 already finished" in capsys.readouterr().out


def test_dask_local_cluster_runs_a_suite(suite_file, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from t2c_sim.regress.executors import DaskExecutor

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            assert "1 worker" in ex.describe()
            oc = run_suite(load_suite(suite_file), tmp_path / "d", ex)
        finally:
            ex.close()
    assert len(oc.ran) == 8 and oc.verdict == "golden"
    stored = ResultStore(tmp_path / "d" / "jobs")
    assert all(stored.finished(j.job_id) for j in oc.suite.jobs)


def test_failed_job_is_a_junit_error(suite_file, tmp_path):
    import xml.etree.ElementTree as ET

    s = load_suite(suite_file)

    def boom(job, **kw):
        if job.job_id == s.jobs[0].job_id:
            return {"job_id": job.job_id, "info": job.info(), "status": "error",
                    "message": "build of t2c_harness failed", "wall_s": 0.0, "run": None}
        return run_job(job, **kw)

    oc = run_suite(s, tmp_path / "o", LocalExecutor(1), run_fn=boom)
    assert oc.verdict == "error"
    root = ET.parse(oc.reports["junit"]).getroot()
    assert len(root.findall("testsuite")) == len(s.jobs)
    errs = root.findall(".//error")
    assert len(errs) == 1 and "build of t2c_harness failed" in errs[0].get("message")


def test_cli_simulator_options_reach_every_job(suite_file, tmp_path, monkeypatch):
    import t2c_sim.regress.runner as runner

    seen = []

    def spy(job, **kw):
        seen.append({k: kw.get(k) for k in ("timeout_s", "tool_path", "verilator_root")})
        return run_job(job, out_root=kw["out_root"])

    monkeypatch.setattr(runner, "run_job", spy)
    monkeypatch.setattr(runner.run_suite, "__kwdefaults__",
                        {**runner.run_suite.__kwdefaults__, "run_fn": spy})
    assert main(["regress", str(suite_file), "-j", "1", "--out", str(tmp_path / "o"), "-q",
                 "--timeout", "7.5", "--tool-path", "/opt/x/bin"]) == EXIT_OK
    assert seen == [{"timeout_s": 7.5, "tool_path": "/opt/x/bin", "verilator_root": None}] * 8
