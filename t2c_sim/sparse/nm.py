"""N:M structured sparsity on integer weight matrices (SPEC section 4), NumPy only.

Weights are ``W[C_out, K]`` in reduction order; groups are ``M`` consecutive elements of a
row along ``k``. A legal group holds at most ``N`` nonzeros. The stored form of a group is
``N`` values and ``N`` strictly increasing indices (``ceil(log2 M)`` bits); a group with fewer
than ``N`` nonzeros stores explicit zeros at its lowest unused indices.

Example (2:4): row ``[0, 5, 0, -3 | 0, 0, 0, 0 | 7, 0, 0, 0]`` compresses to
``values [5, -3, 0, 0, 7, 0]`` and ``indices [1, 3, 0, 1, 0, 1]``.
"""

from __future__ import annotations

import numpy as np

from t2c_sim.config import nm_params
from t2c_sim.errors import SparsityError
from t2c_sim.layout import topn_mask

__all__ = ["nm_mask", "check_nm", "compress", "decompress"]


def _groups(w: np.ndarray, m: int, name: str) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise SparsityError(f"{name}: expected a 2-D [C_out, K] matrix, got shape {w.shape}")
    if w.shape[1] % m:
        raise SparsityError(f"{name}: K={w.shape[1]} is not a multiple of M={m} "
                            "(pad it with t2c_sim.layout.pad_k)")
    return w.reshape(w.shape[0], w.shape[1] // m, m)


def nm_mask(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Boolean keep-mask: the ``n`` largest ``|w|`` in each group of ``m``, ties to the lower index.

    ``w`` is ``[C_out, K]`` with ``K % m == 0`` (int or float). Exactly ``n`` entries per group
    are kept (some may be zero).

    >>> nm_mask(np.array([[1, -4, 4, 2]]), 2, 4).astype(int)
    array([[0, 1, 1, 0]])
    """
    n, m = nm_params(n, m)
    _groups(w, m, "nm_mask")
    return topn_mask(np.abs(np.asarray(w)), n, m)


def check_nm(w: np.ndarray, n: int, m: int, name: str = "weights") -> None:
    """Raise :class:`SparsityError` naming the first ``(channel, group)`` with more than ``n`` nonzeros."""
    n, m = nm_params(n, m)
    g = _groups(w, m, name)
    nnz = np.count_nonzero(g, axis=-1)
    bad = np.argwhere(nnz > n)
    if bad.size:
        c, grp = (int(v) for v in bad[0])
        raise SparsityError(
            f"{name}: channel {c}, group {grp} (k {grp * m}..{grp * m + m - 1}) has "
            f"{int(nnz[c, grp])} nonzeros, more than N={n} of {n}:{m}")


def compress(w_q: np.ndarray, n: int, m: int, name: str = "weights",
             ) -> tuple[np.ndarray, np.ndarray]:
    """Compress a legal N:M integer matrix to ``(values[C_out, K/M*N], indices[C_out, K/M*N])``.

    Values keep ``w_q``'s integers (as int64); indices are int64 in ``[0, m)``, strictly
    increasing within a group. Illegal weights raise :class:`SparsityError` naming the first
    offending ``(channel, group)``.
    """
    check_nm(w_q, n, m, name)
    g = _groups(np.asarray(w_q, dtype=np.int64), m, name)
    # Take nonzeros first, then zeros, each by ascending index; keep N; sort indices ascending.
    key = (g == 0).astype(np.int64) * m + np.arange(m, dtype=np.int64)
    idx = np.sort(np.argsort(key, axis=-1, kind="stable")[..., :n], axis=-1)
    vals = np.take_along_axis(g, idx, axis=-1)
    c = g.shape[0]
    return vals.reshape(c, -1), idx.astype(np.int64).reshape(c, -1)


def decompress(values: np.ndarray, indices: np.ndarray, n: int, m: int, k: int | None = None,
               ) -> np.ndarray:
    """Inverse of :func:`compress`: dense ``W[C_out, K]`` (``K = groups * m``, or ``k`` to cut padding)."""
    n, m = nm_params(n, m)
    values = np.asarray(values, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if values.shape != indices.shape or values.ndim != 2 or values.shape[1] % n:
        raise SparsityError(f"values {values.shape} and indices {indices.shape} must be equal "
                            f"2-D shapes with a multiple of N={n} columns")
    if indices.size and (indices.min() < 0 or indices.max() >= m):
        raise SparsityError(f"indices must be in [0, {m})")
    c, gn = values.shape
    ng = gn // n
    vi = indices.reshape(c, ng, n)
    if n > 1 and np.any(np.diff(vi, axis=-1) <= 0):
        bad = np.argwhere(np.any(np.diff(vi, axis=-1) <= 0, axis=-1))[0]
        raise SparsityError(f"indices of channel {bad[0]}, group {bad[1]} are not strictly increasing")
    dense = np.zeros((c, ng, m), dtype=np.int64)
    np.put_along_axis(dense, vi, values.reshape(c, ng, n), axis=-1)
    dense = dense.reshape(c, ng * m)
    return dense if k is None else dense[:, :k]
