"""Independent oracle of docs/numerics.md sections 7-10: Python ints, scalar loops.

Written from the documented formulas only: no NumPy arithmetic, no t2c_sim code. Rounding is
``divmod`` on Python ints (exact rationals), the square root is ``math.isqrt``, multipliers are
searched on ``fractions.Fraction``. Every function also reports whether a rounding tie occurred
(``TIES`` counter), so a test can prove that its cases exercised the tie rules.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

TIES: Counter = Counter()  # rounding step name -> number of exact ties seen


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def rdiv(n: int, d: int, mode: str, step: str = "div") -> int:
    """Nearest integer to the rational n / d (d > 0) with the mode's tie rule."""
    assert d > 0
    q, r = divmod(n, d)                 # floor division, 0 <= r < d
    if 2 * r == d:
        TIES[step] += 1
    if mode == "floor":
        return q
    if 2 * r != d:
        return q + (2 * r > d)
    return {"half_up": q + 1, "half_even": q + (q % 2), "half_away": q + (n >= 0)}[mode]


def clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def wrap(v: int, bits: int) -> int:
    return ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def requant(acc: int, m0: int, sh: int, z_y: int, lo: int, hi: int, mode: str) -> int:
    return clamp(z_y + rdiv(acc * m0, 1 << sh, mode, "requant"), lo, hi)


def round_half_even_frac(x: Fraction) -> int:
    return rdiv(x.numerator, x.denominator, "half_even", "fuse")


# ---- fuse-time constants ------------------------------------------------------------------------
def quantize_multiplier(m: float, mult_bits: int = 32, shift_max: int = 63) -> tuple[int, int]:
    """The largest sh in [0, shift_max] with round_half_even(m * 2^sh) < 2^mult_bits."""
    mf = Fraction(m)
    for sh in range(shift_max, -1, -1):
        m0 = round_half_even_frac(mf * (1 << sh))
        if m0 < (1 << mult_bits):
            assert m0 > 0, "rounds to zero"
            return m0, sh
    raise ValueError("too large")


def softmax_table(s_x: float, bits: int, frac_bits: int) -> list[int]:
    return [round(math.exp(-(s_x * d)) * 2.0 ** frac_bits) for d in range(1 << bits)]


def gelu_table(s_x: float, z_x: int, s_y: float, z_y: int, a_bits: int, a_signed: bool,
               lo: int, hi: int) -> list[int]:
    qlo, qhi = qrange(a_bits, a_signed)
    out = []
    for q in range(qlo, qhi + 1):
        v = s_x * (q - z_x)
        g = 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
        out.append(clamp(z_y + round(g / s_y), lo, hi))          # round(): half to even
    return out


def layernorm_constants(s_x: float, gamma: list[float], beta: list[float], eps: float,
                        s_y: float, a_bits: int, a_signed: bool) -> dict:
    c = len(gamma)
    qlo, qhi = qrange(a_bits, a_signed)
    v_max = c * c * (qhi - qlo) ** 2 // 4
    e_real = c * c * eps / (s_x * s_x)
    n = v_max + math.floor(e_real) + 1
    k = (62 - n.bit_length()) // 2
    eps_q = round_half_even_frac(Fraction(e_real) * 4 ** k)
    r = math.isqrt(c - 1)
    r += r * r != c - 1
    for gb in range(31, -1, -1):
        g = [round_half_even_frac(Fraction(x / s_y) * 2 ** gb) for x in gamma]
        b = [round_half_even_frac(Fraction(x / s_y) * 2 ** gb) for x in beta]
        if max(map(abs, g)) * r + max(map(abs, b)) <= 2 ** 31:
            return {"eps_q": eps_q, "sqrt_shift": k, "g_shift": gb, "gamma_q": g, "beta_q": b}
    raise ValueError("no g_shift")


# ---- integer ops --------------------------------------------------------------------------------
def softmax_row(row: list[int], table: list[int], mo: int, sho: int, z_y: int, lo: int, hi: int,
                mode: str) -> list[int]:
    mx = max(row)
    e = [table[mx - v] for v in row]
    s = sum(e)
    return [clamp(z_y + rdiv(ei * mo, s * 2 ** sho, mode, "softmax"), lo, hi) for ei in e]


def layernorm_row(row: list[int], g: list[int], b: list[int], eps_q: int, k: int, gb: int,
                  z_y: int, lo: int, hi: int, mode: str) -> list[int]:
    c = len(row)
    s1 = sum(row)
    s2 = sum(v * v for v in row)
    v = c * s2 - s1 * s1
    sigma = max(1, math.isqrt(v * 4 ** k + eps_q))
    out = []
    for i, x in enumerate(row):
        dev = c * x - s1
        out.append(clamp(z_y + rdiv(g[i] * dev * 2 ** k + b[i] * sigma, sigma * 2 ** gb, mode,
                                    "layernorm"), lo, hi))
    return out


def matmul(a: list[list[int]], b: list[list[int]], z_a: int, z_b: int, trans_b: bool,
           bias, m0, sh, row0: int, acc_bits: int, z_y: int, lo: int, hi: int, mode: str,
           ) -> tuple[list[list[int]], list[list[int]]]:
    """One 2-D product; ``bias/m0/sh`` are callables (row, col) -> int; ``row0`` is the global
    index of this product's first output row (for token-wise parameters)."""
    p, k = len(a), len(a[0])
    c = len(b) if trans_b else len(b[0])
    acc, y = [], []
    for i in range(p):
        ar, yr = [], []
        for j in range(c):
            s = bias(row0 + i, j)
            for t in range(k):
                bv = b[j][t] if trans_b else b[t][j]
                s += (a[i][t] - z_a) * (bv - z_b)
            s = wrap(s, acc_bits)
            ar.append(s)
            yr.append(requant(s, m0(row0 + i, j), sh(row0 + i, j), z_y, lo, hi, mode))
        acc.append(ar)
        y.append(yr)
    return acc, y
