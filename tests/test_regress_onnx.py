"""``onnx:`` jobs of a regression suite: validated before any job runs, keyed by the model's and
the input's bytes, reported like recipe jobs, and bit-exact on the RTL.

Models are made here (``tests/onnx_fixtures.py``: PyTorch -> ONNX -> ``quantize_static``).
Oracles: the ONNX file read with ``onnx`` directly (which nodes become MAC layers), ONNX
Runtime (parity), the simulator's cycle counter vs the cycle model, and expected error texts.
Skipped without the optional ``onnx`` extra.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_fixtures import qdq_conv, quantized_model  # noqa: E402

from t2c_sim.cli import main  # noqa: E402
from t2c_sim.errors import ConfigError  # noqa: E402
from t2c_sim.regress import suite as suite_mod  # noqa: E402
from t2c_sim.regress.suite import load_suite  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx_suite")
    return {"rescnn_2of4": quantized_model(d, "rescnn", "qdq", pruned=True),
            "rescnn_2of4_s1": quantized_model(d, "rescnn", "qdq", pruned=True, seed=1),
            "mlp": quantized_model(d, "mlp", "qdq"),
            "softmax": qdq_conv(d / "softmax.onnx", op_after="Softmax")}


def _mac_nodes(path: Path) -> list[str]:
    """Names of the ONNX nodes that compute a MAC layer (read with ``onnx``, not the importer)."""
    g = onnx.load(str(path)).graph
    return [n.name for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul", "QLinearConv",
                                                     "QLinearMatMul", "QGemm")]


def _suite(folder: Path, text: str, name: str = "s.yaml") -> Path:
    p = folder / name
    p.write_text(text)
    return p


# ---- a good suite on Verilator ------------------------------------------------------------------
FAULTY = "/c2/Conv"


def _wrong_golden(real):
    """``records_from_onnx`` whose golden output of layer FAULTY is off by one in one element
    (the injected fault the RTL comparison must catch)."""
    def fn(*a, **kw):
        src = real(*a, **kw)
        rec = next(r for r in src.records if r.name == FAULTY)
        rec.y = rec.y.copy()
        rec.y.flat[0] = rec.y.flat[0] + 1 if rec.y.flat[0] < rec.hi else rec.y.flat[0] - 1
        return src
    return fn


def test_fault_injection_changes_only_the_named_layer(models) -> None:
    """The injected fault is what the Verilator test's fault case relies on: one element of one
    layer's golden output differs; nothing else does."""
    from t2c_sim.regress.sources import records_from_onnx

    good = records_from_onnx(models["rescnn_2of4"])
    bad = _wrong_golden(records_from_onnx)(models["rescnn_2of4"])
    diff = {g.name: int(np.count_nonzero(g.y != b.y)) for g, b in zip(good.records, bad.records)}
    assert {k: v for k, v in diff.items() if v} == {FAULTY: 1}


@pytest.mark.sim
@pytest.mark.parametrize("fault", [False, True], ids=["exact", "wrong_golden"])
def test_onnx_suite_runs_bit_exact_on_verilator(models, tmp_path, capsys, monkeypatch,
                                                fault) -> None:
    """The 2:4 ORT-quantized residual CNN as a suite job (ort_fp32, parity with ONNX Runtime):
    every MAC layer passes on Verilator with measured cycles equal to the estimate, golden
    equals ONNX Runtime on every layer, and the job is in summary.json, junit.xml and
    report.html like a recipe job. With one golden element made wrong (the job runs in this
    process at -j 1) that layer, and only it, fails, and so do the job and the suite (exit 1)."""
    import t2c_sim.regress.jobs as jobs_mod

    if fault:   # (without a repro bundle: its waves would need a second Verilator build)
        monkeypatch.setattr(jobs_mod, "records_from_onnx", _wrong_golden(jobs_mod.records_from_onnx))
        monkeypatch.setattr(jobs_mod, "RunOptions", functools.partial(jobs_mod.RunOptions,
                                                                      repro=False))
    shutil.copy(models["rescnn_2of4"], tmp_path / "cnn.onnx")
    s = _suite(tmp_path, "name: onnx_ok\nsims: [verilator]\njobs:\n"
                         "  - onnx: cnn.onnx\n    name: cnn\n    parity: ort\n")
    out = tmp_path / "res"
    rc = main(["regress", str(s), "--out", str(out), "-j", "1", "--no-progress"])
    if fault:
        assert rc == 1
        (job,) = json.loads((out / "summary.json").read_text())["jobs"]
        run = json.loads((out / "jobs" / f"{job['job_id']}.json").read_text())["run"]
        verdicts = {ly["name"]: ly["sims"][0]["verdict"] for ly in run["layers"] if ly["sims"]}
        assert job["verdict"] == "fail" and {k for k, v in verdicts.items() if v != "pass"} == {FAULTY}
        assert ET.parse(out / "junit.xml").getroot().get("failures") == "1"
        return
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    (job,) = summary["jobs"]
    assert (job["kind"], job["name"], job["verdict"]) == ("onnx", "cnn", "pass")
    assert job["onnx"] == str((tmp_path / "cnn.onnx").resolve())
    assert job["hw_tag"].startswith("4x4 3:4")          # the array took the model's N:M
    run = json.loads((out / "jobs" / f"{job['job_id']}.json").read_text())["run"]
    macs = [ly for ly in run["layers"] if ly["op"] in ("conv2d", "linear")]
    assert [ly["name"] for ly in macs] == _mac_nodes(models["rescnn_2of4"])
    for ly in macs:
        (o,) = ly["sims"]
        assert o["sim"] == "verilator" and o["verdict"] == "pass", ly["name"]
        assert o["cycles_measured"] == ly["cycles_est"] > 0, ly["name"]
    for ly in run["layers"]:                              # golden == ONNX Runtime, both levels
        assert {e["verdict"] for e in ly["parity"].values()} == {"exact"}, ly["name"]
    root = ET.parse(out / "junit.xml").getroot()
    (ts,) = root.findall("testsuite")
    assert ts.get("name").startswith("cnn[") and ts.get("failures") == "0"
    names = [tc.get("name") for tc in ts.findall("testcase")]
    assert all(f"{n}[verilator]" in names for n in _mac_nodes(models["rescnn_2of4"]))
    for lv in ("DISABLE_ALL", "ENABLE_ALL"):
        assert f"input[ort {lv}]" in names and f"/c1/Conv[ort {lv}]" in names
    html = (out / "report.html").read_text()
    assert "cnn" in html and "Parity with onnxruntime" in html


# ---- bad entries: one line, exit 2, nothing written ---------------------------------------------
def _bad_cases(models: dict[str, Path], d: Path) -> list[tuple[str, str, str, str]]:
    """(case, the entry (YAML lines under ``jobs:``), the key named, text the line holds)."""
    (d / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(3000))
    shutil.copy(models["softmax"], d / "softmax.onnx")
    shutil.copy(models["rescnn_2of4"], d / "cnn.onnx")
    shutil.copy(models["mlp"], d / "mlp.onnx")
    np.savez(d / "x_bad.npz", x=np.zeros((2, 48), np.float32))
    recipe = Path("models/digits_cnn_w8a8_2of4.yaml").resolve()
    return [
        ("missing file", "  - onnx: nowhere.onnx", "jobs[0].onnx", "file 'nowhere.onnx' not found"),
        ("garbage file", "  - onnx: garbage.onnx", "jobs[0].onnx", "not a readable ONNX model"),
        ("unsupported op", "  - onnx: softmax.onnx", "jobs[0].onnx",
         "node 'tail': Softmax (node #"),
        ("TFLite profile", "  - onnx: cnn.onnx\n    profile: tflite_double", "jobs[0].profile",
         "tflite_double is TFLite's rounding"),
        ("unknown profile", "  - onnx: cnn.onnx\n    profile: round_up", "jobs[0].profile",
         "round_up"),
        ("unknown key", "  - onnx: cnn.onnx\n    profiel: ort_fp32", "jobs[0].profiel",
         "unknown job key"),
        ("onnx and recipe", f"  - onnx: cnn.onnx\n    recipe: {recipe}", "jobs[0]",
         "needs exactly one of 'recipe', 'random', 'onnx' or 'testbench' (got recipe and onnx)"),
        ("onnx and random", "  - onnx: cnn.onnx\n    random: linear", "jobs[0]",
         "(got random and onnx)"),
        ("onnx option on a random entry", "  - random: linear\n    profile: half_even",
         "jobs[0].profile", "only an onnx entry takes 'profile'"),
        ("params on an onnx entry", "  - onnx: cnn.onnx\n    params: {c_in: 4}", "jobs[0].params",
         "takes no params"),
        ("weights that do not fit nm", "  - onnx: cnn.onnx\n    nm: '2:4'", "jobs[0].nm",
         "layer '/c1/Conv': weights: channel"),
        ("unquoted nm (YAML reads 2:4 as 124)", "  - onnx: cnn.onnx\n    nm: 2:4", "jobs[0].nm",
         "must be 'N:M' (quoted in YAML), got 124"),
        ("input of the wrong shape", "  - onnx: mlp.onnx\n    input: x_bad.npz", "jobs[0].input",
         "input has shape [2, 48]"),
        ("missing input file", "  - onnx: mlp.onnx\n    input: none.npz", "jobs[0].input",
         "file 'none.npz' not found"),
        ("seeds with a fixed input", "  - onnx: mlp.onnx\n    input: x_bad.npz\n    seeds: [1]",
         "jobs[0].seeds", "runs its input: once"),
        ("bad parity", "  - onnx: cnn.onnx\n    parity: tflite", "jobs[0].parity",
         "must be 'ort'"),
        ("a build without profiles", "  - onnx: cnn.onnx\n    sims: [verilator]\n"
         "    hw: {n: 3, m: 4, profiles: 0}", "jobs[0]",
         "the DUT refuses this model: layer '/c1/Conv': cannot run on DUT t2c_accel: rounding "
         "profile ort_fp32"),
        ("weights that do not fit the array", "  - onnx: cnn.onnx\n    sims: [verilator]\n"
         "    hw: {n: 2, m: 4}", "jobs[0]", "3:4 weights do not fit the DUT's 2:4"),
    ]


def test_bad_entries_one_line_exit_2_nothing_written(models, tmp_path, capsys) -> None:
    cases = _bad_cases(models, tmp_path)
    for i, (case, entry, key, text) in enumerate(cases):
        s = _suite(tmp_path, f"name: bad\nsims: none\njobs:\n{entry}\n", f"bad{i}.yaml")
        out = tmp_path / f"out{i}"
        code = main(["regress", str(s), "--out", str(out), "-j", "1", "--no-progress"])
        cap = capsys.readouterr()
        err = cap.err.strip().splitlines()
        assert code == 2, (case, err)
        assert len(err) == 1, (case, err)
        assert f"{s}, key '{key}'" in err[0] and text in err[0], (case, err[0])
        assert not out.exists() and not cap.out, case
    # the same checker passes a good entry (so each failing case is the entry's fault)
    s = _suite(tmp_path, "name: good\nsims: none\njobs:\n  - onnx: cnn.onnx\n", "good.yaml")
    assert main(["regress", str(s), "--out", str(tmp_path / "good"), "-j", "1",
                 "--no-progress"]) == 0
    assert (tmp_path / "good" / "summary.json").is_file()


def test_importer_refusal_keeps_the_importer_text(models, tmp_path) -> None:
    """The one line is the suite's context followed by the importer's own message (model file,
    node, op): nothing of the importer's error is lost."""
    shutil.copy(models["softmax"], tmp_path / "softmax.onnx")
    s = _suite(tmp_path, "name: b\nsims: none\njobs:\n  - onnx: softmax.onnx\n")
    with pytest.raises(ConfigError) as ei:
        load_suite(s)
    from t2c_sim.importers import import_onnx

    with pytest.raises(Exception) as direct:
        import_onnx(tmp_path / "softmax.onnx")
    assert ei.value.file == str(s) and ei.value.key == "jobs[0].onnx"
    assert ei.value.detail == str(direct.value)
    assert str(tmp_path / "softmax.onnx") in ei.value.detail


# ---- seeds, hw, identity ------------------------------------------------------------------------
def test_seeds_hw_and_options_expand_like_run(models, tmp_path) -> None:
    for k in ("cnn", "mlp"):
        shutil.copy(models["rescnn_2of4" if k == "cnn" else "mlp"], tmp_path / f"{k}.onnx")
    np.savez(tmp_path / "x.npz", x=np.zeros((8, 48), np.float32))
    s = load_suite(_suite(tmp_path, """
name: e
sims: none
seeds: [0, 1, 2]
jobs:
  - onnx: cnn.onnx
  - onnx: cnn.onnx
    name: cnn_8
    hw: {m: 8, n: 6}
    profile: half_even
  - onnx: mlp.onnx
    input: x.npz
"""))
    by = {}
    for j in s.jobs:
        by.setdefault(j.name, []).append(j)
    assert sorted(by) == ["cnn", "cnn_8", "mlp"]
    assert [j.seed for j in by["cnn"]] == [0, 1, 2]       # seeds pick the synthetic input
    assert [j.seed for j in by["mlp"]] == [0]             # a fixed input runs once
    assert {(j.hw["n"], j.hw["m"]) for j in by["cnn"]} == {(3, 4)}   # the model's N:M
    assert {(j.hw["n"], j.hw["m"]) for j in by["cnn_8"]} == {(6, 8)}  # the suite's array
    assert by["cnn_8"][0].params == {"profile": "half_even", "nm": "auto", "parity": "none"}
    assert by["mlp"][0].input == str((tmp_path / "x.npz").resolve())
    assert len({j.job_id for j in s.jobs}) == len(s.jobs)


def _one_job(suite: Path, out: Path, capsys) -> tuple[str, str]:
    """Run the suite (golden only) and return (the job id, the 'N ran, M already finished' text)."""
    assert main(["regress", str(suite), "--out", str(out), "-j", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    (job,) = json.loads((out / "summary.json").read_text())["jobs"]
    return job["job_id"], next(ln for ln in text.splitlines() if " ran, " in ln)


@pytest.mark.parametrize("mutant", [False, True], ids=["real", "id_without_file_sha"])
def test_a_changed_model_or_input_is_not_reused(models, tmp_path, capsys, monkeypatch,
                                                mutant) -> None:
    """Resume reuses a finished job only while the model and input bytes are the same. The
    mutant (a job id that leaves the files' sha256 out) reuses the stale result, and the check
    catches it."""
    if mutant:
        real = suite_mod.Job.job_id.fget
        monkeypatch.setattr(suite_mod.Job, "job_id", property(
            lambda self: real(dataclasses.replace(self, onnx_sha="", input_sha=""))))
    shutil.copy(models["mlp"], tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((8, 48)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    s = _suite(tmp_path, "name: c\nsims: none\njobs:\n  - onnx: m.onnx\n    input: x.npz\n")
    out = tmp_path / "res"
    _, first = _one_job(s, out, capsys)
    assert "1 ran, 0 already finished" in first
    _, again = _one_job(s, out, capsys)
    assert "0 ran, 1 already finished" in again               # unchanged: reused
    shutil.copy(models["rescnn_2of4"], tmp_path / "m.onnx")  # another model, same path...
    shutil.copy(models["mlp"], tmp_path / "m.onnx")          # ...and back: the same bytes
    assert "0 ran, 1 already finished" in _one_job(s, out, capsys)[1]
    changes = [lambda: np.savez(tmp_path / "x.npz", x=x * 0.5),      # the input batch
               lambda: shutil.copy(models["rescnn_2of4_s1"], tmp_path / "m.onnx")]
    s2 = _suite(tmp_path, "name: c\nsims: none\njobs:\n  - onnx: m.onnx\n", "s2.yaml")
    for i, change in enumerate(changes):
        suite = s if i == 0 else s2
        if i == 1:
            shutil.copy(models["rescnn_2of4"], tmp_path / "m.onnx")
            _one_job(suite, out, capsys)
        before = _one_job(suite, out, capsys)[0]
        change()
        jid, line = _one_job(suite, out, capsys)
        reused = "0 ran, 1 already finished" in line
        assert reused == mutant and (jid == before) == mutant, (i, line)
