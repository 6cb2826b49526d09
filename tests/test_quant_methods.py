"""LSQ, QDrop, AdaRound, SmoothQuant, power-of-two and the qconfig registry vs paper formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from t2c_sim.errors import ConfigError
from t2c_sim.quant import (
    AdaRoundQuantizer,
    LinearTempDecay,
    LSQQuantizer,
    LSQTokenQuantizer,
    PowerOfTwoQuantizer,
    QDropQuantizer,
    QDropTokenQuantizer,
    QuantError,
    SmoothQuantizer,
    make_quantizer,
    smooth_linear,
    smooth_scales,
)
from t2c_sim.quant.adaround import GAMMA, ZETA

SEED = 77


def gen(seed: int) -> torch.Generator:
    print("seed", seed)
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------- LSQ
def test_lsq_scale_gradient_matches_paper():
    x = torch.tensor([0.3, -0.75, 1.6, -2.4, 0.05, 5.0, -9.0, 0.6])
    up = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 2.0, 1.5, -0.5])   # dL/dx_out
    q = LSQQuantizer(nbit=4)                       # signed: Qn = 8, Qp = 7
    q.set_qparams(torch.tensor(0.5), torch.tensor(0))
    q.observing = False
    y = q(x)
    (y * up).sum().backward()
    s, qn, qp = 0.5, -8, 7
    v = x.numpy().astype(np.float64) / s
    # LSQ eq. 3: -v + round(v) inside, -Qn or Qp outside
    d = np.where(v <= qn, qn, np.where(v >= qp, qp, -v + np.rint(v)))
    g = 1.0 / math.sqrt(x.numel() * qp)
    expect = g * float((d * up.numpy()).sum())
    assert q.scale.grad.item() == pytest.approx(expect, rel=1e-5)
    # gradient w.r.t. x: STE inside, 0 where clamped
    x2 = x.clone().requires_grad_(True)
    q(x2).sum().backward()
    assert x2.grad.tolist() == [1, 1, 1, 1, 1, 0, 0, 1]


def test_lsq_init_picks_mse_minimising_clip():
    g = gen(SEED)
    x = torch.randn(512, generator=g)
    x[0] = 12.0                                     # an outlier makes clipping worthwhile
    q = LSQQuantizer(nbit=4)
    q(x)
    xs = x.numpy().astype(np.float64)
    errs = []
    for i in range(100):
        r = 1 - 0.01 * i
        s = np.float32(np.float32(12.0 * r) / np.float32(7))
        xq = np.clip(np.rint(xs / s), -8, 7) * s
        errs.append(np.mean((xq - xs) ** 2))
    best = int(np.argmin(errs))
    assert best > 10                                # it did clip
    assert q.clip_ratio.item() == pytest.approx(1 - 0.01 * best)
    assert q.scale.item() == pytest.approx(12.0 * (1 - 0.01 * best) / 7, rel=1e-6)
    assert isinstance(q.scale, torch.nn.Parameter)


def test_lsq_channel_init_is_per_channel():
    g = gen(SEED + 1)
    w = torch.randn(3, 64, generator=g)
    w[1, 0] = 20.0                                   # outlier only in channel 1
    q = LSQQuantizer(nbit=4, granularity="channel")
    q(w)
    assert q.scale.shape == (3,)
    # oracle: each channel alone through a tensor-wise LSQ init
    for c in range(3):
        qc = LSQQuantizer(nbit=4)
        qc(w[c])
        assert q.clip_ratio[c].item() == pytest.approx(qc.clip_ratio.item())
        assert q.scale[c].item() == pytest.approx(qc.scale.item(), rel=1e-6)
    assert len({round(v, 4) for v in q.scale.tolist()}) == 3
    q.observing = False
    assert torch.equal(q(w), q.dequantize(q.quantize(w)))


def test_lsq_token_learns_one_ratio_on_per_row_ranges():
    g = gen(SEED + 2)
    x = torch.randn(2, 4, 32, generator=g) * torch.tensor([1.0, 100.0]).view(2, 1, 1)
    q = LSQTokenQuantizer(nbit=4)
    y = q(x)
    assert q.alpha.shape == () and 0 < q.alpha.item() <= 1
    s0 = x.abs().amax(-1, keepdim=True) / 7
    assert torch.allclose(q.scale, s0 * q.alpha.detach(), rtol=1e-6)
    assert torch.allclose(y, q.dequantize(q.quantize(x)))
    q.observing = False
    up = torch.randn(x.shape, generator=g)
    (q(x) * up).sum().backward()
    v = (x / q.scale).double()
    d = torch.where(v <= -8, -8.0, torch.where(v >= 7, 7.0, torch.round(v) - v))
    expect = (d * up * s0).sum().item() / math.sqrt(x.numel() * 7)
    assert q.alpha.grad.item() == pytest.approx(expect, rel=1e-4)


def test_lsq_negative_learned_scale_raises_naming_it():
    q = LSQQuantizer(nbit=8)
    q.label = "fc1.aq"
    q(torch.randn(16, generator=gen(SEED + 3)))
    q.observing = False
    q.scale.data.fill_(-0.1)
    with pytest.raises(QuantError, match="fc1.aq: invalid scale"):
        q(torch.ones(3))


# --------------------------------------------------------------------------------- QDrop
@pytest.mark.parametrize("token", [False, True])
def test_qdrop_p0_is_lsq_and_p1_is_identity(token):
    x = torch.randn(2, 3, 16, generator=gen(SEED + 4))
    lsq = LSQTokenQuantizer(nbit=4) if token else LSQQuantizer(nbit=4)
    mk = QDropTokenQuantizer if token else QDropQuantizer
    d0, d1 = mk(nbit=4, p=0.0), mk(nbit=4, p=1.0)
    for m in (lsq, d0, d1):
        m.train()
    assert torch.equal(d0(x), lsq(x))
    assert torch.equal(d1(x), x)
    d1.eval()
    assert torch.equal(d1(x), lsq(x))               # eval: plain fake-quant


def test_qdrop_drops_about_p_and_keeps_float_values():
    x = torch.randn(20000, generator=gen(SEED + 5))
    q = QDropQuantizer(nbit=2, p=0.3, generator=torch.Generator().manual_seed(SEED))
    q.train()
    y = q(x)
    q.eval()
    fq = q(x)
    kept_float = (y == x) & (fq != x)
    changed = fq != x
    frac = kept_float.sum().item() / changed.sum().item()
    assert abs(frac - 0.3) < 0.02
    assert torch.equal(torch.where(y == x, x, fq), y)  # every element is x or fq(x)


@pytest.mark.parametrize("p", [-0.1, 1.5, True])
def test_qdrop_bad_p(p):
    with pytest.raises(QuantError, match="QDropQuantizer: drop probability"):
        QDropQuantizer(p=p)


# ------------------------------------------------------------------------------ AdaRound
def test_adaround_init_soft_equals_float_and_hard_rule():
    g = gen(SEED + 6)
    w = torch.randn(4, 9, generator=g)
    q = AdaRoundQuantizer(nbit=4)
    q.train()
    soft = q(w)
    assert torch.allclose(soft, w.clamp(-8 * q.scale[:, None], 7 * q.scale[:, None]),
                          atol=1e-5)                 # h(V) = frac(w/s) at init
    q.observing = False
    q.v.data = torch.randn(w.shape, generator=g) * 3
    h = torch.clamp(torch.sigmoid(q.v) * (ZETA - GAMMA) + GAMMA, 0, 1)
    s = q.scale[:, None]
    expect = torch.clamp(torch.floor(w / s) + (h >= 0.5).float(), -8, 7).to(torch.int64)
    assert torch.equal(q.quantize(w), expect)
    q.freeze()
    assert torch.equal(q(w), expect.float() * s)
    q.eval()
    assert torch.equal(q(w), expect.float() * s)


def test_adaround_regularizer_and_beta_schedule():
    q = AdaRoundQuantizer(nbit=8, granularity="tensor")
    q(torch.tensor([0.1, 0.2, -0.3]))
    q.v.data = torch.tensor([10.0, -10.0, 0.0])     # h = 1, 0, 0.5
    h = torch.clamp(torch.sigmoid(q.v) * 1.2 - 0.1, 0, 1)
    for beta in (2.0, 20.0):
        expect = float((1 - (2 * h.detach() - 1).abs() ** beta).sum())
        assert q.regularizer(beta).item() == pytest.approx(expect)
    assert q.regularizer(2.0).item() == pytest.approx(1.0)   # only the h = 0.5 entry counts
    dec = LinearTempDecay(t_max=100, warmup=0.2, beta_start=20, beta_end=2)
    assert dec(0) == 20 and dec(19) == 20 and dec(20) == 20
    assert dec(60) == pytest.approx(11.0) and dec(100) == pytest.approx(2.0)


def test_adaround_never_moves_exact_grid_points_or_pruned_zeros():
    w = torch.tensor([[0.0, 0.5, -1.0, 0.3]])       # s = 1/127 * 1.0 -> 0 and -1 on grid
    q = AdaRoundQuantizer(nbit=8)
    q(w)
    q.v.data.fill_(10.0)                            # h = 1: "round up" everywhere
    qi = q.quantize(w)
    assert qi[0, 0].item() == 0 and qi[0, 2].item() == -127
    q.train()
    (q(w) * torch.ones_like(w)).sum().backward()
    assert q.v.grad is not None


# ---------------------------------------------------------------------------- SmoothQuant
def test_smooth_scales_formula():
    rng = np.random.default_rng(SEED)
    a = rng.uniform(0.1, 50, size=6).astype(np.float32)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    for alpha in (0.0, 0.5, 0.8, 1.0):
        s = smooth_scales(torch.from_numpy(a), torch.from_numpy(w), alpha).numpy()
        expect = a ** alpha / np.abs(w).max(0) ** (1 - alpha)
        assert np.allclose(s, expect, rtol=1e-5)
    with pytest.raises(QuantError, match="alpha"):
        smooth_scales(torch.from_numpy(a), torch.from_numpy(w), 1.5)


def test_smoothquant_keeps_xw_and_balances_maxima():
    g = gen(SEED + 7)
    lin = torch.nn.Linear(8, 5)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(5, 8, generator=g))
    x = torch.randn(3, 10, 8, generator=g) * torch.linspace(0.1, 30, 8)
    ref = F.linear(x, lin.weight, lin.bias)
    aq = SmoothQuantizer(nbit=8, granularity="token")
    aq(x)
    w0 = lin.weight.detach().clone()
    s = smooth_linear(lin, aq, alpha=0.5)
    # float product unchanged
    assert torch.allclose(F.linear(aq.smoothed(x), lin.weight, lin.bias), ref, rtol=1e-5,
                          atol=1e-4)
    # alpha = 0.5 balances the per-channel maxima
    xm = aq.smoothed(x).abs().reshape(-1, 8).amax(0)
    wm = lin.weight.abs().amax(0)
    assert torch.allclose(xm, wm, rtol=1e-5)
    # re-smoothing with another alpha starts from the original weight
    smooth_linear(lin, aq, alpha=0.8)
    s8 = smooth_scales(aq.act_absmax, w0, 0.8)
    assert torch.allclose(lin.weight, w0 * s8, rtol=1e-6) and not torch.allclose(s, s8)
    assert torch.allclose(F.linear(aq.smoothed(x), lin.weight, lin.bias), ref, rtol=1e-5,
                          atol=1e-4)
    # the quantizer now works on x / s (re-observed after the reset)
    y = aq(x)
    assert torch.allclose(y, aq.dequantize(aq.quantize(x)))


def test_smooth_linear_without_stats_raises():
    with pytest.raises(QuantError, match="no activation statistics"):
        smooth_linear(torch.nn.Linear(4, 2), SmoothQuantizer())


# ------------------------------------------------------------------------ power of two
def test_pot_waits_for_timeout_then_picks_mse_best_decimal():
    g = gen(SEED + 8)
    q = PowerOfTwoQuantizer(nbit=8, timeout=3)
    q.train()
    xs = [torch.randn(64, generator=g) * 3 for _ in range(5)]
    for i in range(3):
        assert torch.equal(q(xs[i]), xs[i])         # pass-through before timeout
        assert not bool(q.calibrated)
    q.eval()
    assert torch.equal(q(xs[0]), xs[0])             # eval forwards do not count
    assert int(q.n_updates) == 3
    q.train()
    y = q(xs[3])                                     # forward #4 (n == timeout)
    x = xs[3].numpy().astype(np.float64)
    errs = [((np.clip(np.rint(x * 2.0 ** d), -128, 127) * 2.0 ** -d - x) ** 2).sum()
            for d in range(20)]
    d_best = int(np.argmin(errs))
    assert int(q.decimal) == d_best
    assert q.scale.item() == 2.0 ** -d_best
    assert np.array_equal(y.numpy(), (np.clip(np.rint(x * 2.0 ** d_best), -128, 127)
                                      * 2.0 ** -d_best).astype(np.float32))
    assert q.quantize(xs[4]).dtype == torch.int64


def test_pot_channel_and_uncalibrated_quantize():
    w = torch.tensor([[0.1, -0.2, 0.05], [10.0, -3.0, 7.5]])
    q = PowerOfTwoQuantizer(nbit=8, granularity="channel", timeout=0)
    q.label = "conv2.wq"
    with pytest.raises(QuantError, match="conv2.wq: decimal bits not chosen"):
        q.quantize(w)
    q.train()
    q(w)
    d = q.decimal.tolist()
    assert d[0] > d[1] and 2.0 ** -d[1] * 127 >= 10.0


# ------------------------------------------------------------------------------ qconfig
def test_registry_names_and_errors():
    names = ["minmax", "minmax_channel", "minmax_token", "lsq", "lsq_token", "adaround",
             "qdrop", "qdrop_token", "smoothquant", "pot"]
    for n in names:
        q = make_quantizer(n, nbit=4)
        assert q.nbit == 4
    assert make_quantizer("minmax_channel").granularity == "channel"
    assert make_quantizer("qdrop", p=0.25).p == 0.25
    with pytest.raises(ConfigError, match="key 'wq'.*unknown quantizer 'lsqq'"):
        make_quantizer("lsqq", key="wq")
    with pytest.raises(ConfigError, match="key 'quantizer.bits'"):
        make_quantizer("lsq", bits=4)
    with pytest.raises(ConfigError, match="recipe.yaml, key 'aq'.*nbit"):
        make_quantizer("minmax", key="aq", file="recipe.yaml", nbit=40)
