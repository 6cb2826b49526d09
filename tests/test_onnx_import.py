"""The ONNX importer: records from QDQ and QOperator graphs, their wiring and layout, N:M, the
command line (``import``, ``run MODEL.onnx``) and a table of bad inputs.

Fixtures are made here (``tests/onnx_fixtures.py``): PyTorch models exported to ONNX and
quantized with ONNX Runtime's ``quantize_static``, plus hand-built graphs. The oracles read the
model file with ``onnx`` directly and lay the integers out with formulas written in this file
(not with ``t2c_sim.layout``). Whether the records compute what ONNX Runtime computes is
``tests/test_onnx_parity.py``. Skipped without the optional ``onnx`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import numpy_helper  # noqa: E402
from onnx_fixtures import qdq_conv, quantized_model, with_dynamic_batch  # noqa: E402

from t2c_sim.cli import main  # noqa: E402
from t2c_sim.config import OpKind, RoundMode, RoundProfile  # noqa: E402
from t2c_sim.errors import ConfigError, OnnxError  # noqa: E402
from t2c_sim.importers import import_onnx, onnx_model  # noqa: E402
from t2c_sim.importers.onnx_import import load_input  # noqa: E402
from t2c_sim.rounding_profiles import f32_to_pair  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx")
    out = {f"rescnn_{f}": quantized_model(d, "rescnn", f) for f in ("qdq", "qop")}
    out["rescnn_qop_u8"] = quantized_model(d, "rescnn", "qop", act="uint8")
    out["rescnn_2of4"] = quantized_model(d, "rescnn", "qdq", pruned=True)
    out["mlp_qdq"] = quantized_model(d, "mlp", "qdq")
    out["dw_qop"] = quantized_model(d, "depthwise", "qop")
    out["conv_relu"] = qdq_conv(d / "conv_relu.onnx", act="relu")
    out["conv_clip"] = qdq_conv(d / "conv_clip.onnx", act="clip", clip=(-0.5, 2.0))
    return out


def _inits(path: Path) -> dict[str, np.ndarray]:
    m = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


# ---- records: wiring, layout, parameters ---------------------------------------------------------
@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_cnn_records_and_wiring(models, fmt: str) -> None:
    imp = import_onnx(models[f"rescnn_{fmt}"])
    ops = [r.op for r in imp.records]
    assert ops == [OpKind.CONV2D, OpKind.CONV2D, OpKind.ADD, OpKind.MAXPOOL, OpKind.CONV2D,
                   OpKind.GAVGPOOL, OpKind.FLATTEN, OpKind.FLATTEN, OpKind.LINEAR, OpKind.LINEAR,
                   OpKind.ADD], ops
    r = {rec.meta["onnx_op"] + str(i): rec for i, rec in enumerate(imp.records)}
    c1, c2, add, pool, c3, gap, fl, fl_g, fc, fc_g, out = imp.records
    assert c1.inputs == ("input",) and c2.inputs == (c1.name,)
    assert add.inputs == (c1.name, c2.name) and pool.inputs == (add.name,)
    assert c3.inputs == (pool.name,) and gap.inputs == (pool.name,)
    assert fl.inputs == (c3.name,) and fc.inputs == (fl.name,) and fl_g.inputs == (gap.name,)
    assert out.inputs == (fc.name, fc_g.name) and imp.output == out.name
    assert c1.meta["input_quant"]["scale"] == pytest.approx(imp.input.fmt.scale)
    assert all(rec.mode is RoundProfile.ORT_FP32 for rec in (c1, c2, add, c3, gap, fc, fc_g, out))
    assert (c3.stride, c3.padding, c3.h, c3.w, c3.c_in, c3.c_out) == ((2, 2), (1, 1), 8, 8, 8, 16)
    assert len(r) == 11


def test_conv_weights_bias_and_multiplier_from_the_file(models) -> None:
    """QOperator conv: W_q in (kh, kw, c) order padded to M, bias_eff = B - z_x * sum W,
    (M0, sh) = the float32 significand/exponent of f32(f32(s_x * s_w) / s_y)."""
    path = models["rescnn_qop"]
    imp = import_onnx(path)
    ini = _inits(path)
    c1 = imp.records[0]
    w = ini["c1.weight_quantized"].astype(np.int64)          # [8, 3, 3, 3] (ONNX OIHW)
    expect = np.zeros((8, 3 * 3 * 4), dtype=np.int64)
    for o in range(8):
        for kh in range(3):
            for kw in range(3):
                for c in range(3):
                    expect[o, (kh * 3 + kw) * 4 + c] = w[o, c, kh, kw]
    assert np.array_equal(c1.w_q, expect)
    b = ini["c1.bias_quantized"].astype(np.int64)
    zx = int(ini["x_zero_point"])
    assert np.array_equal(c1.bias_eff, b - zx * w.sum(axis=(1, 2, 3)))
    sx, sw = np.float32(ini["x_scale"]), ini["c1.weight_scale"].astype(np.float32)
    sy = np.float32(ini["/c1/Conv_output_0_scale"])
    m32 = (sx * sw) / sy
    for c in range(8):
        frac, e = np.frexp(np.float64(m32[c]))           # m32 = frac * 2^e, frac in [0.5, 1)
        assert (int(c1.M0[c]), int(c1.sh[c])) == (int(frac * 2 ** 24), 24 - e)
    assert np.array_equal(f32_to_pair(m32)[0], c1.M0)


def test_linear_after_flatten_reads_hwc_columns(models) -> None:
    """The fc after a flatten of [B, 16, 4, 4]: integer column (h*4 + w)*16 + c holds ONNX
    column c*16 + h*4 + w."""
    path = models["rescnn_qop"]
    fc = import_onnx(path).records[8]
    w = _inits(path)["fc.weight_quantized"].astype(np.int64)   # QGemm B, transB = 1: [10, 256]
    for h in range(4):
        for ww in range(4):
            for c in range(16):
                assert np.array_equal(fc.w_q[:, (h * 4 + ww) * 16 + c], w[:, c * 16 + h * 4 + ww])


def test_relu_and_clip_fold_into_the_clamp(models) -> None:
    relu = import_onnx(models["conv_relu"]).records[0]
    assert (relu.lo, relu.hi) == (-5, 127)                      # max(qmin, z_y); z_y = -5
    clip = import_onnx(models["conv_clip"]).records[0]
    # Q(v) = clamp(rint_even(f32(v) / f32(0.04)) - 5): the float32 quotient -0.5 / 0.04 rounds
    # to exactly -12.5 (the real one is -12.4999997), a tie that goes to -12: Q(-0.5) = -17;
    # Q(2.0) = 50 - 5 = 45
    assert (clip.lo, clip.hi) == (-17, 45)


def test_section2_rounding_makes_rtl_records(models) -> None:
    imp = import_onnx(models["rescnn_qdq"], rounding="half_even")
    modes = {r.mode for r in imp.records if r.op in (OpKind.CONV2D, OpKind.LINEAR, OpKind.ADD)}
    assert modes == {RoundMode.HALF_EVEN}
    add = imp.records[2]
    assert add.M0.shape == (2,) and add.sh.shape == (1,)        # section 3: one shared shift
    with pytest.raises(ConfigError, match="key '--profile'.*TFLite"):
        import_onnx(models["rescnn_qdq"], rounding="tflite_double")


# ---- N:M ----------------------------------------------------------------------------------------
def test_nm_detects_the_tightest_n_and_refuses_naming_the_group(models) -> None:
    imp = import_onnx(models["rescnn_2of4"])            # c1 (3 channels) is dense, the rest 2:4
    assert imp.nm == (3, 4)
    assert all((r.n, r.m) == (3, 4) for r in imp.records if r.op in (OpKind.CONV2D, OpKind.LINEAR))
    assert import_onnx(models["rescnn_2of4"], m=8).nm[1] == 8
    assert import_onnx(models["rescnn_qdq"]).nm == (4, 4)          # unpruned: dense at M = 4
    with pytest.raises(OnnxError, match=r"layer '/c1/Conv': weights: channel \d+, group \d+ .*more "
                                        r"than N=2 of 2:4 \(--nm 2:4\)"):
        import_onnx(models["rescnn_2of4"], nm="2:4")
    ok = import_onnx(models["rescnn_2of4"], nm="3:4")
    assert ok.records[1].values.shape == (8, 72 // 4 * 3)


# ---- the input -------------------------------------------------------------------------------------
def test_input_file_is_checked(models, tmp_path) -> None:
    imp = import_onnx(models["mlp_qdq"])
    good = np.zeros((8, 48), np.float32)
    np.savez(tmp_path / "x.npz", x=good)
    assert load_input(tmp_path / "x.npz", imp.input).shape == (8, 48)
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 48), np.float32))
    with pytest.raises(ConfigError, match=r"bad.npz, key 'x': input has shape \[2, 48\]"):
        load_input(tmp_path / "bad.npz", imp.input)
    np.save(tmp_path / "nan.npy", np.full((8, 48), np.nan, np.float32))
    with pytest.raises(ConfigError, match="finite"):
        load_input(tmp_path / "nan.npy", imp.input)
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match="junk.npz: cannot read"):
        load_input(tmp_path / "junk.npz", imp.input)


# ---- the command line ------------------------------------------------------------------------------
def test_cli_import_then_run_the_records(models, tmp_path, capsys) -> None:
    out = tmp_path / "recs"
    assert main(["import", str(models["dw_qop"]), "--out", str(out)]) == 0
    assert (out / "network.json").is_file() and (out / "onnx_import.json").is_file()
    info = json.loads((out / "onnx_import.json").read_text())
    assert info["rounding"] == "ort_fp32" and info["N:M"] == "4:4"
    assert "wrote 5 records" in capsys.readouterr().out
    assert main(["run", str(out), "--sim", "none", "--out", str(tmp_path / "res"),
                 "--no-progress"]) == 0
    res = json.loads((tmp_path / "res" / "results.json").read_text())
    assert [lr["name"] for lr in res["layers"]][:2] == ["/pw/Conv_quant", "/dw/Conv_quant"]
    # an existing folder that is not a records folder is never replaced
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    assert main(["import", str(models["dw_qop"]), "--out", str(tmp_path / "keep")]) == 2
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"


def test_cli_run_refuses_a_profile_on_a_build_without_them(models, tmp_path, capsys) -> None:
    res = tmp_path / "res"
    assert main(["run", str(models["mlp_qdq"]), "--hw-param", "profiles=0",
                 "--out", str(res)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rounding profile ort_fp32: this build's requantizer has the " \
        "section-2 modes only (profiles: 0)" in err[0]
    assert "--profile half_even" in err[0] and not res.exists()
    assert main(["run", "models/digits_cnn_w8a8_2of4.yaml", "--parity", "ort"]) == 2
    assert "--parity only apply to an ONNX model" in capsys.readouterr().err


@pytest.mark.sim
@pytest.mark.slow
def test_cli_run_onnx_cnn_under_ort_fp32_on_the_rtl(models, tmp_path, capsys) -> None:
    """The 2:4 ORT-quantized residual CNN (convs, residual add, pools, linears), imported with
    ort_fp32: golden == ONNX Runtime on every quantized tensor and every MAC layer bit-exact on
    the RTL's ort_fp32 requantizer, measured cycles equal the estimate."""
    res = tmp_path / "res"
    rc = main(["run", str(models["rescnn_2of4"]), "--sim", "icarus", "--parity", "ort",
               "--out", str(res), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    out = json.loads((res / "results.json").read_text())
    macs = [ly for ly in out["layers"] if ly["op"] in ("conv2d", "linear")]
    assert len(macs) == 5
    for ly in macs:
        (o,) = ly["sims"]
        assert o["verdict"] == "pass" and o["cycles_measured"] == ly["cycles_est"], ly["name"]


@pytest.mark.sim
@pytest.mark.parametrize("profile", ["ort_fp32", "half_even"])
def test_cli_run_onnx_cnn_on_verilator(models, tmp_path, capsys, profile) -> None:
    """The same 2:4 residual CNN through ``run MODEL.onnx --sim verilator`` under ONNX Runtime's
    profile and under section-2 half-even (fast tier; both share one Verilator build of the 3:4
    array the model sizes): every MAC layer bit-exact, measured cycles equal to the estimate,
    and the records carry the profile asked for."""
    res = tmp_path / "res"
    rc = main(["run", str(models["rescnn_2of4"]), "--sim", "verilator", "--profile", profile,
               "--out", str(res), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    out = json.loads((res / "results.json").read_text())
    assert out["summary"]["rounding"] == profile and out["hw"]["n"] == 3
    macs = [ly for ly in out["layers"] if ly["op"] in ("conv2d", "linear")]
    assert len(macs) == 5
    for ly in macs:
        (o,) = ly["sims"]
        assert o["sim"] == "verilator" and o["verdict"] == "pass", ly["name"]
        assert o["cycles_measured"] == ly["cycles_est"] > 0, ly["name"]


def _bad_models(d: Path, good: Path) -> list[tuple[str, Path, str]]:
    """(case, model file, text the one error line must hold)."""
    data = good.read_bytes()
    (d / "trunc.onnx").write_bytes(data[: len(data) // 2])
    m = onnx.load(str(qdq_conv(d / "softmax_nl.onnx", op_after="Softmax")))
    m.graph.node[-1].name = "tail\nt2c-sim: error: forged"       # a hostile name: still one line
    onnx.save(m, str(d / "softmax_nl.onnx"))
    (d / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(4000))
    for tag, attrs in (("stride0", {"strides": [0, 0]}),
                       ("hugepad", {"pads": [9000] * 4, "strides": [9000, 9000]})):
        m = onnx.load(str(qdq_conv(d / f"{tag}.onnx")))
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        keep = [a for a in conv.attribute if a.name not in attrs]
        del conv.attribute[:]
        conv.attribute.extend(keep + [onnx.helper.make_attribute(k, v) for k, v in attrs.items()])
        onnx.save(m, str(d / f"{tag}.onnx"))
    return [
        ("zero stride", d / "stride0.onnx", "strides (0, 0) and dilations (1, 1) must be >= 1"),
        ("padding past the work bound", d / "hugepad.onnx", "padded input"),
        ("unsupported op", qdq_conv(d / "softmax.onnx", op_after="Softmax"),
         "node 'tail': Softmax (node #"),
        ("a node name with a newline", d / "softmax_nl.onnx",
         "node 'tail?t2c-sim: error: forged': Softmax (node #"),
        ("per-tensor asymmetric weights", qdq_conv(d / "asym.onnx", per_tensor=True, w_zp=3),
         "node 'conv': Conv (node #4): weights have a nonzero zero point"),
        ("non-int32 bias", qdq_conv(d / "fbias.onnx", bias="float"),
         "node 'conv': Conv (node #3): the bias is float32; only an int32 bias"),
        ("dynamic shapes", with_dynamic_batch(good, d / "dyn.onnx"),
         "input 'x' dimension 0 is 'batch' (dynamic shapes are not supported"),
        ("truncated file", d / "trunc.onnx", "not a readable ONNX model"),
        ("garbage file", d / "garbage.onnx", "not a readable ONNX model"),
        ("missing file", d / "missing.onnx", "model file not found"),
    ]


@pytest.mark.parametrize("command", ["import", "run"])
def test_bad_inputs_one_line_exit_2_nothing_written(models, tmp_path, capsys, command) -> None:
    for case, path, text in _bad_models(tmp_path, models["rescnn_qdq"]):
        out = tmp_path / f"out_{case.replace(' ', '_')}"
        argv = [command, str(path), "--out", str(out)] + (["--sim", "none"] if command == "run" else [])
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (case, err)
        assert len(err) == 1, (case, err)
        assert str(path) in err[0] and text in err[0], (case, err[0])
        assert not out.exists(), case


@pytest.mark.parametrize("bound, value, text", [
    ("MAX_MODEL_BYTES", 1000, "bytes, more than the limit 1000"),
    ("MAX_NODES", 5, "nodes, more than the limit 5"),
    ("MAX_TENSOR_ELEMS", 100, "elements, more than the limit 100"),
])
def test_bounds_are_stated(models, monkeypatch, capsys, tmp_path, bound, value, text) -> None:
    monkeypatch.setattr(onnx_model, bound, value)
    assert main(["import", str(models["rescnn_qdq"]), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0] and str(models["rescnn_qdq"]) in err[0], err


def test_nm_refusal_via_cli(models, tmp_path, capsys) -> None:
    assert main(["import", str(models["rescnn_2of4"]), "--nm", "2:4",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer '/c1/Conv'" in err[0] and "group" in err[0], err


def test_rtl_preflight_refuses_profiled_records_and_takes_section2(models) -> None:
    """Before anything is simulated: a build without rounding profiles refuses ort_fp32 records
    naming the layer and the feature; the same model imported with half_even passes its array
    check, and a build with the profiles (the default) takes the ort_fp32 records."""
    from t2c_sim.config import HwConfig
    from t2c_sim.cosim.run import UnsupportedLayerError
    from t2c_sim.regress.pipeline import RunOptions, preflight
    from t2c_sim.regress.sources import records_from_onnx

    opts, hw = RunOptions(sims=("verilator",)), HwConfig(n=4, m=4, profiles=0)
    src = records_from_onnx(models["mlp_qdq"])
    with pytest.raises(UnsupportedLayerError, match=r"layer '/l1/Gemm': cannot run on DUT "
                                                    r"t2c_accel: rounding profile ort_fp32: .*"
                                                    r"profiles: 0.*\[hw\.profiles\]"):
        preflight(src.records, hw, opts)
    preflight(records_from_onnx(models["mlp_qdq"], rounding="half_even").records, hw, opts)
    preflight(src.records, HwConfig(n=4, m=4), opts)
