"""Integer softmax, LayerNorm and GELU of the golden model (docs/numerics.md section 9), NumPy only.

Every op reads integer inputs and the integer constants its record carries (fixed once at fuse
time by :mod:`t2c_sim.quant.nonlinear_params`) and returns int64 outputs; no float is touched.
Two exact primitives beyond :mod:`t2c_sim.numerics` live here:

- :func:`round_div` ``(n, d, mode)``: ``n / d`` for ``d > 0`` rounded on the exact rational, with
  the requantizer's four modes (``round_shift(v, s) == round_div(v, 2^s)``);
- :func:`isqrt`: the exact integer square root ``floor(sqrt(n))`` by Newton's iteration.

Semantics (``x`` is one row along the last axis, ``mode`` the record's rounding mode):

- softmax: ``d = max(x) - x``, ``e = table[d]``, ``S = sum(e)``,
  ``y = clamp(z_y + round_div(e * Mo, S * 2^sho), lo, hi)``;
- layernorm: ``S1 = sum(x)``, ``S2 = sum(x^2)``, ``V = C*S2 - S1^2``,
  ``sigma = max(1, isqrt(V * 4^k + eps_q))``, ``dev = C*x - S1``,
  ``y = clamp(z_y + round_div(G*dev*2^k + B*sigma, sigma * 2^gb), lo, hi)``;
- gelu: ``y = table[x - qmin_x]``.

Token-wise outputs (docs/numerics.md section 8): LayerNorm's ``gamma_q, beta_q`` and GELU's
``table`` may carry one row per input row (``[R, C]``, ``[R, 2^a_bits]``, ``R`` = product of the
input's leading dims); row ``r`` of the input then uses row ``r`` of the constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2c_sim.config import RoundMode
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.numerics import INT64_MAX, as_int64, clamp
from t2c_sim.record import LayerRecord, check_layernorm

__all__ = ["round_div", "bitlen", "isqrt", "softmax", "layernorm", "gelu", "check_input",
           "DIV_LIMIT", "ISQRT_LIMIT"]

DIV_LIMIT = 1 << 62     # round_div needs 0 < d < 2^62 (so that 2 * remainder fits int64)
ISQRT_LIMIT = 1 << 62   # isqrt takes 0 <= n < 2^62


def round_div(n: Any, d: Any, mode: RoundMode | str = RoundMode.HALF_EVEN) -> np.ndarray:
    """``n / d`` rounded per ``mode``, exactly, elementwise on int64 (``0 < d < 2^62``, broadcast).

    With ``q = floor(n / d)`` and ``r = n - q*d`` (``0 <= r < d``): ``half_even``:
    ``q + (2r > d or (2r == d and q odd))``; ``half_up``: ``q + (2r >= d)``; ``half_away``:
    ``q + (2r > d or (2r == d and n >= 0))``; ``floor``: ``q``. For ``d = 2^s`` this is
    ``numerics.round_shift(n, s, mode)``.

    >>> [int(round_div(v, 4, m)) for v in (10, -10) for m in ("half_even", "half_up", "half_away", "floor")]
    [2, 3, 3, 2, -2, -2, -3, -3]
    """
    mode = RoundMode.parse(mode)
    n = as_int64(n, "round_div n")
    d = as_int64(d, "round_div d")
    if d.size and (int(d.min()) <= 0 or int(d.max()) >= DIV_LIMIT):
        raise NumericsError(f"round_div: divisor must be in [1, 2^62), got range "
                            f"[{int(d.min())}, {int(d.max())}]")
    q = np.floor_divide(n, d)
    if mode is RoundMode.FLOOR:
        return q
    r2 = (n - q * d) << 1                     # 2r < 2d < 2^63: no overflow
    if mode is RoundMode.HALF_UP:
        up = r2 >= d
    elif mode is RoundMode.HALF_EVEN:
        up = (r2 > d) | ((r2 == d) & ((q & 1) == 1))
    else:  # HALF_AWAY
        up = (r2 > d) | ((r2 == d) & (n >= 0))
    return q + up.astype(np.int64)


def bitlen(n: Any) -> np.ndarray:
    """Bit length of non-negative int64 values (``0 -> 0``, ``1 -> 1``, ``2^62 -> 63``), integer-only.

    Binary search over shifts 32, 16, 8, 4, 2, 1, then one for the remaining leading bit.
    """
    v = as_int64(n, "bitlen n")
    if v.size and int(v.min()) < 0:
        raise NumericsError("bitlen: negative input")
    out = np.zeros(v.shape, dtype=np.int64)
    v = v.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << s)
        out += big * s
        v = np.where(big, v >> s, v)
    return out + (v > 0)


def isqrt(n: Any) -> np.ndarray:
    """Exact ``floor(sqrt(n))`` elementwise for int64 ``0 <= n < 2^62``, by Newton's iteration.

    ``x_0 = 2^ceil(L/2)`` with ``L = bitlen(n)`` (so ``x_0 >= sqrt(n)``), then
    ``x_{t+1} = floor((x_t + floor(n / x_t)) / 2)`` while it decreases; from any start at or
    above ``floor(sqrt(n))`` the sequence decreases strictly to exactly ``floor(sqrt(n))``, and
    stops there. ``isqrt(0) = 0``.

    >>> isqrt([0, 1, 3, 4, 15, 16, 2**62 - 1]).tolist()
    [0, 1, 1, 2, 3, 4, 2147483647]
    """
    n = as_int64(n, "isqrt n")
    if n.size and (int(n.min()) < 0 or int(n.max()) >= ISQRT_LIMIT):
        raise NumericsError(f"isqrt: input must be in [0, 2^62), got range [{int(n.min())}, "
                            f"{int(n.max())}]")
    x = np.where(n > 0, np.int64(1) << ((bitlen(n) + 1) >> 1), np.int64(0))
    for _ in range(64):  # converges in at most ~7 steps from x_0 < 2 sqrt(n)
        nxt = (x + n // np.maximum(x, 1)) >> 1
        dec = nxt < x
        if not dec.any():
            return x
        x = np.where(dec, nxt, x)
    raise NumericsError("isqrt: Newton iteration did not converge")  # unreachable (see proof)


# ---- ops ---------------------------------------------------------------------------------------
def check_input(rec: LayerRecord, x: Any, rng: tuple[int, int] | None = None,
                what: str = "input") -> np.ndarray:
    """``x`` as int64, checked against ``rng`` (default the record's input format)."""
    try:
        x = as_int64(x, f"layer {rec.name} {what}")
    except NumericsError as e:
        raise RecordError(str(e)) from None
    lo, hi = rec.x_range if rng is None else rng
    if x.size and (int(x.min()) < lo or int(x.max()) > hi):
        raise RecordError(f"layer {rec.name}: {what} outside its integer range [{lo}, {hi}]")
    return x


def _need(rec: LayerRecord, *names: str) -> None:
    for f in names:
        if getattr(rec, f) is None:
            raise RecordError(f"layer {rec.name}: {f} is missing")
    if rec.op.value == "softmax" and not isinstance(rec.params.get("frac_bits"), int):
        raise RecordError(f"layer {rec.name}: params['frac_bits'] is missing")


def _table(rec: LayerRecord, per_row: bool = False) -> np.ndarray:
    _need(rec, "table")
    n = 1 << rec.a_bits
    if rec.table.shape != (n,) and not (per_row and rec.table.ndim == 2 and rec.table.shape[1] == n):
        raise RecordError(f"layer {rec.name}: table has shape {rec.table.shape}, expected "
                          f"({n},){f' or (R, {n})' if per_row else ''} for {rec.a_bits}-bit "
                          f"inputs")
    return rec.table


def _row_count(rec: LayerRecord, x: np.ndarray, rows: int, what: str) -> np.ndarray:
    """``x`` as ``[rows, -1]`` for per-row constants (``rows`` = the constants' first dim)."""
    if x.ndim < 1 or x.size == 0 or x.size % rows or int(np.prod(x.shape[:-1])) != rows:
        raise RecordError(f"layer {rec.name}: {what} has {rows} rows, the input {x.shape} has "
                          f"{int(np.prod(x.shape[:-1])) if x.ndim else 0}")
    return x.reshape(rows, -1)


def _rows(rec: LayerRecord, x: np.ndarray, c: int | None = None) -> None:
    if x.ndim < 1 or x.shape[-1] == 0 or (c is not None and x.shape[-1] != c):
        want = f"[..., {c}]" if c is not None else "[..., T] with T >= 1"
        raise RecordError(f"layer {rec.name}: {rec.op.value} input must be {want}, got {x.shape}")


def softmax(rec: LayerRecord, x: Any) -> np.ndarray:
    """Integer softmax over the last axis (docs/numerics.md section 9, "Softmax").

    ``d = max_j x_j - x_i`` (in ``[0, 2^a_bits - 1]``), ``e_i = table[d_i]`` (``table[d] =
    round_half_even(2^F exp(-s_x d))``, ``table[0] = 2^F``), ``S = sum_j e_j`` (``>= 2^F``),
    ``y_i = clamp(z_y + round_div(e_i * Mo, S * 2^sho, mode), lo, hi)`` with
    ``Mo / 2^sho ~= 1 / s_y``. Example: 2-bit input, ``s_x = ln 2``, ``F = 4`` so
    ``table = [16, 8, 4, 2]``; ``s_y = 1/16`` as ``(Mo, sho) = (128, 3)``; ``x = [1, 0, -2]``
    -> ``e = [16, 8, 2]``, ``S = 26``, ``y = round(e * 16 / 26) = [10, 5, 1]``.
    """
    _need(rec, "M0", "sh", "table")
    table = _table(rec)
    f = rec.params["frac_bits"]
    x = check_input(rec, x)
    _rows(rec, x)
    mo, sho = int(rec.M0.reshape(-1)[0]), int(rec.sh.reshape(-1)[0])
    if int(table[0]) != 1 << f or int(table.min()) < 0 or int(table.max()) > 1 << f:
        raise RecordError(f"layer {rec.name}: softmax table must start at 2^frac_bits = {1 << f} "
                          f"and stay in [0, 2^frac_bits]")
    t = x.shape[-1]
    if (t << f) << sho >= DIV_LIMIT or (1 << f) * mo > INT64_MAX:
        raise NumericsError(f"layer {rec.name}: softmax row of {t} with frac_bits={f}, sho={sho}, "
                            f"Mo={mo} overflows int64 (need T * 2^(F+sho) < 2^62)")
    e = table[x.max(axis=-1, keepdims=True) - x]
    s = e.sum(axis=-1, keepdims=True)
    y = round_div(e * mo, s << sho, rec.mode)
    return clamp(rec.z_y + y, rec.lo, rec.hi)


def layernorm(rec: LayerRecord, x: Any) -> np.ndarray:
    """Integer LayerNorm over the last axis (docs/numerics.md section 9, "LayerNorm").

    Per row of ``C`` values: ``S1 = sum x``, ``S2 = sum x^2``, ``V = C*S2 - S1^2`` (``= C^2 var``,
    exact), ``sigma = max(1, isqrt(V * 4^k + eps_q))`` (``~= 2^k sqrt(C^2 (var + eps/s_x^2))``),
    ``dev_c = C*x_c - S1`` (``= C (x_c - mean)``, exact), then
    ``y_c = clamp(z_y + round_div(G_c*dev_c*2^k + B_c*sigma, sigma*2^gb, mode), lo, hi)``
    (``G_c / 2^gb ~= gamma_c / s_y``, ``B_c / 2^gb ~= beta_c / s_y``; ``k = sqrt_shift``,
    ``gb = g_shift``). The input zero point cancels. Example (docs/numerics.md): ``C = 4``,
    ``x = [1, 2, 3, 6]`` -> ``S1 = 12``, ``V = 4*50 - 144 = 56``, ``dev = [-8, -4, 0, 12]``.
    """
    check_layernorm(rec)     # shapes, params and the bounds that keep every step in int64
    c = rec.c_out
    x = check_input(rec, x)
    _rows(rec, x, c)
    e, k, gb = rec.params["eps_q"], rec.params["sqrt_shift"], rec.params["g_shift"]
    s1 = x.sum(axis=-1, keepdims=True)
    v = c * (x * x).sum(axis=-1, keepdims=True) - s1 * s1
    if v.size and int(v.max()) > (ISQRT_LIMIT - 1 - e) >> (2 * k):
        raise NumericsError(f"layer {rec.name}: C^2 var * 4^{k} + eps_q reaches 2^62")
    sigma = np.maximum(isqrt((v << (2 * k)) + e), 1)
    dev = c * x - s1
    g, b = rec.gamma_q, rec.beta_q
    if g.ndim == 2:                   # token-wise output: row r uses gamma_q[r], beta_q[r]
        shape = x.shape
        dev, sigma = _row_count(rec, dev, g.shape[0], "gamma_q"), sigma.reshape(-1, 1)
        num = (g * dev << k) + b * sigma
        return clamp(rec.z_y + round_div(num, sigma << gb, rec.mode), rec.lo,
                     rec.hi).reshape(shape)
    num = (g * dev << k) + b * sigma
    return clamp(rec.z_y + round_div(num, sigma << gb, rec.mode), rec.lo, rec.hi)


def gelu(rec: LayerRecord, x: Any) -> np.ndarray:
    """Table lookup: ``y = table[x - qmin_x]`` (the table is the output integers, fixed at fuse time);
    a per-row table ``[R, 2^a_bits]`` gives ``y[r, :] = table[r, x[r, :] - qmin_x]``.

    Example: 2-bit signed input (``qmin = -2``), ``table = [0, 0, 0, 1]`` -> ``x = [-2, 1]``
    gives ``y = [0, 1]``.
    """
    table = _table(rec, per_row=True)
    x = check_input(rec, x)
    if table.ndim == 2:                # token-wise output: row r looks up table[r]
        x2 = _row_count(rec, x, table.shape[0], "table")
        return np.take_along_axis(table, x2 - rec.x_range[0], axis=1).reshape(x.shape)
    return table[x - rec.x_range[0]]
