"""The ``t2c-sim`` command: help, exit codes and one-line errors for bad inputs, estimate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from t2c_sim.cli import EXIT_INFRA, EXIT_OK, EXIT_USAGE, main
from t2c_sim.config import HwConfig
from t2c_sim.estimate.scalesim import read_topology, topology_records
from t2c_sim.export import save_network
from t2c_sim.workloads import gen

SUBCOMMANDS = ["run", "regress", "estimate", "repro", "demo"]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {err!r}"
    return lines[0]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_of_every_subcommand(sub, capsys):
    assert main([sub, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"usage: t2c-sim {sub}")


def test_console_script_help_lists_subcommands():
    exe = Path(sys.executable).parent / "t2c-sim"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "t2c_sim.cli"]
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for sub in SUBCOMMANDS:
        assert sub in r.stdout
    assert "exit codes" in r.stdout


def test_no_subcommand_is_usage_error(capsys):
    assert main([]) == EXIT_USAGE
    _one_error_line(capsys.readouterr().err)


def test_missing_recipe_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["run", str(missing), "--sim", "none", "--out", str(tmp_path / "o")]) \
        == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert str(missing) in line and "not found" in line
    assert not (tmp_path / "o").exists()


def test_bad_yaml_key_in_hw_file(tmp_path, capsys):
    hw = tmp_path / "hw.yaml"
    hw.write_text("rows: 4\ncolz: 4\n")
    net = tmp_path / "net"
    save_network(gen.random_network(np.random.default_rng(0), h=4, w=4, channels=4), net)
    assert main(["run", str(net), "--hw", str(hw), "--sim", "none",
                 "--out", str(tmp_path / "o")]) == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert str(hw) in line and "'colz'" in line
    assert not (tmp_path / "o").exists()


def test_bad_hw_param_value(capsys):
    assert main(["estimate", "x.csv", "--hw-param", "rows=four"]) == EXIT_USAGE
    assert "rows" in _one_error_line(capsys.readouterr().err)


def test_unknown_simulator(tmp_path, capsys):
    assert main(["run", str(tmp_path / "r.yaml"), "--sim", "modelsim"]) == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert "modelsim" in line


def test_simulator_missing_via_tool_path(tmp_path, capsys):
    # An empty search path: iverilog cannot be found -> infrastructure error, exit 3,
    # before anything is built or written.
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    assert main(["run", str(tmp_path / "r.yaml"), "--sim", "icarus", "--tool-path", str(empty),
                 "--out", str(tmp_path / "o")]) == EXIT_INFRA
    line = _one_error_line(capsys.readouterr().err)
    assert "iverilog" in line
    assert not (tmp_path / "o").exists()


def test_verilator_missing_via_root_override(tmp_path, capsys):
    assert main(["run", str(tmp_path / "r.yaml"), "--sim", "verilator", "--verilator-root",
                 str(tmp_path), "--out", str(tmp_path / "o")]) == EXIT_INFRA
    assert "verilator" in _one_error_line(capsys.readouterr().err)


def test_regress_missing_suite_and_bad_key(tmp_path, capsys):
    assert main(["regress", str(tmp_path / "none.yaml")]) == EXIT_USAGE
    assert "none.yaml" in _one_error_line(capsys.readouterr().err)
    s = tmp_path / "s.yaml"
    s.write_text("name: x\nsims: none\njobs:\n  - random: linear\n    params: {c_inn: 3}\n")
    assert main(["regress", str(s), "--out", str(tmp_path / "o")]) == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert str(s) in line and "jobs[0].params.c_inn" in line


# ---------------------------------------------------------------- estimate, SCALE-Sim CSV
CONV_CSV = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,"
    " Strides,\n"
) + """Conv1, 10, 10, 3, 3, 4, 8, 1,
Conv2, 9, 9, 3, 3, 8, 6, 2,
"""
GEMM_CSV = """Layer Name, M, N, K,
fc1, 8, 8, 64,
"""


def test_read_scalesim_conv_topology(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(CONV_CSV)
    t1, t2 = read_topology(p)
    assert (t1.name, t1.ifmap_h, t1.channels, t1.num_filt, t1.stride_w) == ("Conv1", 10, 4, 8, 1)
    # SCALE-Sim: ofmap = ceil((H - KH + s) / s), MACs = oh*ow*kh*kw*C*N
    assert t2.ofmap == (4, 4)
    assert t2.macs == 4 * 4 * 3 * 3 * 8 * 6
    r1, r2 = topology_records(p)
    assert r1.op.value == "conv2d" and r1.out_hw == (8, 8) and r1.padding == (0, 0)
    assert r2.stride == (2, 2) and r2.out_hw == (4, 4) and r2.k_real == 72


def test_estimate_gemm_topology_matches_documented_example(tmp_path, capsys):
    # docs example of the cycle model: P=8, C_in=64, C_out=8 on a 4x4 2:4 array = 73 cycles
    p = tmp_path / "g.csv"
    p.write_text(GEMM_CSV)
    js = tmp_path / "est.json"
    rc = main(["estimate", str(p), "--nm", "2:4", "--hw-param", "rows=4", "--hw-param",
               "cols=4", "--json", str(js)])
    assert rc == EXIT_OK
    out = capsys.readouterr().out
    assert "fc1" in out and "73" in out
    import json

    d = json.loads(js.read_text())
    assert d["layers"][0]["cycles"] == 73
    assert d["layers"][0]["macs"] == 8 * 8 * 64
    assert d["hw"]["n"] == 2 and d["hw"]["m"] == 4


def test_estimate_dense_vs_sparse_on_csv(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text(CONV_CSV)
    js_d, js_s = tmp_path / "d.json", tmp_path / "s.json"
    assert main(["estimate", str(p), "--nm", "dense", "--hw-param", "n=1", "--hw-param", "m=1",
                 "--json", str(js_d)]) == EXIT_OK
    assert main(["estimate", str(p), "--nm", "2:4", "--json", str(js_s)]) == EXIT_OK
    import json

    d, s = json.loads(js_d.read_text()), json.loads(js_s.read_text())
    # Same dense MACs; a 2:4 array consumes 4 activations per PE per cycle (G = K/4) vs 1.
    assert [x["macs"] for x in d["layers"]] == [x["macs"] for x in s["layers"]]
    assert all(a["cycles"] > b["cycles"] for a, b in zip(d["layers"], s["layers"]))
    assert HwConfig.from_dict(d["hw"]).sparsity.dense


def test_estimate_bad_csv_names_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text(CONV_CSV + "Conv3, 9, x, 3, 3, 8, 6, 2,\n")
    assert main(["estimate", str(p)]) == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert "bad.csv" in line and "line 4" in line


def test_run_golden_only_writes_reports(tmp_path, capsys):
    net = tmp_path / "net"
    save_network(gen.random_network(np.random.default_rng(3), h=4, w=4, channels=4, n=2, m=4),
                 net)
    out = tmp_path / "o"
    assert main(["run", str(net), "--sim", "none", "--out", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    for name in ("conv1", "pool", "conv2", "add", "gap", "flatten", "fc"):
        assert name in text
    assert f"HTML report: {out / 'report.html'}" in text
    assert {p.name for p in out.iterdir()} == {"results.json", "junit.xml", "report.html"}


def test_run_unknown_layer_filter(tmp_path, capsys):
    net = tmp_path / "net"
    save_network(gen.random_network(np.random.default_rng(3), h=4, w=4, channels=4), net)
    assert main(["run", str(net), "--sim", "none", "--layers", "conv1,convX",
                 "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "convX" in _one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------- regress/run: every bad input
_OK_JOB = "jobs: [{random: linear, params: {c_in: 16, c_out: 6, rows: 3}}]\n"
REGRESS_BAD = [  # (suite text or None for a missing file, extra args, exit code, must appear)
    (None, [], EXIT_USAGE, ["suite not found"]),
    ("name: x\njobs: [\n", [], EXIT_USAGE, ["line 3: not valid YAML"]),
    ("- a\n- b\n", [], EXIT_USAGE, ["must be a mapping"]),
    ("name: x\nbogus: 1\n" + _OK_JOB, [], EXIT_USAGE, ["'bogus'", "unknown suite key"]),
    ("name: x\njobs: [{random: linear, colour: red}]\n", [], EXIT_USAGE, ["'jobs[0].colour'"]),
    ("name: x\nsims: [modelsim]\n" + _OK_JOB, [], EXIT_USAGE, ["'sims'", "modelsim"]),
    ("name: x\njobs: [{random: linear, sims: [vcs]}]\n", [], EXIT_USAGE, ["'jobs[0].sims'"]),
    ("name: x\ntimeout_s: soon\n" + _OK_JOB, [], EXIT_USAGE, ["'timeout_s'", "'soon'"]),
    ("name: x\njobs: [{random: linear, params: {c_in: abc}}]\n", [], EXIT_USAGE,
     ["'jobs[0].params.c_in'", "integer"]),
    ("name: x\njobs: [{random: linear, params: {c_in: 0}}]\n", [], EXIT_USAGE,
     ["'jobs[0].params'", "cannot be generated"]),
    ("name: x\nhw: [{rows: 0}]\n" + _OK_JOB, [], EXIT_USAGE, ["'hw[0].rows'"]),
    ("name: ../up\n" + _OK_JOB, [], EXIT_USAGE, ["'name'"]),
    ("name: x\nsims: none\n" + _OK_JOB, ["-j", "0"], EXIT_USAGE, ["-j must be >= 1"]),
    ("name: x\nsims: none\n" + _OK_JOB, ["--timeout", "-1"], EXIT_USAGE, ["--timeout"]),
    ("name: x\nsims: none\n" + _OK_JOB, ["--scheduler", "tcp://127.0.0.1:1"], EXIT_USAGE,
     ["--scheduler needs --executor dask"]),
    ("name: x\nsims: icarus\n" + _OK_JOB, ["--tool-path", "EMPTY"], EXIT_INFRA,
     ["iverilog not found"]),
]


@pytest.mark.parametrize("text,extra,code,needles", REGRESS_BAD,
                         ids=[f"case{i}" for i in range(len(REGRESS_BAD))])
def test_regress_bad_inputs_one_line_no_results(tmp_path, capsys, text, extra, code, needles):
    suite = tmp_path / "s.yaml"
    if text is not None:
        suite.write_text(text)
    (tmp_path / "empty").mkdir()
    extra = [str(tmp_path / "empty") if a == "EMPTY" else a for a in extra]
    out = tmp_path / "o"
    assert main(["regress", str(suite), "--out", str(out), *extra]) == code
    line = _one_error_line(capsys.readouterr().err)
    for n in needles:
        assert n in line, line
    if text is not None and not extra:  # errors about the suite file name it
        assert str(suite) in line
    assert not out.exists()  # nothing written, not even an empty folder


def test_run_bad_timeout_and_internal_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["run", str(tmp_path / "r.yaml"), "--sim", "none", "--timeout", "0"]) \
        == EXIT_USAGE
    assert "--timeout" in _one_error_line(capsys.readouterr().err)
    # A bug deep inside (any non-package exception) still ends in one line and exit 3.
    import t2c_sim.regress.hwfile as hwfile

    def boom(*a, **k):
        raise TypeError("unhashable type: 'dict'\nsecond line")

    monkeypatch.setattr(hwfile, "load_hw", boom)
    assert main(["run", str(tmp_path / "r.yaml"), "--sim", "none",
                 "--out", str(tmp_path / "o")]) == EXIT_INFRA
    line = _one_error_line(capsys.readouterr().err)
    assert "internal error: TypeError: unhashable type" in line and "second line" in line
    assert not (tmp_path / "o").exists()
