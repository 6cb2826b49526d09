"""Integer definitions of the transformer ops on int64 torch tensors (docs/numerics.md 7-10).

The PyTorch twin of :mod:`t2c_sim.golden.nonlinear`, written without :mod:`t2c_sim.numerics`
or the golden model so that the two cross-check each other bit for bit. It serves twice: the
fake-quant modules (:mod:`t2c_sim.quant.nonlinear`) run their forward through it, and the
PyTorch integer path (:mod:`t2c_sim.verify.torch_nonlinear`) runs records through it. Kernels
take int64 tensors and plain ints (the record's constants), never floats, and raise
:class:`~t2c_sim.errors.NumericsError` when an intermediate could leave int64.
"""

from __future__ import annotations

import torch

from t2c_sim.config import RoundMode
from t2c_sim.errors import NumericsError

__all__ = ["round_div_t", "bitlen_t", "isqrt_t", "requant_t", "softmax_int_t", "layernorm_int_t",
           "lookup_t"]

I64 = torch.int64
_MAX = (1 << 63) - 1
_LIMIT = 1 << 62


def _amax(t: torch.Tensor) -> int:
    return int(t.abs().max()) if t.numel() else 0


def _up(q: torch.Tensor, above: torch.Tensor, tie: torch.Tensor, nonneg: torch.Tensor,
        mode: RoundMode) -> torch.Tensor:
    """``q`` plus the rounding increment: ``above`` (remainder > half), ``tie`` (== half)."""
    if mode is RoundMode.FLOOR:
        return q
    if mode is RoundMode.HALF_UP:
        up = above | tie
    elif mode is RoundMode.HALF_EVEN:
        up = above | (tie & (torch.remainder(q, 2) == 1))
    else:  # half_away
        up = above | (tie & nonneg)
    return q + up.to(I64)


def round_div_t(n: torch.Tensor, d: torch.Tensor | int, mode: RoundMode | str) -> torch.Tensor:
    """``n / d`` (``0 < d < 2^62``) rounded on the exact rational: ``q = floor(n/d)``,
    ``r = n - q*d``; up when ``2r > d``, ties (``2r == d``) per ``mode`` (half_even: to even
    ``q + 1``; half_up: always; half_away: when ``n >= 0``; floor: never).
    Example: ``n = [10, -10]``, ``d = 4``, half_even -> ``[2, -2]``.
    """
    mode = RoundMode.parse(mode)
    d = torch.as_tensor(d, dtype=I64)
    if d.numel() and (int(d.min()) <= 0 or int(d.max()) >= _LIMIT):
        raise NumericsError("torch round_div: divisor must be in [1, 2^62)")
    q = torch.div(n, d, rounding_mode="floor")
    r2 = (n - q * d) * 2
    return _up(q, r2 > d, r2 == d, n >= 0, mode)


def bitlen_t(n: torch.Tensor) -> torch.Tensor:
    """Bit length of non-negative int64 values (0 -> 0, 2^62 -> 63), by a binary search on shifts."""
    v = n.clone()
    out = torch.zeros_like(v)
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (1 << s)
        out = out + big.to(I64) * s
        v = torch.where(big, v >> s, v)
    return out + (v > 0).to(I64)


def isqrt_t(n: torch.Tensor) -> torch.Tensor:
    """Exact ``floor(sqrt(n))`` for ``0 <= n < 2^62``: Newton ``x <- (x + n // x) // 2`` from
    ``2^ceil(bitlen(n)/2)`` while it decreases (the golden model's definition)."""
    if n.numel() and (int(n.min()) < 0 or int(n.max()) >= _LIMIT):
        raise NumericsError("torch isqrt: input must be in [0, 2^62)")
    one = torch.ones_like(n)
    x = torch.where(n > 0, one << ((bitlen_t(n) + 1) >> 1), torch.zeros_like(n))
    for _ in range(64):
        nxt = (x + torch.div(n, torch.clamp(x, min=1), rounding_mode="floor")) >> 1
        dec = nxt < x
        if not bool(dec.any()):
            return x
        x = torch.where(dec, nxt, x)
    raise NumericsError("torch isqrt: Newton iteration did not converge")


def requant_t(v: torch.Tensor, m0: torch.Tensor, sh: torch.Tensor, z_y: int, lo: int, hi: int,
              mode: RoundMode | str) -> torch.Tensor:
    """``clamp(z_y + round(v * M0 / 2^sh), lo, hi)`` (``sh`` in [0, 63], parameters broadcast).

    ``v * M0`` must fit int64 (true for 32-bit accumulators and 32-bit ``M0``); otherwise
    :class:`NumericsError`. Rounding: ``q = p >> sh``, ``r = p - q*2^sh`` against ``h = 2^(sh-1)``.
    """
    mode = RoundMode.parse(mode)
    m0, sh = torch.as_tensor(m0, dtype=I64), torch.as_tensor(sh, dtype=I64)
    if sh.numel() and (int(sh.min()) < 0 or int(sh.max()) > 63):
        raise NumericsError("torch requantize: shift must be in [0, 63]")
    if _amax(v) * _amax(m0) > _MAX:
        raise NumericsError(f"torch requantize: |v| * M0 up to {_amax(v) * _amax(m0)} does not fit "
                            "int64 (accumulator or multiplier wider than 32 bits)")
    p = v * m0
    p, s = torch.broadcast_tensors(p, sh)
    q = p >> s
    r = p - (q << s)                                   # in [0, 2^s), exact in two's complement
    half = torch.where(s > 0, torch.ones_like(s) << (s - 1).clamp(min=0), torch.zeros_like(s))
    pos = s > 0
    y = _up(q, pos & (r > half), pos & (r == half), p >= 0, mode)
    return torch.clamp(y + int(z_y), int(lo), int(hi))


def softmax_int_t(x: torch.Tensor, table: torch.Tensor, frac_bits: int, mo: int, sho: int,
                  z_y: int, lo: int, hi: int, mode: RoundMode | str) -> torch.Tensor:
    """Integer softmax over the last axis: ``e = table[max(x) - x]``, ``S = sum(e)``,
    ``y = clamp(z_y + round_div(e * Mo, S * 2^sho), lo, hi)`` (table[0] = 2^frac_bits)."""
    t = x.shape[-1]
    if t == 0:
        raise NumericsError("torch softmax: empty rows")
    if (t << frac_bits) << sho >= _LIMIT or (1 << frac_bits) * mo > _MAX:
        raise NumericsError(f"torch softmax: T={t}, frac_bits={frac_bits}, sho={sho}, Mo={mo} "
                            "overflow int64")
    e = table[x.amax(dim=-1, keepdim=True) - x]
    s = e.sum(dim=-1, keepdim=True)
    return torch.clamp(z_y + round_div_t(e * mo, s << sho, mode), lo, hi)


def layernorm_int_t(x: torch.Tensor, gamma_q: torch.Tensor, beta_q: torch.Tensor, eps_q: int,
                    k: int, gb: int, z_y: int, lo: int, hi: int,
                    mode: RoundMode | str) -> torch.Tensor:
    """Integer LayerNorm over the last axis (``C`` channels):
    ``V = C*sum(x^2) - sum(x)^2``, ``sigma = max(1, isqrt(V * 4^k + eps_q))``,
    ``y = clamp(z_y + round_div(G*(C*x - sum x)*2^k + B*sigma, sigma*2^gb), lo, hi)``.

    The caller guarantees the record's bounds (``max|G| ceil(sqrt(C-1)) + max|B| <= 2^31``,
    ``C^2 max|x|^2 < 2^62``); ``V * 4^k + eps_q < 2^62`` is checked here on the data.
    """
    c = x.shape[-1]
    s1 = x.sum(dim=-1, keepdim=True)
    v = c * (x * x).sum(dim=-1, keepdim=True) - s1 * s1
    if v.numel() and int(v.max()) > ((_LIMIT - 1 - eps_q) >> (2 * k)):
        raise NumericsError(f"torch layernorm: C^2 var * 4^{k} + eps_q reaches 2^62")
    sigma = torch.clamp(isqrt_t((v << (2 * k)) + eps_q), min=1)
    num = ((gamma_q * (c * x - s1)) << k) + beta_q * sigma
    return torch.clamp(z_y + round_div_t(num, sigma << gb, mode), lo, hi)


def lookup_t(x: torch.Tensor, table: torch.Tensor, qmin: int) -> torch.Tensor:
    """``y = table[x - qmin]`` (GELU and any other table op)."""
    return table[x - qmin]
