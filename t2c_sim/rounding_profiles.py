"""Rounding profiles of deployed runtimes (SPEC section 10): parameters and exact requantizers.

A layer may declare a :class:`~t2c_sim.config.RoundProfile` instead of a section-2 rounding
mode so that its output equals a runtime's bits. The accumulator ``acc`` (int32, the runtime's
accumulator; the record's ``acc_bits`` is 32) is the same; only ``acc -> y`` changes. Each
profile's integers travel in the record's ``M0``/``sh``, and in every profile
``M0 / 2^sh`` is the multiplier the runtime applies, exactly:

================  ==========================================  ===============================
profile           ``M0``                                      ``sh``
================  ==========================================  ===============================
``ort_fp32``      float32 significand of ``m32``, [2^23, 2^24)  ``150 - biased exponent``, [0, 63]
``tflite_double`` TFLite ``quantized_multiplier`` M, [2^30,      ``31 - shift`` (TFLite's
                  2^31) (or 0: TFLite's flush to zero)            signed shift), [1, 62]
``tflite_single`` the same, with TFLite's ``shift > 30``          the same
                  saturation
================  ==========================================  ===============================

The float-to-integer step (:func:`profile_params`) runs once, like
:func:`t2c_sim.numerics.quantize_multiplier`; the requantizers are integer-only (the float32
arithmetic of ``ort_fp32`` is emulated exactly on integers). Where the runtime's C++ stores an
intermediate in ``int32_t`` (TFLite's ``x * (1 << left_shift)``, the ``int64 -> int32`` cast of
the single-rounding result, ``acc += output_offset``), the profile wraps it to 32 bits, which
is what compiled x86-64 and ARM64 code computes. See ``docs/interop.md`` for the sources.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from t2c_sim.config import RoundMode, RoundProfile
from t2c_sim.errors import NumericsError
from t2c_sim.numerics import as_int64, clamp, round_shift, wrap

__all__ = [
    "INT32_MIN", "INT32_MAX", "ort_fp32_scale", "f32_to_pair", "pair_to_f32_bits",
    "tflite_real_multiplier", "tflite_quantize_multiplier", "profile_params", "check_params",
    "srdhm", "rounding_divide_by_pot", "requantize_ort_fp32", "requantize_tflite_double",
    "requantize_tflite_single", "requantize_profile", "ORT_ADD_RATIO", "ort_add_params", "ort_pool_params",
    "check_ort_add_params", "requantize_ort_add",
]

log = logging.getLogger(__name__)

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_F32_BIAS = 150  # float32 value = significand * 2^(biased_exponent - 150), significand 24 bits


# ---- float -> integer parameters (run once, at fuse/import time) ----------------------------
def _scale_f32(s: Any, name: str) -> np.ndarray:
    """Scales as the runtime stores them: float32, each finite and > 0 (checked before and after)."""
    a = np.asarray(s, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise NumericsError(f"{name}: scales must be finite and > 0, got {a.ravel()[:4].tolist()}")
    f = a.astype(np.float32)
    if np.any(f == 0) or not np.all(np.isfinite(f)):
        raise NumericsError(f"{name}: a scale rounds to 0 or inf in float32")
    return f


def ort_fp32_scale(s_x: Any, s_w: Any, s_y: Any) -> np.ndarray:
    """ONNX Runtime's requantization scale, in IEEE single precision (float32 array).

    ``m32[c] = float32(float32(s_x) * float32(s_w[c])) / float32(s_y)``, each operation rounded
    to nearest even in float32, exactly as QLinearConv/QLinearMatMul compute ``output_scales``.

    >>> float(ort_fp32_scale(0.5, 0.25, 4.0))
    0.03125
    """
    sx, sw, sy = _scale_f32(s_x, "s_x"), _scale_f32(s_w, "s_w"), _scale_f32(s_y, "s_y")
    if sx.size != 1 or sy.size != 1:
        raise NumericsError("ort_fp32: s_x and s_y must be per-tensor scalars")
    with np.errstate(over="ignore", under="ignore"):
        m = (sx.reshape(()) * sw) / sy.reshape(())
    return np.asarray(m, dtype=np.float32)


def f32_to_pair(m32: Any) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(M0, sh)`` of positive normal float32 values: ``m32 == M0 / 2^sh``.

    ``M0`` is the 24-bit significand (``[2^23, 2^24)``) and ``sh = 150 - biased exponent``,
    which must lie in ``[0, 63]`` (``2^-40 <= m32 < 2^24``), else :class:`NumericsError`.

    >>> f32_to_pair(0.75)
    (array(12582912), array(24))
    """
    a = np.asarray(m32, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.int64)
    e = bits >> 23
    if np.any(bits >> 31) or np.any(e == 0) or np.any(e == 255):
        bad = a.ravel()[np.flatnonzero(((bits >> 31) != 0) | (e == 0) | (e == 255))[0]]
        raise NumericsError(f"ort_fp32: multiplier {float(bad)!r} is not a positive normal float32")
    sh = _F32_BIAS - e
    if np.any(sh < 0) or np.any(sh > 63):
        bad = a.ravel()[np.flatnonzero((sh < 0) | (sh > 63))[0]]
        raise NumericsError(f"ort_fp32: multiplier {float(bad)!r} is outside [2^-40, 2^24) "
                            f"(its exponent does not give a shift in [0, 63])")
    return np.asarray((bits & 0x7FFFFF) | (1 << 23)), np.asarray(sh)


def pair_to_f32_bits(M0: int, sh: int) -> int:
    """The IEEE float32 bit pattern of ``M0 / 2^sh`` (inverse of :func:`f32_to_pair`).

    >>> hex(pair_to_f32_bits(12582912, 24))   # 0.75
    '0x3f400000'
    """
    if not (1 << 23) <= M0 < (1 << 24) or not 0 <= sh <= 63:
        raise NumericsError(f"ort_fp32: (M0={M0}, sh={sh}) is not a float32 significand/shift pair")
    return ((_F32_BIAS - sh) << 23) | (M0 - (1 << 23))


def tflite_real_multiplier(s_x: Any, s_w: Any, s_y: Any, *, float32_product: bool = False,
                           ) -> np.ndarray:
    """TFLite's real (double) multiplier from float32 scales, per output channel.

    ``float32_product=False`` (``PopulateConvolutionQuantizationParams``: int8 conv, depthwise
    conv, per-channel fully connected): ``double(s_x) * double(s_w[c]) / double(s_y)``.
    ``float32_product=True`` (``GetQuantizedConvolutionMultipler``: per-tensor fully connected,
    uint8 kernels): ``double(float32(s_x * s_w)) / double(s_y)``. The scales are rounded to
    float32 first, as a ``.tflite`` file stores them.
    """
    sx, sw, sy = _scale_f32(s_x, "s_x"), _scale_f32(s_w, "s_w"), _scale_f32(s_y, "s_y")
    if sx.size != 1 or sy.size != 1:
        raise NumericsError("tflite: s_x and s_y must be per-tensor scalars")
    x, y = float(sx.reshape(())), float(sy.reshape(()))
    if float32_product:
        prod = (np.float32(x) * sw).astype(np.float64)
    else:
        prod = x * sw.astype(np.float64)
    return prod / y


def tflite_quantize_multiplier(m: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``(M, shift)`` with ``m ~= M * 2^(shift - 31)``.

    ``q, shift = frexp(m)`` (``q`` in [0.5, 1)); ``M = round_half_away(q * 2^31)`` (exact:
    ``TfLiteRound`` is ``std::round``); ``M == 2^31`` becomes ``(2^30, shift + 1)``; ``shift < -31``
    flushes to ``(0, 0)`` (logged: every output is then ``z_y``); with ``single_rounding``,
    ``shift > 30`` saturates to ``(2^31 - 1, 30)``. Without it a ``shift > 30`` (``m >= 2^30``)
    would make the reference's ``1 << left_shift`` overflow, so it is an error here.

    >>> tflite_quantize_multiplier(0.75), tflite_quantize_multiplier(3.0)
    ((1610612736, 0), (1610612736, 2))
    """
    m = float(m)
    if not math.isfinite(m) or m <= 0.0:
        raise NumericsError(f"tflite: real multiplier must be finite and > 0, got {m!r}")
    q, shift = math.frexp(m)
    q_fixed = math.floor(math.ldexp(q, 31) + 0.5)  # exact: q * 2^31 < 2^31 has ulp >= 2^-22
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        log.warning("tflite: real multiplier %r < 2^-32 flushes to 0 (every output is z_y), as "
                    "TFLite's QuantizeMultiplier does", m)
        return 0, 0
    if shift > 30:
        if not single_rounding:
            raise NumericsError(f"tflite_double: real multiplier {m!r} needs a left shift of "
                                f"{shift} > 30, which overflows TFLite's int32 '1 << left_shift'")
        return (1 << 31) - 1, 30
    return q_fixed, shift


def profile_params(profile: RoundProfile | str, s_x: Any, s_w: Any, s_y: Any, *,
                   float32_product: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The record's ``(M0, sh)`` (int64, shape of ``s_w``) for ``profile`` from float scales.

    ``ort_fp32``: ``f32_to_pair(ort_fp32_scale(s_x, s_w, s_y))``. ``tflite_*``:
    ``(M, 31 - shift)`` from :func:`tflite_quantize_multiplier` of
    :func:`tflite_real_multiplier` (``float32_product`` selects TFLite's kernel family).

    >>> profile_params("tflite_double", 0.5, [0.25], 4.0)
    (array([1073741824]), array([35]))
    """
    profile = RoundProfile(profile)
    shape = np.shape(s_w)
    if profile is RoundProfile.ORT_FP32:
        if float32_product:
            raise NumericsError("ort_fp32: float32_product is a TFLite option")
        M0, sh = f32_to_pair(ort_fp32_scale(s_x, s_w, s_y))
        return M0.reshape(shape), sh.reshape(shape)
    single = profile is RoundProfile.TFLITE_SINGLE
    ms = tflite_real_multiplier(s_x, s_w, s_y, float32_product=float32_product)
    pairs = [tflite_quantize_multiplier(float(v), single_rounding=single) for v in ms.ravel()]
    M0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(shape)
    sh = np.array([31 - p[1] for p in pairs], dtype=np.int64).reshape(shape)
    return M0, sh


def check_params(profile: RoundProfile | str, M0: Any, sh: Any) -> None:
    """Raise :class:`NumericsError` naming the field unless ``(M0, sh)`` are valid for ``profile``.

    ``ort_fp32``: ``M0`` in ``[2^23, 2^24)``, ``sh`` in ``[0, 63]``. ``tflite_*``: ``M0`` in
    ``[2^30, 2^31)`` with ``sh`` in ``[1, 62]``, or the flush ``(M0, sh) = (0, 31)``.
    """
    profile = RoundProfile(profile)
    m, s = np.broadcast_arrays(as_int64(M0, "M0"), as_int64(sh, "sh"))
    if m.size == 0:
        return
    if profile is RoundProfile.ORT_FP32:
        bad_m = (m < (1 << 23)) | (m >= (1 << 24))
        if np.any(bad_m):
            raise NumericsError(f"M0 = {int(m[bad_m].ravel()[0])} is not a float32 significand in "
                                f"[2^23, 2^24) (profile ort_fp32)")
        bad_s = (s < 0) | (s > 63)
        if np.any(bad_s):
            raise NumericsError(f"sh = {int(s[bad_s].ravel()[0])} is outside [0, 63] (profile ort_fp32)")
        return
    flush = (m == 0) & (s == 31)
    bad_m = ~flush & ((m < (1 << 30)) | (m >= (1 << 31)))
    if np.any(bad_m):
        raise NumericsError(f"M0 = {int(m[bad_m].ravel()[0])} is outside [2^30, 2^31) (or 0 with "
                            f"sh = 31) (profile {profile.value})")
    bad_s = ~flush & ((s < 1) | (s > 62))
    if np.any(bad_s):
        raise NumericsError(f"sh = {int(s[bad_s].ravel()[0])} is outside [1, 62], i.e. TFLite "
                            f"shift = 31 - sh outside [-31, 30] (profile {profile.value})")


# ---- integer primitives ----------------------------------------------------------------------
def _int32(x: Any, name: str) -> np.ndarray:
    a = as_int64(x, name)
    if a.size and (int(a.min()) < INT32_MIN or int(a.max()) > INT32_MAX):
        raise NumericsError(f"{name}: values must fit int32 (the runtime's accumulator), got "
                            f"range [{int(a.min())}, {int(a.max())}]")
    return a


def srdhm(a: Any, b: Any) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (as int64, broadcast).

    ``ab = a * b`` (exact), ``nudge = 2^30 if ab >= 0 else 1 - 2^30``, result
    ``trunc((ab + nudge) / 2^31)`` (C division, toward zero), i.e. ``ab / 2^31`` rounded to
    nearest with ties toward +inf; ``a == b == INT32_MIN`` saturates to ``INT32_MAX``. This is
    ARM's VQRDMULH.

    >>> srdhm([3 << 29, -(3 << 29), -2**31], [1 << 30, 1 << 30, -2**31]).tolist()
    [805306368, -805306368, 2147483647]
    """
    a, b = np.broadcast_arrays(_int32(a, "a"), _int32(b, "b"))
    t = a * b                                     # |a*b| <= 2^62
    t = t + np.where(t >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))  # truncating division by 2^31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), q)


def rounding_divide_by_pot(x: Any, exponent: Any) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from 0.

    ``mask = 2^e - 1``, ``threshold = (mask >> 1) + (x < 0)``, result
    ``(x >> e) + ((x & mask) > threshold)``; ``x`` int32, ``e`` in ``[0, 31]``.

    >>> rounding_divide_by_pot([5, -5, 6, -6], 2).tolist()   # 1.25, -1.25, 1.5, -1.5
    [1, -1, 2, -2]
    """
    x = _int32(x, "x")
    e = as_int64(exponent, "exponent")
    if e.size and (int(e.min()) < 0 or int(e.max()) > 31):
        raise NumericsError(f"RoundingDivideByPOT: exponent must be in [0, 31], got range "
                            f"[{int(e.min())}, {int(e.max())}]")
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (0 for 0), by binary search on the exponent."""
    n = np.zeros(v.shape, dtype=np.int64)
    t = v.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = t >= (np.int64(1) << s)
        n += big * s
        t = np.where(big, t >> s, t)
    return n + (t > 0)


def _round_f32(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 rounding of non-negative int64 ``v``: ``(sig, k)`` with ``sig * 2^k`` the nearest
    24-significant-bit value, ties to an even significand (``sig`` may reach ``2^24``)."""
    k = np.maximum(_bit_length(v) - 24, 0)
    return round_shift(v, k, RoundMode.HALF_EVEN), k


def _params(profile: RoundProfile, acc: Any, M0: Any, sh: Any, acc_bound: int | None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if acc_bound is not None and 0 <= acc_bound <= INT32_MAX:
        acc = as_int64(acc, "acc")
    else:
        acc = _int32(acc, "acc")
    M0, sh = as_int64(M0, "M0"), as_int64(sh, "sh")
    check_params(profile, M0, sh)
    return acc, M0, sh


def requantize_ort_fp32(acc: Any, M0: Any, sh: Any, z_y: Any, lo: Any, hi: Any, *,
                        acc_bound: int | None = None) -> np.ndarray:
    """ONNX Runtime / MLAS requantization, bit-exact on integers (no float is used).

    ``y = clamp(rint_half_even(float32(float32(acc) * m32)) + z_y, lo, hi)`` with
    ``m32 = M0 / 2^sh`` (a float32, see :func:`f32_to_pair`): ``float32(acc)`` rounds ``acc``
    (int32) to 24 significant bits, ties to even (so ``|acc| > 2^24`` loses bits as
    ``cvtdq2ps`` does); the product of the two 24-bit significands (< 2^49, exact in int64) is
    rounded to 24 bits again, ties to even; the result is rounded to an integer, ties to even.
    MLAS clamps to ``[qmin - z_y, qmax - z_y]`` before rounding; with integer bounds that equals
    clamping after. Widths: ``acc`` int32; ``M0`` 24 bits; ``sh`` in [0, 63].

    Example (a tie): ``acc = 5``, ``m32 = 0.5`` (``M0 = 2^23``, ``sh = 24``): ``2.5 -> 2``.

    >>> requantize_ort_fp32([5, 7, -5], 1 << 23, 24, 0, -128, 127).tolist()
    [2, 4, -2]
    """
    acc, M0, sh = _params(RoundProfile.ORT_FP32, acc, M0, sh, acc_bound)
    acc, M0, sh = np.broadcast_arrays(acc, M0, sh)
    neg = acc < 0
    a_sig, a_k = _round_f32(np.abs(acc))           # float32(|acc|) = a_sig * 2^a_k
    p_sig, p_k = _round_f32(a_sig * M0)            # float32 product = p_sig * 2^(a_k + p_k - sh)
    e = a_k + p_k - sh                             # in [-63, 33]
    mag = np.where(e >= 0, p_sig << np.maximum(e, 0),
                   round_shift(p_sig, np.clip(-e, 0, 63), RoundMode.HALF_EVEN))
    return clamp(np.where(neg, -mag, mag) + as_int64(z_y, "z_y"), lo, hi)


def requantize_tflite_double(acc: Any, M0: Any, sh: Any, z_y: Any, lo: Any, hi: Any, *,
                             acc_bound: int | None = None) -> np.ndarray:
    """TFLite's default ``MultiplyByQuantizedMultiplier`` (gemmlowp double rounding), bit-exact.

    With TFLite's ``shift = 31 - sh``, ``left = max(shift, 0)``, ``right = max(-shift, 0)``:
    ``y = clamp(wrap32(RDBPOT(SRDHM(wrap32(acc * 2^left), M0), right) + z_y), lo, hi)``
    (:func:`srdhm` divides by 2^31 rounding ties toward +inf, :func:`rounding_divide_by_pot`
    divides by ``2^right`` rounding ties away from zero; ``wrap32`` is the int32 store of the
    C++ code). Widths: ``acc`` int32, ``M0`` in ``[2^30, 2^31)``, ``sh`` in ``[1, 62]``.

    Example (double rounding), ``m = 0.25`` (``M0 = 2^30``, ``sh = 32``, ``shift = -1``):
    ``acc = 5``: SRDHM gives ``2.5 -> 3``, then ``3 / 2 = 1.5 -> 2``, although ``5/4 = 1.25``;
    ``acc = -6``: SRDHM ``-3.5 -> -3``, then ``-1.5 -> -2``.

    >>> requantize_tflite_double([3, 5, -5, -6], 1 << 30, 32, 0, -128, 127).tolist()  # acc/4
    [1, 2, -1, -2]
    """
    acc, M0, sh = _params(RoundProfile.TFLITE_DOUBLE, acc, M0, sh, acc_bound)
    shift = 31 - sh
    x = wrap(acc << np.maximum(shift, 0), 32)
    r = rounding_divide_by_pot(srdhm(x, M0), np.maximum(-shift, 0))
    return clamp(wrap(r + as_int64(z_y, "z_y"), 32), lo, hi)


def requantize_tflite_single(acc: Any, M0: Any, sh: Any, z_y: Any, lo: Any, hi: Any, *,
                             acc_bound: int | None = None) -> np.ndarray:
    """``TFLITE_SINGLE_ROUNDING`` / ruy ``MultiplyByQuantizedMultiplier``, bit-exact.

    ``t = sh = 31 - shift``: ``y = clamp(wrap32(wrap32((acc * M0 + 2^(t-1)) >> t) + z_y),
    lo, hi)``: one rounding, ties toward +inf (``acc * M0`` exact in int64). Widths: ``acc``
    int32, ``M0`` in ``[2^30, 2^31)``, ``t`` in ``[1, 62]``.

    Example, ``m = 0.25`` (``M0 = 2^30``, ``t = 32``): ``acc = 5``: ``(5 * 2^30 + 2^31) >> 32
    = 1`` (1.25); ``acc = -6``: ``(-6 * 2^30 + 2^31) >> 32 = -1`` (-1.5 goes up;
    ``tflite_double`` gives 2 and -2).

    >>> requantize_tflite_single([3, 5, -5, -6], 1 << 30, 32, 0, -128, 127).tolist()  # acc/4
    [1, 1, -1, -1]
    """
    acc, M0, sh = _params(RoundProfile.TFLITE_SINGLE, acc, M0, sh, acc_bound)
    r = wrap((acc * M0 + (np.int64(1) << (sh - 1))) >> sh, 32)
    return clamp(wrap(r + as_int64(z_y, "z_y"), 32), lo, hi)


_REQUANT = {RoundProfile.ORT_FP32: requantize_ort_fp32,
            RoundProfile.TFLITE_DOUBLE: requantize_tflite_double,
            RoundProfile.TFLITE_SINGLE: requantize_tflite_single}


def requantize_profile(acc: Any, M0: Any, sh: Any, z_y: Any, lo: Any, hi: Any,
                       profile: RoundProfile | str, *, acc_bound: int | None = None) -> np.ndarray:
    """Requantize ``acc`` under a runtime ``profile`` (same arguments as ``numerics.requantize``).

    Per-channel ``M0``/``sh`` broadcast against ``acc`` (channels last). ``acc_bound``: a proven
    ``max|acc|``; when it is below 2^31 the int32 range scan of ``acc`` is skipped.
    """
    try:
        profile = RoundProfile(profile)
    except ValueError:
        raise NumericsError(f"unknown rounding profile {profile!r} (expected one of "
                            f"{', '.join(p.value for p in RoundProfile)})") from None
    return _REQUANT[profile](acc, M0, sh, z_y, lo, hi, acc_bound=acc_bound)


def ort_pool_params(s_x: Any, s_y: Any, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(M0[1], sh[1])`` of ONNX Runtime's QLinearGlobalAveragePool under ``ort_fp32``.

    MLAS (``CheckQLinearGlobalAveragePoolScaleAndSize``) computes the scale in float32 as
    ``m32 = float32(s_x) / (float32(s_y) * float32(window))`` and requantizes the int32 sum
    ``acc = sum(x) - window * z_x`` exactly like QLinearConv (:func:`requantize_ort_fp32`).
    ``window`` must be in ``[1, 2^24)``.

    >>> [v.tolist() for v in ort_pool_params(0.5, 0.25, 4)]
    [[8388608], [24]]
    """
    if not 1 <= int(window) < (1 << 24):
        raise NumericsError(f"ort_fp32 pool: window size {window} outside [1, 2^24)")
    sx, sy = _scale_f32(s_x, "s_x").reshape(-1), _scale_f32(s_y, "s_y").reshape(-1)
    if sx.size != 1 or sy.size != 1:
        raise NumericsError("ort_fp32 pool: s_x and s_y must be per-tensor scalars")
    with np.errstate(over="ignore", under="ignore"):
        m = np.array([sx[0] / (sy[0] * np.float32(int(window)))], dtype=np.float32)
    return f32_to_pair(m)


# ---- ONNX Runtime's QLinearAdd (MLAS x86-64 AVX2 kernel), profile ort_fp32 ---------------------
#: Scale ratios ``s_a / s_y`` and ``s_b / s_y`` the emulation accepts: MLAS's own fixed-point
#: limits (``MlasCalcQLinearAddParameters``); they keep every numerator below 2^56.
ORT_ADD_RATIO = (2.0 ** -14, 2.0 ** 8)
_ORT_ADD_SH = (16, 37)  # sh = 23 - exponent of a ratio in ORT_ADD_RATIO


def ort_add_params(s_a: Any, s_b: Any, s_y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(M0, sh)`` (shape ``[2]``) of ONNX Runtime's QLinearAdd under ``ort_fp32``.

    The pairs (:func:`f32_to_pair`) of ``rA = float32(s_a) / float32(s_y)`` and
    ``rB = float32(s_b) / float32(s_y)``, divided in float32 as MLAS computes ``ScaleRatio_AC``
    and ``ScaleRatio_BC``. Ratios outside ``[2^-14, 2^8)`` raise :class:`NumericsError`.

    >>> [v.tolist() for v in ort_add_params(0.5, 0.25, 1.0)]
    [[8388608, 8388608], [24, 25]]
    """
    sa, sb, sy = (_scale_f32(v, n).reshape(-1) for v, n in ((s_a, "s_a"), (s_b, "s_b"), (s_y, "s_y")))
    if sa.size != 1 or sb.size != 1 or sy.size != 1:
        raise NumericsError("ort_fp32 add: s_a, s_b and s_y must be per-tensor scalars")
    r = np.array([sa[0] / sy[0], sb[0] / sy[0]], dtype=np.float32)
    lo, hi = ORT_ADD_RATIO
    bad = (r < lo) | (r >= hi)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise NumericsError(f"ort_fp32 add: scale ratio s_{'ab'[i]}/s_y = {float(r[i])!r} is outside "
                            f"[2^-14, 2^8) (the range MLAS's QLinearAdd supports exactly)")
    return f32_to_pair(r)


def check_ort_add_params(M0: Any, sh: Any) -> None:
    """Raise :class:`NumericsError` unless ``M0``/``sh`` are two float32 pairs of ratios in range."""
    m, s = as_int64(M0, "M0"), as_int64(sh, "sh")
    if m.shape != (2,) or s.shape != (2,):
        raise NumericsError(f"ort_fp32 add needs M0 = [mA, mB] and sh = [shA, shB], got shapes "
                            f"{m.shape} and {s.shape}")
    if np.any((m < (1 << 23)) | (m >= (1 << 24))):
        raise NumericsError(f"M0 = {m.tolist()} are not float32 significands in [2^23, 2^24)")
    if np.any((s < _ORT_ADD_SH[0]) | (s > _ORT_ADD_SH[1])):
        raise NumericsError(f"sh = {s.tolist()} outside [{_ORT_ADD_SH[0]}, {_ORT_ADD_SH[1]}] "
                            f"(scale ratios in [2^-14, 2^8))")


def _f32_grid(v: np.ndarray) -> np.ndarray:
    """``v`` (int64 numerators on one grid ``2^-D``) rounded to float32 values, ties even, same grid."""
    sig, k = _round_f32(np.abs(v))
    mag = sig << k
    return np.where(v < 0, -mag, mag)


def requantize_ort_add(a: Any, b: Any, M0: Any, sh: Any, z_a: int, z_b: int, z_y: int, lo: Any,
                       hi: Any) -> np.ndarray:
    """ONNX Runtime's QLinearAdd (MLAS AVX2 kernel), bit-exact on integers (no float is used).

    With ``rA = M0[0] / 2^sh[0]``, ``rB = M0[1] / 2^sh[1]`` (float32 values, :func:`ort_add_params`),
    ``f32`` a float32 rounding (nearest, ties even) and ``fma32(x, r, c) = f32(x * r + c)``::

        F = f32(z_y - fma32(rA, z_a, f32(rB * z_b)))       # VectorFixedPart (compiled as an FMA)
        y = clamp(rint_even(fma32(a, rA, fma32(b, rB, F))), lo, hi)

    on the raw integers ``a``, ``b`` (the zero points are inside ``F``); saturation to the 8-bit
    range is part of ``clamp``. For a one-element tensor ORT hands the operands to MLAS in the
    other order (measured), so ``a`` and ``b`` (with their ratios and zero points) swap roles
    in both formulas. All values are exact
    multiples of ``2^-D`` (``D = max(sh)``) held as int64 numerators below 2^56 (8-bit inputs,
    ratios in ``[2^-14, 2^8)``).

    Example: ``rA = rB = 0.5``, ``z_a = z_b = z_y = 0``: ``a = 3, b = 2`` gives ``rint(2.5) = 2``.

    >>> requantize_ort_add([3, 5], [2, 2], [1 << 23, 1 << 23], [24, 24], 0, 0, 0, -128, 127).tolist()
    [2, 4]
    """
    check_ort_add_params(M0, sh)
    a, b = as_int64(a, "a"), as_int64(b, "b")
    for name, v in (("a", a), ("b", b)):
        if v.size and (int(v.min()) < -256 or int(v.max()) > 255):
            raise NumericsError(f"ort_fp32 add: input {name} must be 8-bit integers")
    if a.shape != b.shape:
        raise NumericsError(f"ort_fp32 add: inputs differ in shape: {a.shape} vs {b.shape}")
    (ma, mb), (sa, sb) = (int(v) for v in as_int64(M0)), (int(v) for v in as_int64(sh))
    d = max(sa, sb)
    ra, rb = np.int64(ma << (d - sa)), np.int64(mb << (d - sb))   # rA * 2^D, rB * 2^D
    if a.size == 1:   # ORT's broadcast helper hands a one-element pair over in the other order
        a, b, ra, rb, z_a, z_b = b, a, rb, ra, z_b, z_a
    fixed = _f32_grid(np.int64(int(z_y) << d) - _f32_grid(np.int64(z_a) * ra
                                                          + _f32_grid(np.int64(z_b) * rb)))
    t = _f32_grid(a * ra + _f32_grid(b * rb + fixed))
    return clamp(round_shift(t, d, RoundMode.HALF_EVEN), lo, hi)
