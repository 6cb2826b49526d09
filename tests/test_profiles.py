"""Rounding profiles of deployed runtimes (SPEC section 10) against scalar oracles.

The oracles are transcriptions of the runtimes' reference code on Python ints and
``numpy.float32`` scalars, one element at a time: MLAS's scalar ``MlasRequantizeOutput`` loop
(float32 multiply, clamp, the 12582912.f rounding trick), gemmlowp's
``SaturatingRoundingDoublingHighMul`` / ``RoundingDivideByPOT``, TFLite's
``QuantizeMultiplier`` and both ``MultiplyByQuantizedMultiplier`` builds. They share no code with
``t2c_sim.rounding_profiles`` (integer emulation, vectorized) or the torch integer path.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim.config import RoundMode, RoundProfile, parse_rounding
from t2c_sim.errors import ConfigError, NumericsError, RecordError, T2CError
from t2c_sim.golden.layers import run_layer
from t2c_sim.numerics import requantize
from t2c_sim.rounding_profiles import (
    f32_to_pair,
    pair_to_f32_bits,
    profile_params,
    requantize_profile,
    rounding_divide_by_pot,
    srdhm,
    tflite_quantize_multiplier,
)
from t2c_sim.verify.torch_int import requantize_profile_t, run_layer_torch
from t2c_sim.workloads.gen import random_conv_record, random_linear_record, random_pool_record

PROFILES = [p.value for p in RoundProfile]
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
WIDE = (-(2**62), 2**62)  # clamp bounds that let raw results through


# ---------------------------------------------------------------- oracles ----------------
def i32(v: int) -> int:
    """The int32 store of C++ code on a two's-complement machine."""
    return ((v + 2**31) % 2**32) - 2**31


def oracle_mlas(acc: int, m32: np.float32, z: int, qmin: int, qmax: int) -> int:
    """MlasRequantizeOutput's scalar loop: float(acc) * scale, clamp, magic-number rounding."""
    f = np.float32(acc) * m32
    f = max(f, np.float32(qmin - z))
    f = min(f, np.float32(qmax - z))
    biased = np.array(f + np.float32(12582912.0), dtype=np.float32)
    return int(biased.view(np.int32)) - 0x4B400000 + z


def oracle_ort_raw(acc: int, m32: np.float32, z: int, lo: int, hi: int) -> int:
    """The same without MLAS's 8-bit clamp (for extreme values): rint(float32(acc) * m32)."""
    return min(max(int(np.rint(np.float32(acc) * m32)) + z, lo), hi)


def oracle_srdhm(a: int, b: int) -> int:
    overflow = a == b == I32_MIN
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    t = ab + nudge
    q = abs(t) // 2**31 * (1 if t >= 0 else -1)   # C++ '/' truncates toward zero
    return I32_MAX if overflow else q


def oracle_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def oracle_mbqm_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return oracle_rdbpot(oracle_srdhm(i32(x * (1 << left)), m), right)


def oracle_mbqm_single(x: int, m: int, shift: int) -> int:
    total = 31 - shift
    return i32((x * m + (1 << (total - 1))) >> total)


def oracle_y(profile: str, acc: int, m0: int, sh: int, z: int, lo: int, hi: int) -> int:
    """One output of a TFLite kernel / ORT from the record's integers."""
    if profile == "ort_fp32":
        return oracle_ort_raw(acc, np.float32(math.ldexp(m0, -sh)), z, lo, hi)
    mbqm = oracle_mbqm_double if profile == "tflite_double" else oracle_mbqm_single
    return min(max(i32(mbqm(acc, m0, 31 - sh) + z), lo), hi)


def oracle_quantize_multiplier(m: float, single: bool) -> tuple[int, int]:
    """TFLite QuantizeMultiplier with std::round done on an exact rational."""
    q, shift = math.frexp(m)
    x = Fraction(q) * 2**31
    q_fixed = math.floor(x + Fraction(1, 2))     # std::round of a positive value
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single and shift > 30:
        return 2**31 - 1, 30
    return q_fixed, shift


def _check(profile: str, accs, m0s, shs, zs=(0,), bounds=(WIDE,)) -> list[tuple]:
    """All combinations: the NumPy profile and the torch path vs the oracle; the mismatches."""
    bad = []
    for m0 in m0s:
        for sh in shs:
            for z in zs:
                for lo, hi in bounds:
                    got = requantize_profile(np.array(accs), m0, sh, z, lo, hi, profile).tolist()
                    got_t = requantize_profile_t(np.array(accs), m0, sh, z, lo, hi, profile).tolist()
                    want = [oracle_y(profile, a, m0, sh, z, lo, hi) for a in accs]
                    bad += [(a, m0, sh, z, g, t, w) for a, g, t, w in zip(accs, got, got_t, want)
                            if not g == t == w]
    return bad


# ---------------------------------------------------------------- worked ties ------------
# m = 1/4: acc/4 for acc = 5, -5, 6, -6, 10, -10, 2, -2 is 1.25, -1.25, 1.5, -1.5, 2.5, -2.5,
# 0.5, -0.5 (docs/interop.md, "Worked tie examples").
TIE_ACC = [5, -5, 6, -6, 10, -10, 2, -2]
TIE_TABLE = {
    "ort_fp32": ((1 << 23, 25), [1, -1, 2, -2, 2, -2, 0, 0]),       # ties to even
    "tflite_double": ((1 << 30, 32), [2, -1, 2, -2, 3, -3, 1, -1]),  # SRDHM up, then away
    "tflite_single": ((1 << 30, 32), [1, -1, 2, -1, 3, -2, 1, 0]),   # ties toward +inf
}


@pytest.mark.parametrize("profile", PROFILES)
def test_worked_tie_examples(profile: str) -> None:
    (m0, sh), want = TIE_TABLE[profile]
    got = requantize_profile(TIE_ACC, m0, sh, 0, -128, 127, profile).tolist()
    assert got == want
    assert [oracle_y(profile, a, m0, sh, 0, -128, 127) for a in TIE_ACC] == want
    torch_got = requantize_profile_t(np.array(TIE_ACC), m0, sh, 0, -128, 127, profile).tolist()
    assert torch_got == want


def test_ort_fp32_rounds_acc_and_product_in_float32() -> None:
    # float32(acc) ties (2^24 + 1 -> 2^24, 2^24 + 3 -> 2^24 + 4, 2^25 + 2 -> 2^25), m32 = 1
    accs = [2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**25 + 2, 2**25 + 6]
    got = requantize_profile(accs, 1 << 23, 23, 0, *WIDE, "ort_fp32").tolist()
    assert got == [2**24, 2**24 + 4, -(2**24), 2**25, 2**25 + 8]
    # product rounding: m32 = float32(0.7) = 11744051 / 2^24; 5 * m32 = 3.49999994 exactly,
    # whose 26-bit significand rounds up to 3.5 in float32, and rint(3.5) = 4 (exact: 3)
    m0, sh = f32_to_pair(np.float32(0.7))
    assert (int(m0), int(sh)) == (11744051, 24)
    assert int(requantize_profile(5, m0, sh, 0, -128, 127, "ort_fp32")) == 4
    assert int(requantize(5, m0, sh, 0, -128, 127, "half_even")) == 3
    assert oracle_mlas(5, np.float32(0.7), 0, -128, 127) == 4


# ---------------------------------------------------------------- extremes --------------
ACC_EXTREMES = [I32_MIN, I32_MIN + 1, -(2**30) - 1, -(2**24) - 3, -(2**24) - 1, -7, -1, 0, 1, 7,
                2**24 - 1, 2**24 + 1, 2**24 + 3, 2**30, 2**30 + 1, I32_MAX - 1, I32_MAX]


@pytest.mark.parametrize("profile", ["tflite_double", "tflite_single"])
def test_tflite_extremes(profile: str) -> None:
    m0s = [1 << 30, (1 << 30) + 1, 3 << 29, (1 << 31) - 1]
    shs = [31 - s for s in (-31, -30, -17, -1, 0, 1, 2, 17, 29, 30)]   # TFLite shift limits
    bad = _check(profile, ACC_EXTREMES, m0s, shs, zs=(0, 127, -128),
                 bounds=(WIDE, (I32_MIN, I32_MAX), (-128, 127)))
    assert not bad, bad[:5]
    assert not _check(profile, ACC_EXTREMES, [0], [31], zs=(0, -5))   # QuantizeMultiplier's flush


def test_ort_fp32_extremes() -> None:
    m0s = [1 << 23, (1 << 23) + 1, 3 << 22, (1 << 24) - 1]
    shs = [0, 1, 22, 23, 24, 25, 40, 62, 63]                         # m32 from 2^-40 to 2^24
    bad = _check("ort_fp32", ACC_EXTREMES, m0s, shs, zs=(0, 100, -100),
                 bounds=(WIDE, (-128, 127), (0, 255)))
    assert not bad, bad[:5]


def test_ort_fp32_matches_mlas_scalar_loop() -> None:
    seed = 11
    rng = np.random.default_rng(seed)
    acc = rng.integers(I32_MIN, I32_MAX, size=3000, endpoint=True)
    acc[:1500] = rng.integers(-4000, 4000, size=1500)
    m32 = np.exp(rng.uniform(np.log(1e-5), np.log(0.1), size=3000)).astype(np.float32)
    m0, sh = f32_to_pair(m32)
    for z, (qmin, qmax) in ((-7, (-128, 127)), (130, (0, 255))):
        got = requantize_profile(acc, m0, sh, z, qmin, qmax, "ort_fp32").tolist()
        want = [oracle_mlas(int(a), m, z, qmin, qmax) for a, m in zip(acc, m32)]
        assert got == want, f"seed {seed}"


def test_primitives_saturation_and_limits() -> None:
    a = [I32_MIN, I32_MIN, I32_MAX, I32_MIN, -1, 1 << 30, -(1 << 30) - 1]
    b = [I32_MIN, I32_MAX, I32_MAX, 1 << 30, I32_MIN, 1 << 30, 3 << 29]
    assert srdhm(a, b).tolist() == [oracle_srdhm(x, y) for x, y in zip(a, b)]
    assert int(srdhm(I32_MIN, I32_MIN)) == I32_MAX                     # -1 * -1 saturates
    xs = [I32_MIN, I32_MIN + 1, -3, -2, -1, 0, 1, 2, 3, I32_MAX]
    for e in (0, 1, 2, 30, 31):
        assert rounding_divide_by_pot(xs, e).tolist() == [oracle_rdbpot(x, e) for x in xs]
    with pytest.raises(NumericsError, match="exponent"):
        rounding_divide_by_pot(1, 32)
    with pytest.raises(NumericsError, match="int32"):
        srdhm(2**31, 1)


# ---------------------------------------------------------------- random (hypothesis) ----
I32 = st.integers(I32_MIN, I32_MAX)


@settings(max_examples=300, deadline=None)
@given(acc=st.lists(I32, min_size=1, max_size=8), m0=st.integers(1 << 30, (1 << 31) - 1),
       shift=st.integers(-31, 30), z=st.integers(-200, 200), single=st.booleans())
def test_tflite_random(acc, m0, shift, z, single) -> None:
    profile = "tflite_single" if single else "tflite_double"
    assert not _check(profile, acc, [m0], [31 - shift], zs=(z,), bounds=(WIDE, (-128, 127)))


@settings(max_examples=300, deadline=None)
@given(acc=st.lists(I32, min_size=1, max_size=8), m0=st.integers(1 << 23, (1 << 24) - 1),
       sh=st.integers(0, 63), z=st.integers(-200, 200))
def test_ort_fp32_random(acc, m0, sh, z) -> None:
    assert not _check("ort_fp32", acc, [m0], [sh], zs=(z,), bounds=(WIDE, (-128, 127)))


@settings(max_examples=200, deadline=None)
@given(acc=st.lists(st.integers(-(2**26), 2**26), min_size=1, max_size=8),
       m0=st.integers(1 << 30, (1 << 31) - 1), sh=st.integers(1, 62))
def test_tflite_single_is_half_up_of_the_same_integers(acc, m0, sh) -> None:
    # an independent relation: one rounding of acc * M0 / 2^sh, ties up = section-2 half_up,
    # as long as nothing wraps (the result and z_y fit int32)
    got = requantize_profile(acc, m0, sh, 3, -(2**31), 2**31 - 1, "tflite_single")
    ref = requantize(acc, m0, sh, 3, -(2**31), 2**31 - 1, "half_up")
    fits = np.abs(np.array(acc)) * m0 >> sh < 2**30
    assert np.array_equal(got[fits], ref[fits])


# ---------------------------------------------------------------- float -> int params ----
def test_ort_fp32_params_are_float32_scale_products() -> None:
    seed = 5
    rng = np.random.default_rng(seed)
    s_x, s_y = 0.0173, 0.0419
    s_w = rng.uniform(1e-4, 1e-1, size=64)
    m0, sh = profile_params("ort_fp32", s_x, s_w, s_y)
    for w, a, b in zip(s_w, m0.tolist(), sh.tolist()):
        m32 = np.float32(np.float32(s_x) * np.float32(w)) / np.float32(s_y)   # QLinearConv
        assert pair_to_f32_bits(a, b) == int(np.array(m32, np.float32).view(np.uint32))
        assert Fraction(a, 2**b) == Fraction(float(m32))                      # exact


MULTIPLIERS = [2.0**-33, 2.0**-32, math.ldexp(1 - 2.0**-40, -32), 2.0**-31, 1e-9, 0.0123456789,
               0.5, 0.5 + 2.0**-32, 0.5 + 3 * 2.0**-32, 0.75 - 2.0**-32, math.nextafter(1.0, 0.0),
               1 - 2.0**-33, 1.0, 3.0, 1000.0, 2.0**29, 2.0**30 - 1]


@pytest.mark.parametrize("m", MULTIPLIERS)
@pytest.mark.parametrize("single", [False, True])
def test_tflite_quantize_multiplier_vs_oracle(m: float, single: bool) -> None:
    want = oracle_quantize_multiplier(m, single)
    assert tflite_quantize_multiplier(m, single_rounding=single) == want
    assert 0 <= want[0] < 2**31 and -31 <= want[1] <= 30


def test_tflite_multiplier_limits() -> None:
    assert tflite_quantize_multiplier(2.0**-33) == (0, 0)          # flushed: y = z_y
    # q * 2^31 = 2^30 + 0.5 and 3 * 2^29 - 0.5: std::round takes ties away from zero
    assert tflite_quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)
    assert tflite_quantize_multiplier(0.75 - 2.0**-32) == (3 << 29, 0)
    assert tflite_quantize_multiplier(math.ldexp(1 - 2.0**-40, -32)) == (1 << 30, -31)  # rounds up
    assert tflite_quantize_multiplier(2.0**30, single_rounding=True) == (2**31 - 1, 30)
    with pytest.raises(NumericsError, match="left shift of 31"):
        tflite_quantize_multiplier(2.0**30)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(NumericsError):
            tflite_quantize_multiplier(bad)
    m0, sh = profile_params("tflite_double", 1.0, [2.0**-40], 1.0)
    assert (m0.tolist(), sh.tolist()) == ([0], [31])
    assert requantize_profile([I32_MAX, I32_MIN], m0, sh, 9, -128, 127, "tflite_double").tolist() == [9, 9]


@pytest.mark.parametrize("float32_product", [False, True])
def test_tflite_params_vs_oracle(float32_product: bool) -> None:
    seed = 3
    rng = np.random.default_rng(seed)
    s_x, s_y = 0.0234, 0.071
    s_w = rng.uniform(1e-4, 0.2, size=64)
    for profile in ("tflite_double", "tflite_single"):
        m0, sh = profile_params(profile, s_x, s_w, s_y, float32_product=float32_product)
        for w, a, b in zip(s_w, m0.tolist(), sh.tolist()):
            if float32_product:   # GetQuantizedConvolutionMultipler: float product, double divide
                real = float(np.float32(s_x) * np.float32(w)) / float(np.float32(s_y))
            else:                 # PopulateConvolutionQuantizationParams: all in double
                real = float(np.float32(s_x)) * float(np.float32(w)) / float(np.float32(s_y))
            q, shift = oracle_quantize_multiplier(real, profile == "tflite_single")
            assert (a, b) == (q, 31 - shift), f"seed {seed}"


def test_param_errors() -> None:
    with pytest.raises(NumericsError, match="s_w"):
        profile_params("ort_fp32", 0.1, [0.1, -0.2], 0.1)
    with pytest.raises(NumericsError, match="2\\^24"):
        profile_params("ort_fp32", 1e4, [1e4], 1e-3)          # m32 = 1e11 > 2^24
    with pytest.raises(NumericsError, match="2\\^-40"):
        f32_to_pair(1e-13)
    with pytest.raises(NumericsError, match="float32_product"):
        profile_params("ort_fp32", 0.1, [0.1], 0.1, float32_product=True)
    with pytest.raises(ValueError):
        profile_params("half_even", 0.1, [0.1], 0.1)


# ---------------------------------------------------------------- golden == torch == oracle
def _with_profile(rec, profile: str, rng: np.random.Generator):
    """The record with float scales whose ratio is its multiplier, under ``profile``."""
    s_x, s_y = float(rng.uniform(0.005, 0.05)), float(rng.uniform(0.01, 0.1))
    s_w = (rec.M0 / 2.0**rec.sh) * s_y / s_x
    m0, sh = profile_params(profile, s_x, s_w, s_y)
    return rec.replace(mode=profile, M0=m0, sh=sh, acc=None, y=None).validate()


@pytest.mark.parametrize("profile", PROFILES)
def test_golden_torch_and_oracle_agree_on_random_layers(profile: str) -> None:
    seed = 21
    rng = np.random.default_rng(seed)
    recs = [random_conv_record(rng, c_in=6, c_out=8, h=5, w=5, batch=2, groups=2),
            random_conv_record(rng, c_in=4, c_out=4, h=6, w=6, groups=4, stride=2, a_signed=False),
            random_linear_record(rng, c_in=40, c_out=12, rows=9, n=2, m=4),
            random_linear_record(rng, c_in=16, c_out=8, rows=5, token_wise=True)]
    for rec in recs:
        r = _with_profile(rec, profile, rng)
        g = run_layer(r)
        _, ty = run_layer_torch(r)
        assert np.array_equal(g.y, ty.numpy()), f"{r.name} seed {seed}"
        m0 = np.broadcast_to(r.M0, g.acc.reshape(-1, r.c_out).shape) if r.M0.ndim == 2 else \
            np.broadcast_to(r.M0, g.acc.shape)
        sh = np.broadcast_to(r.sh, m0.shape)
        want = [oracle_y(profile, int(a), int(m), int(s), r.z_y, r.lo, r.hi)
                for a, m, s in zip(g.acc.ravel(), m0.ravel(), sh.ravel())]
        assert g.y.ravel().tolist() == want, f"{r.name} seed {seed}"


def test_profiles_are_distinct_checkers() -> None:
    # the comparison above can fail: each profile's oracle rejects every other implementation
    accs = TIE_ACC + [2**24 + 1, 3]
    impls = {p: (lambda a, m, s, p=p: requantize_profile(a, m, s, 0, *WIDE, p)) for p in PROFILES}
    impls["half_even"] = lambda a, m, s: requantize(a, m, s, 0, *WIDE, "half_even")
    params = {"ort_fp32": [(1 << 23, 25), (1 << 23, 23), ((1 << 23) + 1, 24)],
              "tflite_double": [(1 << 30, 32)], "tflite_single": [(1 << 30, 32)]}
    def run(fn, m, s):
        try:
            return fn(np.array(accs), m, s).tolist()
        except NumericsError:   # another profile's parameters are refused: also a mismatch
            return None

    for profile, ps in params.items():
        for name, fn in impls.items():
            got = [run(fn, m, s) for m, s in ps]
            want = [[oracle_y(profile, a, m, s, 0, *WIDE) for a in accs] for m, s in ps]
            assert (got == want) == (name == profile), (profile, name)


# ---------------------------------------------------------------- records and refusals --
def test_record_carries_profile_and_round_trips(tmp_path) -> None:
    from t2c_sim.export.records import load_record, save_record

    rng = np.random.default_rng(2)
    rec = _with_profile(random_linear_record(rng, c_in=8, c_out=4, rows=3), "tflite_double", rng)
    res = run_layer(rec)
    rec = rec.replace(acc=res.acc, y=res.y).validate()
    save_record(rec, tmp_path / "fc")
    back = load_record(tmp_path / "fc")
    assert back.mode is RoundProfile.TFLITE_DOUBLE
    assert back.scalars()["mode"] == "tflite_double"
    assert np.array_equal(back.M0, rec.M0) and np.array_equal(back.sh, rec.sh)
    assert np.array_equal(run_layer(back).y, rec.y)
    assert parse_rounding("ort_fp32") is RoundProfile.ORT_FP32
    with pytest.raises(ConfigError, match="ort_fp32, tflite_double, tflite_single"):
        parse_rounding("tflite")


def test_record_validation_names_layer_and_field() -> None:
    rng = np.random.default_rng(4)
    rec = _with_profile(random_linear_record(rng, c_in=8, c_out=4, rows=3), "ort_fp32", rng)
    with pytest.raises(RecordError, match="layer 'fc': M0/sh: M0 = 1 is not a float32 significand"):
        rec.replace(M0=np.ones(4, np.int64)).validate()
    tfl = rec.replace(mode="tflite_single", M0=np.full(4, 1 << 30), sh=np.full(4, 63))
    with pytest.raises(RecordError, match="layer 'fc': M0/sh: sh = 63 is outside \\[1, 62\\]"):
        tfl.validate()
    with pytest.raises(RecordError, match="layer 'fc': mode: .* needs acc_bits = 32"):
        rec.replace(acc_bits=24).validate()
    pool = random_pool_record(rng, "avgpool", c=4, h=4, w=4)
    with pytest.raises(RecordError, match="linear and conv2d requantizers .*, not avgpool"):
        pool.replace(mode="tflite_double").validate()       # only ort_fp32 has an average pool
    with pytest.raises(RecordError, match="M0/sh: M0 = .* is not a float32 significand"):
        pool.replace(mode="ort_fp32").validate()            # section-2 M0 is not a float32 pair


def test_models_without_the_profile_refuse_it(tmp_path) -> None:
    rng = np.random.default_rng(8)
    pool = random_pool_record(rng, "avgpool", c=4, h=4, w=4)
    prof = pool.replace(mode="tflite_double", M0=np.array([1 << 30]), sh=np.array([33]))
    with pytest.raises(RecordError, match="rounding profile tflite_double is defined for linear"):
        run_layer(prof)
    with pytest.raises(RecordError, match="rounding profile tflite_double"):
        run_layer_torch(prof)
    with pytest.raises(ConfigError, match="unknown rounding mode 'ort_fp32'"):
        requantize([1], [1], [0], 0, -128, 127, "ort_fp32")   # section-2 requantizer
    # the RTL requantizer's mode codes follow the four section-2 modes
    assert [p.code for p in RoundProfile] == [4, 5, 6]
    # an RTL build without the profiles refuses before writing any tile file; one with them
    # (the default) takes the record (co-simulated in tests/test_cosim_rq.py)
    from t2c_sim.config import HwConfig
    from t2c_sim.cosim.run import prepare, to_gemm

    rec = _with_profile(random_linear_record(rng, c_in=8, c_out=4, rows=4, n=2, m=4),
                        "ort_fp32", rng)
    with pytest.raises(T2CError, match="rounding profile ort_fp32: .*profiles: 0"):
        prepare([to_gemm(rec, HwConfig(profiles=0))], tmp_path / "run")
    prepare([to_gemm(rec, HwConfig())], tmp_path / "run")


def test_round_mode_enum_is_unchanged() -> None:
    # testbenches and tests iterate RoundMode: profiles are a separate enum
    assert [m.value for m in RoundMode] == ["half_even", "half_up", "half_away", "floor"]
