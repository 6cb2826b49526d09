"""Issue 11's done-when, through the same commands for every accelerator: our accelerator on its
back door (``--dut t2c_accel``) and its front door (``--dut t2c_axi_accel``), and the
weight-stationary systolic array of ``examples/systolic_ws`` (its own DUT file) each run

* the digits demo network (``t2c-sim run models/digits_cnn_w8a8_2of4.yaml --dut X --sim both``),
* the random-layer smoke suite (``t2c-sim regress`` of ``suites/smoke.yaml``'s entries on both
  simulators, ``--dut X``),

bit-exact on Icarus and Verilator, every co-simulated unit's cycles equal to the DUT's own model
(the framework fails a layer otherwise; checked again here from the reports). Oracles: the
golden model attached to every record (compared by the framework with ``np.array_equal``
semantics) and each DUT's cycle model, independent of the measurement. Slow tier: the three
DUTs' Verilator builds and the demo's training take minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from t2c_sim.cli import main
from t2c_sim.cosim.sim import default_build_root

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DUTS = {"t2c_accel": "t2c_accel", "t2c_axi_accel": "t2c_axi_accel",
        "sws_top": str(ROOT / "examples" / "systolic_ws" / "dut.yaml")}
BUILD = str(default_build_root())
CACHE = str(ROOT / "build" / "cache")


def _check_results(res: dict, name: str, sims: int) -> None:
    assert res["dut"]["name"] == name
    mac = [lr for lr in res["layers"] if lr["sims"]]
    assert mac, res["layers"]
    for lr in mac:
        assert [o["verdict"] for o in lr["sims"]] == ["pass"] * sims, lr
        assert {o["cycles_measured"] for o in lr["sims"]} == {lr["cycles_est"]} == \
            {o["cycles_model"] for o in lr["sims"]}, lr


@pytest.mark.parametrize("name", list(DUTS))
def test_digits_network_on_every_accelerator(name: str, tmp_path: Path, capsys) -> None:
    rc = main(["run", str(ROOT / "models" / "digits_cnn_w8a8_2of4.yaml"), "--dut", DUTS[name],
               "--sim", "both", "--out", str(tmp_path), "--build-root", BUILD, "--cache-dir",
               CACHE])
    out = capsys.readouterr().out
    assert rc == 0 and f"PASS on {name}:" in out, out
    _check_results(json.loads((tmp_path / "results.json").read_text()), name, 2)


@pytest.mark.parametrize("name", list(DUTS))
def test_smoke_suite_on_every_accelerator(name: str, tmp_path: Path, capsys) -> None:
    suite = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    suite.update(sims="both", hw=[str(ROOT / "hw" / "default.yaml")])
    p = tmp_path / "smoke.yaml"
    p.write_text(yaml.safe_dump(suite))
    rc = main(["regress", str(p), "--dut", DUTS[name], "-j", "2", "--out", str(tmp_path / "r"),
               "--build-root", BUILD, "--cache-dir", CACHE])
    out = capsys.readouterr().out
    n_jobs = 2 * len(suite["jobs"])
    assert rc == 0 and f"PASS: {n_jobs} ran" in out, out
    runs = [json.loads(q.read_text()) for q in sorted((tmp_path / "r" / "jobs").glob("*.json"))]
    assert len(runs) == n_jobs
    for r in runs:
        assert r["status"] == "pass", r["message"]
        _check_results(r["run"], name, 1)
