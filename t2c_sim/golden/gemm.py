"""Exact integer matrix products through float BLAS (the golden model's GEMM).

``int_matmul(x[P, K], w[C, K]) = x @ w.T`` exactly, as int64, for integer operands of small
width. Naive int64 ``np.matmul`` has no BLAS kernel and is ~100x slower than float GEMM, so
``K`` is cut into chunks small enough that float arithmetic is exact inside each chunk.

Exactness proof (per chunk of ``L`` reduction steps, float type with a ``p``-bit significand,
``p = 24`` for float32 and ``p = 53`` for float64): let ``ax = max|x|`` and ``aw = max|w|`` of the
actual operands. Every operand is an integer with ``|v| <= 2^p`` and so is stored exactly. Every
value a GEMM kernel forms inside the chunk is a product ``x_k * w_k`` or a sum of a subset of
such products (any order, any blocking, with or without FMA), hence an integer of magnitude
``<= L * ax * aw``. If ``L * ax * aw <= 2^p`` every such integer is representable, so each
correctly rounded multiply, add or FMA returns its exact result: the chunk's float result is
the exact integer dot product. Chunk results are converted to int64 and summed there; the
total is bounded by ``K * ax * aw``, which :func:`plan_gemm` checks against ``2^63 - 1``.
The argument assumes a BLAS that multiplies and adds the given elements in the given float
type (OpenBLAS, MKL, Accelerate do; no Strassen, no TF32/bf16 down-conversion).

When even one product does not fit (``ax * aw > 2^53``) the exact int64 ``np.matmul`` path is
used (still exact while ``K * ax * aw <= 2^63 - 1``; beyond that :class:`NumericsError`).

Measured on the project machine (OpenBLAS, 2 cores): float32 GEMM is ~2.3x faster than float64
for the same shapes, and its input arrays are half the size, so float32 is preferred whenever its
chunk is at least :data:`MIN_F32_CHUNK` (int8 x int8: ``2^24 / 2^14 = 1024``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from t2c_sim.errors import NumericsError
from t2c_sim.numerics import INT64_MAX, as_int64

__all__ = ["GemmPlan", "plan_gemm", "int_matmul", "float_matmul_exact", "max_abs"]

log = logging.getLogger(__name__)

F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
MIN_F32_CHUNK = 128  # below this many steps per chunk the float32 chunking overhead dominates
MIN_F64_CHUNK = 16   # below this the int64 path is used


@dataclass(frozen=True)
class GemmPlan:
    """How an exact product is computed: ``dtype`` (float32, float64 or int64) and ``chunk``.

    ``chunk`` is the number of reduction steps per float GEMM call (``>= K`` means one call).
    """

    dtype: type
    chunk: int


def max_abs(a: np.ndarray) -> int:
    """``max |a|`` as a Python int (0 for an empty array)."""
    if a.size == 0:
        return 0
    return max(abs(int(a.min())), abs(int(a.max())))


def plan_gemm(ax: int, aw: int, k: int) -> GemmPlan:
    """Choose the float type and chunk length for ``|x| <= ax``, ``|w| <= aw``, ``K = k``.

    ``chunk = floor(2^p / (ax * aw))`` (``p = 24`` float32, ``53`` float64; see the module
    docstring for why every partial sum is then exact). Raises :class:`NumericsError` when the
    int64 total ``k * ax * aw`` can overflow.

    >>> plan_gemm(128, 128, 576)    # int8 x int8: 2^24 / 2^14 = 1024 >= K, one float32 call
    GemmPlan(dtype=<class 'numpy.float32'>, chunk=1024)
    """
    prod = max(1, ax * aw)
    if k * prod > INT64_MAX:
        raise NumericsError(f"int_matmul: K={k} x max|x|={ax} x max|w|={aw} can overflow int64")
    c32 = F32_EXACT // prod
    if c32 >= min(MIN_F32_CHUNK, max(k, 1)):
        return GemmPlan(np.float32, c32)
    c64 = F64_EXACT // prod
    if c64 >= min(MIN_F64_CHUNK, max(k, 1)):
        return GemmPlan(np.float64, c64)
    return GemmPlan(np.int64, max(k, 1))


def float_matmul_exact(xf: np.ndarray, wf: np.ndarray, plan: GemmPlan) -> np.ndarray:
    """``xf @ wf^T`` over the last axis, chunked along K per ``plan``; returns int64.

    ``xf[..., P, K]`` and ``wf[..., C, K]`` already hold integers in ``plan.dtype`` (leading
    batch axes broadcast as in ``np.matmul``). The caller guarantees the bounds that ``plan``
    was made for.
    """
    k = xf.shape[-1]
    if plan.dtype is np.int64:
        return np.matmul(xf, np.swapaxes(wf, -1, -2))
    if k <= plan.chunk:
        return np.matmul(xf, np.swapaxes(wf, -1, -2)).astype(np.int64)
    out = None
    for k0 in range(0, k, plan.chunk):
        part = np.matmul(xf[..., k0:k0 + plan.chunk], np.swapaxes(wf[..., k0:k0 + plan.chunk], -1, -2))
        if out is None:
            out = part.astype(np.int64)
        else:
            out += part.astype(np.int64)
    return out


def int_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact ``x @ w.T`` for integer ``x[P, K]`` and ``w[C, K]``: int64 ``[P, C]``.

    Formula: ``out[p, c] = sum_k x[p, k] * w[c, k]`` with no rounding and no wrap. Leading batch
    axes are allowed (``x[G, P, K]``, ``w[G, C, K]`` -> ``[G, P, C]``). Uses float32 or float64
    BLAS on K-chunks whose partial sums are provably exact (module docstring), chosen from the
    actual ``max|x|`` and ``max|w|``; falls back to int64 ``np.matmul`` for wide operands.
    Raises :class:`NumericsError` for non-integer input, mismatched K, or when the int64 sum
    could overflow (``K * max|x| * max|w| > 2^63 - 1``).

    >>> int_matmul(np.array([[-128, -128]]), np.array([[-128, -128], [1, 2]])).tolist()
    [[32768, -384]]
    """
    x = as_int64(x, "int_matmul x")
    w = as_int64(w, "int_matmul w")
    if x.ndim < 2 or w.ndim < 2 or x.shape[-1] != w.shape[-1]:
        raise NumericsError(f"int_matmul: x {x.shape} and w {w.shape} need matching last axis K")
    plan = plan_gemm(max_abs(x), max_abs(w), x.shape[-1])
    log.debug("int_matmul %s x %s: %s chunk %d", x.shape, w.shape, plan.dtype.__name__, plan.chunk)
    if plan.dtype is np.int64:
        return float_matmul_exact(x, w, plan)
    return float_matmul_exact(x.astype(plan.dtype), w.astype(plan.dtype), plan)
