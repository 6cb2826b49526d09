"""The PyTorch integer path of the transformer ops (docs/numerics.md sections 7-10).

Records in, int64 torch tensors out, identical bit for bit to the golden model
(:mod:`t2c_sim.golden.transformer`, :mod:`t2c_sim.golden.nonlinear`) but written without it
and without :mod:`t2c_sim.numerics`:

- matmul: int64 ``torch.matmul`` of the zero-point-corrected operands (exact; the golden
  model uses chunked float BLAS), floor-mod wrap, :func:`~t2c_sim.quant.intops.requant_t`;
- concat (any axis, n inputs), the constant operand of an add, reshape and slice: torch tensor ops;
- softmax, LayerNorm and GELU: the kernels of :mod:`t2c_sim.quant.intops` (which the fake-quant
  modules also run, so fake-quant and integer models share one definition).

:func:`run_transformer_op_t` is dispatched from :func:`t2c_sim.verify.torch_int.run_layer_torch`.
"""

from __future__ import annotations

import numpy as np
import torch

from t2c_sim.config import OpKind, RoundMode
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.quant.intops import layernorm_int_t, lookup_t, requant_t, softmax_int_t
from t2c_sim.record import LayerRecord, check_layernorm, concat_formats

__all__ = ["TRANSFORMER_OPS_T", "as_i64", "matmul_t", "concat_t", "const_operand_t", "reshape_t",
           "slice_t", "run_transformer_op_t"]

I64 = torch.int64
_MAX = (1 << 63) - 1
TRANSFORMER_OPS_T = (OpKind.MATMUL, OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.GELU, OpKind.CONCAT,
                     OpKind.RESHAPE, OpKind.SLICE)


def as_i64(a: object, rec: LayerRecord | None = None, what: str = "array") -> torch.Tensor:
    """An integer array or tensor as int64 torch (floats and bools are refused)."""
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
        who = f"layer {rec.name}: " if rec is not None else ""
        raise RecordError(f"{who}{what} must be integers (torch path), got {t.dtype}")
    return t.to(I64)


def _arr(rec: LayerRecord, name: str) -> torch.Tensor:
    a = getattr(rec, name)
    if a is None:
        raise RecordError(f"layer {rec.name}: {name} is missing (torch path)")
    return as_i64(a, rec, name)


def _checked(rec: LayerRecord, x: object, rng: tuple[int, int], what: str) -> torch.Tensor:
    t = as_i64(x, rec, what)
    if t.numel() and (int(t.min()) < rng[0] or int(t.max()) > rng[1]):
        raise RecordError(f"layer {rec.name}: {what} outside [{rng[0]}, {rng[1]}] (torch path)")
    return t


def _wrap(v: torch.Tensor, bits: int) -> torch.Tensor:
    if bits >= 64:
        return v
    half = 1 << (bits - 1)
    return torch.remainder(v + half, 1 << bits) - half


def _param(rec: LayerRecord, name: str, rows: int, c: int) -> torch.Tensor:
    """``[1]``, ``[C]``, ``[R, 1]`` or ``[R, C]``, broadcastable against ``[R, C]``."""
    t = _arr(rec, name)
    if tuple(t.shape) in ((1,), (c,)) or (t.dim() == 2 and t.shape[0] == rows and t.shape[1] in (1, c)):
        return t
    raise RecordError(f"layer {rec.name}: {name} shape {tuple(t.shape)} does not fit an output of "
                      f"{rows} x {c} (torch path)")


def matmul_t(rec: LayerRecord, a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``acc = wrap(bias + (a - z_a) @ (b - z_b))``, ``y = requant(acc)``; ``b`` is ``[..., C, K]``
    when ``trans_b``. Returns ``(acc, y)`` of shape ``[..., P, C]``."""
    ta = _checked(rec, a, rec.x_range, "input a") - rec.z_x
    tb = _checked(rec, b, rec.b_range, "input b") - rec.z_b
    if ta.dim() < 2 or tb.dim() < 2:
        raise RecordError(f"layer {rec.name}: matmul operands need 2+ dims (torch path)")
    bkc = tb.transpose(-1, -2) if rec.trans_b else tb                     # [..., K, C]
    if ta.shape[:-2] != bkc.shape[:-2] or ta.shape[-1] != bkc.shape[-2]:
        raise RecordError(f"layer {rec.name}: matmul operands {tuple(ta.shape)} and "
                          f"{tuple(tb.shape)} do not fit (torch path)")
    k, c = ta.shape[-1], bkc.shape[-1]
    if (rec.c_in and k != rec.c_in) or (rec.c_out and c != rec.c_out):
        raise RecordError(f"layer {rec.name}: matmul K={k}, C={c} differ from the record (torch path)")
    amax = int(ta.abs().max()) if ta.numel() else 0
    bmax = int(tb.abs().max()) if tb.numel() else 0
    if k * amax * bmax + (1 << (rec.acc_bits - 1)) > _MAX:
        raise NumericsError(f"layer {rec.name}: matmul sum can overflow int64 (torch path)")
    dot = torch.matmul(ta, bkc)
    shape = dot.shape
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    dot = dot.reshape(rows, c)
    if rec.bias_eff is not None:
        dot = dot + _wrap(_param(rec, "bias_eff", rows, c), rec.acc_bits)
    acc = _wrap(dot, rec.acc_bits)
    y = requant_t(acc, _param(rec, "M0", rows, c), _param(rec, "sh", rows, c), rec.z_y, rec.lo,
                  rec.hi, rec.mode)
    return acc.reshape(shape), y.reshape(shape)


def concat_t(rec: LayerRecord, *xs: object) -> torch.Tensor:
    """``cat([const_q], requant(x_0 - z_0), requant(x_1 - z_1), ..., dim=axis)`` (input formats
    from :func:`t2c_sim.record.concat_formats`, ``axis = params["axis"]``, default -2)."""
    m0, sh = _arr(rec, "M0"), _arr(rec, "sh")
    if tuple(m0.shape) != (len(xs),) or tuple(sh.shape) != (len(xs),):
        raise RecordError(f"layer {rec.name}: concat needs M0 and sh of shape ({len(xs)},) (torch path)")
    fmts = concat_formats(rec)
    if len(fmts) != len(xs):
        raise RecordError(f"layer {rec.name}: concat has {len(fmts)} inputs, got {len(xs)} (torch path)")
    ax = rec.params.get("axis", -2)
    parts = []
    for i, x in enumerate(xs):
        lo, hi, z = fmts[i]
        t = _checked(rec, x, (lo, hi), f"input {i}")
        if t.dim() < 1 - ax:
            raise RecordError(f"layer {rec.name}: concat input {i} has too few dims for axis {ax} "
                              "(torch path)")
        parts.append(requant_t(t - z, m0[i], sh[i], rec.z_y, rec.lo, rec.hi, rec.mode))
    keep = [d for d in range(parts[0].dim()) if d != parts[0].dim() + ax]
    if any(p.dim() != parts[0].dim() or [p.shape[d] for d in keep] != [parts[0].shape[d] for d in keep]
           for p in parts):
        raise RecordError(f"layer {rec.name}: concat inputs differ off the concat axis (torch path)")
    if rec.const_q is not None:
        lead, d = parts[0].shape[:-2], parts[0].shape[-1]
        cq = _arr(rec, "const_q")
        if cq.dim() != 2 or cq.shape[1] != d or ax != -2:
            raise RecordError(f"layer {rec.name}: const_q must be [tokens, {d}] on axis -2 (torch path)")
        parts.insert(0, cq.expand(*lead, *cq.shape))
    return torch.cat(parts, dim=ax)


def const_operand_t(rec: LayerRecord, a: torch.Tensor) -> torch.Tensor:
    """``const_q`` expanded to ``a``'s shape (it must equal ``a``'s trailing dims)."""
    cq = _arr(rec, "const_q")
    if cq.dim() > a.dim() or tuple(a.shape[a.dim() - cq.dim():]) != tuple(cq.shape):
        raise RecordError(f"layer {rec.name}: const_q {tuple(cq.shape)} does not match the input "
                          f"{tuple(a.shape)} (torch path)")
    return cq.expand(*a.shape).clone()


def reshape_t(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    """Reshape (``shape``), permute (``perm``), reshape (``out_shape``) the non-batch axes."""
    p = rec.params
    y = x
    try:
        if p.get("shape"):
            y = y.reshape(x.shape[0], *p["shape"])
        if p.get("perm"):
            if len(p["perm"]) != y.dim() - 1:
                raise RecordError(f"layer {rec.name}: perm {p['perm']} for {y.dim() - 1} axes")
            y = y.permute(0, *(i + 1 for i in p["perm"]))
        if p.get("out_shape"):
            y = y.reshape(x.shape[0], *p["out_shape"])
    except RuntimeError as e:
        raise RecordError(f"layer {rec.name}: cannot reshape {tuple(x.shape)} ({e}) (torch path)") from None
    return y.contiguous()


def slice_t(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    """``x.narrow(axis, start, stop - start)``."""
    p = rec.params
    ax, start, stop = p.get("axis"), p.get("start"), p.get("stop")
    if not all(isinstance(v, int) for v in (ax, start, stop)) or not 1 <= ax < x.dim() or \
            not 0 <= start < stop <= x.shape[ax]:
        raise RecordError(f"layer {rec.name}: bad slice {p} for input {tuple(x.shape)} (torch path)")
    return x.narrow(ax, start, stop - start).contiguous()


def _table(rec: LayerRecord, per_row: bool = False) -> torch.Tensor:
    t = _arr(rec, "table")
    n = 1 << rec.a_bits
    if tuple(t.shape) != (n,) and not (per_row and t.dim() == 2 and t.shape[1] == n):
        raise RecordError(f"layer {rec.name}: table must have {n} entries (torch path)")
    return t


def _rows(rec: LayerRecord, x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` as ``[rows, -1]`` for per-row (token-wise) constants."""
    if x.dim() < 1 or int(np.prod(tuple(x.shape[:-1]))) != rows:
        raise RecordError(f"layer {rec.name}: per-row constants have {rows} rows, the input "
                          f"{tuple(x.shape)} does not (torch path)")
    return x.reshape(rows, -1)


def _gelu(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    table = _table(rec, per_row=True)
    if table.dim() == 2:        # one table per row: y[r] = table[r, x[r] - qmin]
        return torch.gather(table, 1, _rows(rec, x, table.shape[0]) - rec.x_range[0]).reshape(x.shape)
    return lookup_t(x, table, rec.x_range[0])


def _softmax(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    f = rec.params.get("frac_bits")
    table = _table(rec)
    if not isinstance(f, int) or int(table[0]) != 1 << f or int(table.min()) < 0 or \
            int(table.max()) > 1 << f:
        raise RecordError(f"layer {rec.name}: softmax needs params frac_bits and a table in "
                          "[0, 2^frac_bits] starting at 2^frac_bits (torch path)")
    if x.dim() < 1:
        raise RecordError(f"layer {rec.name}: softmax needs rows (torch path)")
    return softmax_int_t(x, table, f, int(_arr(rec, "M0").reshape(-1)[0]),
                         int(_arr(rec, "sh").reshape(-1)[0]), rec.z_y, rec.lo, rec.hi, rec.mode)


def _layernorm(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    check_layernorm(rec)
    if x.dim() < 1 or x.shape[-1] != rec.c_out:
        raise RecordError(f"layer {rec.name}: layernorm input must be [..., {rec.c_out}], got "
                          f"{tuple(x.shape)} (torch path)")
    p = rec.params
    g, b = _arr(rec, "gamma_q"), _arr(rec, "beta_q")
    xr = _rows(rec, x, g.shape[0]) if g.dim() == 2 else x     # per-row: row r uses g[r], b[r]
    y = layernorm_int_t(xr, g, b, p["eps_q"], p["sqrt_shift"], p["g_shift"], rec.z_y, rec.lo,
                        rec.hi, rec.mode)
    return y.reshape(x.shape)


def run_transformer_op_t(rec: LayerRecord, *inputs: object,
                         ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Execute one transformer-op record on int64 tensors: ``(acc or None, y)``."""
    want = 2 if rec.op is OpKind.MATMUL else len(rec.inputs) if rec.op is OpKind.CONCAT else 1
    if len(inputs) != want:
        raise RecordError(f"layer {rec.name}: {rec.op.value} takes {want} input(s) (torch path)")
    if not isinstance(rec.mode, RoundMode):
        raise RecordError(f"layer {rec.name}: rounding {getattr(rec.mode, 'value', rec.mode)!r} is "
                          f"not a section-2 mode (torch path)")
    if rec.op is OpKind.MATMUL:
        return matmul_t(rec, *inputs)
    if rec.op is OpKind.CONCAT:
        return None, concat_t(rec, *inputs)
    x = _checked(rec, inputs[0], rec.x_range, "input")
    if rec.op is OpKind.SOFTMAX:
        return None, _softmax(rec, x)
    if rec.op is OpKind.LAYERNORM:
        return None, _layernorm(rec, x)
    if rec.op is OpKind.GELU:
        return None, _gelu(rec, x)
    if rec.op is OpKind.RESHAPE:
        return None, reshape_t(rec, x)
    if rec.op is OpKind.SLICE:
        return None, slice_t(rec, x)
    raise RecordError(f"layer {rec.name}: {rec.op.value} is not a transformer op (torch path)")
