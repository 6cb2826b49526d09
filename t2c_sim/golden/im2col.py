"""Sliding-window views for conv and pooling, channel-last, without Python loops over pixels.

:func:`im2col` lays a conv input out as the GEMM operand in the SPEC reduction order
(``k = (kh * KW + kw) * C_gp + c``); :func:`windows` gives the strided window view that the
pooling layers reduce over.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from t2c_sim.errors import RecordError
from t2c_sim.record import LayerRecord

__all__ = ["im2col", "windows", "pad_spatial", "conv_out_hw"]


def conv_out_hw(h: int, w: int, kh: int, kw: int, stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """``OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1`` (same for W), as in torch."""
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def pad_spatial(x: np.ndarray, padding: tuple[int, int], value: int) -> np.ndarray:
    """Pad ``x[B, H, W, ...]`` by ``padding = (ph, pw)`` pixels on each side with ``value``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    width = [(0, 0), (ph, ph), (pw, pw)] + [(0, 0)] * (x.ndim - 3)
    return np.pad(x, width, constant_values=value)


def windows(xp: np.ndarray, kh: int, kw: int, stride: tuple[int, int],
            dilation: tuple[int, int], oh: int, ow: int) -> np.ndarray:
    """Read-only view ``v[B, OH, OW, KH, KW, ...]`` of an already padded ``xp[B, Hp, Wp, ...]``.

    ``v[b, i, j, r, s, ...] = xp[b, i*sh + r*dh, j*sw + s*dw, ...]`` (no copy).
    """
    sb, sy, sx = xp.strides[:3]
    shape = (xp.shape[0], oh, ow, kh, kw) + xp.shape[3:]
    strides = (sb, sy * stride[0], sx * stride[1], sy * dilation[0], sx * dilation[1]) + xp.strides[3:]
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def im2col(rec: LayerRecord, x: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    """Conv input ``x[B, H, W, C_in]`` -> GEMM operand ``cols[groups, P, K]`` in ``dtype``.

    ``P = B * OH * OW`` in ``(b, oh, ow)`` order; ``K = KH * KW * C_gp`` in the SPEC reduction
    order ``k = (kh * KW + kw) * C_gp + c`` with ``C_g = C_in / groups`` and ``C_gp`` = ``C_g``
    padded up to a multiple of ``M``. Group ``g`` reads input channels ``g*C_g .. g*C_g+C_g-1``,
    so ``acc[:, o] = cols[o // (C_out/groups)] @ w_q[o]`` (plus bias). Spatial padding pixels
    and the ``C_gp - C_g`` padding channels hold ``z_x`` (real 0; padding channels meet 0
    weights). Stride, padding and dilation follow torch's ``conv2d``. ``dtype`` may be a float
    type (values are small integers, stored exactly) to feed BLAS without another copy.

    Example: ``x[1, 2, 2, 1] = [[1, 2], [3, 4]]``, 2x2 kernel, padding 0 -> ``cols[0] =
    [[1, 2, 3, 4]]``.
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[3] != rec.c_in:
        raise RecordError(f"layer {rec.name}: conv input must be [B, H, W, {rec.c_in}], "
                          f"got {x.shape}")
    b, h, w, _ = x.shape
    g, cg, cgp = rec.groups, rec.c_in_g, rec.c_in_p
    oh, ow = conv_out_hw(h, w, rec.kh, rec.kw, rec.stride, rec.padding, rec.dilation)
    if oh <= 0 or ow <= 0:
        raise RecordError(f"layer {rec.name}: input {h}x{w} is too small for the kernel "
                          f"(output {oh}x{ow})")
    xg = x.astype(dtype, copy=False).reshape(b, h, w, g, cg)
    if cgp != cg:
        xg = np.pad(xg, [(0, 0)] * 4 + [(0, cgp - cg)], constant_values=rec.z_x)
    xp = np.ascontiguousarray(pad_spatial(xg, rec.padding, rec.z_x))
    v = windows(xp, rec.kh, rec.kw, rec.stride, rec.dilation, oh, ow)  # [B,OH,OW,KH,KW,G,Cgp]
    out = np.empty((g, b, oh, ow, rec.kh, rec.kw, cgp), dtype=dtype)
    out[...] = np.moveaxis(v, 5, 0)
    return out.reshape(g, b * oh * ow, rec.kh * rec.kw * cgp)
