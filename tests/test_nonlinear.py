"""Integer softmax, LayerNorm and GELU: golden == PyTorch path == Python-int oracle, bit for bit.

The oracle (``tests/nl_oracle.py``) is written from docs/numerics.md section 9 with Python ints
and scalar loops. Cases: every 8-bit input (GELU) and every pair of 8-bit inputs (rows of two,
softmax and LayerNorm), random rows with random scales, formats and zero points, all-equal and
constant rows, saturation, forced ties in every rounding step, and injected faults that the
comparisons must catch. Then the fuse-time constants against an independent derivation, the
fake-quant modules against the dequantized golden model, and the error against float.
"""

from __future__ import annotations

import doctest
import math

import nl_oracle as O
import numpy as np
import pytest
import torch

import t2c_sim.golden.nonlinear as gnl
import t2c_sim.quant.intops as intops
import t2c_sim.quant.transformer_params as tp
from t2c_sim.config import OpKind, RoundMode, qrange
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.golden import run_layer
from t2c_sim.golden.nonlinear import bitlen, isqrt, round_div
from t2c_sim.record import LayerRecord
from t2c_sim.verify.nonlinear_error import all_pairs, spread_rows, standard_report
from t2c_sim.verify.torch_int import run_layer_torch

MODES = [m.value for m in RoundMode]


def _both(rec: LayerRecord, x: np.ndarray) -> np.ndarray:
    """Golden output, after asserting the torch path gives the same integers."""
    g = run_layer(rec, x).y
    acc, t = run_layer_torch(rec, x)
    assert acc is None and np.array_equal(g, t.numpy()), rec.name
    return g


# ---- primitives ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_round_div_against_oracle_with_ties(mode):
    seed = 3
    rng = np.random.default_rng(seed)
    n = [0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 7, -7, 10, -10, 2**62, -2**62, 2**63 - 1, -2**63]
    d = [1, 2, 3, 4, 5, 6, 7, 2**31, 2**62 - 1]
    n += rng.integers(-2**62, 2**62, 500).tolist()
    d += rng.integers(1, 2**40, 20).tolist()
    nn = np.array([a for a in n for _ in d], dtype=np.int64)
    dd = np.array([b for _ in n for b in d], dtype=np.int64)
    O.TIES.clear()
    want = [O.rdiv(a, b, mode) for a, b in zip(nn.tolist(), dd.tolist())]
    assert O.TIES["div"] > 10, f"seed {seed}: no ties exercised"
    assert round_div(nn, dd, mode).tolist() == want, f"seed {seed}"
    assert intops.round_div_t(torch.from_numpy(nn), torch.from_numpy(dd), mode).tolist() == want


def test_round_div_doc_example_and_bad_divisor():
    got = [int(round_div(v, 4, m)) for v in (10, -10) for m in MODES]
    assert got == [2, 3, 3, 2, -2, -2, -3, -3]
    for d in (0, -3, 2**62):
        with pytest.raises(NumericsError, match="divisor"):
            round_div(5, d)
        with pytest.raises(NumericsError, match="divisor"):
            intops.round_div_t(torch.tensor([5]), d, "half_even")


def test_isqrt_and_bitlen_exact():
    seed = 4
    rng = np.random.default_rng(seed)
    v = [0, 1, 2, 3, 4, 8, 15, 16, 17, 2**62 - 1, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1]
    v += [k * k + o for k in range(0, 3000, 7) for o in (-1, 0, 1) if k * k + o >= 0]
    v += [int(x) for x in rng.integers(0, 2**62, 3000)] + [1 << s for s in range(62)]
    a = np.array(v, dtype=np.int64)
    want = [math.isqrt(x) for x in v]
    assert isqrt(a).tolist() == want, f"seed {seed}"
    assert intops.isqrt_t(torch.from_numpy(a)).tolist() == want
    assert bitlen(a).tolist() == [x.bit_length() for x in v]
    assert intops.bitlen_t(torch.from_numpy(a)).tolist() == [x.bit_length() for x in v]
    for bad in (-1, 2**62):
        with pytest.raises(NumericsError):
            isqrt(bad)
        with pytest.raises(NumericsError):
            intops.isqrt_t(torch.tensor([bad]))


# ---- softmax -------------------------------------------------------------------------------------
def _softmax_rec(s_x, s_y=None, *, a_bits=8, a_signed=True, y_bits=8, mode="half_even",
                 frac_bits=tp.SOFTMAX_FRAC_BITS, z_y=0, lo=None, hi=None) -> LayerRecord:
    s_y = 2.0 ** -y_bits if s_y is None else s_y
    p = tp.softmax_params(s_x, s_y, a_bits=a_bits, frac_bits=frac_bits)
    ylo, yhi = qrange(y_bits, False)
    return LayerRecord(name="sm", op=OpKind.SOFTMAX, a_bits=a_bits, a_signed=a_signed,
                       y_bits=y_bits, y_signed=False, z_y=z_y, lo=ylo if lo is None else lo,
                       hi=yhi if hi is None else hi, mode=mode, **p).validate()


def _softmax_oracle(rec: LayerRecord, x: np.ndarray) -> list[list[int]]:
    t = rec.table.tolist()
    return [O.softmax_row(r, t, int(rec.M0[0]), int(rec.sh[0]), rec.z_y, rec.lo, rec.hi,
                          rec.mode.value) for r in x.reshape(-1, x.shape[-1]).tolist()]


@pytest.mark.parametrize("s_x", [0.01, 0.0625, 0.4])
def test_softmax_every_pair_of_8bit_inputs(s_x):
    rec = _softmax_rec(s_x)
    x = all_pairs()
    assert _both(rec, x).tolist() == _softmax_oracle(rec, x)


def test_softmax_random_rows_formats_modes():
    seed = 11
    rng = np.random.default_rng(seed)
    for case in range(40):
        a_bits = int(rng.integers(2, 9))
        a_signed = bool(rng.integers(0, 2))
        y_bits = int(rng.integers(2, 9))
        s_x = float(np.exp(rng.uniform(np.log(1e-3), np.log(2.0))))
        s_y = float(rng.choice([2.0 ** -y_bits, 1.0 / ((1 << y_bits) - 1), rng.uniform(0.001, 0.5)]))
        mode = MODES[case % 4]
        rec = _softmax_rec(s_x, s_y, a_bits=a_bits, a_signed=a_signed, y_bits=y_bits, mode=mode,
                           frac_bits=int(rng.integers(4, 25)))
        lo, hi = rec.x_range
        t = int(rng.choice([1, 2, 3, 7, 17, 64, 197]))
        x = rng.integers(lo, hi + 1, size=(int(rng.integers(1, 4)), int(rng.integers(1, 4)), t))
        assert _both(rec, x).reshape(-1, t).tolist() == _softmax_oracle(rec, x), \
            f"seed {seed} case {case}"


def test_softmax_equal_rows_one_hot_and_saturation():
    rec = _softmax_rec(0.0625)
    for t in (1, 2, 3, 197, 256):
        x = np.full((2, t), -7)
        y = _both(rec, x)
        assert y.tolist() == _softmax_oracle(rec, x)
        assert np.all(y == min(255, round(256 / t)))       # uniform distribution
    peak = np.full((1, 197), -128)
    peak[0, 5] = 127
    y = _both(rec, peak)
    assert y[0, 5] == 255 and np.all(np.delete(y, 5) == 0)  # 1.0 saturates to 255/256


@pytest.mark.parametrize("mode", MODES)
def test_softmax_final_rounding_ties(mode):
    # s_y = 1/2 -> Mo / 2^sho = 2: a uniform row of 4 is 2/4 = 0.5 exactly, of 12 is 1/6 ...
    rec = _softmax_rec(0.5, 0.5, y_bits=4, mode=mode)
    assert int(rec.M0[0]) == 1 << 31 and int(rec.sh[0]) == 30
    O.TIES.clear()
    rows = [np.full((1, 4), 3), np.full((1, 4), -5), np.array([[0, 0, 0, 0, -128, -128, -128, -128]])]
    for x in rows:
        assert _both(rec, x).tolist() == _softmax_oracle(rec, x)
    assert O.TIES["softmax"] >= 8
    want = {"half_even": 0, "half_up": 1, "half_away": 1, "floor": 0}[mode]
    assert int(run_layer(rec, rows[0]).y[0, 0]) == want


def test_softmax_overflow_and_bad_tables_are_refused():
    rec = _softmax_rec(0.0625)
    with pytest.raises(NumericsError, match="overflow"):
        run_layer(rec, np.zeros((1, 1 << 19), dtype=np.int64))
    with pytest.raises(NumericsError, match="overflow"):
        run_layer_torch(rec, np.zeros((1, 1 << 19), dtype=np.int64))
    bad = rec.replace(table=rec.table.copy())
    bad.table[0] -= 1
    with pytest.raises(RecordError, match="table"):
        run_layer(bad, np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(RecordError, match="table"):
        run_layer_torch(bad, np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(RecordError, match="table"):
        bad.validate()


# ---- layernorm -----------------------------------------------------------------------------------
def _ln_rec(rng, c, *, s_x=0.05, s_y=0.03, eps=1e-5, a_bits=8, a_signed=True, y_bits=8,
            y_signed=True, z_y=0, mode="half_even", gamma=None, beta=None):
    gamma = rng.normal(1.0, 0.4, c) if gamma is None else np.asarray(gamma, dtype=float)
    beta = rng.normal(0.0, 0.4, c) if beta is None else np.asarray(beta, dtype=float)
    p = tp.layernorm_params(s_x, gamma, beta, eps, s_y, a_bits=a_bits, a_signed=a_signed)
    ylo, yhi = qrange(y_bits, y_signed)
    return LayerRecord(name="ln", op=OpKind.LAYERNORM, a_bits=a_bits, a_signed=a_signed,
                       y_bits=y_bits, y_signed=y_signed, c_in=c, c_out=c, z_y=z_y, lo=ylo,
                       hi=yhi, mode=mode, **p).validate()


def _ln_oracle(rec: LayerRecord, x: np.ndarray) -> list[list[int]]:
    p = rec.params
    g, b = rec.gamma_q.tolist(), rec.beta_q.tolist()
    return [O.layernorm_row(r, g, b, p["eps_q"], p["sqrt_shift"], p["g_shift"], rec.z_y, rec.lo,
                            rec.hi, rec.mode.value) for r in x.reshape(-1, x.shape[-1]).tolist()]


@pytest.mark.parametrize("s_x,eps", [(0.05, 1e-5), (0.5, 1e-5), (0.02, 0.0)])
def test_layernorm_every_pair_of_8bit_inputs(s_x, eps):
    rng = np.random.default_rng(5)
    rec = _ln_rec(rng, 2, s_x=s_x, eps=eps, s_y=2.5 / 127)
    x = all_pairs()
    assert _both(rec, x).tolist() == _ln_oracle(rec, x)


def test_layernorm_random_rows_formats_modes():
    seed = 12
    rng = np.random.default_rng(seed)
    for case in range(30):
        c = int(rng.choice([1, 2, 3, 5, 16, 64, 192]))
        a_bits = int(rng.integers(2, 13))
        a_signed, y_signed = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        y_bits = int(rng.integers(2, 9))
        ylo, yhi = qrange(y_bits, y_signed)
        rec = _ln_rec(rng, c, s_x=float(np.exp(rng.uniform(-8, 1))),
                      eps=float(rng.choice([0, 1e-6, 1e-3, 0.1])),
                      s_y=float(np.exp(rng.uniform(-6, 0))), a_bits=a_bits, a_signed=a_signed,
                      y_bits=y_bits, y_signed=y_signed, z_y=int(rng.integers(ylo, yhi + 1)),
                      mode=MODES[case % 4])
        lo, hi = rec.x_range
        x = rng.integers(lo, hi + 1, size=(int(rng.integers(1, 5)), c))
        x[0] = x[0, 0]                                          # one constant row
        assert _both(rec, x).tolist() == _ln_oracle(rec, x), f"seed {seed} case {case}"


def test_layernorm_constant_near_constant_and_saturating_rows():
    rng = np.random.default_rng(6)
    rows = spread_rows(rng, 16, 192)
    for eps in (0.0, 1e-5):
        rec = _ln_rec(rng, 192, eps=eps)
        for name, x in rows.items():
            assert _both(rec, x).tolist() == _ln_oracle(rec, x), name
    big = _ln_rec(rng, 192, s_y=1e-4)                          # gamma / s_y ~ 10^4: saturates
    y = _both(big, rows["uniform"])
    assert y.tolist() == _ln_oracle(big, rows["uniform"])
    assert np.count_nonzero((y == -128) | (y == 127)) > y.size // 2


@pytest.mark.parametrize("mode", MODES)
def test_layernorm_final_rounding_ties(mode):
    # constant row, eps = 0: dev = 0, sigma = 1, y = z_y + round(B / 2^gb); beta / s_y = 2.5 -> tie
    rng = np.random.default_rng(7)
    rec = _ln_rec(rng, 4, eps=0.0, s_y=0.25, gamma=[1.0] * 4, beta=[0.625, -0.625, 0.375, 0.0],
                  mode=mode)
    O.TIES.clear()
    x = np.full((1, 4), 9)
    y = _both(rec, x)
    assert y.tolist() == _ln_oracle(rec, x)
    assert O.TIES["layernorm"] == 3
    want = {"half_even": [2, -2, 2, 0], "half_up": [3, -2, 2, 0], "half_away": [3, -3, 2, 0],
            "floor": [2, -3, 1, 0]}[mode]
    assert y[0].tolist() == want


def test_layernorm_doc_example():
    rng = np.random.default_rng(0)
    rec = _ln_rec(rng, 4, s_x=0.5, s_y=0.125, eps=0.01, a_bits=4, gamma=[1.0] * 4,
                  beta=[0, 0, 0, 0.25])
    assert rec.params == {"eps_q": 2882303761517118, "sqrt_shift": 26, "g_shift": 26}
    assert _both(rec, np.array([1, 2, 3, 6])).tolist() == [-9, -4, 0, 15]


def test_layernorm_bounds_are_enforced():
    rng = np.random.default_rng(8)
    rec = _ln_rec(rng, 16)
    too_big = rec.replace(gamma_q=rec.gamma_q * 4)
    for run in (too_big.validate, lambda: run_layer(too_big, np.zeros((1, 16), dtype=np.int64)),
                lambda: run_layer_torch(too_big, np.zeros((1, 16), dtype=np.int64))):
        with pytest.raises(RecordError, match="layer 'ln': max\\|gamma_q\\|"):
            run()
    shifted = rec.replace(params={**rec.params, "sqrt_shift": rec.params["sqrt_shift"] + 1})
    with pytest.raises(RecordError, match="4\\^sqrt_shift"):
        shifted.validate()


# ---- gelu ----------------------------------------------------------------------------------------
def _gelu_rec(s_x, z_x, s_y, z_y, *, a_bits=8, a_signed=True, y_bits=8, y_signed=True):
    p = tp.gelu_params(s_x, z_x, s_y, z_y, a_bits=a_bits, a_signed=a_signed, y_bits=y_bits,
                       y_signed=y_signed)
    ylo, yhi = qrange(y_bits, y_signed)
    return LayerRecord(name="gelu", op=OpKind.GELU, a_bits=a_bits, a_signed=a_signed,
                       y_bits=y_bits, y_signed=y_signed, z_x=z_x, z_y=z_y, lo=ylo, hi=yhi,
                       **p).validate()


def test_gelu_every_input_against_oracle_table():
    seed = 13
    rng = np.random.default_rng(seed)
    for case in range(25):
        a_bits, y_bits = int(rng.integers(2, 11)), int(rng.integers(2, 9))
        a_signed, y_signed = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        xlo, xhi = qrange(a_bits, a_signed)
        ylo, yhi = qrange(y_bits, y_signed)
        z_x = int(rng.choice([xlo, xhi, rng.integers(xlo, xhi + 1)]))   # extreme zero points too
        z_y = int(rng.choice([ylo, yhi, rng.integers(ylo, yhi + 1)]))
        s_x, s_y = float(np.exp(rng.uniform(-7, 0))), float(np.exp(rng.uniform(-7, 0)))
        rec = _gelu_rec(s_x, z_x, s_y, z_y, a_bits=a_bits, a_signed=a_signed, y_bits=y_bits,
                        y_signed=y_signed)
        assert rec.table.tolist() == O.gelu_table(s_x, z_x, s_y, z_y, a_bits, a_signed, ylo, yhi), \
            f"seed {seed} case {case}"
        x = np.arange(xlo, xhi + 1)
        assert _both(rec, x).tolist() == rec.table.tolist(), f"seed {seed} case {case}"


def test_gelu_tanh_form_table():
    s_x, s_y = 6 / 127, 5 / 127
    t = tp.gelu_params(s_x, 0, s_y, -30, approximate="tanh")["table"].tolist()
    want = []
    for q in range(-128, 128):
        v = s_x * q
        g = 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
        want.append(O.clamp(-30 + round(g / s_y), -128, 127))
    assert t == want
    assert t != tp.gelu_params(s_x, 0, s_y, -30)["table"].tolist()    # the two forms differ


def test_gelu_doc_example_and_input_range():
    rec = _gelu_rec(1.0, 0, 0.5, 0, a_bits=2, y_bits=4)
    assert rec.table.tolist() == [0, 0, 0, 2]
    assert _both(rec, np.array([-2, 1])).tolist() == [0, 2]
    with pytest.raises(RecordError, match="outside"):
        run_layer(rec, np.array([2]))
    with pytest.raises(RecordError, match="outside"):
        run_layer_torch(rec, np.array([2]))


# ---- token-wise (per-row) outputs: LayerNorm [R, C] constants, GELU [R, 2^a] tables -------------
def _row_scales(rng, r):
    return np.exp(rng.uniform(-6, -1, r))


def test_layernorm_per_row_constants_against_oracle():
    """Row r divides by its own s_y[r] with one g_shift for all rows: constants derived
    independently (Fractions), outputs row by row with the scalar oracle."""
    seed = 21
    rng = np.random.default_rng(seed)
    for case in range(8):
        c = int(rng.choice([2, 5, 16, 48]))
        r = int(rng.integers(1, 7))
        s_x, eps = float(np.exp(rng.uniform(-6, -1))), float(rng.choice([0.0, 1e-6, 1e-3]))
        gamma, beta = rng.normal(1.0, 0.4, c), rng.normal(0.0, 0.4, c)
        s_y = _row_scales(rng, r)
        p = tp.layernorm_params(s_x, gamma, beta, eps, s_y)
        assert p["gamma_q"].shape == p["beta_q"].shape == (r, c)
        gb = p["params"]["g_shift"]
        one = O.layernorm_constants(s_x, gamma.tolist(), beta.tolist(), eps, float(s_y[0]), 8, True)
        assert {k: p["params"][k] for k in ("eps_q", "sqrt_shift")} == \
            {k: one[k] for k in ("eps_q", "sqrt_shift")}

        def consts(shift, gamma=gamma, beta=beta, s_y=s_y):
            return ([[O.round_half_even_frac(O.Fraction(float(g) / float(v)) * 2 ** shift)
                      for g in gamma] for v in s_y],
                    [[O.round_half_even_frac(O.Fraction(float(b) / float(v)) * 2 ** shift)
                      for b in beta] for v in s_y])

        def fits(shift, c=c):  # the bound over every row at once (one shift for all rows)
            g_, b_ = consts(shift)
            return max(abs(v) for row in g_ for v in row) * math.ceil(math.sqrt(c - 1)) + \
                max(abs(v) for row in b_ for v in row) <= 2 ** 31

        assert fits(gb) and (gb == 31 or not fits(gb + 1)), f"seed {seed} case {case}"
        want_g, want_b = consts(gb)
        assert p["gamma_q"].tolist() == want_g and p["beta_q"].tolist() == want_b
        mode = MODES[case % 4]
        rec = LayerRecord(name="ln", op=OpKind.LAYERNORM, c_in=c, c_out=c, mode=mode,
                          **p).validate()
        x = rng.integers(-128, 128, size=(r, c))
        want = [O.layernorm_row(row, p["gamma_q"][i].tolist(), p["beta_q"][i].tolist(),
                                p["params"]["eps_q"], p["params"]["sqrt_shift"], gb, 0, -128, 127,
                                mode) for i, row in enumerate(x.tolist())]
        assert _both(rec, x).tolist() == want, f"seed {seed} case {case}"
        assert _both(rec, x.reshape(1, r, c)).reshape(r, c).tolist() == want    # leading dims


def test_gelu_per_row_tables_against_oracle():
    seed = 22
    rng = np.random.default_rng(seed)
    for case in range(6):
        r = int(rng.integers(1, 6))
        s_x, s_y = float(np.exp(rng.uniform(-5, -1))), _row_scales(rng, r)
        z_x, z_y = int(rng.integers(-20, 20)), int(rng.integers(-20, 20))
        t = tp.gelu_params(s_x, z_x, s_y, z_y)["table"]
        assert t.shape == (r, 256)
        for i, v in enumerate(s_y):
            assert t[i].tolist() == O.gelu_table(s_x, z_x, float(v), z_y, 8, True, -128, 127)
            assert t[i].tolist() == tp.gelu_params(s_x, z_x, float(v), z_y)["table"].tolist()
        rec = LayerRecord(name="gelu", op=OpKind.GELU, z_x=z_x, z_y=z_y, table=t).validate()
        x = rng.integers(-128, 128, size=(1, r, 7))
        want = [[t[i][v + 128] for v in row] for i, row in enumerate(x[0].tolist())]
        assert _both(rec, x)[0].tolist() == want, f"seed {seed} case {case}"


def test_per_row_constants_need_matching_rows():
    rng = np.random.default_rng(23)
    p = tp.layernorm_params(0.05, rng.normal(1, 0.3, 8), rng.normal(0, 0.3, 8), 1e-5,
                            _row_scales(rng, 3))
    ln = LayerRecord(name="ln", op=OpKind.LAYERNORM, c_in=8, c_out=8, **p).validate()
    g = LayerRecord(name="gelu", op=OpKind.GELU,
                    **tp.gelu_params(0.05, 0, _row_scales(rng, 3), 0)).validate()
    for rec, x in ((ln, np.zeros((4, 8), dtype=np.int64)), (g, np.zeros((2, 8), dtype=np.int64))):
        for run in (run_layer, run_layer_torch):
            with pytest.raises(RecordError, match="rows"):
                run(rec, x)
    with pytest.raises(RecordError, match="differ in shape"):
        ln.replace(beta_q=ln.beta_q[0]).validate()
    with pytest.raises(RecordError, match="table"):
        LayerRecord(name="sm", op=OpKind.SOFTMAX, table=np.zeros((2, 256), dtype=np.int64),
                    params={"frac_bits": 20}, M0=[1], sh=[0]).validate()
    for bad in ([[0.1]], [], [0.1, -1.0]):
        with pytest.raises(NumericsError):
            tp.gelu_params(0.1, 0, bad, 0)


# ---- fuse-time constants -------------------------------------------------------------------------
def test_softmax_and_layernorm_constants_match_independent_derivation():
    seed = 14
    rng = np.random.default_rng(seed)
    for _ in range(20):
        a_bits = int(rng.integers(2, 9))
        s_x = float(np.exp(rng.uniform(-7, 1)))
        f = int(rng.integers(1, 31))
        p = tp.softmax_params(s_x, 1 / 256, a_bits=a_bits, frac_bits=f)
        assert p["table"].tolist() == O.softmax_table(s_x, a_bits, f), f"seed {seed}"
        assert (int(p["M0"][0]), int(p["sh"][0])) == O.quantize_multiplier(256.0)
        c = int(rng.integers(1, 300))
        g, b = rng.normal(0, 2, c).tolist(), rng.normal(0, 2, c).tolist()
        s_x, eps, s_y = float(np.exp(rng.uniform(-8, 0))), float(rng.choice([0, 1e-5, 1e-2])), \
            float(np.exp(rng.uniform(-6, 0)))
        p = tp.layernorm_params(s_x, g, b, eps, s_y, a_bits=a_bits)
        want = O.layernorm_constants(s_x, g, b, eps, s_y, a_bits, True)
        assert p["params"] == {k: want[k] for k in ("eps_q", "sqrt_shift", "g_shift")}, f"seed {seed}"
        assert p["gamma_q"].tolist() == want["gamma_q"] and p["beta_q"].tolist() == want["beta_q"]


def test_fuse_time_rounding_ties_go_to_even():
    # beta / s_y * 2^gb = k + 0.5 exactly needs gb = 0: gamma / s_y huge forces it
    p = tp.layernorm_params(1.0, [2.0**30] * 2, [2.5, -3.5], 0.0, 1.0, a_bits=2)
    assert p["params"]["g_shift"] == 0 and p["beta_q"].tolist() == [2, -4]
    q = tp.quantize_const([0.75, 1.25, -0.75], 0.5, 0, 8, True)       # 1.5, 2.5, -1.5
    assert q.tolist() == [2, 2, -2]
    table = tp.softmax_params(math.log(2), 1.0, a_bits=3, frac_bits=1)["table"]
    assert table.tolist() == [2, 1, 0, 0, 0, 0, 0, 0]               # 2 * 2^-2 = 0.5 -> 0


def test_quantize_multiplier_vec_equals_numerics():
    from t2c_sim.numerics import quantize_multiplier
    seed = 15
    rng = np.random.default_rng(seed)
    m = np.concatenate([np.exp(rng.uniform(-40, 20, 5000)), [2.0**-31, 0.5, 1.0, 2.0**31 - 0.5,
                                                              1 - 2.0**-40, 3.0, 0.75]])
    for bits, smax in ((32, 63), (16, 40), (8, 63)):
        ok = m[m < 2.0**bits]
        try:
            want = quantize_multiplier(ok, bits, smax)
        except NumericsError:
            ok = ok[ok * 2.0**smax >= 0.5]
            want = quantize_multiplier(ok, bits, smax)
        got = tp.quantize_multiplier_vec(ok, bits, smax)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), f"seed {seed}"
    for bad in (0.0, -1.0, float("nan"), float("inf"), 2.0**32, 1e-30):
        with pytest.raises(NumericsError):
            tp.quantize_multiplier_vec([0.5, bad])


def test_bad_scales_are_refused():
    for call in (lambda: tp.softmax_params(0.0, 0.1), lambda: tp.softmax_params(0.1, -1.0),
                 lambda: tp.softmax_params(0.1, 0.1, frac_bits=40),
                 lambda: tp.softmax_params(0.1, 0.1, a_bits=17),
                 lambda: tp.gelu_params(float("nan"), 0, 0.1, 0),
                 lambda: tp.gelu_params(0.1, 0, 0.1, 0, approximate="poly"),
                 lambda: tp.layernorm_params(0.1, [1.0], [0.0, 1.0], 1e-5, 0.1),
                 lambda: tp.layernorm_params(0.1, [1.0], [0.0], -1.0, 0.1),
                 lambda: tp.layernorm_params(1e-30, [1.0], [0.0], 1.0, 0.1),
                 lambda: tp.layernorm_params(0.1, [1e30], [0.0], 1e-5, 1e-30)):
        with pytest.raises(NumericsError):
            call()


def test_docstring_examples_run():
    import t2c_sim.golden.transformer as gtr
    for mod in (gnl, tp, gtr):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0, mod.__name__


# ---- injected faults: the comparisons above can fail ---------------------------------------------
def test_mutants_are_caught(monkeypatch):
    rng = np.random.default_rng(9)
    x = all_pairs()[::7]
    sm = _softmax_rec(0.0625)
    want_sm = _softmax_oracle(sm, x)
    mutated = sm.replace(table=sm.table.copy())
    mutated.table[3] += 1 << 14                                        # one wrong table entry
    assert run_layer(mutated, x).y.tolist() != want_sm
    tie = _softmax_rec(0.5, 0.5, y_bits=4)                            # rows of 4 equal: 0.5
    assert run_layer(tie.replace(mode="half_up"), np.full((1, 4), 3)).y.tolist() != \
        _softmax_oracle(tie, np.full((1, 4), 3))                       # wrong tie rule
    monkeypatch.setattr(gnl, "round_div", lambda n, d, mode: n // d)  # truncating division
    assert run_layer(sm, x).y.tolist() != want_sm
    monkeypatch.undo()
    ln = _ln_rec(rng, 2)
    want = _ln_oracle(ln, x)
    monkeypatch.setattr(gnl, "isqrt", lambda n: isqrt(n) + 1)        # off by one: invisible
    assert run_layer(ln, x).y.tolist() == want                        # at 2^-30 (robust) ...
    monkeypatch.setattr(gnl, "isqrt", lambda n: isqrt(n) * 51 // 50)  # ... 2 % off: caught
    assert run_layer(ln, x).y.tolist() != want
    monkeypatch.undo()
    monkeypatch.setattr(intops, "round_div_t",
                        lambda n, d, mode: torch.div(n, d, rounding_mode="floor"))
    assert run_layer_torch(ln, x)[1].tolist() != want                 # torch: truncating division
    monkeypatch.undo()
    assert run_layer_torch(ln, x)[1].tolist() == want
    assert run_layer(sm, x).y.tolist() == want_sm


# ---- error against float -------------------------------------------------------------------------
def test_error_against_float_within_documented_bounds():
    rows = standard_report(seed=1, long_rows=24)
    seen = {r.op for r in rows}
    assert seen == {"gelu", "softmax", "layernorm", "matmul"}
    bound = {"gelu": 0.5 + 1e-9, "layernorm": 0.5 + 1e-3, "matmul": 0.5 + 1e-3,
             "softmax": 0.5 + 198 * 2.0**-21 * 256 + 2.0**-32 * 256}
    for r in rows:
        assert r.max <= bound[r.op], r.row()
        assert r.mean <= 0.5, r.row()
