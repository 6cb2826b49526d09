"""Bit-exact integer layers of the golden model (SPEC sections 2 and 3).

Every function takes a :class:`~t2c_sim.record.LayerRecord` and integer input arrays
(channel-last, see ``t2c_sim.record``) and returns a :class:`LayerOutput` with the wrapped
accumulators (``acc``, for linear, conv and average pools) and the requantized output ``y``,
both int64. Rounding is defined by :mod:`t2c_sim.numerics`.

MAC layers: ``acc = wrap(bias_eff + x . W, acc_bits)`` and
``y = requantize(acc, M0, sh, z_y, lo, hi, mode)`` per output channel. Two engines give the
same integers: the default, for operands of at most 8 bits, is the compiled kernel of
:mod:`t2c_sim.golden.int8mac` (integer GEMM, bias, wrap and requantize fused; exactness
argued there); everything else (wider operands, no kernel on this machine, ``nm_mode=
"reference"``) uses NumPy: the dot product is exact in int64 (``K * max|x| * max|w| +
2^(acc_bits-1) <= 2^63 - 1`` is checked, else :class:`NumericsError`) through the chunked
float GEMM of :mod:`t2c_sim.golden.gemm`, ``bias_eff`` is wrapped to ``acc_bits`` before the
sum, so the modular result equals the SPEC definition for every summation order, and
``numerics.requantize`` rounds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from t2c_sim.config import OpKind, RoundProfile
from t2c_sim.errors import NumericsError, RecordError
from t2c_sim.golden import int8mac
from t2c_sim.golden.gemm import float_matmul_exact, max_abs, plan_gemm
from t2c_sim.golden.im2col import conv_out_hw, im2col, pad_spatial, windows
from t2c_sim.golden.transformer import TRANSFORMER_OPS, const_operand, run_transformer_op
from t2c_sim.numerics import INT64_MAX, as_int64, clamp, requantize, round_shift, wrap
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.rounding_profiles import requantize_ort_add, requantize_profile
from t2c_sim.sparse.nm import compress, decompress

__all__ = ["LayerOutput", "NM_MODES", "linear", "conv2d", "maxpool", "avgpool", "gavgpool",
           "add", "flatten", "run_layer"]

NM_MODES = ("fast", "reference")
RQ_BLOCK = 65536          # elements per requantize call (measured sweet spot: call overhead vs cache)
REF_BLOCK = 1 << 22       # elements of the gathered activations per N:M reference block


@dataclass(frozen=True)
class LayerOutput:
    """Golden results of one layer: ``acc`` (wrapped accumulators or ``None``) and ``y``."""

    acc: np.ndarray | None
    y: np.ndarray


# ---- shared helpers ------------------------------------------------------------------------
def _input(rec: LayerRecord, x: np.ndarray, what: str = "input") -> np.ndarray:
    """``x`` as int64, checked against the record's input format ``(a_bits, a_signed)``."""
    try:
        x = as_int64(x, f"layer {rec.name} {what}")
    except NumericsError as e:
        raise RecordError(str(e)) from None
    lo, hi = rec.x_range
    if x.size and (int(x.min()) < lo or int(x.max()) > hi):
        raise RecordError(f"layer {rec.name}: {what} outside the {'signed' if rec.a_signed else 'unsigned'}"
                          f" {rec.a_bits}-bit range [{lo}, {hi}]")
    return x


def _need(rec: LayerRecord, *names: str) -> None:
    for f in names:
        if getattr(rec, f) is None:
            raise RecordError(f"layer {rec.name}: {f} is missing")


def _dense_w(rec: LayerRecord) -> np.ndarray:
    """``w_q[C_out, K]``; decompressed from ``values/indices`` when only those are stored."""
    if rec.w_q is not None:
        w = rec.w_q
    elif rec.values is not None and rec.indices is not None:
        w = decompress(rec.values, rec.indices, rec.n, rec.m)
    else:
        raise RecordError(f"layer {rec.name}: needs w_q or values/indices")
    if w.shape != (rec.c_out, rec.k):
        raise RecordError(f"layer {rec.name}: weights have shape {w.shape}, expected "
                          f"{(rec.c_out, rec.k)}")
    return w


def _compressed(rec: LayerRecord) -> tuple[np.ndarray, np.ndarray]:
    """``(values, indices)``; compressed from ``w_q`` when only that is stored."""
    if rec.values is not None and rec.indices is not None:
        vals, idx = rec.values, rec.indices
    elif rec.w_q is not None:
        vals, idx = compress(rec.w_q, rec.n, rec.m, name=f"layer {rec.name} w_q")
    else:
        raise RecordError(f"layer {rec.name}: needs w_q or values/indices")
    if vals.shape != (rec.c_out, rec.k // rec.m * rec.n):
        raise RecordError(f"layer {rec.name}: values have shape {vals.shape}, expected "
                          f"{(rec.c_out, rec.k // rec.m * rec.n)}")
    return vals, idx


def _check_mode(rec: LayerRecord, nm_mode: str) -> None:
    if nm_mode not in NM_MODES:
        raise RecordError(f"layer {rec.name}: nm_mode must be one of {NM_MODES}, got {nm_mode!r}")


def _workers(rec: LayerRecord, workers: int | None) -> int:
    """``workers`` checked; ``None`` means every CPU this process may use."""
    if workers is None:
        return int8mac.default_workers()
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise RecordError(f"layer {rec.name}: workers must be a positive int, got {workers!r}")
    return workers


def _check_sum_bound(rec: LayerRecord, k: int, ax: int, aw: int) -> None:
    if k * ax * aw + (1 << (rec.acc_bits - 1)) > INT64_MAX:
        raise NumericsError(f"layer {rec.name}: K={k} x max|x|={ax} x max|w|={aw} plus a "
                            f"{rec.acc_bits}-bit bias can overflow int64")


def _finish(rec: LayerRecord, dot: np.ndarray, M0: np.ndarray, sh: np.ndarray,
            bias: np.ndarray | None, workers: int = 1, dot_bound: int | None = None,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate and requantize ``dot[..., C]`` in cache-sized row blocks.

    With ``bias``: ``acc = wrap(dot + wrap(bias, acc_bits), acc_bits)`` (= ``wrap(bias + dot)``,
    modular arithmetic), else ``acc = dot``. Then ``y = numerics.requantize(acc, M0, sh, z_y,
    lo, hi, mode)``. ``M0/sh/bias`` are per channel ``[C]`` or token-wise ``[P, C]``. Blocks are
    independent; ``workers > 1`` runs them on a thread pool (NumPy releases the GIL).
    ``dot_bound`` (a proven ``max|dot|``, from ``K * max|x| * max|w|``) lets both steps skip
    work: when ``dot_bound + max|wrap(bias)| < 2^(acc_bits-1)`` no sum can wrap, so the wrap is
    the identity and is skipped; and ``requantize`` gets the bound instead of scanning ``acc``.
    """
    workers = _workers(rec, workers)
    flat = dot.reshape(-1, dot.shape[-1]) if dot.ndim else dot.reshape(1, 1)
    acc = np.empty(flat.shape, dtype=np.int64) if bias is not None else flat
    y = np.empty(flat.shape, dtype=np.int64)
    wb = None if bias is None else wrap(bias, rec.acc_bits)
    half = 1 << (rec.acc_bits - 1)
    acc_bound = None
    no_wrap = False
    if dot_bound is not None:
        acc_bound = dot_bound + (max_abs(wb) if wb is not None else 0)
        no_wrap = acc_bound < half
        acc_bound = min(acc_bound, half)  # after a wrap |acc| <= 2^(acc_bits-1)
    rows = max(1, RQ_BLOCK // max(1, flat.shape[1]))
    rq = requantize
    if isinstance(rec.mode, RoundProfile):  # a runtime's rounding (SPEC section 10)
        _profile_op(rec)
        rq = requantize_profile

    def rows_of(a: np.ndarray, r0: int, r1: int) -> np.ndarray:
        return a[r0:r1] if a.ndim == 2 else a

    def block(r0: int) -> None:
        r1 = r0 + rows
        if wb is not None and no_wrap:
            np.add(flat[r0:r1], rows_of(wb, r0, r1), out=acc[r0:r1])
        elif wb is not None:
            acc[r0:r1] = wrap(flat[r0:r1] + rows_of(wb, r0, r1), rec.acc_bits)
        y[r0:r1] = rq(acc[r0:r1], rows_of(M0, r0, r1), rows_of(sh, r0, r1), rec.z_y,
                      rec.lo, rec.hi, rec.mode, acc_bound=acc_bound)

    starts = range(0, flat.shape[0], rows)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(block, starts))
    else:
        for r0 in starts:
            block(r0)
    return acc.reshape(dot.shape), y.reshape(dot.shape)


def _profile_op(rec: LayerRecord) -> None:
    """Refuse a rounding profile where it is not defined: it replaces the requantizer of a MAC
    layer (every profile) or of an average pool (``ort_fp32``: ONNX Runtime's pools requantize
    their int32 window sums like QLinearConv), always with a 32-bit accumulator."""
    pool = rec.op in (OpKind.AVGPOOL, OpKind.GAVGPOOL) and rec.mode is RoundProfile.ORT_FP32
    if (rec.op not in MAC_OPS and not pool) or rec.acc_bits != 32:
        raise RecordError(f"layer {rec.name}: rounding profile {rec.mode.value} is defined for "
                          f"linear/conv2d (and ort_fp32 average pools) with acc_bits = 32 only "
                          f"(got {rec.op.value}, acc_bits = {rec.acc_bits})")


def _nm_reference_dot(rec: LayerRecord, cols: np.ndarray) -> np.ndarray:
    """PE datapath: ``dot[p, o] = sum_{g, j} values[o, g*N+j] * cols[p, g*M + indices[o, g*N+j]]``.

    ``cols[G, P, K]`` int64 (G = conv groups); output channel ``o`` uses ``cols[o // (C_out/G)]``.
    Vectorized by fancy indexing over blocks of output channels.
    """
    vals, idx = _compressed(rec)
    n, m = rec.n, rec.m
    ngrp = rec.k // m
    base = (np.arange(ngrp, dtype=np.int64) * m).repeat(n)           # group_base per slot
    gather = base[None, :] + idx                                        # [C_out, K/M*N]
    g, p, _ = cols.shape
    cog = rec.c_out // g
    out = np.empty((p, rec.c_out), dtype=np.int64)
    cb = max(1, REF_BLOCK // max(1, p * gather.shape[1]))
    for o0 in range(0, rec.c_out, cb):
        o1 = min(rec.c_out, o0 + cb)
        for gi in range(o0 // cog, (o1 - 1) // cog + 1):               # groups in this block
            a, b = max(o0, gi * cog), min(o1, (gi + 1) * cog)
            sel = cols[gi][:, gather[a:b]]                               # [P, b-a, K/M*N]
            out[:, a:b] = np.einsum("pcj,cj->pc", sel, vals[a:b])
    return out


def _mac(rec: LayerRecord, make_cols, ax: int, nm_mode: str) -> tuple[np.ndarray, int]:
    """Exact ``x . W`` as int64 ``[P, C_out]`` and the proven bound ``K * max|x| * max|w|`` on it.

    ``make_cols(dtype) -> cols[G, P, K]``.
    """
    _check_mode(rec, nm_mode)
    if nm_mode == "reference":
        vals, _ = _compressed(rec)
        aw = max_abs(vals)
        _check_sum_bound(rec, rec.k, ax, aw)
        return _nm_reference_dot(rec, make_cols(np.int64)), rec.k * ax * aw
    w = _dense_w(rec)
    aw = max_abs(w)
    _check_sum_bound(rec, rec.k, ax, aw)
    plan = plan_gemm(ax, aw, rec.k)
    cols = make_cols(plan.dtype)
    g = cols.shape[0]
    wg = w.astype(plan.dtype).reshape(g, rec.c_out // g, rec.k)
    dot = float_matmul_exact(cols, wg, plan)                             # [G, P, C_out/G]
    bound = rec.k * ax * aw
    if g == 1:
        return dot[0], bound
    return np.ascontiguousarray(dot.transpose(1, 0, 2)).reshape(dot.shape[1], rec.c_out), bound


# ---- layers --------------------------------------------------------------------------------
def linear(rec: LayerRecord, x: np.ndarray, nm_mode: str = "fast", workers: int | None = None,
           ) -> LayerOutput:
    """Fully connected layer: ``x[..., C_in] -> acc, y[..., C_out]``.

    ``acc[p, c] = wrap(bias_eff[c] + sum_k x_pad[p, k] * w_q[c, k], acc_bits)`` where ``x_pad``
    is ``x`` padded along C_in to ``K = pad(C_in, M)`` with ``z_x`` (those weights are 0), then
    ``y = clamp(z_y + round_shift(acc * M0[c], sh[c], mode), lo, hi)``. Token-wise records store
    ``bias_eff/M0/sh`` as ``[P, C_out]`` (``P`` = product of the leading dims of ``x``).
    Example: ``C_in = 1``, ``w = [[2]]``, ``bias = [1]``, ``x = [[3]]``, ``M0 = 1``, ``sh = 0``,
    ``z_y = 0`` -> ``acc = y = [[7]]``.
    """
    _need(rec, "bias_eff", "M0", "sh")
    x = _input(rec, x)
    if x.ndim < 1 or x.shape[-1] != rec.c_in:
        raise RecordError(f"layer {rec.name}: linear input must be [..., {rec.c_in}], got {x.shape}")
    lead = x.shape[:-1]
    x2 = x.reshape(-1, rec.c_in)
    p = x2.shape[0]
    if rec.bias_eff.ndim == 2 and rec.bias_eff.shape[0] != p:
        raise RecordError(f"layer {rec.name}: token-wise bias_eff has {rec.bias_eff.shape[0]} "
                          f"rows, the input has {p}")
    pad = rec.k - rec.c_in

    def make_cols(dtype: type) -> np.ndarray:
        xc = x2.astype(dtype)
        if pad:
            xc = np.pad(xc, [(0, 0), (0, pad)], constant_values=rec.z_x)
        return xc[None]

    workers = _workers(rec, workers)
    _check_mode(rec, nm_mode)
    res = int8mac.linear(rec, x2, _dense_w(rec), workers) if nm_mode == "fast" else None
    if res is None:
        ax = max(max_abs(x2), abs(rec.z_x) if pad else 0)
        dot, bound = _mac(rec, make_cols, ax, nm_mode)
        res = _finish(rec, dot, rec.M0, rec.sh, rec.bias_eff, workers, dot_bound=bound)
    acc, y = res
    return LayerOutput(acc.reshape(*lead, rec.c_out), y.reshape(*lead, rec.c_out))


def conv2d(rec: LayerRecord, x: np.ndarray, nm_mode: str = "fast", workers: int | None = None,
           ) -> LayerOutput:
    """2-D convolution, channel-last: ``x[B, H, W, C_in] -> acc, y[B, OH, OW, C_out]``.

    ``acc[b, i, j, o] = wrap(bias_eff[o] + sum_k cols[g][p, k] * w_q[o, k], acc_bits)`` with
    ``cols = im2col(rec, x)`` (stride, padding with ``z_x``, dilation, groups incl. depthwise),
    ``g = o // (C_out/groups)``, ``p = (b*OH + i)*OW + j``; ``y`` as for :func:`linear`.
    Example: 1x1 kernel, ``w = [[1]]``, ``bias = [0]``, ``M0 = 1``, ``sh = 0`` -> ``y = x``.
    """
    _need(rec, "bias_eff", "M0", "sh")
    x = _input(rec, x)
    if x.ndim != 4 or x.shape[3] != rec.c_in:
        raise RecordError(f"layer {rec.name}: conv input must be [B, H, W, {rec.c_in}], got {x.shape}")
    if rec.c_in % rec.groups or rec.c_out % rec.groups:
        raise RecordError(f"layer {rec.name}: groups={rec.groups} must divide c_in={rec.c_in} and "
                          f"c_out={rec.c_out}")
    b, h, w, _ = x.shape
    if (rec.h, rec.w) != (0, 0) and (rec.h, rec.w) != (h, w):
        raise RecordError(f"layer {rec.name}: input is {h}x{w}, the record says {rec.h}x{rec.w}")
    if rec.bias_eff.ndim != 1:
        raise RecordError(f"layer {rec.name}: conv bias_eff/M0/sh must be per channel [C_out]")
    oh, ow = conv_out_hw(h, w, rec.kh, rec.kw, rec.stride, rec.padding, rec.dilation)
    workers = _workers(rec, workers)
    _check_mode(rec, nm_mode)
    res = int8mac.conv(rec, x, _dense_w(rec), workers) if nm_mode == "fast" else None
    if res is None:
        padded = rec.padding != (0, 0) or rec.c_in_p != rec.c_in_g
        ax = max(max_abs(x), abs(rec.z_x) if padded else 0)
        dot, bound = _mac(rec, lambda dtype: im2col(rec, x, dtype), ax, nm_mode)
        res = _finish(rec, dot, rec.M0, rec.sh, rec.bias_eff, workers, dot_bound=bound)
    acc, y = res
    return LayerOutput(acc.reshape(b, oh, ow, rec.c_out), y.reshape(b, oh, ow, rec.c_out))


def _pool_input(rec: LayerRecord, x: np.ndarray) -> np.ndarray:
    x = _input(rec, x)
    if x.ndim != 4:
        raise RecordError(f"layer {rec.name}: pool input must be [B, H, W, C], got {x.shape}")
    return x


def maxpool(rec: LayerRecord, x: np.ndarray) -> LayerOutput:
    """Max pool: ``y[b, i, j, c] = max_{r, s} xp[b, i*sh + r*dh, j*sw + s*dw, c]``.

    ``xp`` is ``x`` padded with the input format's ``qmin`` (so padding never wins); input and
    output share scale and zero point; ``acc`` is ``None``. Example: window ``[[-3, 5], [2, 0]]``
    -> ``5``.
    """
    x = _pool_input(rec, x)
    oh, ow = conv_out_hw(x.shape[1], x.shape[2], rec.kh, rec.kw, rec.stride, rec.padding,
                         rec.dilation)
    xp = pad_spatial(x, rec.padding, rec.x_range[0])
    y = windows(xp, rec.kh, rec.kw, rec.stride, rec.dilation, oh, ow).max(axis=(3, 4))
    return LayerOutput(None, y)


def _pool_params(rec: LayerRecord) -> tuple[np.ndarray, np.ndarray]:
    _need(rec, "M0", "sh")
    return rec.M0.reshape(-1)[:1], rec.sh.reshape(-1)[:1]


def avgpool(rec: LayerRecord, x: np.ndarray) -> LayerOutput:
    """Average pool (count_include_pad): ``acc = sum_window(xp) - KH*KW*z_x``, then requantize.

    ``xp`` is ``x`` padded with ``z_x``; ``y = clamp(z_y + round_shift(acc * M0[0], sh[0], mode),
    lo, hi)`` with ``M0/sh`` from ``m = s_x / (s_y * KH * KW)``. Example: window ``[1, 2, 3, 6]``,
    ``z_x = 0``, ``M0 = 1``, ``sh = 2`` -> ``acc = 12``, ``y = 3``.
    """
    m0, s = _pool_params(rec)
    x = _pool_input(rec, x)
    oh, ow = conv_out_hw(x.shape[1], x.shape[2], rec.kh, rec.kw, rec.stride, rec.padding,
                         rec.dilation)
    xp = pad_spatial(x, rec.padding, rec.z_x)
    tot = windows(xp, rec.kh, rec.kw, rec.stride, rec.dilation, oh, ow).sum(axis=(3, 4))
    acc = tot - rec.kh * rec.kw * rec.z_x
    return LayerOutput(*_finish(rec, acc, m0, s, None))


def gavgpool(rec: LayerRecord, x: np.ndarray) -> LayerOutput:
    """Global average pool: ``x[B, H, W, C] -> acc, y[B, 1, 1, C]`` (spatial dims kept as 1x1).

    ``acc = sum_{h, w} x - H*W*z_x``; ``y`` as in :func:`avgpool` (``m = s_x / (s_y*H*W)``).
    Example: ``x = [1, 2, 3, 6]`` over a 2x2 map, ``z_x = 0``, ``M0 = 1``, ``sh = 2`` -> ``y = 3``.
    """
    m0, s = _pool_params(rec)
    x = _pool_input(rec, x)
    acc = x.sum(axis=(1, 2), keepdims=True) - x.shape[1] * x.shape[2] * rec.z_x
    return LayerOutput(*_finish(rec, acc, m0, s, None))


def add(rec: LayerRecord, a: np.ndarray, b: np.ndarray) -> LayerOutput:
    """Residual add with one rounding (SPEC section 3).

    ``y = clamp(z_y + round_shift(Ma*(a - z_a) + Mb*(b - z_b), sh, mode), lo, hi)`` with
    ``M0 = [Ma, Mb]``, ``sh = [sh]``, ``z_a = rec.z_x``, ``z_b = rec.z_b``; both inputs use the
    record's input format; ``acc`` is ``None``. Under the ``ort_fp32`` profile ``M0``/``sh`` are
    the float32 pairs of ``s_a/s_y`` and ``s_b/s_y`` and the add is ONNX Runtime's QLinearAdd
    (:func:`t2c_sim.rounding_profiles.requantize_ort_add`). Example: ``a - z_a = 3``, ``b - z_b = 5``,
    ``Ma = Mb = 1``, ``sh = 1``, ``z_y = 0`` -> ``round_half_even(8 / 2) = 4``.
    """
    _need(rec, "M0", "sh")
    if isinstance(rec.mode, RoundProfile) and rec.mode is not RoundProfile.ORT_FP32:
        raise RecordError(f"layer {rec.name}: rounding profile {rec.mode.value} is not defined for "
                          f"a residual add (ort_fp32 is: ONNX Runtime's QLinearAdd)")
    a = _input(rec, a, "input a")
    b = _input(rec, b, "input b")
    if a.shape != b.shape:
        raise RecordError(f"layer {rec.name}: add inputs differ in shape: {a.shape} vs {b.shape}")
    if rec.mode is RoundProfile.ORT_FP32:   # ONNX Runtime's QLinearAdd (docs/interop.md)
        try:
            y = requantize_ort_add(a, b, rec.M0, rec.sh, rec.z_x, rec.z_b, rec.z_y, rec.lo, rec.hi)
        except NumericsError as e:
            raise RecordError(f"layer {rec.name}: {e}") from None
        return LayerOutput(None, y)
    mv = rec.M0.reshape(-1)
    if mv.size != 2 or rec.sh.size != 1:
        raise RecordError(f"layer {rec.name}: add needs M0 = [Ma, Mb] and sh = [sh], got "
                          f"M0 {rec.M0.shape}, sh {rec.sh.shape}")
    ma, mb = int(mv[0]), int(mv[1])
    da, db = a - rec.z_x, b - rec.z_b
    if ma * max_abs(da) + mb * max_abs(db) > INT64_MAX:
        raise NumericsError(f"layer {rec.name}: Ma*(a - z_a) + Mb*(b - z_b) can overflow int64")
    v = np.int64(ma) * da + np.int64(mb) * db
    y = clamp(rec.z_y + round_shift(v, int(rec.sh.reshape(-1)[0]), rec.mode), rec.lo, rec.hi)
    return LayerOutput(None, y)


def flatten(rec: LayerRecord, x: np.ndarray) -> LayerOutput:
    """``x[B, H, W, C] -> y[B, H*W*C]`` in ``(h, w, c)`` order (a reshape, no arithmetic).

    torch flattens NCHW as ``(c, h, w)``; the fuse step permutes the next linear layer's weight
    columns to this order, so the integer network matches torch. ``acc`` is ``None``.
    """
    x = _input(rec, x)
    if x.ndim < 2:
        raise RecordError(f"layer {rec.name}: flatten input needs a batch axis, got {x.shape}")
    return LayerOutput(None, x.reshape(x.shape[0], -1))


def run_layer(rec: LayerRecord, *inputs: np.ndarray, nm_mode: str = "fast",
              workers: int | None = None,
              ) -> LayerOutput:
    """Execute one record on ``inputs`` (default: ``rec.x_q`` and ``rec.b_q``); dispatch on ``rec.op``.

    ``nm_mode`` (linear, conv): ``"fast"`` multiplies the dense ``w_q`` (with the compiled
    8-bit kernel where it applies, else the exact float GEMM); ``"reference"`` computes from
    ``(values, indices)`` as a PE does. Both give identical integers. An add takes two inputs
    ``(a, b)``; every other op takes one. ``workers`` (linear, conv): threads for the MAC work
    (``None``: every CPU this process may use); the result does not depend on it.
    """
    if not inputs:
        if rec.x_q is None:
            raise RecordError(f"layer {rec.name}: no input given and the record has no x_q")
        inputs = (rec.x_q,) if rec.b_q is None else (rec.x_q, rec.b_q)
    if rec.op in TRANSFORMER_OPS:           # matmul, softmax, layernorm, gelu, concat, reshape, slice
        return LayerOutput(*run_transformer_op(rec, *inputs))
    if rec.op is OpKind.ADD and rec.const_q is not None:   # b = const_q (position embedding)
        if len(inputs) != 1:
            raise RecordError(f"layer {rec.name}: an add with const_q takes 1 input, got {len(inputs)}")
        inputs = (inputs[0], const_operand(rec, inputs[0]))
    want = 2 if rec.op is OpKind.ADD else 1
    if len(inputs) != want:
        raise RecordError(f"layer {rec.name}: {rec.op.value} takes {want} input(s), got {len(inputs)}")
    if rec.op is OpKind.LINEAR:
        return linear(rec, inputs[0], nm_mode, workers)
    if rec.op is OpKind.CONV2D:
        return conv2d(rec, inputs[0], nm_mode, workers)
    if rec.op is OpKind.MAXPOOL:
        return maxpool(rec, inputs[0])
    if rec.op is OpKind.AVGPOOL:
        return avgpool(rec, inputs[0])
    if rec.op is OpKind.GAVGPOOL:
        return gavgpool(rec, inputs[0])
    if rec.op is OpKind.ADD:
        return add(rec, inputs[0], inputs[1])
    if rec.op is OpKind.FLATTEN:
        return flatten(rec, inputs[0])
    raise RecordError(f"layer {rec.name}: unsupported op {rec.op!r}")
