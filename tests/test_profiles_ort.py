"""Golden under ``ort_fp32`` == ONNX Runtime's QLinearConv / QLinearMatMul, bit for bit.

Each test builds a one-node ONNX model with ``onnx.helper`` from a random layer record and its
float32 scales, runs it in ONNX Runtime (CPU, one thread, with and without graph
optimizations), and compares every output with the golden model under the ``ort_fp32``
profile, whose parameters come from the same scales (``profile_params``). Skipped when the
optional ``onnx`` extra is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from t2c_sim.golden.layers import run_layer
from t2c_sim.numerics import quantize_multiplier, wrap
from t2c_sim.record import LayerRecord
from t2c_sim.rounding_profiles import profile_params
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPT_LEVELS = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def _session(model: onnx.ModelProto, level: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = OPT_LEVELS[level]
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _model(node: onnx.NodeProto, inits: list, x_name: str, x_type: int, x_shape, y_shape,
           ) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "layer", [helper.make_tensor_value_info(x_name, x_type, list(x_shape))],
        [helper.make_tensor_value_info("y", x_type, list(y_shape))], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _scales(rec: LayerRecord, rng: np.random.Generator) -> tuple[np.float32, np.ndarray, np.float32]:
    """float32 scales whose ratio is (about) the record's multiplier, as a model file holds them."""
    s_x = np.float32(rng.uniform(0.004, 0.05))
    s_y = np.float32(rng.uniform(0.01, 0.2))
    s_w = ((rec.M0 / 2.0 ** rec.sh) * float(s_y) / float(s_x)).astype(np.float32)
    return s_x, s_w, s_y


def _qtype(signed: bool) -> tuple[int, type]:
    return (TensorProto.INT8, np.int8) if signed else (TensorProto.UINT8, np.uint8)


def run_qlinearconv(rec: LayerRecord, s_x, s_w, s_y, level: str) -> np.ndarray:
    """ORT QLinearConv on the record's integers; returns y channel-last ``[B, OH, OW, C_out]``."""
    ttype, npt = _qtype(rec.a_signed)
    w = rec.w_q.reshape(rec.c_out, rec.kh, rec.kw, rec.c_in_g).transpose(0, 3, 1, 2)
    bias = wrap(rec.bias_eff + rec.z_x * rec.w_q.sum(axis=1), 32)     # ORT adds sum (x-zx)*w + B
    (ph, pw), x = rec.padding, rec.x_q.transpose(0, 3, 1, 2)
    inits = [numpy_helper.from_array(np.array(s_x, np.float32), "xs"),
             numpy_helper.from_array(np.array(rec.z_x, npt), "xz"),
             numpy_helper.from_array(w.astype(np.int8), "w"),
             numpy_helper.from_array(np.asarray(s_w, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(rec.c_out, np.int8), "wz"),
             numpy_helper.from_array(np.array(s_y, np.float32), "ys"),
             numpy_helper.from_array(np.array(rec.z_y, npt), "yz"),
             numpy_helper.from_array(bias.astype(np.int32), "b")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], group=rec.groups, kernel_shape=[rec.kh, rec.kw],
                            pads=[ph, pw, ph, pw], strides=list(rec.stride),
                            dilations=list(rec.dilation))
    oh, ow = rec.out_hw
    model = _model(node, inits, "x", ttype, x.shape, (x.shape[0], rec.c_out, oh, ow))
    (y,) = _session(model, level).run(None, {"x": x.astype(npt)})
    return y.astype(np.int64).transpose(0, 2, 3, 1)


def run_qlinearmatmul(rec: LayerRecord, s_x, s_w, s_y, level: str) -> np.ndarray:
    """ORT QLinearMatMul ``x[P, K] @ w_q.T`` (no bias input: ``bias_eff = -z_x * sum w``)."""
    ttype, npt = _qtype(rec.a_signed)
    inits = [numpy_helper.from_array(np.array(s_x, np.float32), "as"),
             numpy_helper.from_array(np.array(rec.z_x, npt), "az"),
             numpy_helper.from_array(rec.w_q.T.astype(np.int8).copy(), "b"),
             numpy_helper.from_array(np.array(s_w, np.float32), "bs"),
             numpy_helper.from_array(np.array(0, np.int8), "bz"),
             numpy_helper.from_array(np.array(s_y, np.float32), "ys"),
             numpy_helper.from_array(np.array(rec.z_y, npt), "yz")]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    x = rec.x_q.reshape(-1, rec.c_in)
    model = _model(node, inits, "a", ttype, x.shape, (x.shape[0], rec.c_out))
    (y,) = _session(model, level).run(None, {"a": x.astype(npt)})
    return y.astype(np.int64)


def _ort_fp32(rec: LayerRecord, s_x, s_w, s_y) -> LayerRecord:
    m0, sh = profile_params("ort_fp32", s_x, s_w, s_y)
    return rec.replace(mode="ort_fp32", M0=m0, sh=sh, acc=None, y=None).validate()


def _half_even(rec: LayerRecord, s_x, s_w, s_y) -> LayerRecord:
    """What the fuse step makes of the same scales: float64 ratio, section-2 half_even."""
    m0, sh = quantize_multiplier(float(s_x) * np.asarray(s_w, np.float64) / float(s_y))
    return rec.replace(mode="half_even", M0=m0, sh=sh, acc=None, y=None).validate()


@pytest.mark.parametrize("level", list(OPT_LEVELS))
def test_qlinearconv_equals_golden_ort_fp32(level: str) -> None:
    seed = 101
    rng = np.random.default_rng(seed)
    n = 0
    for i in range(12):
        signed = bool(i % 2)
        kw = dict(kh=3, kw=3, padding=1, stride=1 + i % 2, batch=2, a_signed=signed,
                  y_signed=signed)
        if i % 3 == 2:
            kw.update(groups=4, dilation=2)
        rec = random_conv_record(rng, c_in=8, c_out=8 + 8 * (i % 2), h=7, w=6, name=f"c{i}", **kw)
        s_x, s_w, s_y = _scales(rec, rng)
        got = run_layer(_ort_fp32(rec, s_x, s_w, s_y)).y
        ref = run_qlinearconv(rec, s_x, s_w, s_y, level)
        assert np.array_equal(got, ref), f"{rec.name} seed {seed}: {np.sum(got != ref)} differ"
        n += ref.size
    assert n > 5000


@pytest.mark.parametrize("level", list(OPT_LEVELS))
def test_qlinearmatmul_equals_golden_ort_fp32(level: str) -> None:
    seed = 202
    rng = np.random.default_rng(seed)
    for i in range(8):
        signed = bool(i % 2)
        rec = random_linear_record(rng, c_in=24 + 40 * i, c_out=16, rows=20, a_signed=signed,
                                   y_signed=signed, name=f"fc{i}")
        rec = rec.replace(bias_eff=wrap(-rec.z_x * rec.w_q.sum(axis=1), 32))   # no bias input
        s_x, s_w, s_y = _scales(rec, rng)
        s_w = np.float32(s_w[0])                       # per-tensor weight scale
        got = run_layer(_ort_fp32(rec, s_x, np.full(rec.c_out, s_w), s_y)).y
        ref = run_qlinearmatmul(rec, s_x, s_w, s_y, level)
        assert np.array_equal(got, ref), f"{rec.name} seed {seed}: {np.sum(got != ref)} differ"


def _disagreement(rng: np.random.Generator, s_x, s_y, z_y: int, lo: int, hi: int,
                  ) -> tuple[np.float32, int]:
    """A float32 weight scale and an int32 accumulator on which ``ort_fp32`` and the fuse
    step's half_even disagree: a near-tie of ``acc * m`` that the float32 scale,
    ``float32(acc)`` or the float32 product moves across .5. Searched with the golden
    requantizers among the accumulators next to every tie ``(k + 1/2) / m`` of the output range."""
    from t2c_sim.numerics import requantize
    from t2c_sim.rounding_profiles import requantize_profile

    for _ in range(100):
        s_w = np.float32(2.0 ** rng.uniform(-24, -10) * float(s_y) / float(s_x))
        m0p, shp = profile_params("ort_fp32", s_x, [s_w], s_y)
        m0e, she = quantize_multiplier(float(s_x) * float(s_w) / float(s_y))
        ties = (np.arange(lo - z_y, hi - z_y) + 0.5) / (m0e / 2.0 ** she)
        acc = (np.floor(ties)[:, None] + np.arange(-40, 41)[None, :]).astype(np.int64).ravel()
        acc = acc[(acc >= -(2**31)) & (acc < 2**31)]
        a = requantize_profile(acc, m0p[0], shp[0], z_y, lo, hi, "ort_fp32")
        b = requantize(acc, m0e, she, z_y, lo, hi, "half_even")
        hits = np.flatnonzero(a != b)
        if hits.size:
            return s_w, int(acc[rng.choice(hits)])
    raise AssertionError("no disagreement found in 100 multipliers")


def test_where_ort_and_half_even_differ_ort_follows_ort_fp32() -> None:
    # x == z_x everywhere, so every output pixel of channel c has acc = B[c] (ORT's bias)
    seed = 303
    rng = np.random.default_rng(seed)
    for signed in (False, True):
        rec = random_conv_record(rng, c_in=4, c_out=48, h=2, w=2, kh=1, kw=1, padding=0,
                                 a_signed=signed, y_signed=signed)
        rec = rec.replace(x_q=np.full_like(rec.x_q, rec.z_x))
        s_x, s_y = np.float32(0.0123), np.float32(0.0456)
        found = [_disagreement(rng, s_x, s_y, rec.z_y, rec.lo, rec.hi) for _ in range(rec.c_out)]
        s_w = np.array([f[0] for f in found], np.float32)
        acc = np.array([f[1] for f in found], np.int64)
        assert np.any(np.abs(acc) > 1 << 24)          # float32(acc) drops bits on some
        rec = rec.replace(bias_eff=wrap(acc - rec.z_x * rec.w_q.sum(axis=1), 32))
        ref = run_qlinearconv(rec, s_x, s_w, s_y, "all")
        prof = run_layer(_ort_fp32(rec, s_x, s_w, s_y))
        assert np.array_equal(prof.acc[0, 0, 0], acc)
        assert np.array_equal(prof.y, ref), f"seed {seed}"
        he = run_layer(_half_even(rec, s_x, s_w, s_y)).y
        assert np.all(he != ref), f"seed {seed}"     # the checker can tell the two apart
