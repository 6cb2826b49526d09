"""Where each weight and activation sits: the one owner of the layout rules (NumPy only).

Everything that orders, pads or selects along the reduction dimension lives here; the fuse
step, the N:M format (:mod:`t2c_sim.sparse.nm`), the torch pruners and the workload generators
all call these functions (the torch side converts tensors to arrays and back, nothing more).

- **Reduction order** (SPEC section 2): a conv weight ``[C_out, C_g, KH, KW]`` is laid out as
  ``[C_out, K]`` with ``k = (kh*KW + kw)*C_gp + c`` (input channel fastest, then kernel column,
  then kernel row), ``C_gp`` = ``C_g`` padded to a multiple of ``M`` with zero weights; a linear
  weight ``[C_out, C_in]`` keeps its order and is padded to ``C_in_p`` the same way.
- **K padding**: :func:`padded_len`, :func:`pad_k`.
- **(h, w, c) flatten order** (SPEC section 3): torch flattens an NCHW tensor as ``(c, h, w)``;
  the integer model holds activations channel-last and flattens as ``(h, w, c)``.
  :func:`hwc_perm` maps one order to the other.
- **Top-n in groups** (SPEC section 4): keep the ``n`` largest scores of every group of ``m``
  consecutive entries, ties to the lower index (:func:`topn_mask`).

Example: a conv weight with ``C_out = 1, C_in = 3, KH = 1, KW = 2`` and ``M = 4``::

    >>> reduction_order(np.arange(6).reshape(1, 3, 1, 2), 4)
    array([[0, 2, 4, 0, 1, 3, 5, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from t2c_sim.errors import ConfigError

__all__ = ["padded_len", "pad_k", "reduction_order", "from_reduction_order", "hwc_perm",
           "hwc_to_chw", "topn_mask"]


def padded_len(k: int, m: int) -> int:
    """``k`` rounded up to a multiple of ``m``: ``ceil(k / m) * m``.

    >>> padded_len(10, 4), padded_len(8, 4)
    (12, 8)
    """
    return -(-k // m) * m


def pad_k(w: np.ndarray, m: int, value: int = 0, axis: int = -1) -> np.ndarray:
    """Pad ``axis`` of ``w`` with ``value`` up to a multiple of ``m`` (weights pad with 0).

    >>> pad_k(np.ones((1, 3), dtype=np.int64), 4)
    array([[1, 1, 1, 0]])
    """
    w = np.asarray(w)
    k = w.shape[axis]
    kp = padded_len(k, m)
    if kp == k:
        return w
    width = [(0, 0)] * w.ndim
    width[axis] = (0, kp - k)
    return np.pad(w, width, constant_values=value)


def _check_weight(w: np.ndarray) -> None:
    if w.ndim not in (2, 4):
        raise ConfigError(f"expected a linear [C_out, C_in] or conv [C_out, C_in, KH, KW] weight, "
                          f"got shape {tuple(w.shape)}", key="weight")


def reduction_order(w: np.ndarray, m: int) -> np.ndarray:
    """Torch-layout weight -> ``[C_out, K]`` in reduction order, padded to a multiple of ``m``.

    Conv ``[C_out, C_g, KH, KW]`` -> ``[C_out, KH, KW, C_gp]`` -> ``[C_out, KH*KW*C_gp]``, so
    ``k = (kh*KW + kw)*C_gp + c``; linear ``[C_out, C_in]`` -> ``[C_out, C_in_p]``. Padding
    entries are 0 (of ``w``'s dtype).
    """
    w = np.asarray(w)
    _check_weight(w)
    if w.ndim == 4:
        w = pad_k(w.transpose(0, 2, 3, 1), m)
    else:
        w = pad_k(w, m)
    return w.reshape(w.shape[0], -1)


def from_reduction_order(mat: np.ndarray, shape: Sequence[int], m: int) -> np.ndarray:
    """Inverse of :func:`reduction_order`: back to the torch ``shape``, padding dropped."""
    shape = tuple(int(d) for d in shape)
    mat = np.asarray(mat)
    c_in = shape[1]
    if len(shape) == 2:
        return mat[:, :c_in].reshape(shape)
    c_out, _, kh, kw = shape
    t = mat.reshape(c_out, kh, kw, padded_len(c_in, m))[..., :c_in]
    return t.transpose(0, 3, 1, 2).reshape(shape)


def hwc_perm(c: int, h: int, w: int) -> np.ndarray:
    """Column permutation between the two flatten orders of a ``[C, H, W]`` activation.

    Integer-model column ``i = (hh*W + ww)*C + cc`` holds torch column
    ``perm[i] = cc*H*W + hh*W + ww``; so ``W_int = W_torch[:, perm]`` and
    ``x_int = x_torch[..., perm]``.

    >>> hwc_perm(2, 1, 2).tolist()
    [0, 2, 1, 3]
    """
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def hwc_to_chw(x: np.ndarray, c: int, h: int, w: int) -> np.ndarray:
    """Reorder the last axis of ``x`` from the integer ``(h, w, c)`` to torch's ``(c, h, w)``."""
    x = np.asarray(x)
    out = np.empty_like(x)
    out[..., hwc_perm(c, h, w)] = x
    return out


def topn_mask(score: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep-mask of the ``n`` largest scores in each group of ``m`` along the last axis.

    Groups are ``m`` consecutive entries (the last axis must be a multiple of ``m``); exactly
    ``n`` entries of every group are kept (``0 <= n <= m``); equal scores go to the lower index.

    >>> topn_mask(np.array([[1, 4, 4, 2]]), 2, 4).astype(int)
    array([[0, 1, 1, 0]])
    """
    score = np.asarray(score)
    if score.dtype.kind in "ub":   # negation below needs a signed type
        score = score.astype(np.int64)
    if score.size == 0:
        return np.zeros(score.shape, dtype=bool)
    g = score.reshape(score.shape[:-1] + (score.shape[-1] // m, m))
    order = np.argsort(-g, axis=-1, kind="stable")  # stable: equal scores keep index order
    keep = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    return keep.reshape(score.shape)
