"""The default back-door path runs the harness's own sequencer (``+t2c_seq``), without cocotb.

The harness (``t2c_sim/cosim/hdl/t2c_harness.v``) runs the profile's run list by itself, under a
watchdog, and Verilator links the model a second time with t2c-sim's own main
(``t2c_sim/cosim/sim/t2c_vl_main.cpp``). These tests check that this is the path a user gets,
that it computes exactly what the cocotb-sequenced path (``tb_backdoor.py``, used for waves)
computes, run for run, and that its watchdog and error checks still stop a run with the layer
and tile named. The oracle of the values is the golden model (``rec.y``/``rec.acc``) and of the
cycles the cycle model (``estimate``), never the simulator's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from t2c_sim import estimate
from t2c_sim.config import HwConfig
from t2c_sim.cosim.run import run_layers
from t2c_sim.errors import SimulationError
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

pytestmark = pytest.mark.sim

HW = HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=64, w_depth=64,
              out_depth=32, ch_depth=8)


@pytest.fixture(scope="module")
def build_root():
    from t2c_sim.cosim.sim import default_build_root
    return default_build_root()


def _records():
    rng = np.random.default_rng(77)
    return [random_linear_record(rng, name="fc_multi", c_in=24, c_out=7, rows=40, n=2, m=4),
            random_conv_record(rng, name="conv_odd", c_in=5, c_out=3, h=5, w=4, stride=1,
                               padding=1, n=2, m=4),
            random_linear_record(rng, name="fc_ksplit", c_in=300, c_out=3, rows=3, n=2, m=4)]


def _check(res, recs) -> None:
    for r, rec in zip(res, recs):
        assert np.array_equal(r.y, rec.y), rec.name
        assert r.cycles == estimate.cycles(rec, HW), rec.name
        assert [t.cycles_measured for t in r.tiles] == [t.cycles_predicted for t in r.tiles]


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_default_path_is_the_harness_sequencer_and_equals_golden(sim: str, build_root) -> None:
    recs = _records()
    res = run_layers(recs, HW, sim, build_root=build_root, keep=True)
    _check(res, recs)
    header = (res[0].run_dir / "sim.log").read_text().splitlines()[0]
    assert "+t2c_seq=seq.hex" in header, header            # the harness ran the list itself
    assert "cocotb" not in header, header
    if sim == "verilator":
        assert header.split()[2].endswith("/t2c_self"), header  # t2c-sim's own main
    status = (res[0].run_dir / "seq_status.txt").read_text().split()
    runs = sum(len(p.tiles) * len(p.chunks) for p in (estimate.tile_plan(r, HW) for r in recs))
    assert status == ["done", str(runs)], status  # every run of every tile, K-chunks included


def test_cocotb_sequenced_path_gives_the_same_runs(build_root) -> None:
    """With waves the runs go through tb_backdoor.py (cocotb): the same values, tile for tile,
    and the same measured cycles as the self-sequenced default."""
    recs = _records()
    fast = run_layers(recs, HW, "icarus", build_root=build_root)
    slow = run_layers(recs, HW, "icarus", build_root=build_root, waves=True)
    header = (slow[0].run_dir / "sim.log").read_text().splitlines()[0]
    assert "+t2c_seq" not in header and "cocotb" in header, header
    _check(slow, recs)
    for a, b in zip(fast, slow):
        assert np.array_equal(a.y, b.y) and np.array_equal(a.acc, b.acc)
        assert [t.cycles_measured for t in a.tiles] == [t.cycles_measured for t in b.tiles]


def _longer_first_run(run_dir) -> None:
    """Fault: the plan's first run gets 16 rows, more than the cycle model allowed for."""
    words = (run_dir / "plan.hex").read_text().split()
    words[1] = f"{16:08x}"
    (run_dir / "plan.hex").write_text("\n".join(words) + "\n")


def _bad_groups(run_dir) -> None:
    """Fault: the plan's first run asks for more weight groups than the scratchpad holds."""
    words = (run_dir / "plan.hex").read_text().split()
    words[2] = f"{100000:08x}"
    (run_dir / "plan.hex").write_text("\n".join(words) + "\n")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_the_sequencer_watchdog_names_layer_and_tile(sim: str, build_root) -> None:
    rec = random_linear_record(np.random.default_rng(32), name="fc_hang", c_in=8, c_out=2,
                               rows=1, n=2, m=4)  # predicted 9 cycles; the fault needs 23
    with pytest.raises(SimulationError, match=r"layer fc_hang tile 0: no done within 18 cycles "
                                              r"\(cycle model predicts 9\); watchdog stopped"):
        run_layers([rec], HW, sim, build_root=build_root, mutate=_longer_first_run,
                   watchdog_margin=0)


def test_the_sequencer_reports_error_flags_with_their_names(build_root) -> None:
    rec = random_linear_record(np.random.default_rng(33), name="fc_err", c_in=8, c_out=2,
                               rows=1, n=2, m=4)
    with pytest.raises(SimulationError, match=r"layer fc_err tile 0: accelerator error flags "
                                              r"0x[0-9a-f]{2} \(.+\)"):
        run_layers([rec], HW, "icarus", build_root=build_root, mutate=_bad_groups)


@pytest.mark.parametrize("line, ok", [
    ("done 3", True), ("hang 2 1", True), ("err 0 32", True), ("err 1 x", True),
    ("", False), ("done", False), ("hang 3 1", False), ("hang 1", False), ("err 0 y", False),
    ("hang 1 x", False), ("fin 1 2", False), ("done 3 4", False), ("err -1 4", False),
])
def test_only_a_status_the_harness_writes_is_read(line: str, ok: bool) -> None:
    """A crashed or truncated status line is an error naming it, never an index or parse crash."""
    from t2c_sim.cosim.profiles.backdoor import _status_ok

    assert _status_ok(line.split(), 3) is ok
