"""Activation x activation matmul, concat, constant add, heads and records (docs/numerics.md 7-10).

Golden == PyTorch integer path == Python-int oracle (``tests/nl_oracle.py``) on random shapes,
formats, zero points (extremes included), per-tensor / per-column / per-row parameters, biases,
accumulator wraps and ties; data movement against explicit index loops; record validation
naming layer and field; save/load round trips; an attention block as a network; and the
fake-quant modules against the dequantized integer model.
"""

from __future__ import annotations

import math

import nl_oracle as O
import numpy as np
import pytest
import torch

from t2c_sim.config import OpKind, RoundMode, qrange
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.export import load_network, load_record, save_network, save_record
from t2c_sim.golden import attach_results, run_layer, run_network
from t2c_sim.quant.base import Quantizer
from t2c_sim.quant.nonlinear import QGELU, QLayerNorm, QMatMul, QSoftmax, int_of, softmax_ref
from t2c_sim.quant.transformer_params import (
    add_const_params,
    concat_params,
    gelu_params,
    layernorm_params,
    matmul_params,
    softmax_params,
)
from t2c_sim.record import LayerRecord
from t2c_sim.verify.torch_int import run_layer_torch, run_network_torch

MODES = [m.value for m in RoundMode]


def _both(rec, *xs):
    g = run_layer(rec, *xs)
    acc, y = run_layer_torch(rec, *xs)
    assert np.array_equal(g.y, y.numpy()), rec.name
    assert (g.acc is None) == (acc is None)
    if acc is not None:
        assert np.array_equal(g.acc, acc.numpy()), rec.name
    return g


# ---- matmul --------------------------------------------------------------------------------------
def _oracle_matmul(rec: LayerRecord, a: np.ndarray, b: np.ndarray):
    lead = a.shape[:-2]
    p, c = a.shape[-2], (b.shape[-2] if rec.trans_b else b.shape[-1])
    a3 = a.reshape(-1, *a.shape[-2:]).tolist()
    b3 = b.reshape(-1, *b.shape[-2:]).tolist()

    def param(arr, default=0):
        if arr is None:
            return lambda r, j: default
        arr = arr.tolist()
        if len(np.shape(arr)) == 1:
            return lambda r, j: arr[0] if len(arr) == 1 else arr[j]
        return lambda r, j: arr[r][0] if len(arr[r]) == 1 else arr[r][j]

    accs, ys = [], []
    for g, (ag, bg) in enumerate(zip(a3, b3)):
        acc, y = O.matmul(ag, bg, rec.z_x, rec.z_b, rec.trans_b, param(rec.bias_eff), param(rec.M0),
                          param(rec.sh), g * p, rec.acc_bits, rec.z_y, rec.lo, rec.hi, rec.mode.value)
        accs.append(acc)
        ys.append(y)
    return np.array(accs).reshape(*lead, p, c), np.array(ys).reshape(*lead, p, c)


def _random_matmul(rng, case):
    a_bits, b_bits = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    a_signed, b_signed = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    alo, ahi = qrange(a_bits, a_signed)
    blo, bhi = qrange(b_bits, b_signed)
    lead = [(), (2,), (2, 3)][case % 3]
    p, k, c = (int(v) for v in rng.integers(1, 9, 3))
    trans_b = bool(rng.integers(0, 2))
    a = rng.integers(alo, ahi + 1, size=(*lead, p, k))
    b = rng.integers(blo, bhi + 1, size=(*lead, c, k) if trans_b else (*lead, k, c))
    rows = int(np.prod(lead, dtype=np.int64)) * p
    form = case % 4
    s_a = rng.uniform(0.01, 0.1, rows) if form in (2, 3) else rng.uniform(0.01, 0.1)
    s_b = rng.uniform(0.01, 0.1, c) if form in (1, 3) else rng.uniform(0.01, 0.1)
    par = matmul_params(s_a, s_b, float(rng.uniform(0.02, 0.5)), alpha=float(rng.choice([1.0, 0.125])))
    bias = None if case % 5 else rng.integers(-5000, 5000, c)
    y_signed = bool(rng.integers(0, 2))
    ylo, yhi = qrange(8, y_signed)
    z = lambda lo, hi: int(rng.choice([lo, hi, rng.integers(lo, hi + 1)]))  # noqa: E731
    rec = LayerRecord(name=f"mm{case}", op=OpKind.MATMUL, inputs=("a", "b"), a_bits=a_bits,
                      a_signed=a_signed, b_bits=b_bits, b_signed=b_signed, trans_b=trans_b,
                      c_in=k, c_out=c, z_x=z(alo, ahi), z_b=z(blo, bhi), y_signed=y_signed,
                      z_y=z(ylo, yhi), lo=ylo, hi=yhi, mode=MODES[case % 4], bias_eff=bias,
                      acc_bits=int(rng.choice([32, 12])), wrap_ok=True, **par).validate()
    return rec, a, b


def test_matmul_random_against_oracle():
    seed = 21
    rng = np.random.default_rng(seed)
    wrapped = 0
    for case in range(60):
        rec, a, b = _random_matmul(rng, case)
        got = _both(rec, a, b)
        acc, y = _oracle_matmul(rec, a, b)
        assert np.array_equal(got.acc, acc) and np.array_equal(got.y, y), f"seed {seed} case {case}"
        wrapped += rec.acc_bits == 12 and bool(np.any(np.abs(acc) >= 2**10))
    assert wrapped, "no case came near the 12-bit accumulator limit"


def test_matmul_doc_example_all_modes_and_per_row():
    a = np.array([[3, 5], [-1, 2]])
    b = np.array([[2, -3], [0, 4]])
    want = {"half_even": [[0, 1], [-1, 3]], "half_up": [[0, 1], [-1, 3]],
            "half_away": [[-1, 1], [-1, 3]], "floor": [[-1, 1], [-1, 2]]}
    O.TIES.clear()
    for mode in MODES:
        rec = LayerRecord(name="mm", op=OpKind.MATMUL, inputs=("a", "b"), a_bits=4, b_bits=4,
                          c_in=2, c_out=2, z_x=1, z_b=1, mode=mode,
                          **matmul_params(0.5, 0.25, 0.5)).validate()
        assert (int(rec.M0[0]), int(rec.sh[0])) == (1 << 31, 33)
        got = _both(rec, a, b)
        assert got.acc.tolist() == [[-2, 4], [-3, 11]] and got.y.tolist() == want[mode]
        assert np.array_equal(got.y, _oracle_matmul(rec, a, b)[1])
    assert O.TIES["requant"] >= 4
    rec = rec.replace(mode="half_even", **matmul_params([0.5, 0.25], 0.25, 0.5))
    assert rec.M0.shape == (2, 1) and rec.sh.tolist() == [[33], [34]]
    assert _both(rec.validate(), a, b).y.tolist() == [[0, 1], [0, 1]]


def test_matmul_token_wise_both_sides_matches_per_element_multipliers():
    rng = np.random.default_rng(22)
    s_a, s_b = rng.uniform(0.01, 0.1, 6), rng.uniform(0.01, 0.1, 5)
    par = matmul_params(s_a, s_b, 0.3, alpha=0.25)
    assert par["M0"].shape == (6, 5)
    from t2c_sim.numerics import quantize_multiplier
    for r in range(6):
        for c in range(5):
            m0, sh = quantize_multiplier(0.25 * s_a[r] * s_b[c] / 0.3)
            assert (int(par["M0"][r, c]), int(par["sh"][r, c])) == (int(m0), int(sh))


def test_matmul_shape_and_range_errors_name_the_layer():
    rec = LayerRecord(name="attn.qk", op=OpKind.MATMUL, inputs=("q", "k"), c_in=4, c_out=3,
                      trans_b=True, **matmul_params(0.1, 0.1, 0.1))
    a, b = np.zeros((2, 5, 4), dtype=np.int64), np.zeros((2, 3, 4), dtype=np.int64)
    for run in (run_layer, run_layer_torch):
        run(rec, a, b)
        with pytest.raises(RecordError, match="layer attn.qk: .*fit"):
            run(rec, a, np.zeros((2, 3, 5), dtype=np.int64))
        with pytest.raises(RecordError, match="layer attn.qk: input b outside"):
            run(rec, a, b + 200)
        with pytest.raises(RecordError, match="layer attn.qk: .*2 input"):
            run(rec, a)
    with pytest.raises(RecordError, match="layer attn.qk: M0 has shape"):
        run_layer(rec.replace(M0=np.ones((7, 3), dtype=np.int64), sh=np.ones((7, 3), dtype=np.int64)),
                  a, b)
    with pytest.raises(NumericsError, match="overflow int64"):
        run_layer(rec.replace(acc_bits=64, a_bits=32, b_bits=32), a + 2**31 - 1, b + 2**31 - 1)


# ---- concat, constant add, data movement ---------------------------------------------------------
def test_concat_class_token_against_oracle():
    seed = 23
    rng = np.random.default_rng(seed)
    for case in range(20):
        two = bool(case % 2)
        s_in = list(rng.uniform(0.01, 0.2, 2 if two else 1))
        s_y, z_y = float(rng.uniform(0.01, 0.2)), int(rng.integers(-20, 20))
        const = rng.normal(0, 1, (int(rng.integers(1, 3)), 6)) if case % 3 else None
        par = concat_params(s_in, s_y, z_y, const=const)
        rec = LayerRecord(name="cat", op=OpKind.CONCAT, inputs=("a", "b")[: 1 + two], z_x=3, z_b=-7,
                          b_bits=6, b_signed=True, z_y=z_y, mode=MODES[case % 4], **par).validate()
        xs = [rng.integers(-128, 128, (2, int(rng.integers(1, 5)), 6))]
        if two:
            xs.append(rng.integers(-32, 32, (2, int(rng.integers(1, 5)), 6)))
        y = _both(rec, *xs).y
        want = []
        for bi in range(2):
            rows = [] if const is None else rec.const_q.tolist()
            for i, x in enumerate(xs):
                z = (3, -7)[i]
                rows += [[O.requant(v - z, int(rec.M0[i]), int(rec.sh[i]), z_y, -128, 127,
                                    rec.mode.value) for v in r] for r in x[bi].tolist()]
            want.append(rows)
        assert y.tolist() == want, f"seed {seed} case {case}"


def test_concat_same_format_passes_unchanged_and_doc_example():
    par = concat_params([0.37], 0.37, 5)
    assert par["M0"].tolist() == [1 << 31] and par["sh"].tolist() == [31]
    rec = LayerRecord(name="cat", op=OpKind.CONCAT, z_x=5, z_y=5, **par).validate()
    x = np.arange(-128, 128).reshape(1, 128, 2)
    assert np.array_equal(_both(rec, x).y, x)
    par = concat_params([0.5], 0.25, 0, const=[[1.75, -0.3]])
    rec = LayerRecord(name="cat", op=OpKind.CONCAT, z_x=2, **par).validate()
    assert _both(rec, np.array([[[3, -1], [6, 2]]])).y.tolist() == [[[7, -1], [2, -6], [8, 0]]]


def test_position_embedding_add_against_oracle():
    rng = np.random.default_rng(24)
    emb = rng.normal(0, 0.5, (5, 4))
    for mode in MODES:
        par = add_const_params(0.05, 0.02, 0.06, emb, z_b=3)
        rec = LayerRecord(name="pos", op=OpKind.ADD, inputs=("x",), z_x=-4, z_b=3, z_y=1,
                          mode=mode, **par).validate()
        x = rng.integers(-128, 128, (3, 5, 4))
        y = _both(rec, x).y
        ma, mb = rec.M0.tolist()
        sh = int(rec.sh[0])
        want = [[[O.clamp(1 + O.rdiv(ma * (v + 4) + mb * (cv - 3), 1 << sh, mode), -128, 127)
                  for v, cv in zip(r, cr)] for r, cr in zip(xb, rec.const_q.tolist())]
                for xb in x.tolist()]
        assert y.tolist() == want
    par = add_const_params(0.5, 0.1, 0.5, [[0.25, -0.3], [0.05, 1.0]], z_b=0)
    rec = LayerRecord(name="pos", op=OpKind.ADD, inputs=("x",), **par).validate()
    assert rec.const_q.tolist() == [[2, -3], [0, 10]]
    assert _both(rec, np.array([[[3, -1], [6, 2]]])).y.tolist() == [[[3, -2], [6, 4]]]
    for run in (run_layer, run_layer_torch):
        with pytest.raises(RecordError, match="layer pos: .*const_q"):
            run(rec, np.zeros((1, 3, 2), dtype=np.int64))


def test_head_split_merge_and_class_token_slice_against_index_loops():
    rng = np.random.default_rng(25)
    b, t, h, d = 2, 5, 3, 4
    x = rng.integers(-128, 128, (b, t, h * d))
    split = LayerRecord(name="split", op=OpKind.RESHAPE, params={"shape": (t, h, d), "perm": (1, 0, 2)})
    y = _both(split.validate(), x).y
    assert y.shape == (b, h, t, d)
    assert all(y[i, j, k, m] == x[i, k, j * d + m] for i in range(b) for j in range(h)
               for k in range(t) for m in range(d))
    merge = LayerRecord(name="merge", op=OpKind.RESHAPE, params={"perm": [1, 0, 2], "out_shape": [t, -1]})
    assert np.array_equal(_both(merge.validate(), y).y, x)
    cls = LayerRecord(name="cls", op=OpKind.SLICE, params={"axis": 1, "start": 0, "stop": 1})
    z = _both(cls.validate(), x).y
    assert z.shape == (b, 1, h * d) and np.array_equal(z[:, 0], x[:, 0])
    for run in (run_layer, run_layer_torch):
        with pytest.raises(RecordError, match="layer cls: .*slice"):
            run(cls.replace(params={"axis": 1, "start": 4, "stop": 9}), x)
        with pytest.raises(RecordError, match="layer split: .*reshape"):
            run(split.replace(params={"shape": (7, 3)}), x)


# ---- records -------------------------------------------------------------------------------------
def _records(rng) -> list[LayerRecord]:
    """One valid record of every new op (with golden results attached)."""
    c = 8
    recs = [
        LayerRecord(name="qk", op=OpKind.MATMUL, inputs=("q", "k"), c_in=c, c_out=5, trans_b=True,
                    z_x=2, z_b=-1, bias_eff=rng.integers(-9, 9, 5),
                    **matmul_params(rng.uniform(0.01, 0.1, 10), 0.05, 0.2)),
        LayerRecord(name="sm", op=OpKind.SOFTMAX, y_signed=False, lo=0, hi=255,
                    **softmax_params(0.05, 1 / 256)),
        LayerRecord(name="ln", op=OpKind.LAYERNORM, c_in=c, c_out=c,
                    **layernorm_params(0.05, rng.normal(1, 0.2, c), rng.normal(0, 0.2, c), 1e-5, 0.03)),
        LayerRecord(name="gelu", op=OpKind.GELU, z_x=4, z_y=-9, **gelu_params(0.05, 4, 0.03, -9)),
        LayerRecord(name="cat", op=OpKind.CONCAT, z_x=1,
                    **concat_params([0.05], 0.06, 0, const=rng.normal(0, 1, (1, c)))),
        LayerRecord(name="pos", op=OpKind.ADD, z_b=2,
                    **add_const_params(0.05, 0.02, 0.06, rng.normal(0, 1, (3, c)), 2)),
        LayerRecord(name="split", op=OpKind.RESHAPE, params={"shape": (3, 2, 4), "perm": (1, 0, 2)}),
        LayerRecord(name="cls", op=OpKind.SLICE, params={"axis": 1, "start": 0, "stop": 1}),
    ]
    inputs = {"qk": (rng.integers(-128, 128, (2, 5, c)), rng.integers(-128, 128, (2, 5, c))),
              "sm": (rng.integers(-128, 128, (2, 7)),), "ln": (rng.integers(-128, 128, (3, c)),),
              "gelu": (rng.integers(-128, 128, (3, c)),), "cat": (rng.integers(-128, 128, (2, 3, c)),),
              "pos": (rng.integers(-128, 128, (2, 3, c)),), "split": (rng.integers(-128, 128, (2, 3, c)),),
              "cls": (rng.integers(-128, 128, (2, 3, c)),)}
    out = []
    for r in recs:
        xs = inputs[r.name]
        res = run_layer(r, *xs)
        out.append(r.replace(x_q=xs[0], b_q=xs[1] if len(xs) > 1 else None, acc=res.acc,
                             y=res.y).validate())
    return out


def test_every_new_record_round_trips_with_checksums(tmp_path):
    for rec in _records(np.random.default_rng(26)):
        save_record(rec, tmp_path / rec.name)
        back = load_record(tmp_path / f"{rec.name}.json")
        assert back.scalars() == rec.scalars(), rec.name
        assert set(back.arrays()) == set(rec.arrays())
        for k, v in rec.arrays().items():
            assert np.array_equal(getattr(back, k), v), (rec.name, k)
        back.validate()
        assert np.array_equal(run_layer(back).y, rec.y), rec.name          # the record alone
        assert np.array_equal(run_layer_torch(back)[1].numpy(), rec.y), rec.name
    # tampering with a new array is caught
    rec = _records(np.random.default_rng(27))[1]
    npz, _ = save_record(rec, tmp_path / "sm2")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["table"][5] += 1
    np.savez_compressed(npz, **arrays)
    with pytest.raises(RecordError, match="'table' does not match its manifest"):
        load_record(tmp_path / "sm2")


BAD = [  # (record name, change, message fragment) -- validation names layer and field
    ("qk", {"M0": np.ones((3,), dtype=np.int64)}, "M0 must have shape"),
    ("qk", {"inputs": ("q",), "b_q": None}, "matmul takes two inputs"),
    ("qk", {"c_out": 0}, "c_out = C > 0"),
    ("qk", {"b_q": np.full((2, 5, 8), 300)}, "b_q outside"),
    ("sm", {"b_q": np.zeros((2, 7), dtype=np.int64)}, "b_q is the second input"),
    ("sm", {"params": {}}, "params['frac_bits'] is missing"),
    ("sm", {"params": {"frac_bits": 20, "shift": 1}}, "params ['shift'] are not used"),
    ("sm", {"a_bits": 4, "x_q": None}, "table must have shape (16,)"),
    ("sm", {"table": np.r_[1 << 20, np.full(255, (1 << 20) + 1)]}, "table outside"),
    ("sm", {"M0": np.array([1, 2])}, "softmax needs M0 = [Mo]"),
    ("ln", {"gamma_q": np.ones(3, dtype=np.int64)}, "gamma_q must have shape (8,)"),
    ("ln", {"params": {"eps_q": 0, "sqrt_shift": 40, "g_shift": 3}}, "4^sqrt_shift"),
    ("ln", {"params": {"eps_q": 0, "sqrt_shift": 2, "g_shift": 32}}, "g_shift <= 31"),
    ("gelu", {"table": np.full(256, 200)}, "table outside"),
    ("gelu", {"a_bits": 17, "table": None}, "at most 16"),
    ("cat", {"M0": np.array([1, 1]), "sh": np.array([0, 0])}, "needs M0 and sh of shape (1,)"),
    ("cat", {"const_q": np.full((1, 8), 300)}, "const_q outside"),
    ("pos", {"inputs": ("a", "b")}, "an add with const_q takes exactly one input"),
    ("split", {"params": {"perm": (0, 0)}}, "not a permutation"),
    ("split", {"params": {"shape": (-1, -1)}}, "at most one -1"),
    ("cls", {"params": {"axis": 0, "start": 0, "stop": 1}}, "axis >= 1"),
    ("cls", {"params": {"axis": 1, "start": 0, "stop": 1}, "const_q": np.ones((1, 1), dtype=np.int64)},
     "const_q is only used by add and concat"),
]


@pytest.mark.parametrize("name,change,msg", BAD, ids=[f"{b[0]}-{b[2][:24]}" for b in BAD])
def test_validation_names_layer_and_field(name, change, msg):
    rec = {r.name: r for r in _records(np.random.default_rng(28))}[name]
    with pytest.raises(RecordError) as e:
        rec.replace(**change).validate()
    assert str(e.value).startswith(f"layer '{name}': ") and msg in str(e.value), str(e.value)


def test_rounding_profiles_are_refused_not_approximated():
    for rec in _records(np.random.default_rng(30)):
        if rec.op is OpKind.ADD:
            continue
        rec.mode = "tflite_double"               # as a record carrying a runtime profile would
        for run in (run_layer, run_layer_torch):
            with pytest.raises(RecordError, match=f"layer {rec.name}: rounding 'tflite_double'"):
                run(rec)


def test_params_must_be_ints():
    for bad in ({"frac_bits": 2.5}, {"frac_bits": True}, {"shape": [1, "a"]}, "x"):
        with pytest.raises(RecordError, match="layer 'sm': params"):
            LayerRecord(name="sm", op=OpKind.SOFTMAX, params=bad)


# ---- an attention block as a network ------------------------------------------------------------
def _attention_block(rng, t=6, d=8, heads=2):
    dh = d // heads

    def lin(name, src, c_in, c_out, z_x=0):
        w = rng.integers(-127, 128, (c_out, c_in))
        m0, sh = matmul_params(0.02, 0.004, 0.06)["M0"], matmul_params(0.02, 0.004, 0.06)["sh"]
        return LayerRecord(name=name, op=OpKind.LINEAR, inputs=(src,), c_in=c_in, c_out=c_out,
                           w_q=w, z_x=z_x, bias_eff=rng.integers(-500, 500, c_out) - z_x * w.sum(1),
                           M0=np.repeat(m0, c_out), sh=np.repeat(sh, c_out))

    split = {"shape": (t, heads, dh), "perm": (1, 0, 2)}
    ln_p = layernorm_params(0.06, rng.normal(1, 0.2, d), rng.normal(0, 0.2, d), 1e-5, 0.05)
    return [
        LayerRecord(name="cat", op=OpKind.CONCAT, inputs=("input",),
                    **concat_params([0.06], 0.06, 0, const=rng.normal(0, 1, (1, d)))),
        LayerRecord(name="pos", op=OpKind.ADD, inputs=("cat",), z_b=0,
                    **add_const_params(0.06, 0.02, 0.06, rng.normal(0, 1, (t, d)), 0)),
        LayerRecord(name="ln1", op=OpKind.LAYERNORM, inputs=("pos",), c_in=d, c_out=d, **ln_p),
        lin("q", "ln1", d, d), lin("k", "ln1", d, d), lin("v", "ln1", d, d),
        LayerRecord(name="qh", op=OpKind.RESHAPE, inputs=("q",), params=split),
        LayerRecord(name="kh", op=OpKind.RESHAPE, inputs=("k",), params=split),
        LayerRecord(name="vh", op=OpKind.RESHAPE, inputs=("v",), params=split),
        LayerRecord(name="qk", op=OpKind.MATMUL, inputs=("qh", "kh"), c_in=dh, c_out=t, trans_b=True,
                    **matmul_params(0.06, 0.06, 0.1, alpha=1 / math.sqrt(dh))),
        LayerRecord(name="sm", op=OpKind.SOFTMAX, inputs=("qk",), y_signed=False, lo=0, hi=255,
                    **softmax_params(0.1, 1 / 256)),
        LayerRecord(name="av", op=OpKind.MATMUL, inputs=("sm", "vh"), a_signed=False, c_in=t, c_out=dh,
                    **matmul_params(1 / 256, 0.06, 0.06)),
        LayerRecord(name="merge", op=OpKind.RESHAPE, inputs=("av",),
                    params={"perm": (1, 0, 2), "out_shape": (t, d)}),
        lin("proj", "merge", d, d),
        LayerRecord(name="res", op=OpKind.ADD, inputs=("pos", "proj"),
                    M0=np.array([1 << 30, 1 << 30]), sh=np.array([31])),
        LayerRecord(name="gelu", op=OpKind.GELU, inputs=("res",), **gelu_params(0.06, 0, 0.03, -100)),
        LayerRecord(name="cls", op=OpKind.SLICE, inputs=("gelu",), params={"axis": 1, "start": 0, "stop": 1}),
    ]


def test_attention_block_network_numpy_equals_torch(tmp_path):
    rng = np.random.default_rng(29)
    recs = [r.validate() for r in _attention_block(rng)]
    x = rng.integers(-128, 128, (3, 5, 8))
    trace = run_network(recs, x)
    touts = run_network_torch(recs, x)
    for r in recs:
        acc, y = touts[r.name]
        assert np.array_equal(trace.y(r.name), y.numpy()), r.name
        assert (trace.acc(r.name) is None) == (acc is None), r.name
        if acc is not None:
            assert np.array_equal(trace.acc(r.name), acc.numpy()), r.name
    assert trace.y("sm").shape == (3, 2, 6, 6) and trace.output.shape == (3, 1, 8)
    assert 250 <= int(trace.y("sm").sum(-1).min()) <= int(trace.y("sm").sum(-1).max()) <= 262
    save_network(attach_results(recs, trace), tmp_path / "net")
    back = load_network(tmp_path / "net")
    assert np.array_equal(run_network(back, x).output, trace.output)
    for r in back:                                   # every record alone reproduces its layer
        assert np.array_equal(run_layer(r).y, trace.y(r.name)), r.name


# ---- fake-quant modules --------------------------------------------------------------------------
def _calibrated(q: Quantizer, x: torch.Tensor) -> Quantizer:
    q(x)
    q.observing = False
    return q


def test_fake_quant_forward_is_the_dequantized_integer_model():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9) * 3
    sm = QSoftmax(aq=_calibrated(Quantizer(8), x))
    xq = int_of(sm.aq, sm.aq(x)).numpy()
    s_x = float(sm.aq.scale)
    rec = LayerRecord(name="sm", op=OpKind.SOFTMAX, y_signed=False, lo=0, hi=255,
                      **softmax_params(s_x, 1 / 256))
    assert torch.equal(sm(x), torch.as_tensor(run_layer(rec, xq).y / 256, dtype=torch.float32))

    h = torch.randn(4, 5, 16)
    ln = QLayerNorm(16, aq=_calibrated(Quantizer(8), h))
    ln.weight.data.normal_(1, 0.2)
    ln.bias.data.normal_(0, 0.2)
    ln.oq = _calibrated(Quantizer(8), ln(h).detach())
    hq = int_of(ln.aq, ln.aq(h)).numpy()
    c = ln.constants()
    s_y, z_y = float(ln.oq.scale), int(ln.oq.zero_point)
    rec = LayerRecord(name="ln", op=OpKind.LAYERNORM, c_in=16, c_out=16, z_y=z_y, **c)
    assert torch.equal(ln(h), (s_y * torch.as_tensor(run_layer(rec, hq).y - z_y)).float())

    g = QGELU(aq=_calibrated(Quantizer(8), h))
    g.oq = _calibrated(Quantizer(8, unsigned=True), torch.nn.functional.gelu(h))
    s_y, z_y = float(g.oq.scale), int(g.oq.zero_point)
    rec = LayerRecord(name="g", op=OpKind.GELU, z_x=int(g.aq.zero_point), y_signed=False, z_y=z_y,
                      lo=0, hi=255, table=g.table())
    assert torch.equal(g(h), (s_y * torch.as_tensor(run_layer(rec, hq).y - z_y)).float())

    a, b = torch.randn(2, 3, 5, 16), torch.randn(2, 3, 6, 16)
    mm = QMatMul(_calibrated(Quantizer(8, granularity="token"), a),
                 _calibrated(Quantizer(8), b), alpha=0.25, trans_b=True)
    mm.oq = _calibrated(Quantizer(8), mm(a, b).detach())
    s_a = mm.aq.scale.reshape(-1).double().numpy()
    rec = LayerRecord(name="mm", op=OpKind.MATMUL, inputs=("a", "b"), c_in=16, c_out=6, trans_b=True,
                      z_x=0, z_b=0, z_y=int(mm.oq.zero_point),
                      **matmul_params(s_a, float(mm.bq.scale), float(mm.oq.scale), alpha=0.25))
    y_int = run_layer(rec, int_of(mm.aq, mm.aq(a)).numpy(), int_of(mm.bq, mm.bq(b)).numpy()).y
    want = float(mm.oq.scale) * torch.as_tensor(y_int - int(mm.oq.zero_point))
    assert torch.equal(mm(a, b), want.float())


def test_fake_quant_gradients_are_the_float_ops():
    torch.manual_seed(1)
    x = (torch.randn(3, 8) * 2).requires_grad_(True)
    sm = QSoftmax(aq=_calibrated(Quantizer(8), x.detach()))
    w = torch.randn(3, 8)
    (sm(x) * w).sum().backward()
    xh = sm.aq(x.detach()).requires_grad_(True)
    (softmax_ref(xh) * w).sum().backward()
    assert torch.allclose(x.grad, xh.grad)                 # straight through aq, float softmax
    ln = QLayerNorm(8, aq=_calibrated(Quantizer(8), x.detach()))
    ln.oq = _calibrated(Quantizer(8), ln(x).detach())
    ln(x).pow(2).sum().backward()
    assert ln.weight.grad is not None and torch.isfinite(ln.weight.grad).all()
    assert float(ln.weight.grad.abs().sum()) > 0


def test_fake_quant_refuses_per_token_scales_where_constants_need_one():
    x = torch.randn(2, 4, 8)
    sm = QSoftmax(aq=_calibrated(Quantizer(8, granularity="token"), x))
    with pytest.raises(Exception, match="per-tensor scale"):
        sm(x)
    mm = QMatMul(_calibrated(Quantizer(8), x), _calibrated(Quantizer(8, granularity="token"), x))
    mm.oq = _calibrated(Quantizer(8), torch.randn(2, 4, 8))
    with pytest.raises(Exception, match="reduction axis"):
        mm(x, x.transpose(-1, -2))
