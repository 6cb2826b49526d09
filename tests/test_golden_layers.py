"""Golden layers against independent nested-loop Python oracles (Python ints, Fraction rounding).

The oracles at the top never call t2c_sim.numerics or t2c_sim.golden.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim.config import OpKind
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.golden import native, run_layer
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import (
    random_add_record,
    random_conv_record,
    random_linear_record,
    random_pool_record,
)


# ---- oracles -------------------------------------------------------------------------------
def py_round(v: int, s: int, mode: str) -> int:
    """``v / 2^s`` rounded per SPEC, computed on a Fraction."""
    f = Fraction(v, 1 << s)
    if mode == "half_even":
        return round(f)  # Python rounds Fractions half to even
    if mode == "half_up":
        return math.floor(f + Fraction(1, 2))
    if mode == "half_away":
        return int(math.copysign(math.floor(abs(f) + Fraction(1, 2)), f)) if f else 0
    if mode == "floor":
        return math.floor(f)
    raise ValueError(mode)


def py_wrap(v: int, bits: int) -> int:
    """Two's complement wrap of a Python int."""
    v %= 1 << bits
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def py_requant(acc: int, m0: int, sh: int, z_y: int, lo: int, hi: int, mode: str) -> int:
    return min(max(z_y + py_round(int(acc) * int(m0), int(sh), mode), lo), hi)


def naive_conv(rec, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nested-loop conv on Python ints: out-of-bounds pixels read ``z_x``; padding channels skipped."""
    b_, h, w, _ = x.shape
    ph, pw = rec.padding
    sy, sx = rec.stride
    dy, dx = rec.dilation
    oh = (h + 2 * ph - dy * (rec.kh - 1) - 1) // sy + 1
    ow = (w + 2 * pw - dx * (rec.kw - 1) - 1) // sx + 1
    cg = rec.c_in // rec.groups
    cgp = -(-cg // rec.m) * rec.m
    cog = rec.c_out // rec.groups
    acc = np.zeros((b_, oh, ow, rec.c_out), dtype=object)
    y = np.zeros((b_, oh, ow, rec.c_out), dtype=np.int64)
    xl = x.tolist()
    wl = rec.w_q.tolist()
    mode = rec.mode.value
    for b in range(b_):
        for i in range(oh):
            for j in range(ow):
                for o in range(rec.c_out):
                    g = o // cog
                    s = int(rec.bias_eff[o])
                    for r in range(rec.kh):
                        for t in range(rec.kw):
                            ih, iw = i * sy - ph + r * dy, j * sx - pw + t * dx
                            inside = 0 <= ih < h and 0 <= iw < w
                            for c in range(cg):
                                xv = xl[b][ih][iw][g * cg + c] if inside else rec.z_x
                                s += xv * wl[o][(r * rec.kw + t) * cgp + c]
                    a = py_wrap(s, rec.acc_bits)
                    acc[b, i, j, o] = a
                    y[b, i, j, o] = py_requant(a, rec.M0[o], rec.sh[o], rec.z_y, rec.lo, rec.hi, mode)
    return acc.astype(np.int64), y


def naive_linear(rec, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-by-row linear on Python ints; ``bias_eff/M0/sh`` per channel or per row (token-wise)."""
    x2 = x.reshape(-1, rec.c_in).tolist()
    p = len(x2)
    acc = np.zeros((p, rec.c_out), dtype=np.int64)
    y = np.zeros((p, rec.c_out), dtype=np.int64)
    tw = rec.M0.ndim == 2

    def par(a, i, o):
        return int(a[i, o]) if tw else int(a[o])

    for i in range(p):
        for o in range(rec.c_out):
            s = par(rec.bias_eff, i, o) + sum(x2[i][k] * int(rec.w_q[o, k]) for k in range(rec.c_in))
            a = py_wrap(s, rec.acc_bits)
            acc[i, o] = a
            y[i, o] = py_requant(a, par(rec.M0, i, o), par(rec.sh, i, o), rec.z_y, rec.lo, rec.hi,
                                 rec.mode.value)
    shape = (*x.shape[:-1], rec.c_out)
    return acc.reshape(shape), y.reshape(shape)


def naive_pool(rec, x: np.ndarray, kind: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Max pool over in-bounds pixels; avg pool as sum of (x - z_x) over in-bounds pixels."""
    b_, h, w, c_ = x.shape
    ph, pw = rec.padding
    sy, sx = rec.stride
    dy, dx = rec.dilation
    oh = (h + 2 * ph - dy * (rec.kh - 1) - 1) // sy + 1
    ow = (w + 2 * pw - dx * (rec.kw - 1) - 1) // sx + 1
    acc = np.zeros((b_, oh, ow, c_), dtype=np.int64)
    y = np.zeros((b_, oh, ow, c_), dtype=np.int64)
    for b in range(b_):
        for i in range(oh):
            for j in range(ow):
                for c in range(c_):
                    vals = [int(x[b, i * sy - ph + r * dy, j * sx - pw + t * dx, c])
                            for r in range(rec.kh) for t in range(rec.kw)
                            if 0 <= i * sy - ph + r * dy < h and 0 <= j * sx - pw + t * dx < w]
                    if kind == "max":
                        y[b, i, j, c] = max(vals)
                    else:
                        a = sum(v - rec.z_x for v in vals)
                        acc[b, i, j, c] = a
                        y[b, i, j, c] = py_requant(a, rec.M0[0], rec.sh[0], rec.z_y, rec.lo,
                                                   rec.hi, rec.mode.value)
    return (None if kind == "max" else acc), y


@pytest.fixture(params=["default", "numpy"])
def engine(request, monkeypatch):
    """Each use runs twice: the default engine (the compiled 8-bit kernel where the machine has
    one) and the NumPy float path (the kernel switched off), against the same oracle."""
    if request.param == "numpy":
        monkeypatch.setattr(native, "kernel", lambda: None)
    return request.param


# ---- conv ----------------------------------------------------------------------------------
# (c_in, c_out, h, w, kh, kw, stride, padding, dilation, groups, batch, n, m, a_bits, a_signed, mode)
CONV_CASES = [
    (3, 4, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8, True, "half_even"),
    (5, 6, 7, 5, 3, 2, 2, (1, 0), 1, 1, 2, 2, 4, 8, False, "half_up"),
    (8, 4, 6, 6, 3, 3, 1, 2, 2, 1, 1, 1, 4, 4, True, "half_away"),
    (6, 6, 5, 5, 3, 3, (2, 1), 1, (1, 2), 3, 1, 2, 4, 8, True, "floor"),
    (4, 4, 6, 5, 3, 3, 1, 1, 1, 4, 2, 1, 1, 8, False, "half_even"),     # depthwise
    (6, 12, 5, 5, 5, 5, 1, 2, 1, 6, 1, 1, 2, 3, True, "half_even"),     # depthwise x2, N:M pad
    (7, 3, 4, 4, 1, 1, 1, 0, 1, 1, 1, 3, 8, 2, False, "half_even"),     # 1x1, 3:8, 2-bit
    (16, 8, 3, 4, 2, 2, 1, 0, 1, 2, 1, 2, 4, 8, True, "half_up"),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"c{i}" for i in range(len(CONV_CASES))])
def test_conv_matches_naive(case, seed, engine):
    (c_in, c_out, h, w, kh, kw, st, pad, dil, groups, batch, n, m, a_bits, a_signed, mode) = case
    print("seed", seed, "case", case)
    rng = np.random.default_rng(seed)
    rec = random_conv_record(rng, c_in=c_in, c_out=c_out, h=h, w=w, kh=kh, kw=kw, stride=st,
                             padding=pad, dilation=dil, groups=groups, batch=batch, n=n, m=m,
                             a_bits=a_bits, a_signed=a_signed, mode=mode)
    acc_ref, y_ref = naive_conv(rec, rec.x_q)
    for nm_mode in ("fast", "reference"):
        out = run_layer(rec, nm_mode=nm_mode)
        assert np.array_equal(out.acc, acc_ref), nm_mode
        assert np.array_equal(out.y, y_ref), nm_mode


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_sparse_reference_fast_and_dense_masked_agree(seed, engine):
    """N:M record (values/indices, padded K) == the same pruned weights as a plain dense conv."""
    rng = np.random.default_rng(seed)
    print("seed", seed)
    c_in, c_out, groups, n, m = 10, 6, 2, 2, 4
    rec = random_conv_record(rng, c_in=c_in, c_out=c_out, h=6, w=5, groups=groups, n=n, m=m,
                             stride=(1, 2), padding=1)
    assert rec.c_in_p != rec.c_in_g  # channel padding is exercised
    fast = run_layer(rec, nm_mode="fast")
    ref_only = rec.replace(w_q=None)  # the reference path must not need w_q
    ref = run_layer(ref_only, nm_mode="reference")
    cg = c_in // groups
    w4 = rec.w_q.reshape(c_out, rec.kh, rec.kw, rec.c_in_p)[..., :cg]
    dense = rec.replace(n=1, m=1, w_q=w4.reshape(c_out, -1), values=None, indices=None)
    assert np.count_nonzero(rec.w_q) <= rec.w_q.size * n // m
    d = run_layer(dense)
    for out in (ref, d):
        assert np.array_equal(out.acc, fast.acc)
        assert np.array_equal(out.y, fast.y)


def test_reference_mode_uses_indices():
    """Changing an index changes the reference result exactly as the moved weight predicts."""
    rng = np.random.default_rng(7)
    rec = random_linear_record(rng, c_in=8, c_out=2, rows=3, n=1, m=4)
    idx = rec.indices.copy()
    idx[0, 0] = (idx[0, 0] + 1) % 4
    moved = rec.replace(indices=idx, w_q=None)
    out = run_layer(moved, nm_mode="reference").acc
    x = rec.x_q
    v = int(rec.values[0, 0])
    delta = v * (x[:, idx[0, 0]] - x[:, rec.indices[0, 0]])
    wrapped = ((rec.acc[:, 0] + delta + 2**31) % 2**32) - 2**31
    assert np.array_equal(out[:, 0], wrapped)
    assert np.array_equal(out[:, 1], rec.acc[:, 1])


# ---- linear ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("nm,a_signed,mode", [((1, 1), True, "half_even"),
                                              ((2, 4), False, "half_away"),
                                              ((1, 8), True, "floor")])
def test_linear_matches_naive(seed, nm, a_signed, mode, engine):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    rec = random_linear_record(rng, c_in=13, c_out=7, rows=5, n=nm[0], m=nm[1],
                               a_signed=a_signed, mode=mode)
    x3 = rec.x_q.reshape(1, 5, 13)  # leading dims are flattened and restored
    acc_ref, y_ref = naive_linear(rec, x3)
    for nm_mode in ("fast", "reference"):
        out = run_layer(rec, x3, nm_mode=nm_mode)
        assert out.y.shape == (1, 5, 7)
        assert np.array_equal(out.acc, acc_ref)
        assert np.array_equal(out.y, y_ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_token_wise_linear(seed, engine):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    rec = random_linear_record(rng, c_in=9, c_out=5, rows=6, token_wise=True, n=2, m=4)
    assert rec.M0.shape == (6, 5) and len({tuple(r) for r in rec.M0.tolist()}) > 1
    acc_ref, y_ref = naive_linear(rec, rec.x_q)
    out = run_layer(rec)
    assert np.array_equal(out.acc, acc_ref)
    assert np.array_equal(out.y, y_ref)
    with pytest.raises(RecordError, match="fc"):
        run_layer(rec, rec.x_q[:4])  # 4 rows but 6 rows of parameters


@pytest.mark.parametrize("seed", [0, 1])
def test_accumulator_wraps_at_16_bits(seed, engine):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    rec = random_linear_record(rng, c_in=700, c_out=6, rows=8, acc_bits=16)
    assert rec.wrap_ok
    raw = [[int(rec.bias_eff[o]) + sum(int(a) * int(b) for a, b in zip(rec.x_q[p], rec.w_q[o]))
            for o in range(6)] for p in range(8)]
    assert any(not -2**15 <= v < 2**15 for row in raw for v in row)  # really overflows
    want = np.array([[((v + 2**15) % 2**16) - 2**15 for v in row] for row in raw])
    for nm_mode in ("fast", "reference"):
        assert np.array_equal(run_layer(rec, nm_mode=nm_mode).acc, want)


def test_int64_overflow_risk_raises():
    rec = LayerRecord(name="wide", op=OpKind.LINEAR, c_in=2, c_out=1, a_bits=32, w_bits=32,
                      acc_bits=48, w_q=np.array([[2**31 - 1, 2**31 - 1]]), bias_eff=np.array([0]),
                      M0=np.array([1]), sh=np.array([0]), lo=-128, hi=127)
    with pytest.raises(NumericsError, match="wide"):
        run_layer(rec, np.array([[2**31 - 1, 2**31 - 1]]))


def test_bad_inputs_raise_record_errors():
    rng = np.random.default_rng(0)
    rec = random_conv_record(rng, c_in=3, c_out=2, h=4, w=4, name="c1")
    with pytest.raises(RecordError, match="c1"):
        run_layer(rec, rec.x_q[..., :2])
    with pytest.raises(RecordError, match="c1"):
        run_layer(rec, rec.x_q[:, :3])  # record says 4x4
    with pytest.raises(RecordError, match="c1"):
        run_layer(rec, rec.x_q + 1000)  # out of the 8-bit range
    with pytest.raises(RecordError, match="nm_mode"):
        run_layer(rec, nm_mode="slow")


# ---- pools, add, flatten ---------------------------------------------------------------------
POOL_CASES = [  # (kind, kh, kw, stride, padding, dilation, a_signed)
    ("maxpool", 2, 2, 2, 0, 1, True),
    ("maxpool", 3, 3, 2, 1, 1, False),
    ("maxpool", 3, 2, 1, (1, 1), 2, True),
    ("avgpool", 2, 2, 2, 0, 1, True),
    ("avgpool", 3, 3, 1, 1, 1, False),
    ("avgpool", 3, 3, 2, 1, 1, True),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(POOL_CASES)])
def test_pools_match_naive(case, seed):
    kind, kh, kw, st, pad, dil, a_signed = case
    rng = np.random.default_rng(seed)
    print("seed", seed, "case", case)
    rec = random_pool_record(rng, kind, c=3, h=7, w=6, kh=kh, kw=kw, stride=st, padding=pad,
                             dilation=dil, batch=2, a_signed=a_signed)
    acc_ref, y_ref = naive_pool(rec, rec.x_q, "max" if kind == "maxpool" else "avg")
    out = run_layer(rec)
    assert np.array_equal(out.y, y_ref)
    if acc_ref is None:
        assert out.acc is None
    else:
        assert np.array_equal(out.acc, acc_ref)


def test_maxpool_padding_never_wins():
    rec = LayerRecord(name="mp", op=OpKind.MAXPOOL, kh=3, kw=3, stride=1, padding=1,
                      a_bits=8, a_signed=True)
    x = np.full((1, 2, 2, 1), -128)
    assert np.array_equal(run_layer(rec, x).y, x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gavgpool_matches_naive(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    rec = random_pool_record(rng, "gavgpool", c=5, h=3, w=4, batch=2, a_signed=bool(seed % 2),
                             mode="half_up")
    out = run_layer(rec)
    assert out.y.shape == (2, 1, 1, 5)
    for b in range(2):
        for c in range(5):
            a = sum(int(v) - rec.z_x for v in rec.x_q[b, :, :, c].ravel())
            assert out.acc[b, 0, 0, c] == a
            assert out.y[b, 0, 0, c] == py_requant(a, rec.M0[0], rec.sh[0], rec.z_y, rec.lo,
                                                    rec.hi, "half_up")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", ["half_even", "half_up", "half_away", "floor"])
def test_add_matches_naive(seed, mode):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    rec, b = random_add_record(rng, shape=(2, 3, 3, 4), a_signed=bool(seed % 2), mode=mode,
                               relu=seed == 2)
    a = rec.x_q
    out = run_layer(rec, a, b)
    ma, mb = (int(v) for v in rec.M0)
    want = np.array([py_requant(1, ma * (int(u) - rec.z_x) + mb * (int(v) - rec.z_b),
                                int(rec.sh[0]), rec.z_y, rec.lo, rec.hi, mode)
                     for u, v in zip(a.ravel(), b.ravel())]).reshape(a.shape)
    assert out.acc is None
    assert np.array_equal(out.y, want)
    with pytest.raises(RecordError, match="add"):
        run_layer(rec, a, b[:, :2])
    with pytest.raises(RecordError, match="add"):
        run_layer(rec, a)


def test_flatten_order_is_hwc():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(2, 3, 4, 5))
    rec = LayerRecord(name="fl", op=OpKind.FLATTEN)
    y = run_layer(rec, x).y
    assert y.shape == (2, 60)
    for b in range(2):
        for h in range(3):
            for w in range(4):
                for c in range(5):
                    assert y[b, (h * 4 + w) * 5 + c] == x[b, h, w, c]


@pytest.mark.parametrize("seed", [0, 1])
def test_workers_do_not_change_results(seed, monkeypatch, engine):
    """Row blocks on a thread pool: the same integers as one thread (many blocks forced)."""
    import t2c_sim.golden.layers as layers

    rng = np.random.default_rng(seed)
    print("seed", seed)
    recs = [random_linear_record(rng, c_in=20, c_out=60, rows=50, token_wise=True),
            random_conv_record(rng, c_in=8, c_out=30, h=9, w=9, n=2, m=4, padding=0)]
    monkeypatch.setattr(layers, "RQ_BLOCK", 200)  # -> dozens of row blocks per layer
    for rec in recs:
        one = run_layer(rec)
        two = run_layer(rec, workers=2)
        assert np.array_equal(one.acc, two.acc) and np.array_equal(one.y, two.y)
        assert np.array_equal(one.y, rec.y)  # rec.y was made with the default block size
    assert np.array_equal(run_layer(recs[0], workers=3).y, recs[0].y)
    with pytest.raises(RecordError, match="workers"):
        run_layer(recs[0], workers=0)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_property(data):
    """Random small convs (any stride/padding/dilation/groups/N:M): fast == reference == naive."""
    groups = data.draw(st.sampled_from([1, 2, 3]))
    c_in = groups * data.draw(st.integers(1, 3))
    c_out = groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pad = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    h = data.draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - 2 * pad[0]), 6))
    w = data.draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - 2 * pad[1]), 6))
    m = data.draw(st.sampled_from([1, 2, 4]))
    n = data.draw(st.integers(1, m))
    a_bits = data.draw(st.integers(2, 8))
    a_signed = data.draw(st.booleans())
    acc_bits = data.draw(st.sampled_from([12, 20, 32]))
    mode = data.draw(st.sampled_from(["half_even", "half_up", "half_away", "floor"]))
    seed = data.draw(st.integers(0, 2**31))
    rec = random_conv_record(np.random.default_rng(seed), c_in=c_in, c_out=c_out, h=h, w=w,
                             kh=kh, kw=kw, stride=stride, padding=pad, dilation=dil,
                             groups=groups, n=n, m=m, a_bits=a_bits, a_signed=a_signed,
                             w_bits=a_bits, acc_bits=acc_bits, mode=mode)
    acc_ref, y_ref = naive_conv(rec, rec.x_q)
    for engine in ("default", "numpy"):
        with pytest.MonkeyPatch.context() as mp:
            if engine == "numpy":
                mp.setattr(native, "kernel", lambda: None)
            for nm_mode in ("fast", "reference"):
                out = run_layer(rec, nm_mode=nm_mode)
                assert np.array_equal(out.acc, acc_ref), (engine, nm_mode)
                assert np.array_equal(out.y, y_ref), (engine, nm_mode)
