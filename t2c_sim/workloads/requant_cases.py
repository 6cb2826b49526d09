"""Directed requantizer cases: exact ties of every rounding step, their sticky neighbours and the
extremes of every field, for the SPEC section-2 modes and the runtime rounding profiles
(SPEC section 10); and layer records whose outputs are exactly those cases.

A case (:data:`Vec`) is ``(acc, M0, sh, z_y, lo, hi, code)`` with ``code`` the requantizer's
mode code (``RoundMode.code`` 0..3, ``RoundProfile.code`` 4..6). The generators take the
requantizer's parameters ``p`` (``ACC_BITS``, ``MULT_BITS``, ``SHIFT_BITS``, ``Y_BITS``,
``PROFILES``, as the RTL unit ``rtl/t2c_requant.v`` has them) and a seeded ``random.Random``:

- :func:`section2_directed` / :func:`section2_random`: the four section-2 modes;
- :func:`ort_directed`, :func:`tflite_directed`, :func:`profile_random`: each profile's rounding
  steps on their ties, just above and below (the sticky bits), both signs, and its extremes
  (the comments at each loop say which step a case aims at);
- :func:`vector_records`: linear records (per channel, or token-wise ``[P, C_out]``) that put one
  case on each output, so the cases reach an accelerator through its normal co-simulation path.

Used by the requantizer's unit testbench (``testbenches/test_requant.py``) and the accelerator
co-simulation tests (``tests/test_cosim_rq.py``); the oracle is the golden model
(:func:`t2c_sim.numerics.requantize`, :func:`t2c_sim.rounding_profiles.requantize_profile`).
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from t2c_sim.config import OpKind, RoundMode, RoundProfile
from t2c_sim.errors import RecordError
from t2c_sim.golden.layers import run_layer
from t2c_sim.numerics import wrap
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import nm_mask

__all__ = ["Vec", "MODES", "BY_CODE", "section2_directed", "section2_random", "profiles_fitting",
           "acc_range", "ort_directed", "tflite_directed", "profile_random", "vector_records"]

MODES = list(RoundMode)
#: Mode code -> rounding mode or profile.
BY_CODE = {m.code: m for m in [*MODES, *RoundProfile]}

Vec = tuple[int, int, int, int, int, int, int]  # acc, m0, sh, zy, lo, hi, mode code


def section2_directed(p: dict[str, int], rng: random.Random) -> list[Vec]:
    ab, mb, sb, yb = p["ACC_BITS"], p["MULT_BITS"], p["SHIFT_BITS"], p["Y_BITS"]
    amin, amax = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    mmax = (1 << mb) - 1
    smax = min(63, (1 << sb) - 1)
    ymin, ymax = -(1 << (yb - 1)), (1 << (yb - 1)) - 1
    full = (ymin, ymax)
    out: list[Vec] = []
    codes = [m.code for m in MODES]
    # Exact ties (r == h) and their neighbours (r == h +- 1) at every reachable shift.
    for s in range(1, smax + 1):
        t = s - 1                           # product = odd * 2^t is a tie at shift s
        ta = min(t, ab - 4)                 # part of 2^t carried by acc (odd * 2^ta fits)
        tm = t - ta                         # part carried by M0
        if ta < 0 or tm > mb - 1:
            continue
        for odd in (1, 3, 5, -1, -3, -5, 7, -7):
            for c in codes:
                out.append((odd << ta, 1 << tm, s, 0, *full, c))
            # one above and one below the tie (M0 = 1 so the product is exact acc)
            if tm == 0:
                for d in (-1, 1):
                    a = (odd << ta) + d
                    if amin <= a <= amax:
                        for c in codes:
                            out.append((a, 1, s, 0, *full, c))
    # ties made of the accumulator extremes (-2^(A-1), +-2^(A-2)) reach the largest shifts
    for s in range(1, smax + 1):
        for a, ta in ((amin, ab - 1), (1 << (ab - 2), ab - 2), (-(1 << (ab - 2)), ab - 2)):
            tm = s - 1 - ta
            if 0 <= tm <= mb - 1:
                for c in codes:
                    out.append((a, 1 << tm, s, 0, *full, c))
    # s = 0 returns v (then clamp); every mode
    for a in (0, 1, -1, 2, -2, 123, -123, amax, amin):
        for c in codes:
            out.append((a, 1, 0, 0, *full, c))
            out.append((a, mmax, 0, 0, *full, c))
    # saturation both ways, with the largest product and large shifts
    for a in (amax, amin, amax - 1, amin + 1):
        for m0 in (mmax, 1, mmax >> 1):
            for s in sorted({0, 1, smax // 2, smax}):
                for c in codes:
                    out.append((a, m0, s, 0, *full, c))
                    out.append((a, m0, s, ymax, *full, c))
                    out.append((a, m0, s, ymin, *full, c))
    # zero-point extremes and narrow / ReLU-like bounds
    for zy in (ymin, ymax, 0, -1, 1):
        for a in (0, 5, -5, 1 << min(ab - 2, 20), -(1 << min(ab - 2, 20))):
            for lo, hi in (full, (zy, ymax), (ymin, zy), (zy, zy), (max(zy, 0), min(ymax, 6))):
                if lo <= hi:
                    for c in codes:
                        out.append((a, rng.randint(1, mmax), rng.randint(0, smax), zy, lo, hi, c))
    return out


def section2_random(p: dict[str, int], rng: random.Random, n: int) -> list[Vec]:
    ab, mb, sb, yb = p["ACC_BITS"], p["MULT_BITS"], p["SHIFT_BITS"], p["Y_BITS"]
    smax = min(63, (1 << sb) - 1)
    ymin, ymax = -(1 << (yb - 1)), (1 << (yb - 1)) - 1
    out: list[Vec] = []
    for _ in range(n):
        k = rng.randint(1, ab)              # log-uniform magnitude: small and huge accumulators
        a = max(-(1 << (ab - 1)), min((1 << (ab - 1)) - 1, rng.randint(-(1 << (k - 1)), 1 << (k - 1))))
        m0 = rng.randint(0, (1 << mb) - 1) if rng.random() < 0.8 else rng.randint(0, 255)
        s = rng.randint(0, smax)
        if rng.random() < 0.3:
            # aim the shift at the product's magnitude so results land inside the range
            s = max(0, min(smax, (abs(a) * m0).bit_length() - rng.randint(0, yb)))
        zy = rng.randint(ymin, ymax) if rng.random() < 0.5 else rng.randint(-8, 8)
        if rng.random() < 0.5:
            lo, hi = ymin, ymax
        else:
            lo, hi = sorted((rng.randint(ymin, ymax), rng.randint(ymin, ymax)))
        out.append((a, m0, s, zy, lo, hi, rng.choice(MODES).code))
    return out


def profiles_fitting(p: dict[str, int]) -> list[RoundProfile]:
    """The profiles this build can run (``PROFILES = 1`` and ``M0`` fits ``MULT_BITS``)."""
    if not p["PROFILES"] or p["SHIFT_BITS"] < 6:
        return []
    out = []
    if p["MULT_BITS"] >= 24:
        out.append(RoundProfile.ORT_FP32)
    if p["MULT_BITS"] >= 31:
        out += [RoundProfile.TFLITE_DOUBLE, RoundProfile.TFLITE_SINGLE]
    return out


def acc_range(p: dict[str, int]) -> tuple[int, int]:
    """Accumulators a profile vector may use: ACC_BITS and int32 (the runtime's accumulator)."""
    ab = min(p["ACC_BITS"], 32)
    return -(1 << (ab - 1)), (1 << (ab - 1)) - 1


def ort_directed(p: dict[str, int], rng: random.Random) -> list[Vec]:
    code = RoundProfile.ORT_FP32.code
    amin, amax = acc_range(p)
    ymin, ymax = -(1 << (p["Y_BITS"] - 1)), (1 << (p["Y_BITS"] - 1)) - 1
    full = (ymin, ymax)
    j = 9                      # the final value is (S + c) / 2^9: next to one of its ties
    tmax = max(2, min(ymax, (1 << 15) - 1))
    out: list[Vec] = []

    def tee(t_odd: bool) -> int:
        t = rng.randrange(max(1, tmax >> 2), tmax)
        return t | 1 if t_odd else t & ~1

    # float32(acc): |acc| = S * 2^k + 2^(k-1) + d, S in [2^23, 2^24), d in {-1, 0, 1}; m32 =
    # 2^-(k+9) (M0 = 2^23: the product is exact): y = (S + c) / 2^9 rounded, c = the
    # conversion's carry. S = T*2^9 + 2^8 - 1 (odd, T odd) shows the tie to even and the
    # sticky bit below it; S = T*2^9 + 2^8 (even, T even) the sticky bit above it.
    for k in range(1, 9):
        for _ in range(6):
            for s_odd in (True, False):
                t = tee(s_odd)
                s_ = (t << j) + (1 << (j - 1)) - (1 if s_odd else 0)
                if not (1 << 23) <= s_ < (1 << 24):
                    continue
                for d in (-1, 0, 1):
                    mag = (s_ << k) + (1 << (k - 1)) + d
                    for sign in (1, -1):
                        a = sign * mag
                        if amin <= a <= amax:
                            out.append((a, 1 << 23, 23 + k + j, 0, *full, code))
                            if p["Y_BITS"] >= 32:   # y = float32(acc) itself
                                out.append((a, 1 << 23, 23, 0, *full, code))
    # float32(a_sig * M0): acc odd (< 2^24, exact) and M0 solved so that p = acc * M0 has
    # p mod 2^k2 = 2^(k2-1) + d (a tie of the product's rounding, and both sticky
    # neighbours) and (p >> k2) mod 2^10 = 2^9 - 1 or 2^9 (next to a tie of the final step
    # at 2^9, whose parity is fixed by bit 9); sh = k2 + 9 (k1 = 0).
    for k2 in range(1, 14):
        for d in (-1, 0, 1):
            for top in ((1 << (j - 1)) - 1 + (1 << j), (1 << (j - 1)), (1 << (j - 1)) - 1,
                        (1 << (j - 1)) + (1 << j)):
                low = (top << k2) + (1 << (k2 - 1)) + d      # the low k2 + 10 bits of p
                mod = 1 << (k2 + j + 1)
                for _ in range(40):
                    a = rng.randrange(1 << k2, 1 << (k2 + 1)) | 1     # bitlen k2 + 1
                    m0 = (low % mod) * pow(a, -1, mod) % mod
                    m0 |= rng.randrange(1 << 23, 1 << 24) & ~(mod - 1)
                    if not (1 << 23) <= m0 < (1 << 24):
                        continue
                    prod = a * m0
                    if prod.bit_length() - 24 != k2:
                        continue
                    for sign in (1, -1):
                        if amin <= sign * a <= amax:
                            out.append((sign * a, m0, k2 + j, 0, *full, code))
                    break
    # rint_even of the final value: exact products on every tie of a shift (M0 = 2^23)
    for s in range(24, 40):
        for odd in (1, 3, 5, 7, 2047, (1 << 20) + 1):
            a = odd << (s - 24)
            for sign in (1, -1):
                for zy in (0, 3, -3):
                    if amin <= sign * a <= amax:
                        out.append((sign * a, 1 << 23, s, zy, *full, code))
    # extremes: accumulators at the int32 / float32 edges, the largest and smallest M0 and
    # shifts (sh < k1 + k2 is the left-shift path), zero points and bounds at the ends
    accs = [0, 1, -1, amax, amin, amin + 1, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 24) + 3,
            -(1 << 24) - 1, -(1 << 24) - 3, (1 << 25) - 1, (1 << 25) + 2, 12345, -54321]
    for a in accs:
        if not amin <= a <= amax:
            continue
        for m0 in (1 << 23, (1 << 24) - 1, 11744051):
            for sh in (0, 1, 23, 30, 40, 47, 48, 55, 63):
                for zy, lo, hi in ((0, *full), (ymax, *full), (ymin, *full), (5, 0, 6)):
                    out.append((a, m0, sh, zy, lo, hi, code))
    return out


def tflite_directed(p: dict[str, int], rng: random.Random, profile: RoundProfile) -> list[Vec]:
    code = profile.code
    amin, amax = acc_range(p)
    ymin, ymax = -(1 << (p["Y_BITS"] - 1)), (1 << (p["Y_BITS"] - 1)) - 1
    full = (ymin, ymax)
    out: list[Vec] = []
    # M0 = 2^30 (m = 2^(30 - sh)): SRDHM(x, 2^30) = x / 2 (a tie for every odd x), then
    # RDBPOT by right = sh - 31: (x / 2) / 2^right; single rounding: x / 2^(sh - 30).
    for right in range(0, 12):
        sh = 31 + right
        for x in range(-40, 41):
            a = x << max(0, right - 2)
            for d in (0, 1, -1):
                if amin <= a + d <= amax:
                    out.append((a + d, 1 << 30, sh, 0, *full, code))
        # ties of both steps at larger magnitudes
        for _ in range(8):
            q = rng.randrange(1, 1 << 12)
            for a in (((2 * q + 1) << right) + 1, (2 * q + 1) << right, ((2 * q + 1) << (right + 1))):
                for sign in (1, -1):
                    if amin <= sign * a <= amax:
                        out.append((sign * a, 1 << 30, sh, 0, *full, code))
    # other M0 on SRDHM ties: x = u * 2^t (u odd), M0 = 2^(30-t) / u mod 2^(31-t), so that
    # x * M0 = 2^30 mod 2^31; M0 +- 1 puts the product just off the tie
    for _ in range(150):
        t = rng.randrange(1, 20)
        u = rng.randrange(1, 1 << 10) | 1
        mod = 1 << (31 - t)
        r = ((1 << (30 - t)) * pow(u, -1, mod)) % mod
        qlo, qhi = ((1 << 30) - r + mod - 1) // mod, ((1 << 31) - 1 - r) // mod
        if qlo > qhi:
            continue
        m0 = r + mod * rng.randint(qlo, qhi)
        for dm in (0, 1, -1):
            for sign in (1, -1):
                a = sign * (u << t)
                if amin <= a <= amax and (1 << 30) <= m0 + dm < (1 << 31):
                    out.append((a, m0 + dm, rng.randrange(31, 45), rng.choice((0, 1, -1)),
                                *full, code))
    # left shifts (sh < 31): int32(acc << left) wraps for large accumulators
    for sh in (1, 2, 10, 20, 29, 30):
        for a in (1, -1, 3, amax, amin, amax >> 3, -(amax >> 3), 12345, -12345):
            for m0 in (1 << 30, (1 << 31) - 1, 1518500250):
                if amin <= a <= amax:
                    out.append((a, m0, sh, 0, *full, code))
    # extremes: the largest product, the flush (0, 31), z_y wrapping r + z_y past int32
    for a in (amin, amax, amin + 1, 0):
        for m0, sh in (((1 << 31) - 1, 31), ((1 << 31) - 1, 62), (1 << 30, 62), (0, 31),
                       ((1 << 31) - 1, 1), (1 << 30, 1)):
            for zy, lo, hi in ((0, *full), (ymax, *full), (ymin, *full), (-7, -7, 9)):
                out.append((a, m0, sh, zy, lo, hi, code))
    return out


def profile_random(p: dict[str, int], rng: random.Random, profile: RoundProfile,
                    n: int) -> list[Vec]:
    """Random vectors with valid parameters; the shift is often aimed so ``y`` lands in range."""
    amin, amax = acc_range(p)
    yb = p["Y_BITS"]
    ymin, ymax = -(1 << (yb - 1)), (1 << (yb - 1)) - 1
    ort = profile is RoundProfile.ORT_FP32
    out: list[Vec] = []
    for _ in range(n):
        k = rng.randint(1, 32)
        a = max(amin, min(amax, rng.randint(-(1 << (k - 1)), 1 << (k - 1))))
        m0 = rng.randrange(1 << 23, 1 << 24) if ort else rng.randrange(1 << 30, 1 << 31)
        lo_s, hi_s = (0, 63) if ort else (1, 62)
        sh = rng.randint(lo_s, hi_s)
        if rng.random() < 0.6:
            sh = max(lo_s, min(hi_s, (abs(a) * m0).bit_length() - rng.randint(0, yb)))
        zy = rng.randint(ymin, ymax) if rng.random() < 0.5 else rng.randint(-8, 8)
        lo, hi = (ymin, ymax) if rng.random() < 0.5 else \
            tuple(sorted((rng.randint(ymin, ymax), rng.randint(ymin, ymax))))
        out.append((a, m0, sh, zy, lo, hi, profile.code))
    return out


def vector_records(vecs: list[Vec], *, name: str, seed: int = 0, per_row: bool = True,
                   cols: int = 8, k: int = 8, n: int = 2, m: int = 4, y_bits: int = 16,
                   max_outputs: int = 1 << 16) -> list[LayerRecord]:
    """Linear records whose golden outputs are exactly the cases ``vecs``.

    Cases sharing ``(z_y, lo, hi, code)`` (a record's scalars) form one record. Token-wise
    (``per_row``): outputs ``[P, cols]``, case ``i`` at ``(i // cols, i % cols)`` with its own
    ``bias_eff``, ``M0``, ``sh`` (``[P, cols]``; the last row is filled with the group's first
    case at ``acc = 0``). Per channel: one row, one channel per case (``[C_out]`` parameters). In
    both, ``x_q`` and the ``n:m`` weights are random (``seed``) and ``bias_eff = wrap32(acc -
    x_q . w)``, so that every accumulator is the case's ``acc`` (``wrap_ok``: the bias may sit at
    the int32 edge).

    Raises:
        RecordError: More than ``max_outputs`` outputs in one record, or a case outside the
            record's formats (acc beyond int32, ``z_y/lo/hi`` beyond ``y_bits``).
    """
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, int, int, int], list[Vec]] = defaultdict(list)
    for v in vecs:
        groups[(v[3], v[4], v[5], v[6])].append(v)
    out = []
    for gi, ((zy, lo, hi, code), vs) in enumerate(sorted(groups.items())):
        rname = f"{name}_{BY_CODE[code].value}_{gi}"
        if len(vs) > max_outputs:
            raise RecordError(f"{len(vs)} cases in one record (at most {max_outputs})", layer=rname)
        c = cols if per_row else len(vs)
        p = -(-len(vs) // c) if per_row else 1
        fill = (0, vs[0][1], vs[0][2])
        cells = [(a, m0, s) for a, m0, s, *_ in vs] + [fill] * (p * c - len(vs))
        acc, m0, sh = (np.array([x[i] for x in cells], dtype=np.int64).reshape(p, c)
                       for i in range(3))
        if acc.min() < -(1 << 31) or acc.max() >= 1 << 31:
            raise RecordError("a case's acc is outside int32", layer=rname)
        x = rng.integers(-128, 128, size=(p, k))
        w = rng.integers(-128, 128, size=(c, k))
        w = np.where(nm_mask(w, n, m), w, 0)
        bias = wrap(acc - x @ w.T, 32)
        if not per_row:
            bias, m0, sh = bias[0], m0[0], sh[0]
        rec = LayerRecord(name=rname, op=OpKind.LINEAR, a_bits=8, w_bits=8, y_bits=y_bits,
                          acc_bits=32, mult_bits=32, n=n, m=m, c_in=k, c_out=c, z_y=zy, lo=lo,
                          hi=hi, mode=BY_CODE[code], wrap_ok=True, w_q=w, bias_eff=bias, M0=m0,
                          sh=sh, x_q=x, meta={"generator": "vector_records",
                                             "input_specific": per_row})
        res = run_layer(rec.validate())
        if not np.array_equal(res.acc, acc):   # the construction itself, not the requantizer
            raise RecordError("accumulators differ from the cases", layer=rname)
        out.append(rec.replace(acc=res.acc, y=res.y))
    return out
