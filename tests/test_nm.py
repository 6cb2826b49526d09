"""N:M format (SPEC section 4): mask, legality, compress/decompress, padding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2c_sim.errors import SparsityError
from t2c_sim.layout import pad_k, padded_len
from t2c_sim.sparse.nm import check_nm, compress, decompress, nm_mask

NM = [(1, 1), (1, 2), (1, 4), (2, 4), (3, 4), (4, 4), (2, 8), (4, 8), (1, 8)]


def test_docstring_example():
    w = np.array([[0, 5, 0, -3, 0, 0, 0, 0, 7, 0, 0, 0]])
    v, i = compress(w, 2, 4)
    assert v.tolist() == [[5, -3, 0, 0, 7, 0]]
    assert i.tolist() == [[1, 3, 0, 1, 0, 1]]
    assert np.array_equal(decompress(v, i, 2, 4), w)


def test_mask_keeps_largest_and_breaks_ties_to_lower_index():
    w = np.array([[1, -4, 4, 2], [3, 3, 3, 3], [0, 0, 0, 0], [-1, 0, 0, 1]])
    keep = nm_mask(w, 2, 4).astype(int)
    assert keep.tolist() == [[0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1]]
    assert (keep.reshape(4, -1, 4).sum(-1) == 2).all()


@pytest.mark.parametrize("n,m", NM)
def test_every_pattern_roundtrips(n, m):
    # Every subset of <= n nonzero positions of one group, with random nonzero values.
    rng = np.random.default_rng(n * 100 + m)
    rows = []
    for cnt in range(n + 1):
        for pos in itertools.combinations(range(m), cnt):
            row = np.zeros(m, dtype=np.int64)
            row[list(pos)] = rng.choice([-128, -1, 1, 127, 5], size=cnt)
            rows.append(row)
    w = np.stack(rows)
    v, i = compress(w, n, m)
    assert v.shape == i.shape == (len(rows), n)
    assert (np.diff(i, axis=1) > 0).all()
    assert np.array_equal(decompress(v, i, n, m), w)
    # groups with fewer than n nonzeros store zeros at the lowest unused indices
    for row, vi, ii in zip(w, v, i):
        nz = set(np.flatnonzero(row))
        unused = [j for j in range(m) if j not in nz][: n - len(nz)]
        assert sorted(nz | set(unused)) == ii.tolist()
        assert all(vi[list(ii).index(j)] == 0 for j in unused)


@settings(max_examples=60, deadline=None)
@given(nm=st.sampled_from(NM), c=st.integers(1, 6), g=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
def test_mask_then_compress_roundtrip_property(nm, c, g, seed):
    n, m = nm
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(c, g * m))
    pruned = np.where(nm_mask(w, n, m), w, 0)
    check_nm(pruned, n, m)
    v, i = compress(pruned, n, m)
    assert np.array_equal(decompress(v, i, n, m), pruned)
    # the mask keeps the n largest magnitudes: nothing dropped beats anything kept
    grp_w = np.abs(w).reshape(c, g, m)
    keep = nm_mask(w, n, m).reshape(c, g, m)
    for cc in range(c):
        for gg in range(g):
            kept = grp_w[cc, gg][keep[cc, gg]]
            dropped = grp_w[cc, gg][~keep[cc, gg]]
            assert dropped.size == 0 or kept.min() >= dropped.max()


def test_illegal_weights_name_first_channel_and_group():
    w = np.zeros((3, 8), dtype=np.int64)
    w[2, 0:3] = 1          # channel 2, group 0: 3 nonzeros
    w[1, 4:7] = [1, 2, 3]  # channel 1, group 1: 3 nonzeros (first in row-major order)
    with pytest.raises(SparsityError, match=r"channel 1, group 1 \(k 4\.\.7\) has 3 nonzeros"):
        compress(w, 2, 4, name="layer conv1")
    with pytest.raises(SparsityError, match="not a multiple of M"):
        compress(np.zeros((1, 6)), 2, 4)
    with pytest.raises(SparsityError):
        nm_mask(np.zeros((1, 4)), 3, 2)


def test_decompress_rejects_bad_indices_and_padding():
    v = np.array([[1, 2]])
    with pytest.raises(SparsityError, match="strictly increasing"):
        decompress(v, np.array([[2, 1]]), 2, 4)
    with pytest.raises(SparsityError, match=r"\[0, 4\)"):
        decompress(v, np.array([[0, 4]]), 2, 4)
    assert padded_len(10, 4) == 12 and padded_len(8, 4) == 8
    p = pad_k(np.ones((2, 10), dtype=np.int64), 4)
    assert p.shape == (2, 12) and p[:, 10:].sum() == 0
    d = decompress(*compress(np.where(nm_mask(p, 2, 4), p, 0), 2, 4), 2, 4, k=10)
    assert d.shape == (2, 10)
