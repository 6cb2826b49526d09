"""The compiled 8-bit MAC kernel (golden/int8mac.py + _int8mac.c) against independent oracles.

Oracles: the nested-loop Python-int conv/linear and the Fraction requantizer of
test_golden_layers, and plain int64 NumPy sums; never the kernel or the NumPy float path.
Each case first asserts that the kernel really took it (``int8mac.conv/linear`` is not
``None``), so a silent fallback cannot make a kernel test pass. Mutants at the end prove the
comparisons catch a wrong rounding mode, a wrong activation offset and missing row blocks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_golden_layers import naive_conv, naive_linear, py_requant, py_wrap

import t2c_sim.golden.int8mac as im
from t2c_sim.config import OpKind
from t2c_sim.golden import native, run_layer
from t2c_sim.golden.layers import _dense_w
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

needs_kernel = pytest.mark.skipif(native.kernel() is None, reason=f"no kernel: {native.status()}")


def _has_vnni_and_cc() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags and "avx512bw" in flags and shutil.which("cc") is not None


def kernel_out(rec: LayerRecord, x: np.ndarray, workers: int = 1):
    """``(acc, y)`` from the kernel alone (``None`` when it declines), shaped like ``run_layer``."""
    w = _dense_w(rec)
    if rec.op is OpKind.CONV2D:
        res = im.conv(rec, x, w, workers)
        shape = (x.shape[0], *rec.replace(h=x.shape[1], w=x.shape[2]).out_hw, rec.c_out)
    else:
        res = im.linear(rec, x.reshape(-1, rec.c_in), w, workers)
        shape = (*x.shape[:-1], rec.c_out)
    return None if res is None else (res[0].reshape(shape), res[1].reshape(shape))


def test_kernel_is_the_default_where_the_machine_has_one():
    """A VNNI machine with a C compiler must not silently fall back to the slow path."""
    if not _has_vnni_and_cc():
        pytest.skip("no AVX-512 VNNI or no cc here")
    assert native.kernel() is not None, native.status()
    assert "VNNI" in native.status()


# ---- conv ------------------------------------------------------------------------------------
# (c_in, c_out, h, w, kh, kw, stride, padding, dilation, groups, batch, n, m, a_bits, a_signed,
#  mode, acc_bits)
CONV_CASES = [
    (3, 17, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8, True, "half_even", 32),     # C_gp=3, 2 partial lanes
    (8, 33, 7, 6, 3, 2, (2, 1), (1, 2), (2, 1), 1, 2, 2, 4, 8, False, "half_up", 32),
    (6, 6, 5, 5, 3, 3, 1, 2, 2, 6, 1, 1, 1, 8, True, "half_away", 32),    # depthwise, dilated
    (10, 8, 6, 5, 3, 3, (1, 2), 1, 1, 2, 1, 2, 4, 4, True, "floor", 32),  # C_g=5 -> C_gp=8, 4-bit
    (16, 70, 4, 4, 1, 1, 1, 0, 1, 1, 3, 1, 1, 8, False, "half_even", 16),  # 2 panels, 16-bit wrap
    (5, 4, 3, 3, 3, 3, 1, 0, 1, 1, 1, 3, 8, 8, True, "half_even", 20),    # P = 1, 3:8
    (4, 12, 2, 2, 3, 3, 2, 1, 1, 4, 1, 1, 2, 8, True, "half_up", 40),     # wide acc, P = 1
    (64, 64, 5, 5, 3, 3, 1, 1, 1, 1, 1, 2, 4, 8, True, "half_even", 32),  # ResNet-like, 2:4
]


@needs_kernel
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"c{i}" for i in range(len(CONV_CASES))])
def test_conv_kernel_matches_naive(case, seed):
    (c_in, c_out, h, w, kh, kw, st, pad, dil, groups, batch, n, m, a_bits, a_signed, mode,
     acc_bits) = case
    print("seed", seed, "case", case)
    rec = random_conv_record(np.random.default_rng(seed), c_in=c_in, c_out=c_out, h=h, w=w, kh=kh,
                             kw=kw, stride=st, padding=pad, dilation=dil, groups=groups, batch=batch,
                             n=n, m=m, a_bits=a_bits, a_signed=a_signed, w_bits=min(a_bits, 8),
                             mode=mode, acc_bits=acc_bits)
    acc_ref, y_ref = naive_conv(rec, rec.x_q)
    got = kernel_out(rec, rec.x_q)
    assert got is not None, "the kernel declined a case it supports"
    assert np.array_equal(got[0], acc_ref) and np.array_equal(got[1], y_ref)
    out = run_layer(rec)  # the default path is the kernel
    assert np.array_equal(out.acc, acc_ref) and np.array_equal(out.y, y_ref)


# ---- linear ----------------------------------------------------------------------------------
# (c_in, c_out, rows, n, m, a_bits, a_signed, mode, acc_bits, token_wise)
LINEAR_CASES = [
    (13, 7, 5, 1, 1, 8, True, "half_even", 32, False),   # K not a multiple of 4
    (30, 65, 1, 2, 4, 8, False, "half_up", 32, False),    # P = 1, K padded 30 -> 32, 2 panels
    (9, 50, 6, 2, 4, 6, True, "half_away", 32, True),     # token-wise parameters
    (21, 130, 13, 1, 8, 8, False, "floor", 24, False),    # 1:8 -> K = 24, 13 rows, 3 panels
    (40, 20, 7, 1, 1, 8, True, "half_even", 48, False),   # 48-bit accumulator, short K
]


@needs_kernel
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", LINEAR_CASES, ids=[f"l{i}" for i in range(len(LINEAR_CASES))])
def test_linear_kernel_matches_naive(case, seed):
    c_in, c_out, rows, n, m, a_bits, a_signed, mode, acc_bits, token_wise = case
    print("seed", seed, "case", case)
    rec = random_linear_record(np.random.default_rng(seed), c_in=c_in, c_out=c_out, rows=rows, n=n,
                               m=m, a_bits=a_bits, a_signed=a_signed, mode=mode, acc_bits=acc_bits,
                               token_wise=token_wise)
    acc_ref, y_ref = naive_linear(rec, rec.x_q)
    got = kernel_out(rec, rec.x_q)
    assert got is not None, "the kernel declined a case it supports"
    assert np.array_equal(got[0], acc_ref) and np.array_equal(got[1], y_ref)


@needs_kernel
def test_16_bit_accumulator_really_wraps_in_the_kernel():
    rec = random_linear_record(np.random.default_rng(3), c_in=700, c_out=6, rows=8, acc_bits=16)
    raw = rec.x_q @ rec.w_q.T + rec.bias_eff
    assert np.any((raw < -2**15) | (raw >= 2**15))  # the sums really leave 16 bits
    acc_ref, y_ref = naive_linear(rec, rec.x_q)
    got = kernel_out(rec, rec.x_q)
    assert got is not None and np.array_equal(got[0], acc_ref) and np.array_equal(got[1], y_ref)


def _extreme_linear(k: int, a_signed: bool, acc_bits: int = 32) -> tuple[LayerRecord, np.ndarray]:
    """Inputs and weights at the ends of their ranges over a long K (sums beyond 2^31)."""
    lo, hi = (-128, 127) if a_signed else (0, 255)
    x = np.array([[lo] * k, [hi] * k, [lo, hi] * (k // 2)], dtype=np.int64)
    w = np.array([[-128] * k, [127] * k, [127, -128] * (k // 2)], dtype=np.int64)
    rec = LayerRecord(name="extreme", op=OpKind.LINEAR, c_in=k, c_out=3, a_signed=a_signed,
                      acc_bits=acc_bits, wrap_ok=True, w_q=w, bias_eff=np.array([5, -7, 2**20]),
                      M0=np.array([1, 3, 1 << 30]), sh=np.array([0, 2, 40]), z_y=3, lo=-2**31,
                      hi=2**31 - 1)
    return rec, x


def _oracle(rec: LayerRecord, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Python-int dot (exact), wrap, Fraction requantize, per element."""
    acc = np.zeros((x.shape[0], rec.c_out), dtype=np.int64)
    y = np.zeros_like(acc)
    for p in range(x.shape[0]):
        for o in range(rec.c_out):
            s = int(rec.bias_eff[o]) + int(np.dot(x[p], rec.w_q[o]))  # |dot| < 2^40: int64 exact
            acc[p, o] = py_wrap(s, rec.acc_bits)
            y[p, o] = py_requant(acc[p, o], rec.M0[o], rec.sh[o], rec.z_y, rec.lo, rec.hi,
                                 rec.mode.value)
    return acc, y


@needs_kernel
@pytest.mark.parametrize("a_signed", [True, False])
def test_extreme_operands_wrap_the_32_bit_lanes(a_signed):
    """Sums beyond 2^31 (bytes: beyond 2^32) on 140000 steps: the lanes wrap, the result is exact."""
    rec, x = _extreme_linear(140000, a_signed)
    assert abs(x[1] @ rec.w_q[1]) > 2**31
    assert (x[1] + (128 if a_signed else 0)) @ rec.w_q[1] > 2**32  # what the kernel's lanes sum
    acc_ref, y_ref = _oracle(rec, x)
    got = kernel_out(rec, x)
    assert got is not None
    assert np.array_equal(got[0], acc_ref) and np.array_equal(got[1], y_ref)


@needs_kernel
def test_wide_accumulator_uses_kernel_only_while_32_bit_sums_are_exact():
    rec, x = _extreme_linear(60000, True, acc_bits=40)   # 60000 * 255 * 128 < 2^31
    got = kernel_out(rec, x)
    assert got is not None
    assert all(np.array_equal(a, b) for a, b in zip(got, _oracle(rec, x)))
    rec, x = _extreme_linear(70000, True, acc_bits=40)   # could exceed 2^31: fallback
    assert kernel_out(rec, x) is None
    out = run_layer(rec, x)
    assert all(np.array_equal(a, b) for a, b in zip((out.acc, out.y), _oracle(rec, x)))


# ---- requantizer epilogue at the ends of its int64 domain ------------------------------------
M0_SH = [(1, 0), (1, 1), (3, 2), (1 << 31, 17), ((1 << 32) - 1, 31), ((1 << 32) - 1, 0), (5, 30)]


@needs_kernel
@pytest.mark.parametrize("mode", ["half_even", "half_up", "half_away", "floor"])
def test_requantize_epilogue_extremes(mode):
    """acc from -2^31 to 2^31-1 (bias near the wrap point), ties, M0 up to 2^32-1, sh 0..31."""
    rng = np.random.default_rng(9)
    x = np.concatenate([np.arange(-128, 128), rng.integers(-128, 128, 64)]).reshape(-1, 1)
    c = len(M0_SH) * 3
    bias = np.array([b for b in (2**31 - 100, -2**31 + 100, 7) for _ in M0_SH])  # wraps both ways
    rec = LayerRecord(name="rq", op=OpKind.LINEAR, c_in=1, c_out=c, acc_bits=32, wrap_ok=True,
                      w_q=np.ones((c, 1), dtype=np.int64), bias_eff=bias,
                      M0=np.array([m for _ in range(3) for m, _ in M0_SH]),
                      sh=np.array([s for _ in range(3) for _, s in M0_SH]), z_y=-5, lo=-2**40,
                      hi=2**40, mode=mode)
    got = kernel_out(rec, x)
    assert got is not None
    acc_ref, y_ref = _oracle(rec, x)
    assert acc_ref.min() == -2**31 and acc_ref.max() == 2**31 - 1
    assert np.array_equal(got[0], acc_ref) and np.array_equal(got[1], y_ref)
    narrow = rec.replace(lo=-100, hi=37)  # and with a clamp that bites
    got = kernel_out(narrow, x)
    assert np.array_equal(got[1], np.clip(y_ref, -100, 37))


@needs_kernel
def test_epilogue_outside_int64_domain_falls_back():
    """M0 ~ 2^32 with sh = 63: |acc*M0| + 2^62 may leave int64 -> NumPy path (Python ints)."""
    rec = LayerRecord(name="rq63", op=OpKind.LINEAR, c_in=1, c_out=1, acc_bits=32, wrap_ok=True,
                      w_q=np.ones((1, 1), dtype=np.int64), bias_eff=np.array([2**31 - 10]),
                      M0=np.array([(1 << 32) - 1]), sh=np.array([63]), lo=-128, hi=127)
    x = np.arange(-128, 128).reshape(-1, 1)
    assert kernel_out(rec, x) is None
    out = run_layer(rec, x)
    assert all(np.array_equal(a, b) for a, b in zip((out.acc, out.y), _oracle(rec, x)))


# ---- what the kernel declines -----------------------------------------------------------------
@needs_kernel
def test_declined_cases_fall_back_exactly():
    rng = np.random.default_rng(4)
    wide_w = random_linear_record(rng, c_in=12, c_out=5, rows=4, w_bits=10)   # weights beyond int8
    wide_w.w_q[0, 0] = 300
    wide_x = random_linear_record(rng, c_in=12, c_out=5, rows=4, a_bits=9)    # 9-bit activations
    odd_zero = random_conv_record(rng, c_in=3, c_out=4, h=4, w=4, padding=1, z_x=-200)  # z_x < -128
    for rec in (wide_w, wide_x, odd_zero):
        assert kernel_out(rec, rec.x_q) is None, rec.name
        ref = naive_conv(rec, rec.x_q) if rec.op is OpKind.CONV2D else naive_linear(rec, rec.x_q)
        out = run_layer(rec)
        assert np.array_equal(out.acc, ref[0]) and np.array_equal(out.y, ref[1])


def test_without_compiler_the_numpy_path_runs(monkeypatch):
    rec = random_conv_record(np.random.default_rng(5), c_in=4, c_out=6, h=5, w=5, n=2, m=4)
    acc_ref, y_ref = naive_conv(rec, rec.x_q)
    monkeypatch.setattr(native, "_compiler", lambda: None)
    native.kernel.cache_clear()
    try:
        assert native.kernel() is None
        assert "no C compiler" in native.status()
        out = run_layer(rec)
        assert np.array_equal(out.acc, acc_ref) and np.array_equal(out.y, y_ref)
    finally:
        monkeypatch.undo()
        native.kernel.cache_clear()


def test_build_is_cached_and_keyed():
    cc = native._compiler()
    if cc is None:
        pytest.skip("no C compiler")
    first = native._build(cc)
    assert native._build(cc) == first and first.is_file()
    assert first.name.startswith("t2c_int8mac-") and first.suffix == ".so"


# ---- threads ----------------------------------------------------------------------------------
@needs_kernel
@pytest.mark.parametrize("seed", [0, 1])
def test_threads_and_task_splits_do_not_change_results(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    recs = [random_conv_record(rng, c_in=12, c_out=40, h=9, w=8, n=2, m=4, groups=2),
            random_linear_record(rng, c_in=50, c_out=140, rows=31, token_wise=True)]
    refs = [naive_conv(recs[0], recs[0].x_q), naive_linear(recs[1], recs[1].x_q)]
    monkeypatch.setattr(im, "MIN_PARALLEL_MACS", 0)
    monkeypatch.setattr(im, "TASKS_PER_WORKER", 5)   # many small tasks: rows and panels split
    for rec, ref in zip(recs, refs):
        for workers in (1, 2, 3):
            got = kernel_out(rec, rec.x_q, workers)
            assert got is not None
            assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1]), workers


@needs_kernel
def test_bench_sized_conv_against_int64_taps():
    """56x56x64 -> 64 (the bench layer; whole-line non-temporal stores) vs an int64 tap sum."""
    rec = random_conv_record(np.random.default_rng(11), c_in=64, c_out=64, h=56, w=56, n=2, m=4)
    got = kernel_out(rec, rec.x_q, workers=2)
    assert got is not None
    x = np.pad(rec.x_q, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=rec.z_x)
    w4 = rec.w_q.reshape(64, 3, 3, 64)
    acc = np.broadcast_to(rec.bias_eff, got[0].shape).copy()
    for r in range(3):
        for s in range(3):
            acc += x[:, r:r + 56, s:s + 56, :] @ w4[:, r, s, :].T
    acc = ((acc + 2**31) % 2**32) - 2**31
    assert np.array_equal(got[0], acc)
    flat = acc.reshape(-1, 64)[::97]  # a sample of rows through the Fraction requantizer
    want = [[py_requant(int(a), rec.M0[o], rec.sh[o], rec.z_y, rec.lo, rec.hi, rec.mode.value)
             for o, a in enumerate(row)] for row in flat]
    assert np.array_equal(got[1].reshape(-1, 64)[::97], np.array(want))


@needs_kernel
@pytest.mark.parametrize("stream", [0, 1 << 62])
def test_outputs_are_line_aligned_and_streaming_is_exact(stream, monkeypatch):
    monkeypatch.setattr(im, "STREAM_BYTES", stream)  # 0: every output streams; 2^62: none does
    rec = random_linear_record(np.random.default_rng(12), c_in=40, c_out=70, rows=9)
    got = kernel_out(rec, rec.x_q)
    assert got[0].ctypes.data % 64 == 0 and got[1].ctypes.data % 64 == 0
    ref = naive_linear(rec, rec.x_q)
    assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])


# ---- mutants: the comparisons above must catch these ------------------------------------------
@needs_kernel
def test_mutants_are_caught(monkeypatch):
    rec = random_conv_record(np.random.default_rng(2), c_in=6, c_out=20, h=7, w=7, n=2, m=4)
    ref = naive_conv(rec, rec.x_q)
    tie = rec.replace(mode="half_even", M0=np.ones(20, dtype=np.int64), sh=np.full(20, 3),
                      lo=-2**40, hi=2**40)  # acc / 8: many exact ties
    tie_ref = naive_conv(tie, tie.x_q)

    def same(r, want):
        got = kernel_out(r, r.x_q)
        return got is not None and np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])

    assert same(rec, ref) and same(tie, tie_ref)
    with monkeypatch.context() as mp:  # half_even computed as half_up
        mp.setattr(im, "_MODE_CODES", {**im._MODE_CODES, tie.mode: 1})
        assert not same(tie, tie_ref)
    with monkeypatch.context() as mp:  # activations off by one
        mp.setattr(im, "_offset", lambda r: 129)
        assert not same(rec, ref)
    with monkeypatch.context() as mp:  # the last kernel tap reads the first tap's pixel
        orig = im._mac

        def bad_taps(r, w, acts, *args):
            offt = acts.offt.copy()
            offt[-1] = offt[0]
            return orig(r, w, im._Acts(acts.buf, acts.offp, offt, acts.gstep), *args)

        mp.setattr(im, "_mac", bad_taps)
        assert not same(rec, ref)
