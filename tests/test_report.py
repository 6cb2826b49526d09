"""Reports: JUnit XML parses with the right testcases, HTML is self-contained, JSON round-trips."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.regress.outcome import mismatch_dict
from t2c_sim.regress.pipeline import RunOptions, evaluate
from t2c_sim.regress.report import junit_xml, layer_table, render_html, write_reports
from t2c_sim.regress.results import RunResult, SimOutcome
from t2c_sim.workloads import gen


def _run_with_outcomes(tmp_path) -> RunResult:
    """A real golden + estimate run of a random network, with simulator outcomes added:
    conv1 passes on both simulators, fc mismatches on icarus, conv2 errors on icarus."""
    recs = gen.random_network(np.random.default_rng(1), h=4, w=4, channels=4, n=2, m=4)
    run = evaluate(recs, HwConfig(), RunOptions(sims=()), out_dir=tmp_path, title="net",
                   source="random", crosscheck={"conv1": {"hist": {"0": 90, "1": 8, "-1": 2},
                                                          "max": 1, "nonzero_rate": 0.1}},
                   summary={"top1_agreement_int_vs_fq": 0.98})
    run.sims = ["verilator", "icarus"]
    fc = recs[-1]
    bad_y = fc.y.copy()
    bad_y[0, 3] += 1
    mm = {"layer": "fc", "tile": 0, "row": 0, "channel": 3, "expected": int(fc.y[0, 3]),
          "actual": int(bad_y[0, 3]), "acc_expected": int(fc.acc[0, 3]),
          "acc_actual": int(fc.acc[0, 3])}

    class _M:  # the shape of a cosim Mismatch: attributes + a one-line str()
        def __init__(self, d):
            self.__dict__.update(d)

        def __str__(self):
            return (f"layer fc tile 0 row 0 channel 3: expected {mm['expected']} got "
                    f"{mm['actual']} (acc {mm['acc_expected']})")

    md = mismatch_dict(_M(mm), fc, fc.y, bad_y)
    for lr in run.layers:
        if lr.name == "conv1":
            lr.sims = [SimOutcome("verilator", "pass", cycles_measured=lr.cycles_est, wall_s=1.5),
                       SimOutcome("icarus", "pass", cycles_measured=lr.cycles_est, wall_s=2.5)]
        elif lr.name == "conv2":
            lr.sims = [SimOutcome("verilator", "pass", cycles_measured=lr.cycles_est),
                       SimOutcome("icarus", "error", message="icarus: run timed out after 1 s")]
        elif lr.name == "fc":
            lr.sims = [SimOutcome("verilator", "pass", cycles_measured=lr.cycles_est),
                       SimOutcome("icarus", "fail", cycles_measured=lr.cycles_est,
                                  mismatch=md, message=str(_M(mm)), repro="out/repro/fc-icarus",
                                  wave="out/repro/fc-icarus/wave.fst")]
    return run


def test_mismatch_dict_counts_and_maps(tmp_path):
    run = _run_with_outcomes(tmp_path)
    md = run.layers[-1].outcome("icarus").mismatch
    assert md["count"] == 1 and md["row"] == 0 and md["channel"] == 3
    grid = np.asarray(md["map"])
    assert grid.sum() == 1 and grid.shape == (md["map_rows"], md["map_cols"]) == (1, 10)
    assert grid[0, 3] == 1


def test_junit_testcases_and_failures(tmp_path):
    run = _run_with_outcomes(tmp_path)
    root = ET.fromstring(junit_xml([run], name="net"))
    assert root.tag == "testsuites"
    (ts,) = root.findall("testsuite")
    cases = {tc.get("name"): tc for tc in ts.findall("testcase")}
    # 3 MAC layers x 2 simulators + 4 golden-only layers
    assert len(cases) == 3 * 2 + 4
    assert ts.get("tests") == "10" and ts.get("failures") == "1" and ts.get("errors") == "1"
    assert ts.get("skipped") == "4" and root.get("failures") == "1"
    fail = cases["fc[icarus]"].find("failure")
    assert fail is not None and "row 0 channel 3" in fail.get("message")
    assert "t2c-sim repro out/repro/fc-icarus" in fail.text
    assert cases["conv2[icarus]"].find("error") is not None
    assert cases["conv1[verilator]"].find("failure") is None
    assert cases["pool[golden]"].find("skipped") is not None
    props = {p.get("name"): p.get("value") for p in ts.find("properties")}
    assert props["hw.rows"] == "4" and props["hw.n"] == "2"


def test_json_round_trip(tmp_path):
    run = _run_with_outcomes(tmp_path)
    p = run.save(tmp_path / "r.json")
    back = RunResult.load(p)
    assert back.to_dict() == run.to_dict()
    d = json.loads(p.read_text())
    assert d["verdict"] == "fail"
    assert [ly["verdict"] for ly in d["layers"]] == \
        ["pass", "golden", "error", "golden", "golden", "golden", "fail"]


def test_terminal_table_rows(tmp_path):
    run = _run_with_outcomes(tmp_path)
    lines = layer_table(run).splitlines()
    assert len(lines) == 2 + len(run.layers)
    fc_line = next(ln for ln in lines if ln.startswith("fc "))
    assert fc_line.split()[-2:] == ["PASS", "FAIL"]
    conv1 = next(ln for ln in lines if ln.startswith("conv1"))
    assert "max 1, 10% nonzero" in conv1 and "1.000" in conv1  # est/RTL ratio


def test_html_is_self_contained_with_tables_and_images(tmp_path):
    run = _run_with_outcomes(tmp_path)
    html = render_html(run)
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<table class=\"layers\">" in html
    for name in ("conv1", "conv2", "fc", "pool", "gap"):
        assert f"<td>{name}</td>" in html
    # plots: cycles, utilization, LSB histograms, one mismatch map - all inline PNG
    assert html.count('src="data:image/png;base64,') == 4
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "row 0 channel 3" in html and "t2c-sim repro out/repro/fc-icarus" in html
    assert "top1_agreement_int_vs_fq" in html
    paths = write_reports(run, tmp_path / "rep")
    assert {k: p.name for k, p in paths.items()} == {
        "json": "results.json", "junit": "junit.xml", "html": "report.html"}
    ET.parse(paths["junit"])
