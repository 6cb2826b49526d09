"""The PyTorch integer path against independent oracles and the NumPy golden model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2c_sim.config import OpKind, RoundMode
from t2c_sim.errors import NumericsError
from t2c_sim.golden import run_layer, run_network
from t2c_sim.verify.torch_int import mul_round_shift, round_shift_t, run_layer_torch, run_network_torch
from t2c_sim.workloads.gen import (
    random_add_record,
    random_conv_record,
    random_linear_record,
    random_network,
    random_pool_record,
)

MODES = [m.value for m in RoundMode]


def _oracle_round_shift(v: int, s: int, mode: str) -> int:
    """Fraction-free oracle on Python ints: nearest integer to v / 2^s with the mode's ties."""
    if s == 0:
        return v
    q, r = divmod(v, 1 << s)          # floor division, 0 <= r < 2^s
    h = 1 << (s - 1)
    if mode == "floor":
        return q
    if r != h:
        return q + (r > h)
    return {"half_up": q + 1, "half_even": q + (q % 2), "half_away": q + (v > 0)}[mode]


@pytest.mark.parametrize("mode", MODES)
def test_round_shift_matches_oracle_table(mode: str) -> None:
    vals = [0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 7, -7, 2**62, -2**62, 2**63 - 1, -2**63]
    shifts = [0, 1, 2, 3, 31, 62, 63]
    v = torch.tensor([a for a in vals for _ in shifts], dtype=torch.int64)
    s = torch.tensor([b for _ in vals for b in shifts], dtype=torch.int64)
    got = round_shift_t(v, s, mode).tolist()
    want = [_oracle_round_shift(a, b, mode) for a in vals for b in shifts]
    assert got == want


@pytest.mark.parametrize("mode", MODES)
def test_mul_round_shift_beyond_int64(mode: str) -> None:
    seed = 7
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**47), 2**47, size=400, dtype=np.int64)
    acc[:4] = [2**47 - 1, -(2**47), 0, -1]
    m0 = rng.integers(2**31, 2**32, size=400, dtype=np.int64)
    sh = rng.integers(0, 64, size=400, dtype=np.int64)
    sh[:8] = [0, 15, 16, 17, 63, 40, 1, 2]
    want, ok = [], []
    for a, m, s in zip(acc.tolist(), m0.tolist(), sh.tolist()):
        r = _oracle_round_shift(a * m, s, mode)
        ok.append(-(2**63) <= r < 2**63 and abs(a) * 2**16 < 2**63)
        want.append(r)
    keep = np.array(ok) & (sh >= 16)      # sh < 16 with |acc*M0| ~ 2^79 does not fit int64
    got = mul_round_shift(torch.from_numpy(acc[keep]), torch.from_numpy(m0[keep]),
                          torch.from_numpy(sh[keep]), mode)
    assert got.tolist() == [w for w, k in zip(want, keep) if k], f"seed={seed}"
    with pytest.raises(NumericsError):
        mul_round_shift(torch.tensor([2**47]), torch.tensor([2**32 - 1]), torch.tensor([0]), mode)


@pytest.mark.parametrize("seed", range(6))
def test_layers_equal_golden(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mode = MODES[seed % 4]
    recs = [
        random_conv_record(rng, c_in=5, c_out=6, h=7, w=6, batch=2, n=2, m=4, mode=mode,
                           relu=seed % 2 == 0, stride=1 + seed % 2, padding=seed % 2),
        random_conv_record(rng, c_in=4, c_out=4, h=6, w=6, groups=2, dilation=2, padding=2,
                           mode=mode, a_signed=False),
        random_linear_record(rng, c_in=13, c_out=7, rows=5, n=1, m=4, mode=mode),
        random_linear_record(rng, c_in=9, c_out=3, rows=4, token_wise=True, mode=mode),
        random_pool_record(rng, OpKind.MAXPOOL, c=3, h=6, w=6, padding=1, kh=3, kw=3),
        random_pool_record(rng, OpKind.AVGPOOL, c=3, h=6, w=6, padding=1, kh=3, kw=3,
                           stride=1, mode=mode),
        random_pool_record(rng, OpKind.GAVGPOOL, c=3, h=4, w=4, mode=mode),
    ]
    for rec in recs:
        gold = run_layer(rec)
        for nm_mode in ("dense", "sparse") if rec.op in (OpKind.CONV2D, OpKind.LINEAR) else ("dense",):
            acc, y = run_layer_torch(rec, nm_mode=nm_mode)
            assert np.array_equal(y.numpy(), gold.y), f"{rec.name} seed={seed}"
            assert (acc is None) == (gold.acc is None)
            if acc is not None:
                assert np.array_equal(acc.numpy(), gold.acc), f"{rec.name} seed={seed}"
    add, b = random_add_record(rng, shape=(2, 3, 3, 4), mode=mode)
    assert np.array_equal(run_layer_torch(add, add.x_q, b)[1].numpy(), run_layer(add, add.x_q, b).y)


def test_network_equals_golden() -> None:
    rng = np.random.default_rng(3)
    recs = random_network(rng, batch=2, n=2, m=4)
    x = recs[0].x_q
    gold = run_network(recs, x)
    out = run_network_torch(recs, x)
    assert list(out) == gold.order
    for name in gold.order:
        assert np.array_equal(out[name][1].numpy(), gold.outputs[name].y), name


def test_accumulator_wraps() -> None:
    rng = np.random.default_rng(0)
    rec = random_linear_record(rng, c_in=8, c_out=2, rows=1, acc_bits=16)
    rec = rec.replace(x_q=np.full((1, 8), 127), w_q=np.full((2, 8), 127), values=None,
                      indices=None, bias_eff=np.zeros(2, dtype=np.int64), wrap_ok=True)
    acc, _ = run_layer_torch(rec)
    exact = 8 * 127 * 127                              # 129032, beyond int16
    assert acc.tolist() == [[((exact + 2**15) % 2**16) - 2**15] * 2]
    assert np.array_equal(acc.numpy(), run_layer(rec).acc)
