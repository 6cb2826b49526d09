"""The PyTorch integer path: a second, independent implementation of the record semantics.

Same records, same integers as the NumPy golden model (:mod:`t2c_sim.golden`), computed with
int64 torch tensors and no float anywhere; it does NOT use :mod:`t2c_sim.numerics` (so the two
paths cross-check each other). Semantics (SPEC sections 2 and 3):

- MAC: ``acc = wrap(bias_eff + sum_k x[k] * W_q[c, k], ACC_BITS)`` (the exact int64 sum,
  bounded by ``K * max|x| * max|w| + |bias_eff| <= 2^63 - 1`` which is checked, then wrapped
  with ``((v + 2^(b-1)) mod 2^b) - 2^(b-1)``); conv columns are gathered by explicit slicing
  per kernel position (``k = (kh*KW + kw)*C_gp + c``; padding pixels and padding channels hold
  ``z_x``); ``nm_mode="sparse"`` multiplies the compressed ``(values, indices)`` instead.
- Requantizer: ``y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)`` where the product
  is exact: directly in int64 when ``max|acc| * max(M0) < 2^63``, otherwise on two limbs
  ``M0 = Mh * 2^16 + Ml`` (see :func:`mul_round_shift`).
- Rounding profiles of deployed runtimes (SPEC section 10; linear/conv only), written from the
  runtimes' definitions on int64 tensors (see :func:`requantize_profile_t`), independently of
  :mod:`t2c_sim.rounding_profiles`.
- Pools, residual add and flatten as in SPEC section 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from t2c_sim.config import OpKind, RoundMode, RoundProfile, parse_rounding
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.record import LayerRecord
from t2c_sim.verify.torch_nonlinear import TRANSFORMER_OPS_T, const_operand_t, run_transformer_op_t

__all__ = ["round_shift_t", "mul_round_shift", "requantize_t", "requantize_profile_t", "wrap_t",
           "conv2d_t", "linear_t", "run_layer_torch", "run_network_torch"]

I64 = torch.int64
_MAX = (1 << 63) - 1


def _t(a: object) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise NumericsError(f"torch integer path: expected integers, got {t.dtype}")
    return t.to(I64)


def _amax(t: torch.Tensor) -> int:
    return int(t.abs().max()) if t.numel() else 0


def _round_up(q: torch.Tensor, r: torch.Tensor, s: torch.Tensor, neg: torch.Tensor,
              mode: RoundMode) -> torch.Tensor:
    """``q + 1`` where the remainder ``r / 2^s`` (``0 <= r < 2^s``) rounds up under ``mode``."""
    if mode is RoundMode.FLOOR:
        return q
    half = torch.where(s > 0, torch.ones_like(s) << (s - 1).clamp(min=0), torch.zeros_like(s))
    above, tie = r > half, (r == half) & (s > 0)
    if mode is RoundMode.HALF_UP:
        up = above | tie
    elif mode is RoundMode.HALF_EVEN:
        up = above | (tie & (q % 2 == 1))
    else:  # half_away: ties away from zero
        up = above | (tie & ~neg)
    return q + up.to(I64)


def round_shift_t(v: torch.Tensor, s: torch.Tensor | int, mode: RoundMode | str) -> torch.Tensor:
    """``v / 2^s`` rounded per ``mode`` (exact, int64, ``s`` in [0, 63], broadcast).

    ``q = v >> s`` (floor), ``r = v - q * 2^s``; ties: ``half_even`` to even, ``half_up`` to
    +inf, ``half_away`` away from zero, ``floor`` none. Example: ``v = -5, s = 1`` ->
    ``-2, -2, -3, -3`` for half_even, half_up, half_away, floor.
    """
    mode = RoundMode.parse(mode)
    v, s = _t(v), _t(s)
    if s.numel() and (int(s.min()) < 0 or int(s.max()) > 63):
        raise NumericsError("torch round_shift: shift must be in [0, 63]")
    v, s = torch.broadcast_tensors(v, s)
    q = v >> s
    r = v - (q << s)           # in [0, 2^s); two's-complement arithmetic keeps it exact
    return _round_up(q, r, s, v < 0, mode)


def mul_round_shift(acc: torch.Tensor, M0: torch.Tensor, sh: torch.Tensor,
                    mode: RoundMode | str) -> torch.Tensor:
    """``round_shift(acc * M0, sh, mode)`` with the product exact beyond int64.

    Direct when ``max|acc| * max(M0) <= 2^63 - 1``. Otherwise ``M0 = Mh*2^16 + Ml`` and
    ``acc*M0 = T*2^16 + ur`` with ``T = acc*Mh + ((acc*Ml) >> 16)``, ``ur = (acc*Ml) mod 2^16``;
    then for ``sh >= 16``: ``q = T >> (sh-16)``, ``r = (T - q*2^(sh-16))*2^16 + ur``; for
    ``sh < 16``: ``q = T*2^(16-sh) + (ur >> sh)``, ``r = ur mod 2^sh`` (each step bound-checked).
    """
    mode = RoundMode.parse(mode)
    acc, M0, sh = torch.broadcast_tensors(_t(acc), _t(M0), _t(sh))
    if M0.numel() and int(M0.min()) < 0:
        raise NumericsError("torch requantize: M0 must be non-negative")
    if _amax(acc) * _amax(M0) <= _MAX:
        return round_shift_t(acc * M0, sh, mode)
    mh, ml = M0 >> 16, M0 & 0xFFFF
    if _amax(acc) * (_amax(mh) + 1) + 1 > _MAX or (_amax(acc) << 16) > _MAX:
        raise NumericsError("torch requantize: acc * M0 is too wide for the two-limb product")
    u = acc * ml
    big_t = acc * mh + (u >> 16)
    ur = u & 0xFFFF
    hi_s = sh >= 16
    s1 = (sh - 16).clamp(min=0)
    q_hi = big_t >> s1
    r_hi = ((big_t - (q_hi << s1)) << 16) + ur
    s0 = (16 - sh).clamp(min=0)
    if bool((~hi_s).any()) and _amax(big_t[~hi_s]) >= (1 << (47 - int(s0.max()))):
        raise NumericsError("torch requantize: round_shift result does not fit int64")
    q_lo = (big_t << s0) + (ur >> sh.clamp(max=16))
    r_lo = ur & ((torch.ones_like(sh) << sh.clamp(max=16)) - 1)
    q = torch.where(hi_s, q_hi, q_lo)
    r = torch.where(hi_s, r_hi, r_lo)
    return _round_up(q, r, sh, acc < 0, mode)


def requantize_t(acc: torch.Tensor, M0: object, sh: object, z_y: int, lo: int, hi: int,
                 mode: RoundMode | RoundProfile | str) -> torch.Tensor:
    """``clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)`` (params broadcast, channels last).

    A :class:`RoundProfile` ``mode`` goes to :func:`requantize_profile_t`.
    """
    mode = parse_rounding(mode)
    if isinstance(mode, RoundProfile):
        return requantize_profile_t(acc, M0, sh, z_y, lo, hi, mode)
    r = mul_round_shift(acc, _t(M0), _t(sh), mode)
    return torch.clamp(r + int(z_y), int(lo), int(hi))


_POW2 = torch.tensor([1 << i for i in range(63)], dtype=I64)  # 2^0 .. 2^62


def _rne_t(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Non-negative ``v / 2^s`` rounded to nearest, ties to even (``s`` in [0, 62])."""
    q = v >> s
    r = v - (q << s)
    half = torch.where(s > 0, _POW2[(s - 1).clamp(min=0)], torch.zeros_like(s))
    return q + ((s > 0) & ((r > half) | ((r == half) & (q % 2 == 1)))).to(I64)


def _to_f32_t(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IEEE single rounding of non-negative integers ``v < 2^62``: ``(sig, e)``, value ``sig * 2^e``.

    The bit length comes from a search in the table of powers of two; ``e = max(len - 24, 0)``.
    """
    nbits = torch.searchsorted(_POW2, v.contiguous(), right=True)  # powers of two <= v
    e = (nbits - 24).clamp(min=0)
    return _rne_t(v, e), e


def _ort_fp32_t(acc: torch.Tensor, M0: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """ONNX Runtime (MLAS): ``rint_half_even(float32(float32(acc) * (M0 / 2^sh)))`` on integers."""
    a_sig, a_e = _to_f32_t(acc.abs())
    p_sig, p_e = _to_f32_t(a_sig * M0)                   # 25 x 24 bits: exact in int64
    e = a_e + p_e - sh
    up = p_sig << e.clamp(min=0)
    down = _rne_t(p_sig, (-e).clamp(min=0, max=62))
    mag = torch.where(e >= 0, up, down)
    return torch.where(acc < 0, -mag, mag)


def _tflite_double_t(acc: torch.Tensor, M0: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """gemmlowp/TFLite: ``RoundingDivideByPOT(SRDHM(int32(acc << left), M0), right)``."""
    shift = 31 - sh
    x = wrap_t(acc << shift.clamp(min=0), 32)
    ab = x * M0
    nudge = torch.where(ab >= 0, torch.full_like(ab, 1 << 30), torch.full_like(ab, 1 - (1 << 30)))
    hm = torch.div(ab + nudge, 1 << 31, rounding_mode="trunc")
    hm = torch.where((x == -(1 << 31)) & (M0 == -(1 << 31)), torch.full_like(hm, (1 << 31) - 1), hm)
    right = (-shift).clamp(min=0)
    q = hm >> right
    return _round_up(q, hm - (q << right), right, hm < 0, RoundMode.HALF_AWAY)


def requantize_profile_t(acc: torch.Tensor, M0: object, sh: object, z_y: int, lo: int, hi: int,
                         profile: RoundProfile | str) -> torch.Tensor:
    """Requantize under a runtime rounding profile (SPEC section 10), int64 tensors only.

    ``ort_fp32``: ``y = clamp(rne(f32(f32(acc) * M0/2^sh)) + z_y, lo, hi)`` (M0 the float32
    significand, float rounding emulated on integers). ``tflite_double``: with
    ``shift = 31 - sh``, ``y = clamp(int32(RDBPOT(SRDHM(int32(acc * 2^max(shift, 0)), M0),
    max(-shift, 0)) + z_y), lo, hi)``. ``tflite_single``:
    ``y = clamp(int32(int32((acc * M0 + 2^(sh-1)) >> sh) + z_y), lo, hi)``. ``acc`` must fit
    int32. Example (``tflite_double``, ``M0 = 2^30``, ``sh = 32``): ``acc = 5 -> 2``.
    """
    profile = RoundProfile(profile)
    acc, M0, sh = torch.broadcast_tensors(_t(acc), _t(M0), _t(sh))
    if acc.numel() and (int(acc.min()) < -(1 << 31) or int(acc.max()) >= 1 << 31):
        raise NumericsError(f"torch {profile.value}: acc must fit int32")
    lim = ((1 << 23, 1 << 24, 0, 63) if profile is RoundProfile.ORT_FP32 else (1 << 30, 1 << 31, 1, 62))
    ok = (M0 >= lim[0]) & (M0 < lim[1]) & (sh >= lim[2]) & (sh <= lim[3])
    if profile is not RoundProfile.ORT_FP32:
        ok |= (M0 == 0) & (sh == 31)
    if not bool(ok.all()):
        raise NumericsError(f"torch {profile.value}: M0/sh outside the profile's range")
    if profile is RoundProfile.ORT_FP32:
        return torch.clamp(_ort_fp32_t(acc, M0, sh) + int(z_y), int(lo), int(hi))
    if profile is RoundProfile.TFLITE_DOUBLE:
        r = _tflite_double_t(acc, M0, sh)
    else:
        r = wrap_t((acc * M0 + (torch.ones_like(sh) << (sh - 1))) >> sh, 32)
    return torch.clamp(wrap_t(r + int(z_y), 32), int(lo), int(hi))


def wrap_t(v: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to ``bits``: ``((v + 2^(b-1)) mod 2^b) - 2^(b-1)`` (floor mod)."""
    if bits >= 64:
        return v
    half = 1 << (bits - 1)
    return torch.remainder(v + half, 1 << bits) - half


# ---- layers -------------------------------------------------------------------------------
def _check_input(rec: LayerRecord, x: torch.Tensor, what: str = "input") -> None:
    lo, hi = rec.x_range
    if x.numel() and (int(x.min()) < lo or int(x.max()) > hi):
        raise RecordError(f"layer {rec.name}: {what} outside [{lo}, {hi}] (torch path)")


def _weights(rec: LayerRecord) -> torch.Tensor:
    if rec.w_q is not None:
        return _t(rec.w_q)
    if rec.values is None or rec.indices is None:
        raise RecordError(f"layer {rec.name}: needs w_q or values/indices")
    vals, idx = _t(rec.values), _t(rec.indices)
    c, gn = vals.shape
    dense = torch.zeros(c, gn // rec.n, rec.m, dtype=I64)
    dense.scatter_(2, idx.reshape(c, -1, rec.n), vals.reshape(c, -1, rec.n))
    return dense.reshape(c, -1)


def _dot(rec: LayerRecord, cols: torch.Tensor, nm_mode: str) -> torch.Tensor:
    """``cols[G, P, K]`` against the weights -> exact int64 ``[P, C_out]``."""
    g, p, k = cols.shape
    w = _weights(rec)
    bias = _t(rec.bias_eff)
    if k * _amax(cols) * _amax(w) + _amax(bias) > _MAX:
        raise NumericsError(f"layer {rec.name}: the exact sum can overflow int64 (torch path)")
    cog = rec.c_out // g
    if nm_mode == "sparse":
        vals, idx = _t(rec.values), _t(rec.indices)
        base = (torch.arange(k // rec.m, dtype=I64) * rec.m).repeat_interleave(rec.n)
        gather = base[None, :] + idx                                  # [C_out, K/M*N]
        out = torch.empty(p, rec.c_out, dtype=I64)
        for gi in range(g):
            sl = slice(gi * cog, (gi + 1) * cog)
            sel = cols[gi][:, gather[sl]]                              # [P, cog, K/M*N]
            out[:, sl] = (sel * vals[sl][None]).sum(-1)
        return out
    if nm_mode != "dense":
        raise RecordError(f"layer {rec.name}: nm_mode must be 'dense' or 'sparse'")
    wg = w.reshape(g, cog, k)
    return torch.matmul(cols, wg.transpose(1, 2)).transpose(0, 1).reshape(p, rec.c_out)


def _no_profile(rec: LayerRecord) -> None:
    if isinstance(rec.mode, RoundProfile) and (rec.op not in (OpKind.LINEAR, OpKind.CONV2D)
                                               or rec.acc_bits != 32):
        raise RecordError(f"layer {rec.name}: rounding profile {rec.mode.value} is defined for "
                          f"linear/conv2d with acc_bits = 32 only (torch path)")


def _mac_out(rec: LayerRecord, dot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _no_profile(rec)
    acc = wrap_t(dot + _t(rec.bias_eff), rec.acc_bits)
    return acc, requantize_t(acc, rec.M0, rec.sh, rec.z_y, rec.lo, rec.hi, rec.mode)


def _pad_hw(x: torch.Tensor, ph: int, pw: int, value: int) -> torch.Tensor:
    if ph == 0 and pw == 0:
        return x
    b, h, w = x.shape[:3]
    out = torch.full((b, h + 2 * ph, w + 2 * pw) + tuple(x.shape[3:]), value, dtype=I64)
    out[:, ph:ph + h, pw:pw + w] = x
    return out


def _patches(rec: LayerRecord, xp: torch.Tensor, oh: int, ow: int) -> list[torch.Tensor]:
    """Per kernel position ``(r, s)`` in row-major order: ``xp[:, i*sh + r*dh, j*sw + s*dw]``."""
    (sh, sw), (dh, dw) = rec.stride, rec.dilation
    return [xp[:, r * dh: r * dh + (oh - 1) * sh + 1: sh, s * dw: s * dw + (ow - 1) * sw + 1: sw]
            for r in range(rec.kh) for s in range(rec.kw)]


def _out_hw(rec: LayerRecord, h: int, w: int) -> tuple[int, int]:
    oh = (h + 2 * rec.padding[0] - rec.dilation[0] * (rec.kh - 1) - 1) // rec.stride[0] + 1
    ow = (w + 2 * rec.padding[1] - rec.dilation[1] * (rec.kw - 1) - 1) // rec.stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise RecordError(f"layer {rec.name}: input {h}x{w} too small for the window")
    return oh, ow


def conv2d_t(rec: LayerRecord, x: torch.Tensor, nm_mode: str = "dense",
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv on ``x[B, H, W, C_in]`` -> ``(acc, y)[B, OH, OW, C_out]`` (see module docstring)."""
    if x.dim() != 4 or x.shape[3] != rec.c_in:
        raise RecordError(f"layer {rec.name}: conv input must be [B, H, W, {rec.c_in}]")
    b, h, w, _ = x.shape
    g, cg, cgp = rec.groups, rec.c_in_g, rec.c_in_p
    oh, ow = _out_hw(rec, h, w)
    xg = x.reshape(b, h, w, g, cg)
    if cgp > cg:
        xg = torch.cat([xg, torch.full((b, h, w, g, cgp - cg), rec.z_x, dtype=I64)], dim=-1)
    xp = _pad_hw(xg, rec.padding[0], rec.padding[1], rec.z_x)
    cols = torch.stack(_patches(rec, xp, oh, ow), dim=3)            # [B, OH, OW, KHKW, G, Cgp]
    cols = cols.permute(4, 0, 1, 2, 3, 5).reshape(g, b * oh * ow, rec.kh * rec.kw * cgp)
    acc, y = _mac_out(rec, _dot(rec, cols, nm_mode))
    return acc.reshape(b, oh, ow, rec.c_out), y.reshape(b, oh, ow, rec.c_out)


def linear_t(rec: LayerRecord, x: torch.Tensor, nm_mode: str = "dense",
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear on ``x[..., C_in]`` (padded to K with ``z_x``); token-wise params ``[P, C_out]``."""
    if x.dim() < 1 or x.shape[-1] != rec.c_in:
        raise RecordError(f"layer {rec.name}: linear input must be [..., {rec.c_in}]")
    lead = x.shape[:-1]
    x2 = x.reshape(-1, rec.c_in)
    if rec.k > rec.c_in:
        x2 = torch.cat([x2, torch.full((x2.shape[0], rec.k - rec.c_in), rec.z_x, dtype=I64)], 1)
    acc, y = _mac_out(rec, _dot(rec, x2[None], nm_mode))
    return acc.reshape(*lead, rec.c_out), y.reshape(*lead, rec.c_out)


def _pool(rec: LayerRecord, x: torch.Tensor, fill: int) -> list[torch.Tensor]:
    if x.dim() != 4:
        raise RecordError(f"layer {rec.name}: pool input must be [B, H, W, C]")
    oh, ow = _out_hw(rec, x.shape[1], x.shape[2])
    return _patches(rec, _pad_hw(x, rec.padding[0], rec.padding[1], fill), oh, ow)


def run_layer_torch(rec: LayerRecord, *inputs: object, nm_mode: str = "dense",
                    ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Execute one record on int64 torch tensors: ``(acc or None, y)``.

    Inputs default to ``rec.x_q`` (and ``rec.b_q``); a residual add takes ``(a, b)``.
    """
    if not inputs:
        if rec.x_q is None:
            raise RecordError(f"layer {rec.name}: no input and no x_q")
        inputs = (rec.x_q,) if rec.b_q is None else (rec.x_q, rec.b_q)
    if rec.op in TRANSFORMER_OPS_T:   # matmul, softmax, layernorm, gelu, concat, reshape, slice
        return run_transformer_op_t(rec, *inputs)
    xs = [_t(a) for a in inputs]
    if rec.op is OpKind.ADD and rec.const_q is not None:   # b = const_q (position embedding)
        if len(xs) != 1:
            raise RecordError(f"layer {rec.name}: an add with const_q takes 1 input (torch path)")
        xs.append(const_operand_t(rec, xs[0]))
    want = 2 if rec.op is OpKind.ADD else 1
    if len(xs) != want:
        raise RecordError(f"layer {rec.name}: {rec.op.value} takes {want} input(s)")
    for i, x in enumerate(xs):
        _check_input(rec, x, f"input {i}")
    x = xs[0]
    _no_profile(rec)
    if rec.op is OpKind.CONV2D:
        return conv2d_t(rec, x, nm_mode)
    if rec.op is OpKind.LINEAR:
        return linear_t(rec, x, nm_mode)
    if rec.op is OpKind.MAXPOOL:
        pats = _pool(rec, x, rec.x_range[0])
        y = pats[0]
        for p in pats[1:]:
            y = torch.maximum(y, p)
        return None, y.clone()
    if rec.op in (OpKind.AVGPOOL, OpKind.GAVGPOOL):
        if rec.op is OpKind.GAVGPOOL:
            acc = x.sum(dim=(1, 2), keepdim=True) - x.shape[1] * x.shape[2] * rec.z_x
        else:
            acc = torch.stack(_pool(rec, x, rec.z_x)).sum(0) - rec.kh * rec.kw * rec.z_x
        m0, s = _t(rec.M0).reshape(-1)[:1], _t(rec.sh).reshape(-1)[:1]
        return acc, requantize_t(acc, m0, s, rec.z_y, rec.lo, rec.hi, rec.mode)
    if rec.op is OpKind.ADD:
        a, b = xs
        if a.shape != b.shape:
            raise RecordError(f"layer {rec.name}: add inputs differ in shape")
        ma, mb = (int(v) for v in _t(rec.M0).reshape(-1))
        da, db = a - rec.z_x, b - rec.z_b
        if ma * _amax(da) + mb * _amax(db) > _MAX:
            raise NumericsError(f"layer {rec.name}: add sum can overflow int64 (torch path)")
        v = ma * da + mb * db
        r = round_shift_t(v, _t(rec.sh).reshape(-1)[0], rec.mode)
        return None, torch.clamp(r + rec.z_y, rec.lo, rec.hi)
    if rec.op is OpKind.FLATTEN:
        return None, x.reshape(x.shape[0], -1)
    raise RecordError(f"layer {rec.name}: unsupported op {rec.op!r} (torch path)")


def run_network_torch(records: Sequence[LayerRecord], x: object, nm_mode: str = "dense",
                      ) -> dict[str, tuple[torch.Tensor | None, torch.Tensor]]:
    """Run ``records`` in order from the network input ``x``: ``{name: (acc, y)}`` (ordered)."""
    outs: dict[str, tuple[torch.Tensor | None, torch.Tensor]] = {}
    x0 = _t(x)
    for rec in records:
        args = []
        for src in rec.inputs:
            if src == "input":
                args.append(x0)
            elif src in outs:
                args.append(outs[src][1])
            else:
                raise RecordError(f"layer {rec.name}: unknown input {src!r} (torch path)")
        outs[rec.name] = run_layer_torch(rec, *args, nm_mode=nm_mode)
    return outs

