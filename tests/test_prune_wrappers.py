"""Magnitude/regrow/ERK pruners, QSPARSE-style prune()/quantize() wrappers and N2D2 modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from t2c_sim.errors import ConfigError
from t2c_sim.quant.pot import PowerOfTwoQuantizer, quantize
from t2c_sim.sparse.n2d2 import N2D2Pruner, attach_n2d2, fill_iter_nonstruct, fill_random
from t2c_sim.sparse.nm import check_nm
from t2c_sim.sparse.pruners import (
    erk_sparsities,
    magnitude_mask,
    nm_keep_mask,
    prune_and_regrow,
    to_reduction_matrix,
)
from t2c_sim.sparse.qsparse import ActivationPrune, prune

SEED = 99


def gen(seed: int) -> torch.Generator:
    print("seed", seed)
    return torch.Generator().manual_seed(seed)


def _linear(c_in=8, c_out=4, seed=SEED) -> nn.Linear:
    lin = nn.Linear(c_in, c_out)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(c_out, c_in, generator=gen(seed)))
    return lin


# ----------------------------------------------------------------------- element-wise
def test_magnitude_mask_oracle():
    w = torch.randn(50, generator=gen(SEED))
    keep = magnitude_mask(w, 0.3).numpy()
    a = w.abs().numpy()
    assert keep.sum() == 35
    assert a[keep].min() >= a[~keep].max()
    with pytest.raises(ConfigError, match="key 'sparsity'"):
        magnitude_mask(w, 1.2)


def test_prune_and_regrow_gradient_and_random():
    g = gen(SEED + 1)
    w = torch.randn(100, generator=g)
    mask = magnitude_mask(w, 0.5)
    w = w * mask
    grad = torch.randn(100, generator=g)
    new = prune_and_regrow(w, mask, 0.2, grad, "gradient")
    assert int(new.sum()) == int(mask.sum())                  # sparsity constant
    dropped = mask & ~new
    grown = new & ~mask
    assert int(dropped.sum()) == 10 and int(grown.sum()) == 10
    # dropped = the 10 smallest |w| among the active ones
    act = w.abs()[mask]
    assert w.abs()[dropped].max() <= torch.sort(act).values[9]
    # grown = the 10 largest |grad| among the previously inactive ones
    inact = grad.abs()[~mask]
    assert torch.equal(torch.sort(grad.abs()[grown]).values, torch.sort(inact).values[-10:])
    rnd = prune_and_regrow(w, mask, 0.2, mode="random", generator=gen(SEED + 2))
    assert int(rnd.sum()) == int(mask.sum()) and not bool((rnd & ~mask & mask).any())
    with pytest.raises(ConfigError, match="key 'grad'"):
        prune_and_regrow(w, mask, 0.2, None, "gradient")
    with pytest.raises(ConfigError, match="key 'mode'"):
        prune_and_regrow(w, mask, 0.2, grad, "magic")


def test_erk_sums_to_target_and_favours_small_layers():
    shapes = {"conv1": (16, 3, 3, 3), "conv2": (64, 16, 3, 3), "conv3": (128, 64, 3, 3),
              "fc": (10, 128)}
    checked = 0
    for target in (0.5, 0.8, 0.95):
        sp = erk_sparsities(shapes, target)
        total = sum(math.prod(s) for s in shapes.values())
        kept = sum((1 - sp[k]) * math.prod(s) for k, s in shapes.items())
        assert kept == pytest.approx((1 - target) * total, rel=1e-9)
        assert all(0.0 <= v < 1.0 for v in sp.values())
        assert sp["conv1"] < sp["conv3"]
        # ERK density ratio (sum of dims / numel) between two non-dense layers
        d2, d3 = 1 - sp["conv2"], 1 - sp["conv3"]
        r2 = sum(shapes["conv2"]) / math.prod(shapes["conv2"])
        r3 = sum(shapes["conv3"]) / math.prod(shapes["conv3"])
        if sp["conv2"] > 0:                              # both sparse: ERK ratio holds
            checked += 1
            assert d2 / d3 == pytest.approx(r2 / r3)
        else:                                            # dense layers are capped at 1
            assert d2 == 1.0 and d3 < 1.0
    assert checked >= 1
    assert erk_sparsities(shapes, 0.5)["conv1"] == 0.0          # small layer made dense
    with pytest.raises(ConfigError, match="key 'sparsity'"):
        erk_sparsities(shapes, 1.0)


# ----------------------------------------------------------------------- prune() wrapper
def test_prune_nm_mask_holds_in_forward_and_after_optimizer_step():
    lin = prune(_linear(12, 6), nm="2:4", start=-1, interval=1, repetition=1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    x = torch.randn(5, 12, generator=gen(SEED + 3))
    lin.train()
    for _ in range(3):
        y = lin(x)
        check_nm(lin.weight.detach().numpy(), 2, 4)
        assert torch.allclose(y, x @ lin.weight.T + lin.bias)
        opt.zero_grad()
        y.pow(2).sum().backward()
        opt.step()
        w = lin.weight.detach()
        check_nm(w.numpy(), 2, 4)                     # after the step too
        assert bool((w[lin.mask == 0] == 0).all())
    first = nm_keep_mask(_linear(12, 6).weight, 2, 4)
    assert torch.equal(lin.mask.bool(), first)        # pruned at step 0 from the initial weights


def test_prune_conv_nm_matches_reduction_order():
    conv = nn.Conv2d(6, 4, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(4, 6, 3, 3, generator=gen(SEED + 4)))
    w0 = conv.weight.detach().clone()
    prune(conv, nm=(1, 4), start=-1, interval=1, repetition=1)
    conv.train()
    conv(torch.randn(1, 6, 5, 5, generator=gen(SEED + 5)))
    check_nm(to_reduction_matrix(conv.weight.detach(), 4).numpy(), 1, 4)
    assert torch.equal(conv.mask.bool(), nm_keep_mask(w0, 1, 4))


def test_prune_gradual_reaches_target_at_end_step_and_eval_does_not_count():
    lin = prune(_linear(20, 10), sparsity=0.8, start=2, interval=3, repetition=4)
    x = torch.randn(2, 20, generator=gen(SEED + 6))
    dens = []
    for _step in range(16):
        lin.train()
        lin(x)
        lin.eval()
        lin(x)                                         # never counts
        dens.append(float(lin.mask.mean()))
    assert int(lin.prune_ctl.n_updates) == 16
    assert dens[:5] == [1.0] * 5                       # first update at step 5
    for k, step in enumerate([5, 8, 11, 14], start=1):
        expect = 1 - round(0.8 * (1 - (1 - k / 4) ** 3) * 200) / 200
        assert dens[step] == pytest.approx(expect)
    assert dens[14] == pytest.approx(0.2) and dens[15] == pytest.approx(0.2)


def test_prune_on_module_with_mask_buffer_updates_it_in_place():
    class Wrapped(nn.Linear):
        def __init__(self):
            super().__init__(8, 2)
            self.register_buffer("mask", torch.ones_like(self.weight))

        def forward(self, x):
            return nn.functional.linear(x, self.weight * self.mask, self.bias)

    m = Wrapped()
    buf = m.mask
    prune(m, nm="1:4", start=-1, interval=1, repetition=1)
    m.train()
    m(torch.ones(1, 8))
    assert m.mask is buf and int(buf.sum()) == 4
    assert not hasattr(m, "parametrizations")


def test_activation_prune():
    ap = prune(None, sparsity=0.5, start=-1, interval=1, repetition=1)
    assert isinstance(ap, ActivationPrune)
    x = torch.tensor([[1.0, -5.0, 0.1, 3.0], [1.0, 5.0, -0.2, -2.0]])
    ap.train()
    y = ap(x)
    assert ap.mask.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert torch.equal(y, x * torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="key 'nm'"):
        prune(None, nm="2:4")


@pytest.mark.parametrize("kw,key", [({"interval": 0}, "interval"), ({"repetition": 0},
                                    "repetition"), ({"nm": "3:2"}, "nm"),
                                    ({"nm": "2-4"}, "nm"), ({"sparsity": -0.1}, "sparsity")])
def test_prune_bad_config_names_key(kw, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        prune(_linear(), **kw)


# --------------------------------------------------------------------- quantize() wrapper
def test_quantize_wrapper_activations_and_weights():
    q = quantize(None, bits=6, timeout=2)
    assert isinstance(q, PowerOfTwoQuantizer) and q.nbit == 6 and q.timeout == 2
    lin = quantize(_linear(8, 3), bits=4, timeout=1)
    w0 = lin.parametrizations.weight.original.detach().clone()
    x = torch.randn(2, 8, generator=gen(SEED + 7))
    lin.train()
    lin(x)
    assert torch.equal(lin.weight, w0)                 # first training forward: float
    lin(x)                                             # n == timeout: d chosen, quantized
    d = int(lin.parametrizations.weight[0].q.decimal)
    expect = torch.clamp(torch.round(w0 * 2.0 ** d), -8, 7) * 2.0 ** -d
    assert torch.equal(lin.weight.detach(), expect)


def test_prune_then_quantize_keeps_pruned_weights_zero():
    lin = prune(_linear(8, 4), nm="2:4", start=-1, interval=1, repetition=1)
    quantize(lin, bits=4, timeout=0)
    lin.train()
    lin(torch.randn(1, 8, generator=gen(SEED + 8)))
    w = lin.weight.detach()
    check_nm(w.numpy(), 2, 4)
    d = int(lin.parametrizations.weight[1].q.decimal)
    assert bool(torch.all(torch.round(w * 2.0 ** d) == w * 2.0 ** d))


# ----------------------------------------------------------------------------- N2D2
def test_n2d2_fillers_oracles():
    w = torch.tensor([0.0005, -0.0015, 0.0025, -0.0035, 0.0045, 0.2, -0.3, 0.4, 0.5, 0.6])
    ones = torch.ones(10, dtype=torch.bool)
    # target 3 of 10: k=1 prunes 1 (< 0.001), k=2 prunes 2, k=3 prunes 3 -> stop
    assert fill_iter_nonstruct(w, ones, 0.3, 0.001).tolist() == [False] * 3 + [True] * 7
    # target 4 with delta 0.002: k=1 -> 2 pruned, k=2 (< 0.004) -> 4 pruned
    assert int((~fill_iter_nonstruct(w, ones, 0.4, 0.002)).sum()) == 4
    # whole bands: target 1 with delta 0.01 prunes the 5 weights below 0.01 (overshoot)
    assert int((~fill_iter_nonstruct(w, ones, 0.1, 0.01)).sum()) == 5
    r = fill_random(torch.ones(1000, dtype=torch.bool), 0.37, gen(SEED + 9))
    assert int((~r).sum()) == 370
    r2 = fill_random(r, 0.5, gen(SEED + 10))
    assert int((~r2).sum()) == 500 and not bool((r2 & ~r).any())      # monotone


def _n2d2_run(pruner, steps, epoch_end_at=()):
    lin = attach_n2d2(_linear(10, 10, seed=SEED + 11), pruner)
    x = torch.randn(1, 10, generator=gen(SEED + 12))
    lin.train()
    pruned = []
    for t in range(steps):
        if t in epoch_end_at:
            pruner.epoch_end()
        lin(x)
        pruned.append(1.0 - float(lin.mask.mean()))
    return lin, pruned


def test_n2d2_identity_static_gradual():
    _, p = _n2d2_run(N2D2Pruner("Identity", threshold=0.5), 5)
    assert p == [0.0] * 5
    _, p = _n2d2_run(N2D2Pruner("Static", "Random", threshold=0.3), 5)
    assert p == pytest.approx([0.3] * 5)
    lin, p = _n2d2_run(N2D2Pruner("Gradual", "Random", threshold=0.5, start=0.1, gamma=0.15,
                                  stepsize=2), 10)
    # init 0.1; +0.15 at steps 2, 4, 6 -> 0.25, 0.40, 0.50 (capped)
    assert p == pytest.approx([0.1, 0.1, 0.25, 0.25, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5])
    _, p = _n2d2_run(N2D2Pruner("Gradual", "Random", threshold=0.3, start=0.1, gamma=0.1), 6,
                     epoch_end_at=(3,))
    assert p == pytest.approx([0.1, 0.1, 0.1, 0.2, 0.2, 0.2])        # stepsize 0: per epoch


def test_n2d2_static_iter_nonstruct_prunes_small_weights():
    lin, p = _n2d2_run(N2D2Pruner("Static", "IterNonStruct", threshold=0.4, delta=0.05), 2)
    a = lin.parametrizations.weight.original.detach().abs()
    kept = lin.mask.bool()
    assert p[0] >= 0.4
    assert a[~kept].max() < a[kept].min()
    k = math.ceil(float(a[~kept].max()) / 0.05 + 1e-12)
    assert bool((a[~kept] < k * 0.05).all()) and bool((a[kept] >= k * 0.05).all())
    assert np.isclose(p[1], p[0])


@pytest.mark.parametrize("kw,key", [({"prune_mode": "Dynamic"}, "prune_mode"),
                                    ({"prune_filler": "Struct"}, "prune_filler"),
                                    ({"threshold": 1.5}, "threshold"), ({"delta": 0}, "delta"),
                                    ({"gamma": -1}, "gamma"), ({"stepsize": -2}, "stepsize"),
                                    ({"prune_mode": "Gradual", "start": 0.5, "threshold": 0.2},
                                     "start")])
def test_n2d2_bad_config_names_key(kw, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        N2D2Pruner(**kw)
