"""The fuse-time step of the transformer ops: float scales -> the integers a record carries.

This is the only place where floats meet the integer definitions of docs/numerics.md
sections 7-10. Each function takes the float scales (and, for LayerNorm, gamma/beta/eps) of one
op and returns a dict of :class:`~t2c_sim.record.LayerRecord` fields (``table``, ``M0``,
``sh``, ``gamma_q``, ``beta_q``, ``const_q``, ``params``) that the caller passes on as keyword
arguments; every later model (golden, PyTorch integer path, fake-quant forward) reads only
those integers. No torch here.

Float rules, fixed so that every caller derives the same integers: scales are taken as float64
(a float32 quantizer scale converts exactly); rounding to an integer is half to even
(:func:`~t2c_sim.numerics.round_half_even_float`); multipliers go through
:func:`~t2c_sim.numerics.quantize_multiplier`; ``exp`` and ``erf`` are Python's ``math`` ones,
evaluated once per table entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from t2c_sim.config import qrange
from t2c_sim.errors import NumericsError
from t2c_sim.numerics import quantize_multiplier, quantize_multipliers_shared, round_half_even_float
from t2c_sim.record import TABLE_MAX_BITS

__all__ = ["SOFTMAX_FRAC_BITS", "quantize_multiplier_vec", "softmax_params", "gelu_params",
           "gelu_float", "layernorm_params", "matmul_params", "concat_params", "add_const_params",
           "quantize_const"]

SOFTMAX_FRAC_BITS = 20   # exp table entries are round(2^20 exp(-s_x d)): see docs/numerics.md
LN_G_SHIFT_MAX = 31      # largest g_shift (G, B fixed-point fraction bits)
GELU_APPROX = ("none", "tanh")


def quantize_multiplier_vec(m: Any, mult_bits: int = 32, shift_max: int = 63,
                            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~t2c_sim.numerics.quantize_multiplier`, vectorized (same integers, same errors).

    ``m = f * 2^e`` (``np.frexp``, ``f`` in ``[0.5, 1)``), ``sh = min(shift_max, mult_bits - e)``,
    ``M0 = rint(ldexp(m, sh))`` (exact scaling, half-even); where ``M0`` reaches
    ``2^mult_bits`` use ``sh - 1``. Token-wise matmuls need one multiplier per output element;
    the scalar loop costs ~5 us each, this ~20 ns.

    >>> [a.tolist() for a in quantize_multiplier_vec([0.75, 0.0123456789], mult_bits=8)]
    [[192, 202], [8, 14]]
    """
    if not 1 <= mult_bits <= 62 or not 0 <= shift_max <= 63:
        raise NumericsError(f"need mult_bits in 1..62 and shift_max in 0..63, got {mult_bits}, "
                            f"{shift_max}")
    a = np.asarray(m, dtype=np.float64)
    bad = ~np.isfinite(a) | (a <= 0) | (a >= float(1 << mult_bits))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise NumericsError(f"multiplier[{i}] = {a.ravel()[i]!r} is not a finite value in "
                            f"(0, 2^{mult_bits})")
    _, e = np.frexp(a)
    sh = np.minimum(shift_max, mult_bits - e.astype(np.int64))
    m0 = np.rint(np.ldexp(a, sh))
    over = m0 >= float(1 << mult_bits)
    if np.any(over & (sh == 0)):
        raise NumericsError(f"a multiplier rounds to 2^{mult_bits} even at shift 0")
    sh = np.where(over, sh - 1, sh)
    m0 = np.where(over, np.rint(np.ldexp(a, sh)), m0)
    if np.any(m0 == 0):
        i = int(np.flatnonzero((m0 == 0).ravel())[0])
        raise NumericsError(f"multiplier[{i}] = {a.ravel()[i]!r} rounds to M0 = 0 at the largest "
                            f"shift {shift_max}")
    return m0.astype(np.int64), sh.astype(np.int64)


def _scale(s: Any, what: str) -> float:
    v = float(s)
    if not math.isfinite(v) or v <= 0:
        raise NumericsError(f"{what} must be a finite float > 0, got {s!r}")
    return v


def _table_bits(a_bits: int) -> None:
    if not isinstance(a_bits, int) or not 1 <= a_bits <= TABLE_MAX_BITS:
        raise NumericsError(f"table ops take 1..{TABLE_MAX_BITS}-bit inputs, got a_bits={a_bits!r}")


def softmax_params(s_x: float, s_y: float, *, a_bits: int = 8, frac_bits: int = SOFTMAX_FRAC_BITS,
                   mult_bits: int = 32, shift_max: int = 63) -> dict[str, Any]:
    """Softmax constants: the exp table and the output multiplier.

    ``table[d] = round_half_even(2^F * exp(-(s_x * d)))`` for ``d = 0 .. 2^a_bits - 1``
    (``table[0] = 2^F``; ``d = max(x) - x`` is the distance to the row maximum in input LSBs),
    ``(Mo, sho) = quantize_multiplier(1 / s_y, mult_bits, shift_max)``. Returns
    ``{"table", "M0": [Mo], "sh": [sho], "params": {"frac_bits": F}}``.

    >>> p = softmax_params(math.log(2), 1 / 16, a_bits=2, frac_bits=4, mult_bits=8)
    >>> p["table"].tolist(), p["M0"].tolist(), p["sh"].tolist()
    ([16, 8, 4, 2], [128], [3])
    """
    s_x, s_y = _scale(s_x, "softmax input scale"), _scale(s_y, "softmax output scale")
    _table_bits(a_bits)
    if not isinstance(frac_bits, int) or not 1 <= frac_bits <= 30 or frac_bits + mult_bits > 62:
        raise NumericsError(f"softmax frac_bits must be in 1..30 with frac_bits + mult_bits <= 62, "
                            f"got {frac_bits!r} and {mult_bits}")
    e = [math.ldexp(math.exp(-(s_x * d)), frac_bits) for d in range(1 << a_bits)]
    table = round_half_even_float(e)
    mo, sho = quantize_multiplier(1.0 / s_y, mult_bits, shift_max)
    return {"table": table, "M0": mo.reshape(1), "sh": sho.reshape(1),
            "params": {"frac_bits": frac_bits}}


def gelu_float(v: float, approximate: str = "none") -> float:
    """``gelu(v) = v * Phi(v) = 0.5 v (1 + erf(v / sqrt 2))``; ``"tanh"``:
    ``0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))`` (torch's two forms)."""
    if approximate == "none":
        return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
    if approximate == "tanh":
        return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))
    raise NumericsError(f"gelu approximate must be one of {GELU_APPROX}, got {approximate!r}")


def _out_scales(s_y: Any, what: str) -> np.ndarray:
    """``s_y`` as a float64 scalar array (per tensor) or ``[R]`` (token-wise: one per output row)."""
    a = np.asarray(s_y, dtype=np.float64)
    if a.ndim > 1 or a.size == 0:
        raise NumericsError(f"{what} must be a scalar or a vector of row scales, got shape {a.shape}")
    if not np.all(np.isfinite(a) & (a > 0)):
        raise NumericsError(f"{what} must be finite floats > 0, got {s_y!r}")
    return a


def gelu_params(s_x: float, z_x: int, s_y: Any, z_y: int, *, a_bits: int = 8,
                a_signed: bool = True, y_bits: int = 8, y_signed: bool = True,
                lo: int | None = None, hi: int | None = None,
                approximate: str = "none") -> dict[str, Any]:
    """GELU table: the output integer for every input integer.

    ``table[i] = clamp(z_y + round_half_even(gelu(s_x * (q_i - z_x)) / s_y), lo, hi)`` with
    ``q_i = qmin_x + i`` (``lo, hi`` default to the output range). The table is the correctly
    rounded GELU of each representable input. ``s_y`` a vector ``[R]`` (token-wise output: one
    scale per row of the output) gives one table per row, ``table[R, 2^a_bits]`` (docs/numerics.md
    section 8). Returns ``{"table"}``.

    >>> gelu_params(1.0, 0, 0.5, 0, a_bits=2)["table"].tolist()   # gelu(-2, -1, 0, 1) / 0.5
    [0, 0, 0, 2]
    >>> gelu_params(1.0, 0, [0.5, 0.25], 0, a_bits=2, y_bits=4)["table"].tolist()
    [[0, 0, 0, 2], [0, -1, 0, 3]]
    """
    s_x = _scale(s_x, "gelu input scale")
    sy = _out_scales(s_y, "gelu output scale")
    _table_bits(a_bits)
    qlo, qhi = qrange(a_bits, a_signed)
    ylo, yhi = qrange(y_bits, y_signed)
    lo, hi = ylo if lo is None else lo, yhi if hi is None else hi
    g = np.array([gelu_float(s_x * (q - z_x), approximate) for q in range(qlo, qhi + 1)])
    vals = g / sy if sy.ndim == 0 else g[None, :] / sy[:, None]
    return {"table": np.clip(z_y + round_half_even_float(vals), lo, hi)}


def _ceil_sqrt(n: int) -> int:
    r = math.isqrt(n)
    return r + (r * r != n)


def layernorm_params(s_x: float, gamma: Sequence[float], beta: Sequence[float], eps: float,
                     s_y: Any, *, a_bits: int = 8, a_signed: bool = True) -> dict[str, Any]:
    """LayerNorm constants for ``C = len(gamma)`` channels.

    - ``E = C^2 * eps / s_x^2`` is ``eps`` in the units of ``V = C^2 var_q``;
      ``V_max = floor(C^2 (qmax - qmin)^2 / 4)`` bounds ``V``;
      ``sqrt_shift = k = (62 - bitlen(V_max + floor(E) + 1)) // 2`` so that
      ``V * 4^k + eps_q < 2^62``; ``eps_q = round_half_even(E * 4^k)`` (``eps`` keeps ``2k``
      fraction bits: ``C^2 eps / s_x^2`` is often far below 1);
    - ``g_shift = gb``: the largest in ``[0, 31]`` with
      ``max|G| * ceil(sqrt(C - 1)) + max|B| <= 2^31``, where
      ``G = round_half_even(gamma / s_y * 2^gb)``, ``B = round_half_even(beta / s_y * 2^gb)``.

    ``s_y`` a vector ``[R]`` (token-wise output, one scale per row) gives ``G, B`` of shape
    ``[R, C]`` (row ``r`` divides by ``s_y[r]``; one ``gb`` for all rows). Returns
    ``{"gamma_q": G, "beta_q": B, "params": {"eps_q", "sqrt_shift", "g_shift"}}``.

    >>> p = layernorm_params(0.5, [1.0, 1.0], [0.0, 0.25], 0.0, 0.125, a_bits=4)
    >>> p["params"], p["gamma_q"].tolist(), p["beta_q"].tolist()
    ({'eps_q': 0, 'sqrt_shift': 27, 'g_shift': 27}, [1073741824, 1073741824], [0, 268435456])
    """
    s_x = _scale(s_x, "layernorm input scale")
    sy = _out_scales(s_y, "layernorm output scale")
    g = np.asarray(gamma, dtype=np.float64).reshape(-1)
    b = np.asarray(beta, dtype=np.float64).reshape(-1)
    c = g.size
    if c == 0 or b.shape != g.shape:
        raise NumericsError(f"layernorm: gamma ({g.size}) and beta ({b.size}) need the same "
                            f"nonzero length")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(b))):
        raise NumericsError("layernorm: gamma and beta must be finite")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise NumericsError(f"layernorm: eps must be finite and >= 0, got {eps!r}")
    qlo, qhi = qrange(a_bits, a_signed)
    e_real = c * c * eps / (s_x * s_x)
    v_max = c * c * (qhi - qlo) ** 2 // 4
    if e_real >= 2.0 ** 62 or (v_max + math.floor(e_real) + 1).bit_length() > 62:
        raise NumericsError(f"layernorm: C^2 var + C^2 eps / s_x^2 can reach 2^62 (C = {c}, "
                            f"{a_bits}-bit inputs, eps = {eps}, s_x = {s_x})")
    k = (62 - (v_max + math.floor(e_real) + 1).bit_length()) // 2
    e = int(round_half_even_float(math.ldexp(e_real, 2 * k)))
    r = _ceil_sqrt(c - 1)
    if sy.ndim == 0:
        gs, bs = g / sy, b / sy
    else:
        gs, bs = g[None, :] / sy[:, None], b[None, :] / sy[:, None]
    for gb in range(LN_G_SHIFT_MAX, -1, -1):
        gq = round_half_even_float(np.ldexp(gs, gb))
        bq = round_half_even_float(np.ldexp(bs, gb))
        if int(np.abs(gq).max()) * r + int(np.abs(bq).max()) <= 1 << 31:
            return {"gamma_q": gq, "beta_q": bq,
                    "params": {"eps_q": e, "sqrt_shift": k, "g_shift": gb}}
    raise NumericsError(f"layernorm: gamma / s_y or beta / s_y is too large for the int64 datapath "
                        f"(max |gamma| / s_y = {np.abs(gs).max():.3g}, C = {c})")


def matmul_params(s_a: Any, s_b: Any, s_y: Any, *, alpha: float = 1.0, mult_bits: int = 32,
                  shift_max: int = 63) -> dict[str, Any]:
    """Requantizer of ``a @ b``: ``m = alpha * s_a * s_b / s_y`` (float64, left to right) as ``(M0, sh)``.

    ``s_a``: a scalar or token-wise ``[R]`` (one scale per output row, rows = flattened leading
    dims of the output); ``s_b``: a scalar or ``[C]`` (one per output column, e.g. the token-wise
    scales of ``K`` in ``Q @ K^T``); ``s_y``: a scalar or ``[R]`` (a token-wise output: the scale
    of the row its consumer reads). ``alpha`` folds e.g. ``1 / sqrt(d_head)``. Shapes of
    ``M0/sh``: ``[1]`` (all scalar), ``[C]``, ``[R, 1]`` or ``[R, C]``.

    >>> {k: v.tolist() for k, v in matmul_params(0.5, 0.25, 0.5, mult_bits=8).items()}
    {'M0': [128], 'sh': [9]}
    >>> {k: v.tolist() for k, v in matmul_params(0.5, 0.25, [0.5, 0.25], mult_bits=8).items()}
    {'M0': [[128], [128]], 'sh': [[9], [8]]}
    """
    a = np.asarray(s_a, dtype=np.float64)
    b = np.asarray(s_b, dtype=np.float64)
    y = _out_scales(s_y, "matmul output scale")
    if a.ndim > 1 or b.ndim > 1:
        raise NumericsError(f"matmul scales must be scalars or vectors, got {a.shape} and {b.shape}")
    if a.ndim and y.ndim and a.size != y.size:
        raise NumericsError(f"matmul: {a.size} row scales of a but {y.size} of the output")
    a_col = a.reshape(-1, 1) if a.ndim else a
    y_col = y.reshape(-1, 1) if y.ndim else y
    m = alpha * a_col * (b.reshape(1, -1) if b.ndim else b) / y_col
    m = np.asarray(m, dtype=np.float64)
    if m.ndim == 0:
        m = m.reshape(1)
    elif a.ndim == 0 and y.ndim == 0:
        m = m.reshape(-1)
    m0, sh = quantize_multiplier_vec(m, mult_bits, shift_max)
    return {"M0": m0, "sh": sh}


def quantize_const(c: Any, s: float, z: int, bits: int, signed: bool) -> np.ndarray:
    """``clamp(round_half_even(c / s) + z, qmin, qmax)``: a float constant tensor in a format."""
    s = _scale(s, "constant scale")
    lo, hi = qrange(bits, signed)
    return np.clip(round_half_even_float(np.asarray(c, dtype=np.float64) / s) + z, lo, hi)


def concat_params(s_in: Sequence[float], s_y: float, z_y: int, *, y_bits: int = 8,
                  y_signed: bool = True, const: Any = None, mult_bits: int = 32,
                  shift_max: int = 63) -> dict[str, Any]:
    """Concat constants: ``(M0[i], sh[i]) = quantize_multiplier(s_in[i] / s_y)`` per input, and the
    optional constant tokens ``const[Tc, D]`` (float, e.g. the class token) quantized to the output
    format (:func:`quantize_const`). Returns ``{"M0", "sh"[, "const_q"]}``.
    """
    if len(s_in) not in (1, 2):
        raise NumericsError(f"concat takes one or two inputs, got {len(s_in)} scales")
    s_y = _scale(s_y, "concat output scale")
    ms = [_scale(s, f"concat input {i} scale") / s_y for i, s in enumerate(s_in)]
    m0, sh = quantize_multiplier(ms, mult_bits, shift_max)
    out: dict[str, Any] = {"M0": m0, "sh": sh}
    if const is not None:
        cq = quantize_const(const, s_y, z_y, y_bits, y_signed)
        if cq.ndim != 2:
            raise NumericsError(f"concat constant must be [tokens, features], got {cq.shape}")
        out["const_q"] = cq
    return out


def add_const_params(s_a: float, s_b: float, s_y: float, const: Any, z_b: int, *, bits: int = 8,
                     signed: bool = True, mult_bits: int = 32, shift_max: int = 63) -> dict[str, Any]:
    """Residual add of a constant (position embedding): ``b = const_q = quantize_const(const, s_b,
    z_b, bits, signed)`` (the add's input format) and ``(Ma, Mb, sh)`` from ``s_a / s_y`` and
    ``s_b / s_y`` with one shared shift, as for every add. Returns ``{"M0": [Ma, Mb], "sh": [sh],
    "const_q"}``.
    """
    s_y = _scale(s_y, "add output scale")
    ms = [_scale(s_a, "add input scale") / s_y, _scale(s_b, "add constant scale") / s_y]
    m, sh = quantize_multipliers_shared(ms, mult_bits, shift_max)
    return {"M0": np.array(m, dtype=np.int64), "sh": np.array([sh], dtype=np.int64),
            "const_q": quantize_const(const, s_b, z_b, bits, signed)}
