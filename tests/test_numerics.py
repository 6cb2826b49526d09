"""t2c_sim.numerics against an independent oracle built on exact rationals (fractions.Fraction).

The oracle never uses shifts or masks: it computes v / 2^s as a Fraction and rounds it by the
textual definition of each mode, so a bug in the bit tricks of the implementation shows up.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2c_sim.config import RoundMode
from t2c_sim.errors import NumericsError
from t2c_sim.numerics import (
    clamp,
    quantize_multiplier,
    quantize_multipliers_shared,
    relu_bounds,
    requantize,
    round_half_even_float,
    round_shift,
    wrap,
)

MODES = [m.value for m in RoundMode]
I64 = st.integers(-(2**63), 2**63 - 1)


# ---------------------------------------------------------------- oracle -----------------
def oracle_round(x: Fraction, mode: str) -> int:
    """Round an exact rational by the definition of each mode."""
    fl = math.floor(x)
    frac = x - fl
    half = Fraction(1, 2)
    if mode == "floor":
        return fl
    if frac < half:
        return fl
    if frac > half:
        return fl + 1
    # exact tie
    if mode == "half_up":
        return fl + 1
    if mode == "half_even":
        return fl if fl % 2 == 0 else fl + 1
    if mode == "half_away":
        return fl + 1 if x > 0 else fl
    raise ValueError(mode)


def oracle_round_shift(v: int, s: int, mode: str) -> int:
    return oracle_round(Fraction(v, 2**s), mode)


def oracle_requantize(acc: int, m0: int, sh: int, z: int, lo: int, hi: int, mode: str) -> int:
    return min(max(z + oracle_round(Fraction(acc * m0, 2**sh), mode), lo), hi)


def oracle_quantize_multiplier(m: float, bits: int, shift_max: int) -> tuple[int, int]:
    """Brute force: the largest sh whose half-even rounding of m*2^sh stays below 2^bits."""
    exact = Fraction(m)
    for sh in range(shift_max, -1, -1):
        q = round(exact * 2**sh)  # Fraction.__round__ rounds half to even
        if q < 2**bits:
            return q, sh
    raise NumericsError("no shift fits")


# ---------------------------------------------------------------- round_shift -------------
@pytest.mark.parametrize("mode", MODES)
def test_round_shift_documented_examples(mode):
    expected = {"half_even": [2, -2, 2, -2, 0, 0], "half_up": [3, -2, 2, -2, 1, 0],
                "half_away": [3, -3, 2, -2, 1, -1], "floor": [2, -3, 2, -3, 0, -1]}[mode]
    got = round_shift(np.array([5, -5, 9, -9, 1, -1]), np.array([1, 1, 2, 2, 1, 1]), mode)
    assert got.tolist() == expected


@pytest.mark.parametrize("mode", MODES)
def test_round_shift_ties_at_every_shift(mode):
    # v = (2k+1) * 2^(s-1): an exact tie between two integers, for every shift and both signs.
    vs, ss = [], []
    for s in range(1, 64):
        for k in (-3, -2, -1, 0, 1, 2, 3):
            v = (2 * k + 1) * 2 ** (s - 1)
            if -(2**63) <= v < 2**63:
                vs.append(v)
                ss.append(s)
        for v in (2 ** (s - 1) - 1, 2 ** (s - 1) + 1, -(2 ** (s - 1)) - 1, -(2 ** (s - 1)) + 1):
            vs.append(v)
            ss.append(s)
    got = round_shift(np.array(vs, dtype=np.int64), np.array(ss), mode)
    want = [oracle_round_shift(v, s, mode) for v, s in zip(vs, ss)]
    assert got.tolist() == want


@pytest.mark.parametrize("mode", MODES)
def test_round_shift_zero_shift_is_identity(mode):
    v = np.array([-(2**63), -7, 0, 7, 2**63 - 1], dtype=np.int64)
    assert np.array_equal(round_shift(v, 0, mode), v)


@settings(max_examples=400, deadline=None)
@given(v=I64, s=st.integers(0, 63), mode=st.sampled_from(MODES))
def test_round_shift_matches_oracle(v, s, mode):
    assert int(round_shift(v, s, mode)) == oracle_round_shift(v, s, mode)


@settings(max_examples=300, deadline=None)
@given(v=st.integers(-(2**45), 2**45), s=st.integers(0, 40), mode=st.sampled_from(MODES))
def test_round_shift_fast_path_matches_oracle(v, s, mode):
    # moderate magnitudes take the biased-shift path; force ties often via the low bits
    for x in (v, (v >> s << s) + (1 << s >> 1) if s else v):
        assert int(round_shift(np.array([x, -x]), s, mode)[0]) == oracle_round_shift(x, s, mode)
        assert int(round_shift(np.array([x, -x]), s, mode)[1]) == oracle_round_shift(-x, s, mode)


def test_round_shift_vectorized_broadcast_and_errors():
    rng = np.random.default_rng(7)
    v = rng.integers(-(2**62), 2**62, size=(50, 3), dtype=np.int64)
    s = rng.integers(0, 64, size=(3,))
    for mode in MODES:
        got = round_shift(v, s, mode)
        want = [[oracle_round_shift(int(v[i, j]), int(s[j]), mode) for j in range(3)]
                for i in range(50)]
        assert got.tolist() == want
    with pytest.raises(NumericsError, match="shift"):
        round_shift(1, 64)
    with pytest.raises(NumericsError, match="shift"):
        round_shift(1, -1)
    with pytest.raises(NumericsError, match="integer"):
        round_shift(np.array([1.5]), 1)
    with pytest.raises(Exception, match="rounding mode"):
        round_shift(1, 1, "nearest")


# ---------------------------------------------------------------- requantize --------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acc=st.integers(-(2**31), 2**31 - 1), m0=st.integers(0, 2**32 - 1),
       sh=st.integers(0, 63), z=st.integers(-128, 255), mode=st.sampled_from(MODES),
       bounds=st.sampled_from([(-128, 127), (0, 255), (0, 127), (-8, 7), (0, 15)]))
def test_requantize_matches_oracle_acc32_mult32(acc, m0, sh, z, mode, bounds):
    lo, hi = bounds
    assert int(requantize(acc, m0, sh, z, lo, hi, mode)) == oracle_requantize(
        acc, m0, sh, z, lo, hi, mode)


@settings(max_examples=200, deadline=None)
@given(acc=st.integers(-(2**47), 2**47), m0=st.integers(2**31, 2**40),
       sh=st.integers(0, 63), mode=st.sampled_from(MODES))
def test_requantize_beyond_int64_product_is_exact(acc, m0, sh, mode):
    # acc * M0 can exceed int64 here; the implementation must switch to exact Python ints.
    assert int(requantize(acc, m0, sh, 3, -(2**31), 2**31 - 1, mode)) == oracle_requantize(
        acc, m0, sh, 3, -(2**31), 2**31 - 1, mode)


def test_requantize_saturation_zero_points_and_per_channel():
    # +/- saturation with extreme zero points, per-channel parameters along the last axis.
    acc = np.array([[2**31 - 1, -(2**31), 0, 12345], [-1, 1, 2**30, -(2**30)]], dtype=np.int64)
    m0 = np.array([2**32 - 1, 2**32 - 1, 1, 3 << 29])
    sh = np.array([0, 0, 63, 31])
    for z, lo, hi in ((-128, -128, 127), (127, -128, 127), (0, 0, 255), (255, 0, 255)):
        for mode in MODES:
            got = requantize(acc, m0, sh, z, lo, hi, mode)
            want = [[oracle_requantize(int(acc[r, c]), int(m0[c]), int(sh[c]), z, lo, hi, mode)
                     for c in range(4)] for r in range(2)]
            assert got.tolist() == want
    assert requantize(np.array([2**31 - 1]), 2**32 - 1, 0, 0, -128, 127).tolist() == [127]
    assert requantize(np.array([-(2**31)]), 2**32 - 1, 0, 0, -128, 127).tolist() == [-128]


def test_requantize_rejects_negative_multiplier_and_bad_shift():
    with pytest.raises(NumericsError, match="M0"):
        requantize(1, -1, 0, 0, -128, 127)
    with pytest.raises(NumericsError, match="shift"):
        requantize(1, 1, 70, 0, -128, 127)


# ---------------------------------------------------------------- quantize_multiplier -----
@settings(max_examples=300, deadline=None)
@given(m=st.floats(min_value=2.0**-40, max_value=2.0**31, exclude_max=True,
                   allow_nan=False, allow_infinity=False),
       bits=st.sampled_from([8, 16, 31, 32]))
def test_quantize_multiplier_matches_brute_force(m, bits):
    try:
        want = oracle_quantize_multiplier(m, bits, 63)
    except NumericsError:  # m >= 2^bits, or m rounds to 2^bits at shift 0
        with pytest.raises(NumericsError):
            quantize_multiplier(m, bits, 63)
        return
    M0, sh = quantize_multiplier(m, bits, 63)
    assert (int(M0), int(sh)) == want
    assert 0 < int(M0) < 2**bits


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_quantize_multiplier_edges(bits):
    # Just below 2^bits: sh = 0 and M0 rounds to 2^bits - 1 or to 2^bits (then an error).
    assert quantize_multiplier(2.0**bits - 1.0, bits) == (2**bits - 1, 0)
    with pytest.raises(NumericsError, match="even at shift 0"):
        quantize_multiplier(2.0**bits - 0.5, bits)  # ties to 2^bits (even)
    with pytest.raises(NumericsError, match=r">= 2\^"):
        quantize_multiplier(2.0**bits, bits)
    # Rounding up to 2^bits at the natural shift must fall back to sh - 1.
    m = (2.0**bits - 0.25) / 2.0**bits  # m * 2^bits = 2^bits - 0.25 rounds to 2^bits
    M0, sh = quantize_multiplier(m, bits)
    assert (int(M0), int(sh)) == oracle_quantize_multiplier(m, bits, 63)
    assert int(M0) < 2**bits
    # Near zero: rounds to 0 at SHIFT_MAX -> error, not a silent zero.
    with pytest.raises(NumericsError, match="M0 = 0"):
        quantize_multiplier(2.0**-70, bits, 63)
    with pytest.raises(NumericsError, match="M0 = 0"):
        quantize_multiplier(1e-6, bits, shift_max=8)
    # The smallest representable multiplier at shift 63 still works.
    M0, sh = quantize_multiplier(2.0**-63, bits, 63)
    assert (int(M0), int(sh)) == (1, 63)


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan"), float("inf"), -float("inf")])
def test_quantize_multiplier_rejects_bad_input(bad):
    with pytest.raises(NumericsError, match="multiplier"):
        quantize_multiplier(bad)


def test_quantize_multiplier_vector_and_doc_example():
    M0, sh = quantize_multiplier(np.array([0.75, 0.001, 1.5]), mult_bits=8)
    for mv, M, s in zip([0.75, 0.001, 1.5], M0, sh):
        assert (int(M), int(s)) == oracle_quantize_multiplier(mv, 8, 63)
    assert quantize_multiplier(0.75, mult_bits=8) == (192, 8)


def test_quantize_multipliers_shared():
    ms, sh = quantize_multipliers_shared([0.5, 1.5], mult_bits=8)
    assert (ms, sh) == ([64, 192], 7)
    for pair in ([0.3, 0.0007], [1.9, 0.9], [100.0, 0.01]):
        ms, sh = quantize_multipliers_shared(pair, mult_bits=16)
        assert all(0 < q < 2**16 for q in ms)
        assert ms == [round(Fraction(v) * 2**sh) for v in pair]
        # one more bit of shift would overflow at least one of them
        assert sh == 63 or any(round(Fraction(v) * 2 ** (sh + 1)) >= 2**16 for v in pair)
    with pytest.raises(NumericsError):
        quantize_multipliers_shared([1.0, 2.0**-80], mult_bits=16)


# ---------------------------------------------------------------- helpers ----------------
def test_wrap_and_clamp():
    rng = np.random.default_rng(3)
    v = rng.integers(-(2**62), 2**62, size=200, dtype=np.int64)
    for bits in (8, 16, 32, 48):
        want = [((int(x) + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1) for x in v]
        assert wrap(v, bits).tolist() == want
    assert wrap(np.array([2**31, -(2**31) - 1]), 32).tolist() == [-(2**31), 2**31 - 1]
    assert clamp([-500, 3, 300], -128, 127).tolist() == [-128, 3, 127]
    with pytest.raises(NumericsError):
        clamp([1], 5, 4)


def test_round_half_even_float_and_relu_bounds():
    assert round_half_even_float([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999]).tolist() == [0, 2, 2, 0, -2, 2]
    with pytest.raises(NumericsError, match="NaN"):
        round_half_even_float([float("nan")])
    assert relu_bounds(8, True, -5) == (-128, 127)
    assert relu_bounds(8, True, -5, "relu") == (-5, 127)
    assert relu_bounds(8, False, 10, "relu6", six_q=100) == (10, 110)
    assert relu_bounds(8, False, 10, "relu6", six_q=400) == (10, 255)
    with pytest.raises(NumericsError):
        relu_bounds(8, True, 0, "gelu")


@pytest.mark.parametrize("mode", MODES)
def test_requantize_blocked_paths_match_oracle(mode):
    # Large enough to be processed in several blocks: per-channel params on a 4-D tensor, and
    # token-wise [P, C] params (one multiplier per row and channel).
    rng = np.random.default_rng(11)
    acc4 = rng.integers(-(2**24), 2**24, size=(2, 40, 40, 7))
    m0 = rng.integers(1, 2**31, size=7)
    sh = rng.integers(0, 45, size=7)
    y4 = requantize(acc4, m0, sh, -9, -128, 127, mode)
    acc2 = rng.integers(-(2**24), 2**24, size=(5000, 7))
    m2 = rng.integers(1, 2**31, size=(5000, 7))
    s2 = rng.integers(20, 45, size=(5000, 1))
    y2 = requantize(acc2, m2, s2, np.int64(4), 0, 255, mode)
    assert y4.shape == acc4.shape and y2.shape == acc2.shape
    for _ in range(400):
        i = tuple(int(rng.integers(0, d)) for d in acc4.shape)
        c = i[-1]
        assert y4[i] == oracle_requantize(int(acc4[i]), int(m0[c]), int(sh[c]), -9, -128, 127, mode)
        p, c = int(rng.integers(0, 5000)), int(rng.integers(0, 7))
        assert y2[p, c] == oracle_requantize(int(acc2[p, c]), int(m2[p, c]), int(s2[p, 0]), 4, 0,
                                             255, mode)


def test_requantize_acc_bound_gives_same_result_and_is_validated():
    rng = np.random.default_rng(12)
    acc = rng.integers(-(2**31), 2**31, size=(300, 5))
    m0 = rng.integers(1, 2**32, size=5)
    sh = rng.integers(0, 63, size=5)
    for mode in MODES:
        want = requantize(acc, m0, sh, 7, -128, 127, mode)
        assert np.array_equal(requantize(acc, m0, sh, 7, -128, 127, mode, acc_bound=2**31), want)
    with pytest.raises(NumericsError, match="acc_bound"):
        requantize(acc, m0, sh, 0, -128, 127, acc_bound=-1)
    with pytest.raises(NumericsError, match="acc_bound"):
        requantize(acc, m0, sh, 0, -128, 127, acc_bound=1.5)
