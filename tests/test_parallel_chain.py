"""Parallel co-simulation (``-j``) and chained mode (``--chain``) on Verilator (issue 10 items 3-4).

The network (conv1 -> pool -> conv2 -> add -> gap -> flatten -> fc, 2:4) runs on a 4x4 array
with scratchpads small enough that its convolutions have several tiles and conv2 splits K, so
at ``-j 2`` layers are cut into tile ranges run by different processes (checked on the plan)
and merged back.

Oracles: ``-j 1`` (one process, the reference) for ``-j 2``; the golden model for every layer's
own check; for chained mode the layer where a fault was injected (a fault hook corrupts one
layer's weights in the operand files the RTL loads), and the local mismatch count of that
layer, computed by the comparison of the layer's own check, for the chain's divergence count.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from t2c_sim.cli import EXIT_OK, main
from t2c_sim.config import HwConfig
from t2c_sim.export import save_network
from t2c_sim.export.iface import PLAN_WORDS
from t2c_sim.record import MAC_OPS
from t2c_sim.regress.parallel import Item, Settings, work_of
from t2c_sim.regress.pipeline import RunOptions, evaluate
from t2c_sim.regress.shard import plan_units
from t2c_sim.workloads.gen import random_network

pytestmark = pytest.mark.sim

HW = HwConfig(rows=4, cols=4, n=2, m=4, a_bits=8, w_bits=8, act_depth=64, w_depth=64,
              out_depth=32, ch_depth=16)
HW_PARAMS = [f"{k}={v}" for k, v in HW.to_dict().items()]
TIMING = {"wall_s", "time", "prep_s", "build_s"}


@pytest.fixture(scope="module")
def net() -> list:
    return random_network(np.random.default_rng(5), batch=2, h=8, w=8, c_in=4, channels=8,
                          n=2, m=4)


def _corrupt_weights(layer: str, run_dir: Path, runs: dict) -> None:
    """Fault hook: invert every bit of the first word of every weight load of ``layer`` (a
    stuck weight column; the same fault whichever process runs which tiles)."""
    for gi in runs.get(layer, {}).values():
        p = run_dir / f"t{gi}_wgt.hex"
        if not p.is_file():  # this run reuses the weights already loaded
            continue
        lines = p.read_text().splitlines()
        lines[0] = "".join(f"{15 - int(c, 16):x}" for c in lines[0])
        p.write_text("\n".join(lines) + "\n")


def _zero_rows(layer: str, run_dir: Path, runs: dict) -> None:
    """Fault hook: a zero-size run of ``layer``'s tile 0, chunk 0 (the accelerator flags an
    error)."""
    if (0, 0) not in runs.get(layer, {}):
        return
    p = run_dir / "plan.hex"
    words = p.read_text().split()
    words[1 + runs[layer][0, 0] * PLAN_WORDS] = "0" * len(words[1])
    p.write_text("\n".join(words) + "\n")


def _run(net: list, tmp: Path, jobs: int, chain: bool = False, fault=None):
    opts = RunOptions(sims=("verilator",), jobs=jobs, chain=chain, fault=fault,
                      command="t2c-sim run net")
    return evaluate(net, HW, opts, out_dir=tmp / f"j{jobs}-{int(chain)}", title="net")


def _strip(d):
    """A result without its timings (and the paths that name the output folder)."""
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items()
                if k not in TIMING and k not in ("out_dir", "repro", "wave")}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def test_strip_keeps_everything_but_timings() -> None:
    a = {"verdict": "pass", "wall_s": 1.0, "layers": [{"sims": [{"wall_s": 2, "cycles": 5}]}]}
    b = json.loads(json.dumps(a))
    b["layers"][0]["sims"][0]["wall_s"] = 9
    assert _strip(a) == _strip(b)
    b["layers"][0]["sims"][0]["cycles"] = 6   # a mutant the comparison must catch
    assert _strip(a) != _strip(b)


def test_the_plan_splits_layers_into_tile_ranges(net: list) -> None:
    """Without this, ``-j 2 == -j 1`` below would not exercise the merge of tile ranges."""
    st = Settings(hw=HW)
    items = [Item(r, "verilator") for r in net if r.op in MAC_OPS]
    units = plan_units([work_of(it, st, True) for it in items], 2, max_runs=16384)
    assert len(units) == 2
    assert any(p.tiles is not None for u in units for p in u.pieces)


@pytest.mark.parametrize("chain", [False, True], ids=["plain", "chained"])
def test_jobs_do_not_change_the_results(net: list, tmp_path: Path, chain: bool) -> None:
    one, two = _run(net, tmp_path, 1, chain), _run(net, tmp_path, 2, chain)
    assert one.verdict == "pass"
    assert _strip(one.to_dict()) == _strip(two.to_dict())
    for lr in one.layers:
        if lr.op in ("linear", "conv2d"):
            assert [o.verdict for o in lr.sims] == ["pass"]
            assert lr.sims[0].cycles_measured == lr.cycles_est  # the exact cycle model
    if chain:  # a correct RTL: the chained network is the golden network, layer by layer
        assert one.chain["verilator"]["first_divergence"] is None
        assert all(lr.chain["verilator"]["mismatch"] == 0 for lr in one.layers)
        assert one.chain["verilator"]["layers"] == len(net)


FAULT_CASES = [  # (faulty layer, chain, jobs, layers whose own check fails)
    ("conv2", True, 2, {"conv2"}),
    ("conv1", True, 1, {"conv1"}),
    ("fc", True, 2, {"fc"}),
    ("conv2", False, 2, {"conv2"}),
]


@pytest.mark.parametrize("layer,chain,jobs,failing", FAULT_CASES,
                         ids=[f"{c[0]}-{'chain' if c[1] else 'plain'}-j{c[2]}" for c in FAULT_CASES])
def test_an_injected_fault_surfaces_at_its_layer(net: list, tmp_path: Path, layer: str,
                                                 chain: bool, jobs: int, failing: set) -> None:
    run = _run(net, tmp_path, jobs, chain, functools.partial(_corrupt_weights, layer))
    assert run.verdict == "fail"
    by = {lr.name: lr for lr in run.layers}
    assert {n for n, lr in by.items() if lr.sims and lr.sims[0].verdict == "fail"} == failing
    # later MAC layers are right on their own (chained) input: the RTL of conv2 and fc is fine
    assert all(o.verdict == "pass" for n, lr in by.items() if n not in failing for o in lr.sims)
    if not chain:
        assert run.chain == {} and all(lr.chain is None for lr in run.layers)
        return
    ch = run.chain["verilator"]
    assert ch["first_divergence"] == layer
    order = [r.name for r in net]
    before = order[:order.index(layer)]
    assert all(by[n].chain["verilator"]["mismatch"] == 0 for n in before)
    # the chain's count at the faulty layer is its own check's count (its input was exact)
    assert by[layer].chain["verilator"]["mismatch"] == by[layer].sims[0].mismatch["count"] > 0
    if layer == "conv1":  # the fault propagates: conv2 sees it in its input
        assert by["conv2"].chain["verilator"]["mismatch"] > 0
        assert ch["output"]["mismatch"] > 0 and ch["diverged"] >= 3
    if layer != "conv1":
        assert _strip(run.to_dict()) == _strip(
            _run(net, tmp_path / "ref", 1 if jobs == 2 else 2, chain,
                 functools.partial(_corrupt_weights, layer)).to_dict())


@pytest.mark.parametrize("chain,jobs", [(False, 1), (False, 2), (True, 2)])
def test_a_simulator_error_stops_the_run_in_report_order(net: list, tmp_path: Path, chain: bool,
                                                         jobs: int) -> None:
    run = _run(net, tmp_path, jobs, chain, functools.partial(_zero_rows, "conv2"))
    by = {lr.name: lr for lr in run.layers}
    assert run.verdict == "error" and "error flags" in run.stop_error
    assert [o.verdict for o in by["conv1"].sims] == ["pass"]
    assert [o.verdict for o in by["conv2"].sims] == ["error"]
    assert by["fc"].sims == [] and by["fc"].note == "not run after a simulator error"
    if chain:
        assert run.chain["verilator"]["broken"] == "conv2"
        assert "fc" not in (by["fc"].chain or {})


def _reports(folder: Path) -> tuple[dict, str]:
    """results.json and junit.xml without timings and the command line (it names ``-j``)."""
    res = json.loads((folder / "results.json").read_text())
    res.pop("command")
    junit = re.sub(r' time="[0-9.]+"', "", (folder / "junit.xml").read_text())
    junit = re.sub(r'name="command" value="[^"]*"', "", junit)
    return _strip(res), junit.replace(str(folder), "OUT")


def test_cli_reports_are_identical_for_any_jobs(net: list, tmp_path: Path, capsys) -> None:
    save_network(net, tmp_path / "net")
    got = {}
    for j in ("1", "2"):
        out = tmp_path / f"out{j}"
        rc = main(["run", str(tmp_path / "net"), "--sim", "verilator", "-j", j, "--chain",
                   "--out", str(out), "--no-progress", *sum((["--hw-param", p]
                                                              for p in HW_PARAMS), [])])
        text = capsys.readouterr().out
        assert rc == EXIT_OK, text
        assert "chained [verilator]: 7 layers computed from the RTL's own outputs, identical " \
               "to the golden network at every layer" in text
        got[j] = _reports(out)
    res, junit = got["1"]
    assert (res, junit) == got["2"]
    assert res["chain"]["verilator"]["first_divergence"] is None
    assert junit.count("[chain verilator]") == 7 and 'failures="0"' in junit


@pytest.mark.parametrize("argv,words", [
    (["-j", "0"], "-j must be >= 1"),
    (["--scheduler", "tcp://x:1"], "--scheduler needs --executor dask"),
    (["--chain", "--sim", "none"], "--chain feeds the RTL's outputs forward"),
])
def test_parallel_and_chain_usage_errors(tmp_path: Path, capsys, argv: list, words: str) -> None:
    rc = main(["run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_failed_build_is_the_first_item_error(net: list, tmp_path: Path, monkeypatch) -> None:
    """The model is built once here before fanning out; a failing build is reported as a
    one-process run reports it (the first co-simulated layer errs, the rest is not run) and
    no worker starts a simulator."""
    from t2c_sim.errors import SimulationError
    from t2c_sim.regress import parallel

    def bad_build(*a, **k):
        raise SimulationError("build of t2c_harness (verilator) failed (exit 2): boom")

    def no_unit(*a, **k):
        raise AssertionError("a unit ran after the build failed")

    monkeypatch.setattr(parallel, "build_backdoor", bad_build)
    monkeypatch.setattr(parallel, "run_task", no_unit)
    run = _run(net, tmp_path, 2)
    by = {lr.name: lr for lr in run.layers}
    assert [(o.verdict, o.message) for o in by["conv1"].sims] == \
        [("error", "build of t2c_harness (verilator) failed (exit 2): boom")]
    assert by["conv2"].note == by["fc"].note == "not run after a simulator error"


SWS = Path(__file__).resolve().parents[1] / "examples" / "systolic_ws" / "dut.yaml"


@pytest.mark.parametrize("chain", [False, True], ids=["plain", "chained"])
def test_another_dut_runs_parallel_and_chained(tmp_path: Path, chain: bool) -> None:
    """The systolic array (stream profile, its own adapter and cycle model): layers spread
    over processes (one layer per process: its harness is generated per layer), chained
    through its own outputs; -j 2 == -j 1, every layer exact, the chain equal to golden."""
    net = random_network(np.random.default_rng(7), batch=1, h=4, w=4, c_in=3, channels=4)
    hw = HwConfig()
    runs = []
    for j in (1, 2):
        opts = RunOptions(sims=("icarus",), jobs=j, chain=chain, dut=str(SWS),
                          command="t2c-sim run net")
        runs.append(evaluate(net, hw, opts, out_dir=tmp_path / f"j{j}", title="net"))
    one, two = runs
    assert one.verdict == "pass" and one.dut["name"] == "sws_top"
    assert _strip(one.to_dict()) == _strip(two.to_dict())
    macs = [lr for lr in one.layers if lr.op in ("linear", "conv2d")]
    assert len(macs) == 3 and all([o.verdict for o in lr.sims] == ["pass"] for lr in macs)
    assert all(lr.sims[0].cycles_measured == lr.cycles_est for lr in macs)  # its exact model
    if chain:
        assert one.chain["icarus"]["first_divergence"] is None
        assert one.chain["icarus"]["layers"] == len(net)


def test_layers_with_more_runs_than_a_process_holds_run_in_tile_ranges(
        net: list, tmp_path: Path, monkeypatch) -> None:
    """A process's plan limit far below the layers' run counts (as VGG-11's fc1, 50,176 runs,
    against the harness's 16,384): each layer is cut into tile ranges that fit, each process
    holds only its own tiles' runs, and the results equal the unlimited run's (-j 1 both)."""
    from t2c_sim.regress import parallel

    one = _run(net, tmp_path, 1)
    st = Settings(hw=HW)
    items = [Item(r, "verilator") for r in net if r.op in MAC_OPS]
    work = [work_of(it, st, True) for it in items]
    limit = 4
    assert max(w.runs for w in work) > 2 * limit  # the limit really cuts the layers
    units = plan_units(work, 1, max_runs=limit)
    assert len(units) > len(items) and all(u.runs <= limit for u in units)
    monkeypatch.setattr(parallel, "MAX_RUNS", limit)
    cut = _run(net, tmp_path / "cut", 1)
    assert cut.verdict == "pass"
    assert _strip(one.to_dict()) == _strip(cut.to_dict())


@pytest.mark.parametrize("start, pooled", [(None, False), ("0", True)])
def test_small_work_runs_here_unless_the_pool_pays(net: list, tmp_path: Path, monkeypatch,
                                                   start: str | None, pooled: bool) -> None:
    """``-j 2`` on a network of milliseconds: by default no pool is started (its workers' start
    would cost more than the work); with a pool start of 0 the same run uses it. Both equal the
    golden model on every layer."""
    from t2c_sim.regress.executors import LocalExecutor

    if start is None:
        monkeypatch.delenv("T2C_POOL_START_S", raising=False)
    else:
        monkeypatch.setenv("T2C_POOL_START_S", start)
    started: list[int] = []
    real = LocalExecutor._get_pool

    def spy(self, n):
        started.append(n)
        return real(self, n)

    monkeypatch.setattr(LocalExecutor, "_get_pool", spy)
    run = _run(net, tmp_path, 2)
    assert run.verdict == "pass"
    assert bool(started) is pooled, started


# ------------------------------------------------------------------ what a unit carries
def test_unit_records_travel_narrow_and_come_back_value_for_value() -> None:
    """A worker's records travel without golden results and with each array in the narrowest
    integer type that holds it (the int64 weights of ResNet-18's layer4 are 38 MB); the worker
    gets them back as int64, equal value for value, at every type's edge."""
    import pickle

    from t2c_sim.record import ARRAY_FIELDS
    from t2c_sim.regress.parallel import _Slim
    from t2c_sim.workloads.gen import random_linear_record

    rec = random_linear_record(np.random.default_rng(3), c_in=16, c_out=4, rows=6, n=2, m=4)
    x = rec.x_q.copy()
    x.flat[:2] = (-128, 127)  # int8 edges
    bias = rec.bias_eff.copy()
    bias[:2] = (-32768, 32767)  # int16 edges
    m0 = np.array([2**31 - 1, -(2**31), 1, 2])  # int32 edges
    sh = rec.sh.copy()
    sh[0] = 2**40  # needs int64: kept as it is
    rec = rec.replace(x_q=x, bias_eff=bias, M0=m0, sh=sh)
    slim = _Slim.of(rec)
    kinds = {f: a.dtype for f, a in slim.arrays}
    assert (kinds["x_q"], kinds["bias_eff"], kinds["M0"], kinds["sh"]) == (
        np.int8, np.int16, np.int32, np.int64)
    assert "y" not in kinds and "acc" not in kinds
    back = pickle.loads(pickle.dumps(slim)).load()
    assert back.y is None and back.acc is None
    for f in ARRAY_FIELDS:
        if f in ("y", "acc") or getattr(rec, f) is None:
            continue
        got = getattr(back, f)
        assert got.dtype == np.int64 and np.array_equal(got, getattr(rec, f)), f
    wide = sum(getattr(rec, f).nbytes for f, _ in slim.arrays)
    assert sum(a.nbytes for _, a in slim.arrays) < wide / 4  # mostly int8 here
    same = _Slim.of(rec, narrow=False).load()  # a unit run in this process: nothing copied
    assert same.y is None and same.acc is None and rec.y is not None and rec.acc is not None
    assert all(getattr(same, f) is getattr(rec, f) for f in ARRAY_FIELDS if f not in ("y", "acc"))
