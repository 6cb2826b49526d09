"""Golden == ONNX Runtime on every quantized tensor of imported models (``run --parity ort``).

The oracle is ONNX Runtime itself (CPU, one thread), run with every quantized tensor exposed, at
``ORT_DISABLE_ALL`` and ``ORT_ENABLE_ALL``. Done-when of issue 15: the ORT-quantized CNN with
residual adds and pooling (QOperator: every layer is an integer kernel at both levels) has
golden == ORT on every tensor, 0 LSB, under ``ort_fp32``. Mutated records prove the comparison
can fail. Skipped without the optional ``onnx`` extra.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_fixtures import qdq_conv, quantized_model  # noqa: E402

from t2c_sim.cli import main  # noqa: E402
from t2c_sim.golden import attach_results, run_network  # noqa: E402
from t2c_sim.importers import import_onnx  # noqa: E402
from t2c_sim.regress.report import junit_xml, layer_table, render_html  # noqa: E402
from t2c_sim.regress.report.parity import parity_lines  # noqa: E402
from t2c_sim.regress.results import LayerResult, RunResult  # noqa: E402
from t2c_sim.regress.sources import records_from_onnx  # noqa: E402
from t2c_sim.verify.ort_parity import LEVELS, ort_parity  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx")
    out = {f"rescnn_{f}_{a}": quantized_model(d, "rescnn", f, act=a, seed=3)
           for f in ("qdq", "qop") for a in ("int8", "uint8")}
    out["dw_qop"] = quantized_model(d, "depthwise", "qop")
    out["dw_qdq"] = quantized_model(d, "depthwise", "qdq", act="uint8")
    out["mlp_qop"] = quantized_model(d, "mlp", "qop", act="uint8")
    out["mlp_qdq"] = quantized_model(d, "mlp", "qdq")
    out["conv_relu"] = qdq_conv(d / "conv_relu.onnx", act="relu")
    out["conv_clip"] = qdq_conv(d / "conv_clip.onnx", act="clip", clip=(-0.5, 2.0))
    return out


def _exact(st: dict) -> bool:
    return st["mismatch"] == 0 and "error" not in st and st["n"] > 0


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_done_when_cnn_golden_equals_ort_on_every_tensor(models, act: str) -> None:
    """QOperator CNN (residual adds, max pool, global average pool, flatten): 0 LSB everywhere,
    at both optimization levels, locally and chained, plus the input and the unmodified graph."""
    src = records_from_onnx(models[f"rescnn_qop_{act}"], seed=1, parity=LEVELS)
    p = src.parity
    kernels = set()
    for lv in LEVELS:
        assert _exact(p["input"][lv]) and _exact(p["deployed"][lv]), (lv, p)
        for name, d in p["layers"].items():
            e = d[lv]
            assert e["verdict"] == "exact" and e["integer"], (lv, name, e)
            assert _exact(e["local"]) and _exact(e["chained"]), (lv, name, e)
            kernels.add(e["kernel"])
    assert {"QLinearConv", "QLinearAdd", "QGemm", "QLinearGlobalAveragePool", "MaxPool",
            "Flatten"} <= kernels
    assert sum(d[LEVELS[0]]["local"]["n"] for d in p["layers"].values()) > 9000


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_qdq_cnn_integer_kernels_exact_float_kernels_within_one_lsb(models, act: str) -> None:
    """QDQ: ONNX Runtime fuses patterns into integer kernels at ORT_ENABLE_ALL (which ones
    depends on the activation type and the platform: with uint8 activations all of them) and
    runs the rest in float32 before the QuantizeLinear. Integer kernels: exact; float ones: at
    most 1 LSB."""
    src = records_from_onnx(models[f"rescnn_qdq_{act}"], seed=2, parity=LEVELS)
    p = src.parity
    fused = 0
    for lv in LEVELS:
        assert _exact(p["input"][lv])
        for name, d in p["layers"].items():
            e = d[lv]
            assert e["verdict"] != "fail", (lv, name, e)
            assert e["local"]["max"] <= 1, (lv, name, e)
            fused += lv == "ORT_ENABLE_ALL" and e["integer"] and e["kernel"] != "Flatten"
            if lv == "ORT_DISABLE_ALL" and d[lv]["kernel"] not in ("Flatten",):
                assert "(float)" in e["kernel"], (name, e["kernel"])   # nothing fused
    assert fused >= 2
    if act == "uint8":        # U8S8: ONNX Runtime fuses every pattern, the exposure changes none
        ents = [d["ORT_ENABLE_ALL"] for d in p["layers"].values()]
        assert all(e["integer"] and e["verdict"] == "exact" for e in ents), ents
        assert "QLinearConv" in {e["kernel"] for e in ents} and not p["notes"]


def test_depthwise_mlp_and_folded_activations(models) -> None:
    for key in ("dw_qop", "dw_qdq", "mlp_qop", "mlp_qdq", "conv_relu", "conv_clip"):
        p = records_from_onnx(models[key], seed=4, parity=LEVELS).parity
        for lv in LEVELS:
            assert _exact(p["input"][lv]), key
            for name, d in p["layers"].items():
                e = d[lv]
                if e["kernel"] in ("QLinearAveragePool",) or "(float)" in e["kernel"]:
                    assert e["local"]["max"] <= 1, (key, lv, name, e)   # float kernels
                else:
                    assert e["verdict"] == "exact", (key, lv, name, e)
    kern = {d["ORT_ENABLE_ALL"]["kernel"] for d in
            records_from_onnx(models["mlp_qop"], parity=LEVELS).parity["layers"].values()}
    assert "QLinearMatMul" in kern and "QGemm" in kern


def test_input_ties_quantize_like_ort(models, tmp_path) -> None:
    """Inputs on exact float32 ties of x / s: the host-side quantization rounds them to even,
    as ONNX Runtime's QuantizeLinear does."""
    imp = import_onnx(models["mlp_qop"])
    s = np.float32(imp.input.fmt.scale)
    k = np.random.default_rng(9).integers(-60, 60, imp.input.shape).astype(np.float32)
    x = ((k + np.float32(0.5)) * s).astype(np.float32)
    ties = int(np.sum(x / s == k + np.float32(0.5)))
    np.savez(tmp_path / "x.npz", x=x)
    src = records_from_onnx(models["mlp_qop"], input_path=tmp_path / "x.npz", parity=LEVELS)
    assert ties > 100 and all(_exact(src.parity["input"][lv]) for lv in LEVELS)


def test_parity_catches_a_wrong_record(models) -> None:
    """Mutants: one bias_eff off by 1 in one channel, a section-2 add in an ort_fp32 network; the
    parity check must name the layer and fail it."""
    imp = import_onnx(models["rescnn_qop_int8"])
    x = imp.input.synthetic(0)
    xq = imp.input.quantize(x)
    recs = list(imp.records)
    conv = recs[1]
    recs[1] = conv.replace(bias_eff=conv.bias_eff + np.eye(1, conv.c_out, 3, dtype=np.int64)[0] * 7)
    recs = attach_results(recs, run_network(recs, xq))
    p = ort_parity(imp, x, run_network(recs, xq), recs, ("ORT_ENABLE_ALL",))
    e = p["layers"][conv.name]["ORT_ENABLE_ALL"]
    assert e["verdict"] == "fail" and e["local"]["mismatch"] > 0
    assert all(d["ORT_ENABLE_ALL"]["verdict"] == "exact" for n, d in p["layers"].items()
               if n not in (conv.name,) and n != recs[2].name and d["ORT_ENABLE_ALL"]["local"]["n"])
    # the golden add with a section-2 (shared-shift, half_even) requantizer instead of QLinearAdd
    half = import_onnx(models["rescnn_qop_int8"], rounding="half_even")
    wrong = [half.records[i] if r.op.value == "add" else r for i, r in enumerate(imp.records)]
    wrong = attach_results(wrong, run_network(wrong, xq))
    p2 = ort_parity(imp, x, run_network(wrong, xq), wrong, ("ORT_DISABLE_ALL",))
    adds = [r.name for r in imp.records if r.op.value == "add"]
    assert any(p2["layers"][a]["ORT_DISABLE_ALL"]["local"]["mismatch"] for a in adds), \
        "a section-2 add agreed with QLinearAdd everywhere: the fixture does not separate them"


def test_reports_carry_parity(models, tmp_path, capsys) -> None:
    out = tmp_path / "res"
    assert main(["run", str(models["rescnn_qop_int8"]), "--parity", "ort", "--sim", "none",
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "ORT parity (DISABLE_ALL | ENABLE_ALL)" in text and "exact | exact" in text
    assert "ORT_ENABLE_ALL: 11/11 layers exact, 0 fail; quantized input exact" in text
    res = json.loads((out / "results.json").read_text())
    assert res["parity"]["levels"] == list(LEVELS)
    assert all(lr["parity"]["ORT_ENABLE_ALL"]["verdict"] == "exact" for lr in res["layers"])
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    names = [tc.get("name") for tc in suite.iter("testcase")]
    assert "input[ort ENABLE_ALL]" in names and sum("[ort " in n for n in names) == 2 * 12
    assert suite.get("failures") == "0"
    assert "Parity with onnxruntime" in (out / "report.html").read_text()


def test_a_parity_failure_fails_the_run_in_every_report() -> None:
    e_ok = {"kernel": "QLinearConv", "integer": True, "verdict": "exact",
            "local": {"n": 8, "mismatch": 0, "max": 0, "hist": {}},
            "chained": {"n": 8, "mismatch": 0, "max": 0, "hist": {}}}
    e_bad = {**e_ok, "verdict": "fail", "local": {"n": 8, "mismatch": 2, "max": 1,
                                                   "hist": {"-1": 1, "1": 1}}}
    run = RunResult(title="m", sims=[], parity={"levels": ["ORT_ENABLE_ALL"], "runtime": "ort",
                                                "input": {"ORT_ENABLE_ALL": e_ok["local"]}})
    run.layers = [LayerResult("a", "conv2d", parity={"ORT_ENABLE_ALL": e_ok}),
                  LayerResult("b", "conv2d", parity={"ORT_ENABLE_ALL": e_bad})]
    assert run.verdict == "fail" and run.layers[1].verdict == "fail"
    assert "FAIL 2/8 +-1" in layer_table(run)
    assert any(line.startswith("  FAIL b [ORT_ENABLE_ALL, QLinearConv]: local 2/8 differ (-1: 1, "
                               "+1: 1 LSB)") for line in parity_lines(run))
    root = ET.fromstring(junit_xml([run]))
    fails = [tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None]
    assert fails == ["b[ort ENABLE_ALL]"]
    assert 'class="fail">FAIL' in render_html(run)
    back = RunResult.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back.verdict == "fail" and back.layers[1].parity["ORT_ENABLE_ALL"]["verdict"] == "fail"
    run.layers[1].parity = {"ORT_ENABLE_ALL": e_ok}
    run.parity["input"]["ORT_ENABLE_ALL"] = {"n": 8, "mismatch": 1, "max": 1, "hist": {"1": 1}}
    assert run.verdict == "fail"                         # the quantized input differing fails too
