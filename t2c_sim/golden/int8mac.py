"""Exact 8-bit linear and conv layers on the compiled AVX-512 VNNI kernel (the default engine).

:func:`linear` and :func:`conv` compute the whole MAC layer, ``acc = wrap(bias_eff + x . W)``
and ``y = requantize(acc)`` (SPEC section 2), in one pass per cache-sized block: an implicit
im2col (a conv is ``KH*KW`` shifted reads of one padded channel-last input, never a copy per
tap), an integer GEMM on bytes, and the bias, wrap and requantize of each finished block
while it is still in registers and L1. Blocks run on a thread pool (ctypes releases the GIL).

Exactness (the full argument is in ``_int8mac.c``): activations become unsigned bytes
``u = x + XOFF`` (``XOFF = 2^(a_bits-1)`` for signed, 0 for unsigned input of at most 8 bits) and
weights signed bytes; the kernel's 32-bit lanes hold ``sum_k u*w mod 2^32`` exactly, and
``badj[c] = wrap(bias_eff[c], ACC_BITS) - XOFF * sum_k w[c, k]`` turns that into
``bias_eff + x . W mod 2^32``, which determines the ``ACC_BITS``-bit wrapped accumulator for
``ACC_BITS <= 32``. Wider accumulators are taken only when ``K * 255 * 128 < 2^31``, where
the 32-bit sum is the exact integer. The requantizer uses the formulas of
``numerics.round_shift`` under the bounds ``numerics.requantize`` checks for its int64 path.

Each function returns ``None`` when a precondition does not hold (no kernel on this machine,
operands wider than 8 bits, an out-of-range zero point, weights outside int8, a wide
accumulator with a long reduction, parameters outside the int64 bounds, a rounding mode the
kernel does not know); the caller then uses the NumPy path, which gives the same integers or
raises the same errors.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from t2c_sim.config import RoundMode
from t2c_sim.errors import NumericsError
from t2c_sim.golden import native
from t2c_sim.numerics import INT64_MAX, INT64_MIN, wrap
from t2c_sim.record import LayerRecord

__all__ = ["linear", "conv", "default_workers", "MR"]

MR = 6                    # rows per micro-kernel call (matches _int8mac.c)
TASKS_PER_WORKER = 4      # finer tasks balance a machine shared with other jobs
MIN_PARALLEL_MACS = 1 << 20  # below this, one thread (a task switch costs more than it saves)
STREAM_BYTES = 4 << 20    # outputs at least this large bypass the caches (non-temporal stores)
_MODE_CODES = {RoundMode.HALF_EVEN: 0, RoundMode.HALF_UP: 1, RoundMode.HALF_AWAY: 2,
               RoundMode.FLOOR: 3}
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, size, pool)
_pool_lock = threading.Lock()


def default_workers() -> int:
    """CPUs this process may run on (the golden model's default thread count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _executor(n: int) -> ThreadPoolExecutor:
    """The process-wide pool, with at least ``n`` threads (re-made after a fork or to grow).

    A pool that is replaced is left to its callers (never shut down under a concurrent
    caller); it is replaced only to grow, so at most one per distinct larger size exists.
    """
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] < n:
            _pool = (os.getpid(), n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="t2c-golden"))
        return _pool[2]


def _run_all(calls: list, workers: int) -> None:
    """Run ``calls`` on ``workers`` threads: this one and ``workers - 1`` pool threads.

    Every thread takes the next call from one shared iterator (``next`` on a list iterator
    is atomic under the GIL; the kernel calls release it), so a thread slowed down by other
    load on the machine simply takes fewer calls.
    """
    n = min(workers, len(calls))
    if n <= 1:
        for c in calls:
            c()
        return
    it = iter(calls)

    def drain() -> None:
        for c in it:
            c()

    futures = [_executor(workers - 1).submit(drain) for _ in range(n - 1)]
    drain()
    for f in futures:
        f.result()


def _aligned_empty(shape: tuple[int, int]) -> np.ndarray:
    """Uninitialized int64 array whose data starts on a 64-byte line (whole-line vector stores)."""
    n = shape[0] * shape[1]
    buf = np.empty(n + 8, dtype=np.int64)
    off = (-buf.ctypes.data % 64) // 8
    return buf[off:off + n].reshape(shape)


def _splits(n: int, parts: int, unit: int = 1) -> list[tuple[int, int]]:
    """``[0, n)`` cut into at most ``parts`` ranges whose inner bounds are multiples of ``unit``."""
    units = -(-n // unit)
    parts = max(1, min(parts, units))
    bounds = [min(n, (units * i // parts) * unit) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


@dataclass(frozen=True)
class _Acts:
    """Activation bytes read by the kernel: ``u[p, (t, c)] = buf[offp[p] + offt[t] + gstep*g + c]``."""

    buf: np.ndarray        # uint8, with at least ``cq`` bytes of slack after the last pixel
    offp: np.ndarray       # int64 [P]
    offt: np.ndarray       # int64 [T]
    gstep: int             # bytes between the channel blocks of consecutive groups


def _offset(rec: LayerRecord) -> int | None:
    """``XOFF`` that maps the input range into bytes, or ``None`` beyond 8 bits."""
    lo, hi = rec.x_range
    xoff = -lo if lo < 0 else 0
    return xoff if hi + xoff <= 255 else None


def _params(rec: LayerRecord, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """``(bias_eff, M0, sh, row_stride)`` as contiguous int64, per channel or token-wise ``[P, C]``."""
    arrs = [np.asarray(a, dtype=np.int64) for a in (rec.bias_eff, rec.M0, rec.sh)]
    c = rec.c_out
    if all(a.shape == (c,) for a in arrs):
        return (*(np.ascontiguousarray(a) for a in arrs), 0)
    if all(a.shape in ((c,), (p, c)) for a in arrs):
        return (*(np.ascontiguousarray(np.broadcast_to(a, (p, c))) for a in arrs), c)
    return None


def _pack(lib, w: np.ndarray, groups: int, taps: int, cgp: int, cq: int, nrw: int, workers: int,
          ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Pack ``w[C_out, T*cgp]`` per group into kernel panels; returns ``(packed, colsum, min, max)``."""
    c_out = w.shape[0]
    cog = c_out // groups
    nq = -(-cog // nrw)
    panel = taps * cq * nrw
    packed = np.empty(groups * nq * panel, dtype=np.int8)
    colsum = np.empty(c_out, dtype=np.int64)
    jobs, mnmx = [], []
    for g in range(groups):
        for q0, q1 in _splits(nq, workers * TASKS_PER_WORKER if workers > 1 else 1):
            mm = np.zeros(2, dtype=np.int64)
            mnmx.append(mm)
            args = (w.ctypes.data + g * cog * w.strides[0], w.strides[0] // 8, cog, taps, cgp, cq, nrw,
                    q0, q1, packed.ctypes.data + g * nq * panel, colsum.ctypes.data + g * cog * 8,
                    mm.ctypes.data)
            jobs.append(lambda a=args: lib.t2c_pack(*a))
    _run_all(jobs, workers)
    return packed, colsum, int(min(m[0] for m in mnmx)), int(max(m[1] for m in mnmx))


def _mac(rec: LayerRecord, w: np.ndarray, acts: _Acts, taps: int, cgp: int, workers: int,
         ) -> tuple[np.ndarray, np.ndarray] | None:
    """Pack ``w``, check every precondition, run the kernel tasks; ``(acc, y)`` or ``None``."""
    lib = native.kernel()
    mode = _MODE_CODES.get(rec.mode)
    xoff = _offset(rec)
    if lib is None or mode is None or xoff is None or not 1 <= rec.acc_bits <= 64:
        return None
    p, c_out, groups = acts.offp.shape[0], rec.c_out, rec.groups
    if p == 0 or c_out == 0 or c_out % groups or cgp == 0:
        return None
    params = _params(rec, p)
    if params is None:
        return None
    bias, m0, sh, par_ld = params
    cq = -(-cgp // 4) * 4
    cog = c_out // groups
    nrw = 16 * min(4, -(-cog // 16))
    k = taps * cgp
    if p * k * c_out < MIN_PARALLEL_MACS:
        workers = 1
    packed, colsum, wmin, wmax = _pack(lib, np.ascontiguousarray(w, dtype=np.int64), groups, taps, cgp,
                                       cq, nrw, workers)
    if wmin < -128 or wmax > 127:
        return None
    aw = max(-wmin, wmax)
    ax = max(-rec.x_range[0], rec.x_range[1], abs(rec.z_x))  # format bound on every byte read
    half = 1 << (rec.acc_bits - 1)
    if k * ax * aw + half > INT64_MAX:
        return None  # the NumPy path raises the overflow error
    if rec.acc_bits > 32 and k * 255 * 128 >= 1 << 31:
        return None  # the 32-bit lane sum would not be the exact integer
    # requantize preconditions: numerics.requantize's int64 fast-path bounds
    wb = wrap(bias, rec.acc_bits)
    if sh.size and (int(sh.min()) < 0 or int(sh.max()) > 63) or (m0.size and int(m0.min()) < 0):
        return None
    if not all(INT64_MIN <= v <= INT64_MAX for v in (rec.z_y, rec.lo, rec.hi)) or rec.lo > rec.hi:
        return None
    acc_bound = min(k * ax * aw + (max(-int(wb.min()), int(wb.max())) if wb.size else 0), half)
    prod = acc_bound * (int(m0.max()) if m0.size else 0)
    smax, smin = (int(sh.max()), int(sh.min())) if sh.size else (0, 0)
    if prod + (1 << max(smax - 1, 0)) > INT64_MAX or (prod >> min(smin, 62)) + abs(rec.z_y) + 1 > INT64_MAX:
        return None
    cs = colsum if par_ld == 0 else np.broadcast_to(colsum, (p, c_out))
    badj = np.ascontiguousarray(wb - xoff * cs)
    acc = _aligned_empty((p, c_out))
    y = _aligned_empty((p, c_out))
    stream = int(2 * acc.nbytes >= STREAM_BYTES)
    nq = -(-cog // nrw)
    panel = taps * cq * nrw
    ntask = workers * TASKS_PER_WORKER if workers > 1 else 1
    qparts = min(nq, -(-ntask // groups))
    rparts = -(-ntask // (groups * qparts))
    jobs = []
    for g in range(groups):
        for q0, q1 in _splits(nq, qparts):
            for p0, p1 in _splits(p, rparts, MR):
                args = (acts.buf.ctypes.data + g * acts.gstep, acts.offp.ctypes.data,
                        acts.offt.ctypes.data, taps, cq, packed.ctypes.data + g * nq * panel, nrw, cog,
                        p, badj.ctypes.data + g * cog * 8, m0.ctypes.data + g * cog * 8,
                        sh.ctypes.data + g * cog * 8, par_ld, rec.acc_bits, rec.z_y, rec.lo, rec.hi,
                        mode, stream, acc.ctypes.data + g * cog * 8, y.ctypes.data + g * cog * 8, c_out,
                        p0, p1, q0, q1)
                jobs.append(lambda a=args: _check_rc(lib.t2c_mac(*a)))
    _run_all(jobs, workers)
    return acc, y


def _check_rc(rc: int) -> None:
    if rc != 0:
        raise NumericsError(f"int8 MAC kernel returned {rc} (internal error: bad panel width)")


def linear(rec: LayerRecord, x2: np.ndarray, w: np.ndarray, workers: int,
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(acc, y)`` ``[P, C_out]`` of a linear layer on ``x2[P, C_in]``, or ``None``.

    ``x2`` is int64 already checked against the input format; it is padded along ``K`` with
    ``z_x`` (the record's padding columns); ``w`` is the dense ``w_q[C_out, K]``.
    """
    xoff = _offset(rec)
    if xoff is None or native.kernel() is None:
        return None
    p, k = x2.shape[0], rec.k
    cq = -(-k // 4) * 4
    buf = np.empty((p, cq), dtype=np.uint8)
    np.add(x2, xoff, out=buf[:, :rec.c_in], casting="unsafe")  # values checked: exact bytes
    if k > rec.c_in:
        if not 0 <= rec.z_x + xoff <= 255:
            return None
        buf[:, rec.c_in:k] = rec.z_x + xoff
    buf[:, k:] = 0
    acts = _Acts(buf, np.arange(p, dtype=np.int64) * cq, np.zeros(1, dtype=np.int64), 0)
    return _mac(rec, w, acts, 1, k, workers)


def conv(rec: LayerRecord, x: np.ndarray, w: np.ndarray, workers: int,
         ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(acc, y)`` ``[B*OH*OW, C_out]`` of a conv on ``x[B, H, W, C_in]`` (checked int64), or ``None``.

    The input is laid out once as bytes ``[B, H+2ph, W+2pw, groups, C_gp]`` with ``z_x`` in the
    spatial and channel padding (SPEC: padding pixels are real 0); the kernel reads tap
    ``(r, s)`` of output pixel ``(b, i, j)`` at pixel ``(b, i*sh + r*dh, j*sw + s*dw)``.
    """
    xoff = _offset(rec)
    if xoff is None or native.kernel() is None:
        return None
    b, h, wd, _ = x.shape
    g, cg, cgp = rec.groups, rec.c_in_g, rec.c_in_p
    (ph, pw), (sy, sx), (dy, dx) = rec.padding, rec.stride, rec.dilation
    oh = (h + 2 * ph - dy * (rec.kh - 1) - 1) // sy + 1
    ow = (wd + 2 * pw - dx * (rec.kw - 1) - 1) // sx + 1
    hp, wp, pix = h + 2 * ph, wd + 2 * pw, g * cgp
    n = b * hp * wp * pix
    cq = -(-cgp // 4) * 4
    buf = np.empty(n + cq, dtype=np.uint8)
    if ph or pw or cgp != cg:
        if not 0 <= rec.z_x + xoff <= 255:
            return None
        buf[:n] = rec.z_x + xoff
    buf[n:] = 0
    view = buf[:n].reshape(b, hp, wp, g, cgp)
    np.add(x.reshape(b, h, wd, g, cg), xoff, out=view[:, ph:ph + h, pw:pw + wd, :, :cg], casting="unsafe")
    rows = (np.arange(b, dtype=np.int64)[:, None] * hp + np.arange(oh, dtype=np.int64)[None, :] * sy) * wp
    offp = ((rows[:, :, None] + np.arange(ow, dtype=np.int64)[None, None, :] * sx) * pix).reshape(-1)
    offt = ((np.arange(rec.kh, dtype=np.int64)[:, None] * dy * wp
             + np.arange(rec.kw, dtype=np.int64)[None, :] * dx) * pix).reshape(-1)
    return _mac(rec, w, _Acts(buf, offp, offt, cgp), rec.kh * rec.kw, cgp, workers)
