"""Exactness of the chunked float GEMM (int_matmul) and the im2col layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim.errors import NumericsError
from t2c_sim.golden import im2col, int_matmul
from t2c_sim.golden.gemm import plan_gemm
from t2c_sim.workloads.gen import random_conv_record


def py_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact oracle on Python ints (object arrays), converted back to int64."""
    return (x.astype(object) @ w.astype(object).T).astype(np.int64)


@pytest.mark.parametrize("xv,wv,k", [(-128, -128, 20000), (127, 127, 20000), (-128, 127, 4099),
                                     (-8, -8, 20000), (7, -8, 3001), (255, -128, 9000)])
def test_worst_case_magnitudes(xv, wv, k):
    x = np.full((3, k), xv, dtype=np.int64)
    w = np.full((2, k), wv, dtype=np.int64)
    w[1, ::2] = 0
    want = np.array([[xv * wv * k, xv * wv * ((k + 1) // 2 * 0 + k // 2)]] * 3)
    got = int_matmul(x, w)
    assert got.dtype == np.int64
    assert np.array_equal(got, want)


def test_float32_chunking_is_needed_and_sufficient():
    """Sums far beyond 2^24: one float32 GEMM rounds; the chunked int_matmul must not."""
    rng = np.random.default_rng(2)
    k = 60000
    x = rng.integers(100, 128, size=(8, k))
    w = rng.integers(100, 128, size=(4, k))
    plan = plan_gemm(127, 127, k)
    assert plan.dtype is np.float32 and plan.chunk < k  # several chunks
    want = py_matmul(x, w)
    single = (x.astype(np.float32) @ w.astype(np.float32).T).astype(np.int64)
    assert not np.array_equal(single, want)  # the naive float32 GEMM is inexact here
    assert np.array_equal(int_matmul(x, w), want)


@pytest.mark.parametrize("seed", range(6))
def test_random_widths_large_k(seed):
    rng = np.random.default_rng(seed)
    xb, wb = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    signed = bool(rng.integers(2))
    print("seed", seed, "bits", xb, wb, "signed", signed)
    xlo, xhi = (-(1 << (xb - 1)), (1 << (xb - 1)) - 1) if signed else (0, (1 << xb) - 1)
    k = 20000
    x = rng.integers(xlo, xhi + 1, size=(9, k))
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(5, k))
    assert np.array_equal(int_matmul(x, w), py_matmul(x, w))


@pytest.mark.parametrize("mag,dtype", [(1 << 6, np.float32), (1 << 20, np.float64),
                                       (1 << 27, np.int64)])
def test_wide_operands_choose_exact_path(mag, dtype):
    rng = np.random.default_rng(11)
    x = rng.integers(-mag, mag, size=(4, 300))
    w = rng.integers(-mag, mag, size=(3, 300))
    x[0, 0] = -mag
    w[0, 0] = -mag
    assert plan_gemm(mag, mag, 300).dtype is dtype
    assert np.array_equal(int_matmul(x, w), py_matmul(x, w))


def test_overflow_and_bad_shapes_raise():
    with pytest.raises(NumericsError, match="overflow"):
        int_matmul(np.full((1, 4), 2**31), np.full((1, 4), 2**31))
    with pytest.raises(NumericsError, match="int_matmul"):
        int_matmul(np.zeros((2, 3), np.int64), np.zeros((2, 4), np.int64))
    with pytest.raises(NumericsError):
        int_matmul(np.zeros((2, 3)), np.zeros((2, 3), np.int64))  # floats are refused


def test_batched():
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(3, 7, 40))
    w = rng.integers(-128, 128, size=(3, 4, 40))
    got = int_matmul(x, w)
    for g in range(3):
        assert np.array_equal(got[g], py_matmul(x[g], w[g]))


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 6), c=st.integers(1, 5), k=st.integers(0, 70),
       bits=st.integers(2, 16), seed=st.integers(0, 2**32 - 1))
def test_int_matmul_property(p, c, k, bits, seed):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    x = rng.integers(lo, hi, size=(p, k))
    w = rng.integers(lo, hi, size=(c, k))
    assert np.array_equal(int_matmul(x, w), py_matmul(x, w))


# ---- im2col ------------------------------------------------------------------------------------
def naive_im2col(rec, x):
    b_, h, w, _ = x.shape
    ph, pw = rec.padding
    sy, sx = rec.stride
    dy, dx = rec.dilation
    oh = (h + 2 * ph - dy * (rec.kh - 1) - 1) // sy + 1
    ow = (w + 2 * pw - dx * (rec.kw - 1) - 1) // sx + 1
    cg, cgp = rec.c_in // rec.groups, rec.c_in_p
    out = np.full((rec.groups, b_ * oh * ow, rec.kh * rec.kw * cgp), rec.z_x, dtype=np.int64)
    for g in range(rec.groups):
        for b in range(b_):
            for i in range(oh):
                for j in range(ow):
                    p = (b * oh + i) * ow + j
                    for r in range(rec.kh):
                        for t in range(rec.kw):
                            ih, iw = i * sy - ph + r * dy, j * sx - pw + t * dx
                            if 0 <= ih < h and 0 <= iw < w:
                                for c in range(cg):
                                    out[g, p, (r * rec.kw + t) * cgp + c] = x[b, ih, iw, g * cg + c]
    return out


@pytest.mark.parametrize("kw", [
    dict(c_in=3, c_out=2, h=5, w=4, kh=3, kw=3, stride=1, padding=1),
    dict(c_in=6, c_out=4, h=7, w=6, kh=3, kw=2, stride=(2, 1), padding=(1, 2), dilation=(2, 1),
         groups=2, n=2, m=4, batch=2),
    dict(c_in=4, c_out=4, h=4, w=4, kh=3, kw=3, stride=2, padding=1, groups=4, m=2),
])
def test_im2col_matches_naive(kw):
    rec = random_conv_record(np.random.default_rng(0), **kw)
    want = naive_im2col(rec, rec.x_q)
    got = im2col(rec, rec.x_q)
    assert got.dtype == np.int64
    assert np.array_equal(got, want)
    assert np.array_equal(im2col(rec, rec.x_q, np.float32), want.astype(np.float32))
