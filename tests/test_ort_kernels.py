"""Golden under ``ort_fp32`` == ONNX Runtime's QLinearAdd and QLinearGlobalAveragePool, bit for bit.

The add is the hard one: MLAS's AVX2 kernel computes in float32 with fused multiply-adds
(``rint(fma(a, rA, fma(b, rB, F)))``, ``F = z_y - fma(rA, z_a, rB * z_b)``), which golden emulates
on integers (``rounding_profiles.requantize_ort_add``). Random inputs almost never separate
candidate formulas, so the cases are constructed next to rounding ties; an independent oracle on
exact rationals (``fractions.Fraction``) implements the same formula, and a mutant of it (no FMA
in ``F``) must disagree with ONNX Runtime on some of these cases (the cases can fail a wrong
model). Skipped without the optional ``onnx`` extra.
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr

import numpy as np
import pytest

from t2c_sim.golden.layers import run_layer
from t2c_sim.record import LayerRecord
from t2c_sim.rounding_profiles import ort_add_params, ort_pool_params

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL")


def _session(node, inputs, outputs, level: str):
    g = helper.make_graph([node], "k", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _add_session(signed: bool, n: int, level: str):
    t = TensorProto.INT8 if signed else TensorProto.UINT8
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"],
                            domain="com.microsoft")
    ins = ([helper.make_tensor_value_info(k, t, [n]) for k in ("a", "b")]
           + [helper.make_tensor_value_info(k, TensorProto.FLOAT, []) for k in ("as", "bs", "cs")]
           + [helper.make_tensor_value_info(k, t, []) for k in ("az", "bz", "cz")])
    return _session(node, ins, [helper.make_tensor_value_info("c", t, [n])], level)


# ---- the independent oracle: exact rationals ---------------------------------------------------
def _f32(x: Fr) -> Fr:
    """Nearest float32 (ties to even) of a rational in the normal range."""
    if x == 0:
        return Fr(0)
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fr(2) ** e > a:
        e -= 1
    while Fr(2) ** (e + 1) <= a:
        e += 1
    q = a / Fr(2) ** (e - 23)
    n, r = q.numerator // q.denominator, q - q.numerator // q.denominator
    n += r > Fr(1, 2) or (r == Fr(1, 2) and n % 2 == 1)
    return (1 if x > 0 else -1) * n * Fr(2) ** (e - 23)


def _rint(x: Fr) -> int:
    n = math.floor(x)
    r = x - n
    return n + (r > Fr(1, 2) or (r == Fr(1, 2) and n % 2 == 1))


def oracle_add(a: int, b: int, sa, sb, sy, za, zb, zy, fma_fixed: bool = True) -> int:
    """ONNX Runtime's QLinearAdd (AVX2) on exact rationals; ``fma_fixed=False`` is the mutant
    that rounds both products of the fixed part separately."""
    ra, rb = _f32(Fr(float(sa)) / Fr(float(sy))), _f32(Fr(float(sb)) / Fr(float(sy)))
    inner = _f32(ra * za + _f32(rb * zb)) if fma_fixed else _f32(_f32(ra * za) + _f32(rb * zb))
    fixed = _f32(zy - inner)
    return _rint(_f32(a * ra + _f32(b * rb + fixed)))


def _near_tie_cases(seed: int, count: int) -> list[tuple]:
    """Formats and (a, b) pairs whose real sum lies within 1e-5 of a rounding tie."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        signed = bool(rng.integers(2))
        lo, hi = (-128, 127) if signed else (0, 255)
        sa, sb, sy = (np.float32(rng.uniform(0.002, 0.1)) for _ in range(3))
        za, zb, zy = (int(rng.integers(lo, hi + 1)) for _ in range(3))
        try:
            ort_add_params(sa, sb, sy)
        except Exception:  # noqa: BLE001 - a ratio outside the supported range: pick again
            continue
        ra, rb = float(sa / sy), float(sb / sy)
        a = np.arange(lo, hi + 1)[:, None]
        b = np.arange(lo, hi + 1)[None, :]
        t = a * ra + b * rb + (zy - ra * za - rb * zb)
        near = np.argwhere(np.abs(t - np.floor(t) - 0.5) < 1e-5)
        if len(near) >= 4:
            pairs = [(int(a[i, 0]), int(b[0, j])) for i, j in near[:24]]
            out.append((signed, sa, sb, sy, za, zb, zy, pairs))
    return out


def _add_record(signed: bool, sa, sb, sy, za, zb, zy, n: int) -> LayerRecord:
    m0, sh = ort_add_params(sa, sb, sy)
    lo, hi = (-128, 127) if signed else (0, 255)
    return LayerRecord(name="add", op="add", inputs=("a", "b"), a_signed=signed, y_signed=signed,
                       z_x=za, z_b=zb, z_y=zy, lo=lo, hi=hi, M0=m0, sh=sh, mode="ort_fp32",
                       c_in=n, c_out=n).validate()


@pytest.mark.parametrize("level", LEVELS)
def test_qlinearadd_equals_golden_next_to_ties(level: str) -> None:
    seed = 7
    cases = _near_tie_cases(seed, 40)
    sess = {(s, n): _add_session(s, n, level) for s in (True, False) for n in (24, 1)}
    checked = mutant_wrong = 0
    for signed, sa, sb, sy, za, zb, zy, pairs in cases:
        npt = np.int8 if signed else np.uint8
        a = np.resize(np.array([p[0] for p in pairs], dtype=np.int64), 24)
        b = np.resize(np.array([p[1] for p in pairs], dtype=np.int64), 24)
        feeds = {"as": np.array(sa, np.float32), "bs": np.array(sb, np.float32),
                 "cs": np.array(sy, np.float32), "az": np.array(za, npt), "bz": np.array(zb, npt),
                 "cz": np.array(zy, npt)}
        (ref,) = sess[(signed, 24)].run(None, {"a": a.astype(npt), "b": b.astype(npt), **feeds})
        got = run_layer(_add_record(signed, sa, sb, sy, za, zb, zy, 24), a, b).y
        assert np.array_equal(got, ref.astype(np.int64)), f"seed {seed}: {(sa, sb, sy, za, zb, zy)}"
        lo, hi = (-128, 127) if signed else (0, 255)
        for x, y, r in zip(a[:6], b[:6], ref[:6]):
            assert min(max(oracle_add(int(x), int(y), sa, sb, sy, za, zb, zy), lo), hi) == int(r)
            mut = min(max(oracle_add(int(x), int(y), sa, sb, sy, za, zb, zy, False), lo), hi)
            mutant_wrong += mut != int(r)
        # one-element tensors: ONNX Runtime hands the operands over in the other order
        (r1,) = sess[(signed, 1)].run(None, {"a": a[:1].astype(npt), "b": b[:1].astype(npt), **feeds})
        g1 = run_layer(_add_record(signed, sa, sb, sy, za, zb, zy, 1), a[:1], b[:1]).y
        assert np.array_equal(g1, r1.astype(np.int64)), f"seed {seed}: one element, {(a[0], b[0])}"
        checked += a.size
    assert checked >= 900
    assert mutant_wrong > 0, "the near-tie cases do not separate the FMA from the mutant"


def test_qlinearadd_random_tensors() -> None:
    rng = np.random.default_rng(11)
    for i in range(20):
        signed = bool(i % 2)
        lo, hi = (-128, 127) if signed else (0, 255)
        npt = np.int8 if signed else np.uint8
        sa, sb, sy = (np.float32(rng.uniform(0.005, 0.08)) for _ in range(3))
        za, zb, zy = (int(rng.integers(lo, hi + 1)) for _ in range(3))
        n = int(rng.integers(2, 300))
        a, b = rng.integers(lo, hi + 1, n), rng.integers(lo, hi + 1, n)
        (ref,) = _add_session(signed, n, "ORT_ENABLE_ALL").run(None, {
            "a": a.astype(npt), "b": b.astype(npt), "as": np.array(sa, np.float32),
            "bs": np.array(sb, np.float32), "cs": np.array(sy, np.float32),
            "az": np.array(za, npt), "bz": np.array(zb, npt), "cz": np.array(zy, npt)})
        got = run_layer(_add_record(signed, sa, sb, sy, za, zb, zy, n), a, b).y
        assert np.array_equal(got, ref.astype(np.int64)), f"case {i}, seed 11"


@pytest.mark.parametrize("level", LEVELS)
def test_qlinearglobalaveragepool_equals_golden(level: str) -> None:
    rng = np.random.default_rng(5)
    for i in range(16):
        signed = bool(i % 2)
        lo, hi = (-128, 127) if signed else (0, 255)
        t, npt = (TensorProto.INT8, np.int8) if signed else (TensorProto.UINT8, np.uint8)
        b, c, h, w = 2, int(rng.integers(1, 20)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        sx, sy = np.float32(rng.uniform(0.005, 0.1)), np.float32(rng.uniform(0.002, 0.1))
        zx, zy = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        x = rng.integers(lo, hi + 1, (b, c, h, w))
        node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                domain="com.microsoft", channels_last=0)
        ins = [helper.make_tensor_value_info("x", t, [b, c, h, w])] + [
            helper.make_tensor_value_info(k, TensorProto.FLOAT, []) for k in ("xs", "ys")] + [
            helper.make_tensor_value_info(k, t, []) for k in ("xz", "yz")]
        sess = _session(node, ins, [helper.make_tensor_value_info("y", t, [b, c, 1, 1])], level)
        (ref,) = sess.run(None, {"x": x.astype(npt), "xs": np.array(sx, np.float32),
                                 "ys": np.array(sy, np.float32), "xz": np.array(zx, npt),
                                 "yz": np.array(zy, npt)})
        m0, sh = ort_pool_params(sx, sy, h * w)
        rec = LayerRecord(name="gap", op="gavgpool", a_signed=signed, y_signed=signed, z_x=zx,
                          z_y=zy, lo=lo, hi=hi, c_in=c, c_out=c, h=h, w=w, kh=h, kw=w, M0=m0,
                          sh=sh, mode="ort_fp32").validate()
        got = run_layer(rec, x.transpose(0, 2, 3, 1)).y
        assert np.array_equal(got, ref.astype(np.int64).transpose(0, 2, 3, 1)), f"case {i}, seed 5"
