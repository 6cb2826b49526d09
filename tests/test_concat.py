"""The integer concat (docs/numerics.md section 3): n inputs along any axis, each requantized to the
shared output format with one rounding.

Golden == PyTorch integer path == a Python-int oracle written from the documented formula
(``tests/nl_oracle.py``: exact rational rounding), on random formats (4 to 8 bits, signed and
unsigned, zero points at the extremes), 1 to 5 inputs, every axis, every rounding mode, with ties
exercised; the doc example; record validation naming the layer and the field; and the fused
concat of a CNN against its fake-quant model.
"""

from __future__ import annotations

import nl_oracle as O
import numpy as np
import pytest
import torch
from torch import nn

from t2c_sim.config import OpKind, RoundMode, qrange
from t2c_sim.errors import RecordError
from t2c_sim.export import load_record, save_record
from t2c_sim.fuse import fuse, quantize_input
from t2c_sim.golden import attach_results, run_layer, run_network
from t2c_sim.numerics import quantize_multiplier
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.quantize import quantize_model
from t2c_sim.record import LayerRecord
from t2c_sim.verify.crosscheck import layer_diffs
from t2c_sim.verify.torch_int import run_layer_torch, run_network_torch

MODES = [m.value for m in RoundMode]


def concat_record(rng: np.random.Generator, n: int, axis: int, mode: str) -> tuple[LayerRecord, list]:
    bits = [int(rng.integers(4, 9)) for _ in range(n)]
    signed = [int(rng.integers(0, 2)) for _ in range(n)]
    zs = []
    for b, s in zip(bits, signed):
        lo, hi = qrange(b, bool(s))
        zs.append(int(rng.choice([lo, hi, rng.integers(lo, hi + 1)])))
    scales = rng.uniform(0.01, 0.3, n)
    s_y = float(rng.uniform(0.01, 0.3))
    if n > 1:
        scales[1] = s_y / 2          # m = 1/2: every odd (x - z) is an exact tie
    m0, sh = quantize_multiplier(scales / s_y, 32, 63)
    y_signed = bool(rng.integers(0, 2))
    ylo, yhi = qrange(8, y_signed)
    z_y = int(rng.integers(ylo, yhi + 1))
    lo, hi = (z_y, yhi) if rng.integers(0, 2) else (ylo, yhi)     # a fused relu, or none
    rec = LayerRecord(name="cat", op=OpKind.CONCAT, inputs=tuple(f"x{i}" for i in range(n)),
                      a_bits=bits[0], a_signed=bool(signed[0]), z_x=zs[0],
                      b_bits=bits[1] if n > 1 else 8, b_signed=bool(signed[1]) if n > 1 else True,
                      z_b=zs[1] if n > 1 else 0, y_signed=y_signed, z_y=z_y, lo=lo, hi=hi,
                      M0=m0, sh=sh, mode=mode,
                      params=dict(axis=axis, z_in=zs, bits_in=bits, signed_in=signed)).validate()
    base = [2, 3, 4, 5][:max(-axis, 2) + 1]                           # [B, ..., ] >= |axis| + 1 dims
    xs = []
    for i in range(n):
        shape = list(base)
        shape[len(shape) + axis] = int(rng.integers(1, 4))
        lo_i, hi_i = qrange(bits[i], bool(signed[i]))
        xs.append(rng.integers(lo_i, hi_i + 1, shape))
    return rec, xs


def oracle(rec: LayerRecord, xs: list[np.ndarray]) -> np.ndarray:
    """Documented formula, scalar Python ints: y_i = clamp(z_y + rdiv((x - z_i) * M0[i], 2^sh[i]))."""
    parts = []
    for i, x in enumerate(xs):
        z, m0, sh = rec.params["z_in"][i], int(rec.M0[i]), int(rec.sh[i])
        flat = [O.requant(int(v) - z, m0, sh, rec.z_y, rec.lo, rec.hi, rec.mode.value)
                for v in x.ravel().tolist()]
        parts.append(np.array(flat, dtype=np.int64).reshape(x.shape))
    return np.concatenate(parts, axis=rec.params["axis"])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("axis", [-1, -2, -3])
def test_concat_against_the_oracle(n, axis):
    rng = np.random.default_rng(100 * n - axis)
    O.TIES.clear()
    for case in range(8):
        rec, xs = concat_record(rng, n, axis, MODES[case % 4])
        want = oracle(rec, xs)
        g = run_layer(rec, *xs)
        acc, y = run_layer_torch(rec, *xs)
        assert acc is None and g.acc is None
        assert np.array_equal(g.y, want), (n, axis, case)
        assert np.array_equal(y.numpy(), want), (n, axis, case)
    if n > 1:
        assert O.TIES["requant"] > 0      # the tie rules were exercised


def test_doc_example():
    # docs/numerics.md section 3: s = 0.5 (z 0) and 0.25 (z 4), output 0.5 (z 0)
    m0, sh = quantize_multiplier(np.array([0.5 / 0.5, 0.25 / 0.5]), 32, 63)
    assert m0.tolist() == [2**31, 2**31] and sh.tolist() == [31, 32]
    rec = LayerRecord(name="cat", op=OpKind.CONCAT, inputs=("a", "b"), z_x=0, z_b=4, M0=m0, sh=sh,
                      params=dict(axis=-1)).validate()
    y = run_layer(rec, np.array([[3, -2]]), np.array([[9, 6]])).y
    assert y.tolist() == [[3, -2, 2, 1]]
    assert run_layer_torch(rec, np.array([[3, -2]]), np.array([[9, 6]]))[1].tolist() == [[3, -2, 2, 1]]


def test_two_input_record_without_params_uses_z_x_and_z_b():
    rng = np.random.default_rng(7)
    rec, xs = concat_record(rng, 2, -1, "half_even")
    plain = rec.replace(params={"axis": -1}).validate()
    assert np.array_equal(run_layer(plain, *xs).y, run_layer(rec, *xs).y)


@pytest.mark.parametrize("change, msg", [
    (dict(params=dict(axis=-1)), "concat of 3 inputs needs params z_in, bits_in and signed_in"),
    (dict(params=dict(axis=0, z_in=[0, 0, 0], bits_in=[8] * 3, signed_in=[1] * 3)),
     "axis.*counts from the end"),
    (dict(params=dict(axis=-1, z_in=[1, 0, 0], bits_in=[8] * 3, signed_in=[1] * 3)),
     "z_in.*disagrees with the record's z_x/z_b"),
    (dict(params=dict(axis=-1, z_in=[0, 0], bits_in=[8] * 3, signed_in=[1] * 3)),
     r"z_in.*list of 3 ints"),
    (dict(params=dict(axis=-1, z_in=[0, 0, 0], bits_in=[8, 8, 40], signed_in=[1] * 3)),
     "input 2: bits 40 outside 1..32"),
    (dict(const_q=np.zeros((1, 2), dtype=np.int64)), "const_q .* axis -2"),
    (dict(inputs=tuple(f"x{i}" for i in range(65))), "1 to 64 inputs"),
])
def test_validation_names_layer_and_field(change, msg):
    good = LayerRecord(name="cat", op=OpKind.CONCAT, inputs=("a", "b", "c"), M0=np.ones(3, np.int64),
                       sh=np.zeros(3, np.int64),
                       params=dict(axis=-1, z_in=[0, 0, 0], bits_in=[8] * 3, signed_in=[1] * 3))
    good.validate()
    with pytest.raises(RecordError, match=msg) as ei:
        good.replace(**change).validate()
    assert ei.value.layer == "cat"


def test_input_outside_its_own_format_is_refused():
    rng = np.random.default_rng(3)
    rec, xs = concat_record(rng, 3, -1, "half_even")
    lo, hi = qrange(rec.params["bits_in"][2], bool(rec.params["signed_in"][2]))
    xs[2] = xs[2].copy()
    xs[2].flat[0] = hi + 1
    for run in (run_layer, run_layer_torch):
        with pytest.raises(RecordError, match="cat.*input 2 outside"):
            run(rec, *xs)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    rec, xs = concat_record(rng, 4, -2, "half_up")
    save_record(rec.replace(x_q=xs[0]), tmp_path / "cat")
    back = load_record(tmp_path / "cat")
    assert back.params == rec.params
    assert np.array_equal(run_layer(back, *xs).y, run_layer(rec, *xs).y)


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 5, 3, padding=1)
        self.c = nn.Conv2d(3, 3, 1)
        self.d = nn.Conv2d(12, 6, 1)
        self.head = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.a(x)), self.b(x), self.c(x)], 1)
        z = self.d(y)
        w = torch.cat([z, z], dim=-3)                            # one tensor read twice
        return self.head(torch.flatten(torch.relu(w).mean((2, 3)), 1))


def test_cnn_concat_fused_and_cross_checked():
    torch.manual_seed(8)
    x = torch.randn(32, 3, 6, 6)
    q = quantize_model(Branches().eval(), {"weight": {"quantizer": "minmax_channel", "nbit": 8},
                                           "act": {"quantizer": "minmax", "nbit": 8}})
    calibrate(q, x)
    recs = fuse(q, x[:4])
    cats = [r for r in recs if r.op is OpKind.CONCAT]
    assert [c.inputs for c in cats] == [("a", "b", "c"), ("d", "d")]
    assert cats[0].params["axis"] == -1 and cats[0].c_out == 12
    assert cats[1].meta["act"] == "relu"                  # relu(w) fused into the concat's clamp
    assert recs[0].meta["act"] == "relu"                  # relu(a(x)) fused into conv a
    xq = quantize_input(q, x)
    g = run_network(recs, xq)
    t = run_network_torch(recs, xq)
    assert all(np.array_equal(t[r.name][1].numpy(), g.outputs[r.name].y) for r in recs)
    d = layer_diffs(q, recs, xq)
    assert set(d) >= {"cat", "cat_1"} and max(v["max"] for v in d.values()) <= 1
    rec = attach_results(recs, run_network(recs, xq[:2]))[[r.name for r in recs].index("cat")]
    assert rec.x_q is not None and rec.b_q is None        # a 3-input concat keeps x_q only
