"""Transformer ops of the golden model (docs/numerics.md sections 7-10), NumPy only.

- :func:`matmul`: activation x activation matmul with both zero points (``Q @ K^T``,
  ``attn @ V``; SPEC 7), per-tensor, per-column or token-wise (per-row) requantization (SPEC 8);
- :func:`concat`: concat along any non-batch axis (``params["axis"]``, default -2 = tokens;
  channels of a channel-last feature map: -1) with every input requantized to the output
  format (docs/numerics.md section 3), after an optional constant (class token) already in that
  format;
- :func:`const_operand`: the constant operand ``b`` of a one-input residual add (position
  embedding), broadcast over the leading axes;
- :func:`reshape`, :func:`slice_axis`: data movement (heads, class-token readout);
- :func:`run_transformer_op` dispatches these and the non-linear ops of
  :mod:`t2c_sim.golden.nonlinear` (softmax, LayerNorm, GELU).

Rounding is :func:`t2c_sim.numerics.requantize`'s; products are exact (:func:`int_matmul`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.golden.gemm import int_matmul, max_abs
from t2c_sim.golden.nonlinear import check_input, gelu, layernorm, softmax
from t2c_sim.numerics import INT64_MAX, requantize, wrap
from t2c_sim.record import LayerRecord, concat_formats

__all__ = ["TRANSFORMER_OPS", "matmul", "concat", "const_operand", "reshape", "slice_axis",
           "run_transformer_op"]

TRANSFORMER_OPS = (OpKind.MATMUL, OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.GELU, OpKind.CONCAT,
                   OpKind.RESHAPE, OpKind.SLICE)


def _rows_param(rec: LayerRecord, name: str, a: np.ndarray, rows: int, c: int) -> np.ndarray:
    """A requantizer parameter ``[1]``, ``[C]``, ``[R, 1]`` or ``[R, C]`` checked against ``[R, C]``."""
    if a.shape in ((1,), (c,)) or (a.ndim == 2 and a.shape[0] == rows and a.shape[1] in (1, c)):
        return a
    raise RecordError(f"layer {rec.name}: {name} has shape {a.shape}; for an output of {rows} "
                      f"rows x {c} columns it must be (1,), ({c},), ({rows}, 1) or ({rows}, {c})")


def matmul(rec: LayerRecord, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``a[..., P, K] @ b[..., K, C]`` (``b[..., C, K]`` when ``rec.trans_b``) -> ``(acc, y)[..., P, C]``.

    ``acc[p, c] = wrap(bias[c] + sum_k (a[p, k] - z_a) * (b[k, c] - z_b), acc_bits)`` (``z_a =
    rec.z_x``, ``z_b = rec.z_b``, ``bias = bias_eff`` or 0), exact;
    ``y = clamp(z_y + round_shift(acc * M0, sh, mode), lo, hi)`` with ``M0/sh/bias_eff`` of shape
    ``[1]``, ``[C]``, ``[R, 1]`` or ``[R, C]`` (``R`` = product of the output's leading dims).
    Leading (batch, head) dims of ``a`` and ``b`` must be equal. Example: ``a = [[3, 5]]``,
    ``z_a = 1``, ``b = [[2], [0]]``, ``z_b = 1``, ``M0 = [1]``, ``sh = [0]`` ->
    ``acc = (3-1)(2-1) + (5-1)(0-1) = -2``.
    """
    if rec.M0 is None or rec.sh is None:
        raise RecordError(f"layer {rec.name}: M0 and sh are missing")
    a = check_input(rec, a, rec.x_range, "input a")
    b = check_input(rec, b, rec.b_range, "input b")
    if a.ndim < 2 or b.ndim < 2:
        raise RecordError(f"layer {rec.name}: matmul operands need at least 2 dims, got "
                          f"{a.shape} and {b.shape}")
    bt = b if rec.trans_b else np.swapaxes(b, -1, -2)                  # [..., C, K]
    k, c = a.shape[-1], bt.shape[-2]
    if a.shape[:-2] != bt.shape[:-2] or bt.shape[-1] != k:
        raise RecordError(f"layer {rec.name}: matmul operands {a.shape} and {b.shape} do not fit "
                          f"(trans_b={rec.trans_b})")
    if (rec.c_in and k != rec.c_in) or (rec.c_out and c != rec.c_out):
        raise RecordError(f"layer {rec.name}: matmul is K={k}, C={c}; the record says "
                          f"K={rec.c_in}, C={rec.c_out}")
    lead, p = a.shape[:-2], a.shape[-2]
    g = int(np.prod(lead, dtype=np.int64)) if lead else 1
    da = (a - rec.z_x).reshape(g, p, k)
    db = (bt - rec.z_b).reshape(g, c, k)
    rows = g * p
    m0 = _rows_param(rec, "M0", rec.M0, rows, c)
    sh = _rows_param(rec, "sh", rec.sh, rows, c)
    bound = k * max_abs(da) * max_abs(db) + (1 << (rec.acc_bits - 1))
    if bound > INT64_MAX:
        raise NumericsError(f"layer {rec.name}: K={k} x max|a - z_a| x max|b - z_b| plus a bias "
                            f"can overflow int64")
    dot = int_matmul(da, db).reshape(rows, c)
    if rec.bias_eff is not None:
        dot = dot + wrap(_rows_param(rec, "bias_eff", rec.bias_eff, rows, c), rec.acc_bits)
    acc = wrap(dot, rec.acc_bits)
    y = requantize(acc, m0, sh, rec.z_y, rec.lo, rec.hi, rec.mode)
    shape = (*lead, p, c)
    return acc.reshape(shape), y.reshape(shape)


def concat(rec: LayerRecord, *xs: Any) -> np.ndarray:
    """``cat([const_q], rq_0(x_0), rq_1(x_1), ..., axis)``: every part, in this order.

    ``rq_i(x) = clamp(z_y + round_shift((x - z_i) * M0[i], sh[i], mode), lo, hi)`` with input
    ``i``'s zero point and format from :func:`t2c_sim.record.concat_formats`; ``axis =
    params["axis"]`` (negative; default -2, the token axis). ``const_q`` (``[Tc, D]``, e.g. the
    class token, stored in the output format) is broadcast over the leading axes (axis -2
    only). Example: ``const_q = [[7]]``, ``x_0 = [[[2], [4]]]``, ``z_x = 0``, ``M0 = [1]``,
    ``sh = [1]``, ``z_y = 0`` -> ``y = [[[7], [1], [2]]]``.
    """
    n = len(xs)
    if rec.M0 is None or rec.sh is None or rec.M0.shape != (n,) or rec.sh.shape != (n,):
        raise RecordError(f"layer {rec.name}: concat of {n} input(s) needs M0 and sh of "
                          f"shape ({n},)")
    fmts = concat_formats(rec)
    if len(fmts) != n:
        raise RecordError(f"layer {rec.name}: concat has {len(fmts)} inputs, got {n}")
    ax = rec.params.get("axis", -2)
    parts = []
    for i, x in enumerate(xs):
        lo, hi, z = fmts[i]
        x = check_input(rec, x, (lo, hi), f"input {i}")
        if x.ndim < 1 - ax:
            raise RecordError(f"layer {rec.name}: concat input {i} has shape {x.shape}; axis {ax} "
                              f"needs at least {1 - ax} dims")
        parts.append(requantize(x - z, rec.M0[i], rec.sh[i], rec.z_y, rec.lo, rec.hi, rec.mode))
    ref = parts[0].shape

    def others(shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[:len(shape) + ax] + shape[len(shape) + ax + 1:]

    for i, q in enumerate(parts):
        if q.ndim != len(ref) or others(q.shape) != others(ref):
            raise RecordError(f"layer {rec.name}: concat input {i} has shape {q.shape}; every "
                              f"dim but axis {ax} must equal input 0's {ref}")
    if rec.const_q is not None:
        lead, d = ref[:-2], ref[-1]
        if rec.const_q.ndim != 2 or rec.const_q.shape[1] != d or ax != -2:
            raise RecordError(f"layer {rec.name}: const_q has shape {rec.const_q.shape}, expected "
                              f"[tokens, {d}] on a concat along axis -2")
        parts.insert(0, np.broadcast_to(rec.const_q, (*lead, *rec.const_q.shape)))
    return np.concatenate(parts, axis=ax)


def const_operand(rec: LayerRecord, a: np.ndarray) -> np.ndarray:
    """Operand ``b`` of an add with ``const_q``: ``const_q`` broadcast to ``a``'s shape.

    ``const_q`` must equal the trailing dims of ``a`` (e.g. a position embedding ``[T, D]`` for
    ``a[B, T, D]``).
    """
    cq = rec.const_q
    a = np.asarray(a)
    if cq.ndim > a.ndim or a.shape[a.ndim - cq.ndim:] != cq.shape:
        raise RecordError(f"layer {rec.name}: const_q of shape {cq.shape} does not match the "
                          f"trailing dims of the input {a.shape}")
    return np.broadcast_to(cq, a.shape)


def reshape(rec: LayerRecord, x: Any) -> np.ndarray:
    """Data movement on the non-batch axes: reshape to ``shape``, permute by ``perm``, reshape
    to ``out_shape`` (each step skipped when absent). Axis 0 (the batch) never moves.

    Head split ``[B, T, H*d] -> [B, H, T, d]``: ``shape = (T, H, d)``, ``perm = (1, 0, 2)``;
    head merge: ``perm = (1, 0, 2)``, ``out_shape = (T, H*d)``.
    """
    x = check_input(rec, x)
    if x.ndim < 1:
        raise RecordError(f"layer {rec.name}: reshape input needs a batch axis, got {x.shape}")
    p = rec.params
    y = x
    try:
        if p.get("shape"):
            y = y.reshape((x.shape[0], *p["shape"]))
        if p.get("perm"):
            perm = p["perm"]
            if len(perm) != y.ndim - 1:
                raise RecordError(f"layer {rec.name}: perm {perm} for {y.ndim - 1} non-batch axes")
            y = np.transpose(y, (0, *(i + 1 for i in perm)))
        if p.get("out_shape"):
            y = y.reshape((x.shape[0], *p["out_shape"]))
    except ValueError as e:
        raise RecordError(f"layer {rec.name}: cannot reshape {x.shape} ({e})") from None
    return np.ascontiguousarray(y)


def slice_axis(rec: LayerRecord, x: Any) -> np.ndarray:
    """``y = x[..., start:stop, ...]`` along axis ``params['axis']`` (``>= 1``; 0 is the batch).

    Class-token readout of ``x[B, T, D]``: ``axis = 1``, ``start = 0``, ``stop = 1`` -> ``[B, 1, D]``.
    """
    x = check_input(rec, x)
    p = rec.params
    ax, start, stop = p.get("axis"), p.get("start"), p.get("stop")
    if not all(isinstance(v, int) for v in (ax, start, stop)):
        raise RecordError(f"layer {rec.name}: slice needs params axis, start and stop")
    if not 1 <= ax < x.ndim or not 0 <= start < stop <= x.shape[ax]:
        raise RecordError(f"layer {rec.name}: slice axis={ax} [{start}:{stop}] is outside the "
                          f"input shape {x.shape}")
    return np.ascontiguousarray(x[(slice(None),) * ax + (slice(start, stop),)])


def run_transformer_op(rec: LayerRecord, *inputs: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """Execute one transformer-op record: ``(acc or None, y)``; matmul takes ``(a, b)``,
    concat one input per entry of ``rec.inputs``, every other op one input."""
    want = 2 if rec.op is OpKind.MATMUL else len(rec.inputs) if rec.op is OpKind.CONCAT else 1
    if len(inputs) != want:
        raise RecordError(f"layer {rec.name}: {rec.op.value} takes {want} input(s), got {len(inputs)}")
    if not isinstance(rec.mode, RoundMode):   # a runtime rounding profile (SPEC 10): MAC layers only
        raise RecordError(f"layer {rec.name}: rounding {getattr(rec.mode, 'value', rec.mode)!r} is "
                          f"not a section-2 mode; {rec.op.value} rounds with half_even, half_up, "
                          f"half_away or floor")
    if rec.op is OpKind.MATMUL:
        return matmul(rec, *inputs)
    if rec.op is OpKind.CONCAT:
        return None, concat(rec, *inputs)
    fn = {OpKind.SOFTMAX: softmax, OpKind.LAYERNORM: layernorm, OpKind.GELU: gelu,
          OpKind.RESHAPE: reshape, OpKind.SLICE: slice_axis}.get(rec.op)
    if fn is None:
        raise RecordError(f"layer {rec.name}: {rec.op.value} is not a transformer op")
    return None, fn(rec, inputs[0])
