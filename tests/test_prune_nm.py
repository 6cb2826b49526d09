"""N:M pruner == an independent top-n on the SPEC reduction-order matrix; gradual schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2c_sim.errors import ConfigError
from t2c_sim.layout import pad_k
from t2c_sim.sparse.nm import check_nm
from t2c_sim.sparse.pruners import (
    NMPruner,
    from_reduction_matrix,
    nm_keep_mask,
    to_reduction_matrix,
)
from t2c_sim.sparse.schedules import PruneSchedule, cubic_ramp

SEED = 2024


def np_reduction(w: np.ndarray, m: int) -> np.ndarray:
    """Independent oracle: SPEC k = (kh*KW + kw)*C_in_p + c_in, zero-padded C_in."""
    if w.ndim == 2:
        return pad_k(w, m, axis=1)
    c_out, c_in, kh, kw = w.shape
    t = pad_k(np.transpose(w, (0, 2, 3, 1)), m, axis=3)
    c_in_p = t.shape[3]
    out = np.zeros((c_out, kh * kw * c_in_p), dtype=w.dtype)
    for a in range(kh):
        for b in range(kw):
            for c in range(c_in_p):
                out[:, (a * kw + b) * c_in_p + c] = t[:, a, b, c]
    return out


def topn_oracle(mat: np.ndarray, n: int, m: int) -> np.ndarray:
    """Independent oracle: per group, sort (-|w|, index) with Python's sorted and keep n."""
    keep = np.zeros(mat.shape, dtype=bool)
    for r in range(mat.shape[0]):
        for g0 in range(0, mat.shape[1], m):
            order = sorted(range(g0, g0 + m), key=lambda k: (-abs(float(mat[r, k])), k))
            keep[r, order[:n]] = True
    return keep


CASES = [((8, 16), 2, 4), ((4, 10), 2, 4), ((6, 8, 3, 3), 2, 4), ((3, 6, 2, 3), 1, 4),
         ((5, 5, 1, 1), 2, 4), ((4, 16, 3, 3), 2, 8), ((2, 3, 3, 3), 3, 4), ((7, 12), 4, 4)]


@pytest.mark.parametrize("shape,n,m", CASES)
def test_nm_keep_mask_matches_topn_oracle(shape, n, m):
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    # small integers: lots of exact |w| ties to exercise the lower-index rule
    w = rng.integers(-3, 4, size=shape).astype(np.float32)
    keep = nm_keep_mask(torch.from_numpy(w), n, m).numpy()
    mat = np_reduction(w, m)
    expect_mat = topn_oracle(mat, n, m)
    # the oracle's decisions on real entries, mapped back through our own inverse
    got_mat = to_reduction_matrix(torch.from_numpy(keep), m).numpy()
    real = np_reduction(np.ones(shape, dtype=np.float32), m) > 0
    # pads sit at the highest indices of a group and are 0, so the oracle never prefers a pad over
    # a real weight: the decisions on real entries must be identical
    assert np.array_equal(got_mat[real], expect_mat[real])
    # and the masked integer weights are legal N:M in the stored (reduction) layout
    check_nm(np_reduction(w * keep, m), n, m)


def test_nm_mask_exact_layout_example():
    # conv [1, 3, 1, 2]; M = 4 pads C_in 3 -> 4; k order = (kw, c_in)
    w = torch.tensor([[[[1.0, -5.0]], [[-2.0, 5.0]], [[2.0, 0.5]]]])
    assert to_reduction_matrix(w, 4).tolist() == [[1.0, -2.0, 2.0, 0.0, -5.0, 5.0, 0.5, 0.0]]
    keep = nm_keep_mask(w, 2, 4)
    # kw=0 group: |1|,|-2|,|2| -> keep -2 and 2 (tie 2 vs 2: lower index c_in=1)
    # kw=1 group: |-5|,|5|,|.5| -> keep both 5s
    assert keep[0, :, 0, 0].tolist() == [False, True, True]
    assert keep[0, :, 0, 1].tolist() == [True, True, False]


def test_tie_goes_to_lower_index():
    w = torch.tensor([[3.0, -3.0, 3.0, 3.0]])
    assert nm_keep_mask(w, 2, 4).tolist() == [[True, True, False, False]]


def test_round_trip_reduction_matrix():
    w = torch.randn(3, 5, 2, 3, generator=torch.Generator().manual_seed(SEED))
    assert torch.equal(from_reduction_matrix(to_reduction_matrix(w, 4), w.shape, 4), w)


def test_short_last_group_keeps_real_weights():
    # C_in = 5 with 2:4: the last group has one real channel; it must be kept (never a pad)
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.5]])
    assert nm_keep_mask(w, 2, 4).tolist() == [[False, False, True, True, True]]


@pytest.mark.parametrize("n,m", [(0, 4), (5, 4), (2.0, 4)])
def test_bad_nm_raises_naming_key(n, m):
    with pytest.raises(ConfigError, match="key 'nm'"):
        NMPruner(n, m)


def test_schedule_cubic_reaches_target_at_end():
    s = PruneSchedule(start=10, interval=5, repetition=4)
    assert s.update_steps == [15, 20, 25, 30] and s.end == 30
    assert [s.is_update(t) for t in (10, 15, 16, 30, 35)] == [False, True, False, True, False]
    assert s.progress(14) == 0.0 and s.progress(30) == 1.0 and s.progress(1000) == 1.0
    assert s.progress(15) == pytest.approx(1 - 0.75 ** 3)
    assert cubic_ramp(2, 4) == pytest.approx(0.875)
    with pytest.raises(ConfigError, match="key 'interval'"):
        PruneSchedule(0, 0, 1)
    with pytest.raises(ConfigError, match="key 'repetition'"):
        PruneSchedule(0, 1, 0)


@pytest.mark.parametrize("mode", ["step_n", "groups"])
def test_gradual_nm_monotone_and_final_equals_oneshot(mode):
    g = torch.Generator().manual_seed(SEED)
    w = torch.randn(8, 16, 3, 3, generator=g)
    sched = PruneSchedule(start=0, interval=2, repetition=3)
    pr = NMPruner(2, 8, sched, mode=mode)
    mask = torch.ones_like(w, dtype=torch.bool)
    densities = []
    for step in range(12):
        new = pr.mask_at(w, step, mask)
        if new is not None:
            assert not bool((new & ~mask).any())          # masks only shrink
            mask = new
        densities.append(mask.float().mean().item())
    assert densities[0] == 1.0 and densities[1] == 1.0
    assert densities[2] < 1.0                              # first update at step 2
    assert densities == sorted(densities, reverse=True)
    assert torch.equal(mask, nm_keep_mask(w, 2, 8))        # target N:M at the end step 6
    assert densities[6] == pytest.approx(2 / 8)


def test_step_n_intermediate_masks_are_legal_nm():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(SEED + 3))
    pr = NMPruner(1, 8, PruneSchedule(start=0, interval=1, repetition=4), mode="step_n")
    mask = None
    for step in range(1, 5):
        mask = pr.mask_at(w, step, mask)
        n_t = 8 - round(7 * cubic_ramp(step, 4))
        check_nm((w * mask).numpy(), n_t, 8)
        assert int(mask.sum()) == 4 * n_t
