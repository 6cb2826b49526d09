"""End to end through a simulator (Icarus: fast to build): localized mismatches, repro
bundles, a hung run, and a passing run whose measured cycles equal the estimate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from t2c_sim.cli import EXIT_FAIL, EXIT_INFRA, EXIT_OK, EXIT_USAGE, main
from t2c_sim.export import load_record, save_network, save_record
from t2c_sim.workloads import gen

pytestmark = pytest.mark.sim

# Small banks force several row tiles: act bank = 16 // 4 = 4 words, G = 16 / 4 = 4 groups
# per dot product -> at most 4 rows per tile, so P = 8 rows are two tiles (rows 0-3, 4-7).
HW = ["--hw-param", "act_depth=16", "--hw-param", "rows=4", "--hw-param", "cols=4"]
ROW, CH = 6, 2


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    """A linear layer whose stored golden y is wrong at exactly (ROW, CH)."""
    d = tmp_path_factory.mktemp("mm")
    rec = gen.random_linear_record(np.random.default_rng(7), c_in=16, c_out=6, rows=8, n=2, m=4,
                                   name="fc")
    true = int(rec.y[ROW, CH])
    y = rec.y.copy()
    y[ROW, CH] = true + 1 if true < rec.hi else true - 1
    bad = rec.replace(y=y)
    save_network([bad], d / "net")
    out = d / "out"
    rc = main(["run", str(d / "net"), "--sim", "icarus", *HW, "--out", str(out),
               "--no-progress"])
    return {"rc": rc, "out": out, "rec": rec, "bad_y": int(y[ROW, CH]), "true": true}


def test_mismatch_is_localized(corrupted, capsys):
    assert corrupted["rc"] == EXIT_FAIL
    res = json.loads((corrupted["out"] / "results.json").read_text())
    assert res["verdict"] == "fail"
    (layer,) = res["layers"]
    (o,) = layer["sims"]
    mm = o["mismatch"]
    assert (mm["layer"], mm["row"], mm["channel"]) == ("fc", ROW, CH)
    assert mm["expected"] == corrupted["bad_y"] and mm["actual"] == corrupted["true"]
    assert mm["count"] == 1 and mm["tile"] == 1
    assert mm["acc_expected"] == mm["acc_actual"] == int(corrupted["rec"].acc[ROW, CH])
    assert len(o["tiles"]) == 2 and o["tiles"][1]["p0"] == 4
    # JUnit names the same place
    root = ET.parse(corrupted["out"] / "junit.xml").getroot()
    fails = root.findall(".//failure")
    assert len(fails) == 1 and f"row {ROW}" in fails[0].get("message")
    assert f"channel {CH}" in fails[0].get("message")
    html = (corrupted["out"] / "report.html").read_text()
    assert "mismatch map" in html


def test_repro_bundle_contents_and_rerun(corrupted, capsys, tmp_path):
    res = json.loads((corrupted["out"] / "results.json").read_text())
    bundle = res["layers"][0]["sims"][0]["repro"]
    meta = json.loads((corrupted["out"] / "repro" / "fc-icarus" / "bundle.json").read_text())
    assert bundle.endswith("fc-icarus")
    assert meta["sim"] == "icarus" and meta["tile"] == 1 and meta["seed"] == 0
    assert meta["command"].startswith("t2c-sim run ") and "act_depth=16" in meta["command"]
    assert meta["wave"], meta["wave_note"]  # the failing tile's waveform is in the bundle
    from pathlib import Path

    assert (Path(bundle) / meta["wave"]).stat().st_size > 0
    rec = load_record(Path(bundle) / "record")
    assert int(rec.y[ROW, CH]) == corrupted["bad_y"]
    assert "act_depth: 16" in (Path(bundle) / "hw.yaml").read_text()

    capsys.readouterr()
    assert main(["repro", bundle, "--no-progress"]) == EXIT_FAIL
    out = capsys.readouterr().out
    assert "STILL FAILS" in out and f"row {ROW}" in out and f"channel {CH}" in out

    # Fix the golden value in a copy of the bundle: the repro now passes.
    import shutil

    fixed = tmp_path / "fixed"
    shutil.copytree(bundle, fixed)
    good = rec.replace(y=corrupted["rec"].y)
    save_record(good, fixed / "record")
    assert main(["repro", str(fixed), "--no-progress"]) == EXIT_OK
    assert "PASSES now" in capsys.readouterr().out


def test_passing_run_measures_estimated_cycles(tmp_path, capsys):
    recs = gen.random_network(np.random.default_rng(5), h=4, w=4, channels=4, n=2, m=4)
    save_network(recs, tmp_path / "net")
    rc = main(["run", str(tmp_path / "net"), "--sim", "icarus", "--out", str(tmp_path / "o"),
               "--layers", "conv2,fc"])
    assert rc == EXIT_OK
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    by = {ly["name"]: ly for ly in res["layers"]}
    assert by["conv1"]["verdict"] == "skipped" and by["pool"]["verdict"] == "golden"
    for name in ("conv2", "fc"):
        (o,) = by[name]["sims"]
        assert o["verdict"] == "pass"
        assert o["cycles_measured"] == by[name]["cycles_est"]


def test_hung_run_times_out(tmp_path, capsys):
    # ~260k cycles on the default 4x4 array: seconds on Icarus, far past the 0.5 s limit (the
    # self-sequenced harness runs a small layer in less than any fixed wall-clock limit)
    rec = gen.random_linear_record(np.random.default_rng(1), c_in=256, c_out=64, rows=512, n=2,
                                   m=4)
    save_network([rec], tmp_path / "net")
    capsys.readouterr()
    rc = main(["run", str(tmp_path / "net"), "--sim", "icarus", "--timeout", "0.5",
               "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == EXIT_INFRA
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "simulator error" in err[0] and "timeout" in err[0], err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["verdict"] == "error"
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """`make demo`: recipe build, golden, cross-check, Verilator co-simulation, reports."""
    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-progress"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == f"HTML report: {tmp_path / 'demo' / 'report.html'}"
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    macs = [ly for ly in res["layers"] if ly["sims"]]
    assert len(macs) >= 2 and all(ly["verdict"] == "pass" for ly in macs)
    assert all(ly["sims"][0]["cycles_measured"] == ly["cycles_est"] for ly in macs)
    assert res["summary"]["top1_agreement"] >= 99.0


def test_a_bad_pool_start_variable_is_bad_input(tmp_path, capsys, monkeypatch):
    """T2C_POOL_START_S (docs/cli.md) is an input: a bad value exits 2 with one line naming it
    and writes no results."""
    rec = gen.random_linear_record(np.random.default_rng(3), c_in=8, c_out=4, rows=4, n=2, m=4)
    save_network([rec], tmp_path / "net")
    capsys.readouterr()
    monkeypatch.setenv("T2C_POOL_START_S", "fast")
    rc = main(["run", str(tmp_path / "net"), "--sim", "icarus", "--out", str(tmp_path / "o"),
               "--no-progress"])
    assert rc == EXIT_USAGE
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "T2C_POOL_START_S" in err[0] and "'fast'" in err[0], err
    assert not (tmp_path / "o" / "results.json").exists()
