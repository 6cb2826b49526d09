"""Integer primitives of the numerics contract (SPEC section 2): the only owner of rounding.

Everything here is exact. Array inputs are converted to ``int64``; a computation whose exact
result does not fit ``int64`` either falls back to Python integers (``requantize``) or raises
:class:`NumericsError` naming the argument. Floats appear only in :func:`quantize_multiplier`
and :func:`round_half_even_float`, which the fuse step calls once to turn scales into integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from t2c_sim.config import RoundMode, qrange
from t2c_sim.errors import NumericsError

__all__ = [
    "INT64_MAX", "INT64_MIN", "as_int64", "clamp", "qrange", "wrap", "round_shift",
    "requantize", "quantize_multiplier", "quantize_multipliers_shared", "round_half_even_float",
    "relu_bounds", "check_range",
]

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
SHIFT_LIMIT = 63  # shifts are in [0, 63]


def as_int64(x: Any, name: str = "value") -> np.ndarray:
    """Convert an integer array-like to ``int64`` without losing anything.

    Raises :class:`NumericsError` for floats, bools, or values outside int64.
    """
    a = np.asarray(x)
    if a.dtype == np.int64:
        return a
    if a.dtype.kind in "iu":
        if a.dtype == np.uint64 and a.size and int(a.max()) > INT64_MAX:
            raise NumericsError(f"{name}: value {int(a.max())} does not fit int64")
        return a.astype(np.int64)
    if a.dtype == object:
        flat = a.ravel()
        for v in flat:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise NumericsError(f"{name}: expected integers, got {type(v).__name__}")
            if not INT64_MIN <= int(v) <= INT64_MAX:
                raise NumericsError(f"{name}: value {int(v)} does not fit int64")
        return np.array([int(v) for v in flat], dtype=np.int64).reshape(a.shape)
    raise NumericsError(f"{name}: expected an integer array, got dtype {a.dtype}")


def clamp(v: Any, lo: Any, hi: Any) -> np.ndarray:
    """``min(max(v, lo), hi)`` elementwise on int64.

    ``clamp([-500, 3, 300], -128, 127) -> [-128, 3, 127]``.
    """
    v = as_int64(v, "v")
    lo_a, hi_a = as_int64(lo, "lo"), as_int64(hi, "hi")
    if np.any(lo_a > hi_a):
        raise NumericsError("clamp: lo > hi")
    return np.minimum(np.maximum(v, lo_a), hi_a)


def wrap(v: Any, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits (1..64): ``((v + 2^(b-1)) mod 2^b) - 2^(b-1)``.

    >>> int(wrap(2**31, 32)), int(wrap(-2**31 - 1, 32))
    (-2147483648, 2147483647)
    """
    v = as_int64(v, "v")
    if not 1 <= bits <= 64:
        raise NumericsError(f"wrap: bits must be in 1..64, got {bits}")
    if bits == 64:
        return v.copy()
    sh = np.int64(64 - bits)
    # Shift the low `bits` bits to the top and arithmetic-shift back: exact sign extension.
    return np.left_shift(v, sh) >> sh


def check_range(v: Any, bits: int, signed: bool, name: str) -> np.ndarray:
    """Return ``v`` as int64, raising :class:`NumericsError` if any element is outside the range."""
    v = as_int64(v, name)
    lo, hi = qrange(bits, signed)
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        bad = np.flatnonzero((v < lo) | (v > hi))[0]
        raise NumericsError(
            f"{name}: element {np.unravel_index(bad, v.shape)} = {int(v.ravel()[bad])} is outside "
            f"the {'signed' if signed else 'unsigned'} {bits}-bit range [{lo}, {hi}]")
    return v


def _check_shift(s: np.ndarray) -> None:
    if s.size and (int(s.min()) < 0 or int(s.max()) > SHIFT_LIMIT):
        raise NumericsError(f"shift must be in [0, {SHIFT_LIMIT}], got range "
                            f"[{int(s.min())}, {int(s.max())}]")


def round_shift(v: Any, s: Any, mode: RoundMode | str = RoundMode.HALF_EVEN) -> np.ndarray:
    """Divide by ``2**s`` and round, exactly, elementwise on int64 (``s`` in [0, 63], broadcast).

    With ``q = floor(v / 2^s)`` and ``r = v - q * 2^s`` (``0 <= r < 2^s``), ``h = 2^(s-1)``:

    - ``half_even``: ``q + (r > h or (r == h and q odd))``  (ties to even)
    - ``half_up``:   ``q + (r >= h)``                     (ties toward +inf, ``(v + h) >> s``)
    - ``half_away``: ``q + (r > h or (r == h and v >= 0))`` (ties away from zero)
    - ``floor``:     ``q``                                 (``v >> s``)

    For ``s = 0`` every mode returns ``v``. The result never overflows (``|result| <= |v|/2 + 1``).

    >>> [int(round_shift(v, 1, m)) for v in (5, -5) for m in ("half_even", "half_up", "half_away", "floor")]
    [2, 3, 3, 2, -2, -2, -3, -3]
    """
    mode = RoundMode.parse(mode)
    v = as_int64(v, "v")
    s = as_int64(s, "s")
    _check_shift(s)
    if v.size and s.size:
        hmax = 1 << max(int(s.max()) - 1, 0)
        if int(v.max()) <= INT64_MAX - hmax and int(v.min()) >= INT64_MIN + hmax:
            return _round_shift_biased(v, s, mode)
    return _round_shift_masked(v, s, mode)


def _shift_consts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``h = 2^(s-1)`` (0 for s = 0) and ``nz = -1 if s > 0 else 0``, on the (small) shift array."""
    one = np.int64(1)
    h = np.where(s > 0, np.left_shift(one, np.maximum(s - one, 0)), np.int64(0))
    nz = -(s > 0).astype(np.int64)
    return h, nz


def _round_shift_biased(v: np.ndarray, s: np.ndarray, mode: RoundMode, *,
                        inplace: bool = False,
                        consts: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Fast path: one biased arithmetic shift, ``(v + bias) >> s``; needs ``|v| + 2^(s-1)`` in int64.

    With ``q = v >> s`` and ``h = 2^(s-1)`` (``s >= 1``; ``s = 0`` gets ``bias = 0``):
    ``half_up``: ``bias = h``; ``half_even``: ``bias = h - 1 + (q & 1)``;
    ``half_away``: ``bias = h - (v < 0)``; ``floor``: ``bias = 0``. Each equals the masked
    definition in :func:`round_shift` (``r = v mod 2^s`` falls below ``2^s`` exactly when the
    corresponding comparison against ``h`` fails). Constants are computed on ``s`` before
    broadcasting, and the work is done in one buffer (``v`` itself when ``inplace`` and the
    shapes allow): fresh large temporaries cost more in page faults than the arithmetic.
    """
    shape = np.broadcast_shapes(v.shape, s.shape)
    if inplace and v.shape == shape and v.flags.writeable:
        t = v
    else:
        t = np.empty(shape, dtype=np.int64)
        t[...] = v
    if mode is RoundMode.FLOOR:
        t >>= s
        return t
    h, nz = _shift_consts(s) if consts is None else consts
    if mode is RoundMode.HALF_UP:
        t += h
    elif mode is RoundMode.HALF_EVEN:
        q_odd = (t >> s) & (nz & 1)  # (q & 1) where s > 0, else 0 (computed before t changes)
        t += h + nz                  # h - 1 where s > 0, else 0
        t += q_odd
    else:  # HALF_AWAY: h - 1 for negative v (s > 0), h otherwise
        neg = (t >> 63) & nz
        t += h
        t += neg
    t >>= s
    return t


def _round_shift_masked(v: np.ndarray, s: np.ndarray, mode: RoundMode) -> np.ndarray:
    """General path, valid over all of int64: quotient plus a rounding increment."""
    v, s = np.broadcast_arrays(v, s)
    q = v >> s
    if mode is RoundMode.FLOOR:
        return q.copy()
    one = np.int64(1)
    # 2^s - 1; computed without ever forming 2^63 (which does not fit int64)
    mask = np.where(s >= 63, np.int64(INT64_MAX), np.left_shift(one, np.minimum(s, 62)) - one)
    r = v & mask                                 # v mod 2^s, in [0, 2^s)
    h = np.where(s > 0, np.left_shift(one, np.maximum(s - one, 0)), 0)
    nz = s > 0
    if mode is RoundMode.HALF_UP:
        up = r >= h
    elif mode is RoundMode.HALF_EVEN:
        up = (r > h) | ((r == h) & ((q & one) == one))
    else:  # HALF_AWAY
        up = (r > h) | ((r == h) & (v >= 0))
    return q + (up & nz).astype(np.int64)


def _round_shift_pyint(v: int, s: int, mode: RoundMode) -> int:
    """Same formulas as :func:`round_shift` on one Python int (used beyond int64)."""
    q = v >> s
    if s == 0 or mode is RoundMode.FLOOR:
        return q
    r = v - (q << s)
    h = 1 << (s - 1)
    if mode is RoundMode.HALF_UP:
        return q + (r >= h)
    if mode is RoundMode.HALF_EVEN:
        return q + (r > h or (r == h and q & 1 == 1))
    return q + (r > h or (r == h and v >= 0))


def requantize(acc: Any, M0: Any, sh: Any, z_y: Any, lo: Any, hi: Any,
               mode: RoundMode | str = RoundMode.HALF_EVEN, *,
               acc_bound: int | None = None) -> np.ndarray:
    """Requantize accumulators: ``y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)``.

    ``acc * M0`` is exact: computed in int64 when ``max|acc| * max(M0)`` fits, otherwise in
    Python integers (same result, slower). Per-channel parameters broadcast against ``acc``
    (put channels last). Widths: ``acc`` any int64, ``M0 >= 0``, ``sh`` in [0, 63].
    ``acc_bound``: optional proven bound ``max|acc| <= acc_bound`` supplied by a caller that
    already knows it (e.g. ``2^(ACC_BITS-1)`` after a wrap); it only skips the scan of ``acc``
    that picks the int64 path, so it must be a true bound.

    >>> int(requantize(100, 3 << 29, 31, 0, -128, 127))   # 100 * 0.75 = 75
    75
    >>> int(requantize(-6, 1, 2, 10, 0, 255, "half_away"))  # -1.5 -> -2, + 10
    8
    """
    mode = RoundMode.parse(mode)
    acc = as_int64(acc, "acc")
    M0 = as_int64(M0, "M0")
    sh = as_int64(sh, "sh")
    _check_shift(sh)
    if M0.size and int(M0.min()) < 0:
        raise NumericsError("M0 must be non-negative")
    if acc.size == 0:
        return np.broadcast_arrays(acc, M0, sh)[0].copy()
    if acc_bound is None:
        max_acc = max(-int(acc.min()), int(acc.max()))
    elif isinstance(acc_bound, (int, np.integer)) and acc_bound >= 0:
        max_acc = int(acc_bound)
    else:
        raise NumericsError(f"acc_bound must be a non-negative int, got {acc_bound!r}")
    max_m = int(M0.max()) if M0.size else 0
    hmax = 1 << max(int(sh.max()) - 1, 0) if sh.size else 0
    lo_a, hi_a, z = as_int64(lo, "lo"), as_int64(hi, "hi"), as_int64(z_y, "z_y")
    if np.any(lo_a > hi_a):
        raise NumericsError("requantize: lo > hi")
    zmax = max(-int(z.min()), int(z.max())) if z.size else 0
    bound = max_acc * max_m  # >= |acc * M0| for every element
    if bound + hmax <= INT64_MAX and (bound >> min(int(sh.min()), 62)) + zmax + 1 <= INT64_MAX:
        # |acc * M0| + 2^(sh-1) fits int64: one biased shift per element, then z_y and the clamp.
        return _requantize_fast(acc, M0, sh, z, lo_a, hi_a, mode)
    # Beyond int64: the same formulas on Python integers, element by element.
    arrs = np.broadcast_arrays(acc, M0, sh, z, lo_a, hi_a)
    out = [min(max(int(z) + _round_shift_pyint(int(a) * int(m), int(s), mode), int(lo_)), int(hi_))
           for a, m, s, z, lo_, hi_ in zip(*(x.ravel() for x in arrs))]
    return np.array(out, dtype=np.int64).reshape(arrs[0].shape)


_BLOCK_ELEMS = 1 << 16  # 512 KiB of int64 per block (measured: fewer calls beat smaller temporaries)


def _requantize_fast(acc: np.ndarray, M0: np.ndarray, sh: np.ndarray, z: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, mode: RoundMode) -> np.ndarray:
    """int64 requantize when ``|acc*M0| + 2^(sh-1)`` and ``z_y + result`` fit (checked by caller).

    Works in blocks along the leading axis, writing into one output array: large fresh int64
    temporaries cost more (page faults) than the arithmetic on them.
    """
    params = (M0, sh, z, lo, hi)
    if acc.ndim > 2 and all(a.ndim <= 1 for a in params):
        # per-channel (last axis) parameters: block over all leading axes at once
        flat = _requantize_fast(acc.reshape(-1, acc.shape[-1]), M0, sh, z, lo, hi, mode)
        return flat.reshape(np.broadcast_shapes(acc.shape, *(a.shape for a in params)))
    args = (acc, *params)
    shape = np.broadcast_shapes(*(a.shape for a in args))
    out = np.empty(shape, dtype=np.int64)
    nd = len(shape)
    rows = shape[0] if nd else 1
    row_elems = max(1, out.size // max(rows, 1))
    step = max(1, _BLOCK_ELEMS // row_elems)
    # Arrays that span the leading axis are sliced per block; the others broadcast unchanged.
    spans = [nd > 0 and a.ndim == nd and a.shape[0] == rows and rows > 1 for a in args]
    consts = None if spans[2] else _shift_consts(sh)  # per-channel shifts: constants once
    for r0 in range(0, rows, step) if nd else [None]:
        sl = slice(r0, r0 + step) if r0 is not None else Ellipsis
        a_, m_, s_, z_, lo_, hi_ = (a[sl] if sp else a for a, sp in zip(args, spans))
        t = _round_shift_biased(a_ * m_, s_, mode, inplace=True, consts=consts)
        if np.broadcast_shapes(t.shape, z_.shape) == t.shape:
            t += z_
        else:
            t = t + z_
        np.clip(t, lo_, hi_, out=out[sl])
    return out


def round_half_even_float(x: Any) -> np.ndarray:
    """Round floats to the nearest integer, ties to even (like ``torch.round``), as int64.

    Used only at the float-to-integer boundary (fuse). Raises on NaN/inf or beyond int64.
    ``round_half_even_float([0.5, 1.5, -2.5]) -> [0, 2, -2]``.
    """
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise NumericsError("cannot round a NaN or infinite value to an integer")
    r = np.rint(a)
    if a.size and (r.max() >= 2.0**63 or r.min() < -(2.0**63)):
        raise NumericsError("rounded value does not fit int64")
    return r.astype(np.int64)


def _check_multiplier(m: float, mult_bits: int, what: str) -> None:
    if not math.isfinite(m):
        raise NumericsError(f"{what}: real multiplier is not finite ({m!r})")
    if m <= 0.0:
        raise NumericsError(f"{what}: real multiplier must be > 0, got {m!r}")
    if m >= float(1 << mult_bits):
        raise NumericsError(f"{what}: real multiplier {m!r} >= 2^{mult_bits}")


def _quantize_one(m: float, mult_bits: int, shift_max: int, what: str) -> tuple[int, int]:
    _check_multiplier(m, mult_bits, what)
    _, e = math.frexp(m)                  # m = f * 2^e, f in [0.5, 1)
    sh = min(shift_max, mult_bits - e)    # m * 2^sh = f * 2^(mult_bits) < 2^mult_bits at most
    M0 = int(np.rint(math.ldexp(m, sh)))  # exact: scaling by 2^sh is exact, rint is half-even
    if M0 >= 1 << mult_bits:
        if sh == 0:
            raise NumericsError(f"{what}: real multiplier {m!r} rounds to 2^{mult_bits} even at "
                                f"shift 0 (M0 needs more than {mult_bits} bits)")
        sh -= 1
        M0 = int(np.rint(math.ldexp(m, sh)))
    if M0 == 0:
        raise NumericsError(f"{what}: real multiplier {m!r} rounds to M0 = 0 at the largest "
                            f"shift {shift_max}")
    return M0, sh


def quantize_multiplier(m: Any, mult_bits: int = 32, shift_max: int = 63,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Turn real multipliers into ``(M0, sh)`` with ``M0 / 2^sh ~= m`` (SPEC section 2).

    ``M0`` is unsigned with ``mult_bits`` bits, ``sh`` in ``[0, shift_max]``: the largest ``sh``
    such that ``M0 = round_half_even(m * 2^sh) < 2^mult_bits``. ``m`` is float64 (scalar or
    array; the result has its shape). Errors: ``m <= 0``, not finite, ``m >= 2^mult_bits``,
    or ``M0 == 0`` at ``shift_max``.

    >>> quantize_multiplier(0.75, mult_bits=8)
    (array(192), array(8))
    """
    if not 1 <= mult_bits <= 62:
        raise NumericsError(f"mult_bits must be in 1..62, got {mult_bits}")
    if not 0 <= shift_max <= SHIFT_LIMIT:
        raise NumericsError(f"shift_max must be in 0..{SHIFT_LIMIT}, got {shift_max}")
    a = np.asarray(m, dtype=np.float64)
    pairs = [_quantize_one(float(v), mult_bits, shift_max, f"multiplier[{i}]")
             for i, v in enumerate(a.ravel())]
    M0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(a.shape)
    sh = np.array([p[1] for p in pairs], dtype=np.int64).reshape(a.shape)
    return M0, sh


def quantize_multipliers_shared(ms: Sequence[float], mult_bits: int = 32, shift_max: int = 63,
                                ) -> tuple[list[int], int]:
    """Quantize several real multipliers with one shared shift (residual add, SPEC section 3).

    ``sh`` is the largest shift in ``[0, shift_max]`` at which every
    ``round_half_even(m_i * 2^sh) < 2^mult_bits``; returns ``([M_i], sh)``. Errors as in
    :func:`quantize_multiplier`; an ``M_i`` that rounds to 0 is an error.

    >>> quantize_multipliers_shared([0.5, 1.5], mult_bits=8)
    ([64, 192], 7)
    """
    vals = [float(v) for v in ms]
    sh = shift_max
    for i, v in enumerate(vals):
        sh = min(sh, _quantize_one(v, mult_bits, shift_max, f"multiplier[{i}]")[1])
    out = [int(np.rint(math.ldexp(v, sh))) for v in vals]
    for i, q in enumerate(out):
        if q == 0:
            raise NumericsError(f"multiplier[{i}] = {vals[i]!r} rounds to 0 at the shared shift {sh}")
    return out, sh


def relu_bounds(bits: int, signed: bool, z_y: int, act: str | None = None,
                six_q: int | None = None) -> tuple[int, int]:
    """Output clamp bounds ``(lo, hi)`` for an activation fused into the requantizer.

    ``None``: ``[qmin, qmax]``; ``relu``: ``lo = max(qmin, z_y)``; ``relu6``: also
    ``hi = min(qmax, z_y + six_q)`` where ``six_q = round_half_even(6 / s_y)`` (computed by fuse).
    """
    lo, hi = qrange(bits, signed)
    if act in (None, "none", "identity"):
        return lo, hi
    if act == "relu":
        return max(lo, z_y), hi
    if act == "relu6":
        if six_q is None:
            raise NumericsError("relu6 bounds need six_q = round_half_even(6 / s_y)")
        return max(lo, z_y), min(hi, z_y + six_q)
    raise NumericsError(f"unknown fused activation {act!r} (expected relu or relu6)")
