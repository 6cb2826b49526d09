"""t2c_sim.layout (the one owner of reduction order, K padding, (h, w, c) order, top-n) vs oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2c_sim.errors import ConfigError
from t2c_sim.layout import (
    from_reduction_order,
    hwc_perm,
    hwc_to_chw,
    pad_k,
    padded_len,
    reduction_order,
    topn_mask,
)

SEED = 7


def loop_reduction(w: np.ndarray, m: int) -> np.ndarray:
    """Oracle written from SPEC section 2 with explicit loops: k = (kh*KW + kw)*C_in_p + c."""
    if w.ndim == 2:
        c_out, c_in = w.shape
        out = np.zeros((c_out, padded_len(c_in, m)), dtype=w.dtype)
        out[:, :c_in] = w
        return out
    c_out, c_in, kh, kw = w.shape
    cp = -(-c_in // m) * m
    out = np.zeros((c_out, kh * kw * cp), dtype=w.dtype)
    for o in range(c_out):
        for a in range(kh):
            for b in range(kw):
                for c in range(c_in):
                    out[o, (a * kw + b) * cp + c] = w[o, c, a, b]
    return out


@pytest.mark.parametrize("shape,m", [((3, 5), 4), ((3, 8), 4), ((2, 3, 2, 3), 4),
                                     ((4, 6, 3, 3), 8), ((1, 1, 1, 1), 2), ((5, 7, 1, 2), 1)])
def test_reduction_order_matches_spec_loops_and_inverts(shape, m):
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    w = rng.integers(-9, 10, size=shape)
    mat = reduction_order(w, m)
    assert np.array_equal(mat, loop_reduction(w, m))
    assert mat.shape[1] % m == 0
    assert np.array_equal(from_reduction_order(mat, shape, m), w)


def test_reduction_order_refuses_other_ranks():
    with pytest.raises(ConfigError, match="key 'weight'"):
        reduction_order(np.zeros((2, 3, 4)), 4)


@pytest.mark.parametrize("k,m,expect", [(10, 4, 12), (8, 4, 8), (1, 8, 8), (0, 4, 0), (7, 1, 7)])
def test_pad_k(k, m, expect):
    assert padded_len(k, m) == expect
    p = pad_k(np.ones((2, k), dtype=np.int64), m, value=-3)
    assert p.shape == (2, expect) and (p[:, k:] == -3).all() and (p[:, :k] == 1).all()


@pytest.mark.parametrize("chw", [(2, 1, 2), (3, 2, 2), (1, 4, 3), (5, 3, 1)])
def test_hwc_perm_is_torch_flatten_of_nchw_vs_nhwc(chw):
    c, h, w = chw
    x = torch.arange(2 * c * h * w).reshape(2, c, h, w)
    torch_cols = torch.flatten(x, 1).numpy()                   # torch order (c, h, w)
    int_cols = x.permute(0, 2, 3, 1).reshape(2, -1).numpy()    # integer model (h, w, c)
    assert np.array_equal(torch_cols[:, hwc_perm(c, h, w)], int_cols)
    assert np.array_equal(hwc_to_chw(int_cols, c, h, w), torch_cols)


def sorted_topn(score: np.ndarray, n: int, m: int) -> np.ndarray:
    keep = np.zeros(score.shape, dtype=bool)
    flat, kflat = score.reshape(-1, score.shape[-1]), keep.reshape(-1, score.shape[-1])
    for r in range(flat.shape[0]):
        for g0 in range(0, flat.shape[1], m):
            order = sorted(range(g0, g0 + m), key=lambda k: (-flat[r, k], k))
            kflat[r, order[:n]] = True
    return keep


@pytest.mark.parametrize("shape,n,m", [((4, 8), 2, 4), ((3, 12), 1, 4), ((2, 16), 0, 8),
                                       ((2, 3, 8), 3, 4), ((5, 6), 6, 6), ((1, 9), 2, 9)])
def test_topn_mask_matches_sorted_oracle_with_ties(shape, n, m):
    rng = np.random.default_rng(SEED)
    score = rng.integers(0, 3, size=shape)          # few values: many ties
    keep = topn_mask(score, n, m)
    assert np.array_equal(keep, sorted_topn(score, n, m))
    assert (keep.reshape(-1, m).sum(-1) == n).all()


def test_topn_mask_prefers_lower_index_on_ties():
    assert topn_mask(np.array([[3, 3, 3, 3]]), 2, 4).tolist() == [[True, True, False, False]]
    assert topn_mask(np.array([1.0, 4.0, 4.0, 2.0]), 2, 4).tolist() == [False, True, True, False]
