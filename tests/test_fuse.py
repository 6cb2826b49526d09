"""fuse: each layer type against hand-computed integers, BN folding, flatten order, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from t2c_sim.errors import FuseError, ModelError, OverflowRiskError
from t2c_sim.fuse import fuse, quantize_input, run_fake_quant
from t2c_sim.golden import run_network
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer
from t2c_sim.quant.modules import Add, QAdd, QConv2d, QLinear
from t2c_sim.quant.qconfig import make_quantizer
from t2c_sim.quant.quantize import fold_bn, quantize_model
from t2c_sim.sparse.pruners import nm_keep_mask

SPEC = {"weight": {"quantizer": "minmax_channel", "nbit": 8},
        "act": {"quantizer": "minmax", "nbit": 8}}


def fixed(scale: float | list[float], zp: int = 0, nbit: int = 8, unsigned: bool = False,
          channel: bool = False) -> nn.Module:
    q = (MinMaxChannelQuantizer if channel else MinMaxQuantizer)(nbit=nbit, unsigned=unsigned)
    s = torch.tensor(scale, dtype=torch.float32)
    q.set_qparams(s, torch.full(s.shape, zp, dtype=torch.int64))
    q.observing = False
    return q


class Seq(nn.Module):
    def __init__(self, *mods: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_linear_hand_computed() -> None:
    lin = QLinear(2, 2, wq=fixed([0.25, 0.5], channel=True), aq=fixed(0.5, zp=2, unsigned=True),
                  oq=fixed(1.0), act="relu")
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.75, -0.5], [1.0, 0.0]]))
        lin.bias.copy_(torch.tensor([1.0, -0.3]))
    (rec,) = fuse(Seq(lin), torch.zeros(1, 2))
    assert rec.name == "body.0"
    assert rec.w_q.tolist() == [[3, -2], [2, 0]]               # W / s_w
    # bias_eff = round(b / (s_x s_w)) - z_x * sum_k W_q: [8 - 2*1, round(-1.2) - 2*2]
    assert rec.bias_eff.tolist() == [6, -5]
    # m = s_x * s_w / s_y = [0.125, 0.25]: exactly 2^31 / 2^34 and 2^31 / 2^33
    assert rec.M0.tolist() == [2**31, 2**31] and rec.sh.tolist() == [34, 33]
    assert (rec.z_x, rec.z_y, rec.lo, rec.hi, rec.a_signed) == (2, 0, 0, 127, False)


def test_conv_reduction_order_and_nm_padding() -> None:
    torch.manual_seed(0)
    conv = QConv2d(3, 4, 2, wq=fixed(0.01), aq=fixed(0.1), oq=fixed(0.2))
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-50, 50, (4, 3, 2, 2)).float() * 0.01)
    conv.mask.copy_(nm_keep_mask(conv.weight, 2, 4).float())
    conv.nm = (2, 4)
    (rec,) = fuse(Seq(conv), torch.zeros(1, 3, 5, 5))
    wt = torch.round(conv.weight * conv.mask / 0.01).long().numpy()
    assert rec.w_q.shape == (4, 2 * 2 * 4)                     # C_in 3 padded to 4
    for o in range(4):
        for kh in range(2):
            for kw in range(2):
                base = (kh * 2 + kw) * 4
                assert rec.w_q[o, base:base + 3].tolist() == wt[o, :, kh, kw].tolist()
                assert rec.w_q[o, base + 3] == 0                 # padding channel weight
    assert rec.values.shape == (4, 8) and (rec.n, rec.m) == (2, 4)


def test_flatten_permutation_matches_torch_order() -> None:
    torch.manual_seed(1)
    model = Seq(nn.Conv2d(2, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 2 * 2, 4))
    q = quantize_model(model, SPEC)
    x = torch.rand(16, 2, 2, 2)
    calibrate(q, x)
    recs = fuse(q, x)
    fc = recs[-1]
    w_t = q.body[3].wq.quantize(q.body[3].weight).numpy()
    c, h, w = 3, 2, 2
    for hh in range(h):
        for ww in range(w):
            for cc in range(c):
                assert fc.w_q[:, (hh * w + ww) * c + cc].tolist() == \
                    w_t[:, cc * h * w + hh * w + ww].tolist()
    y = run_network(recs, quantize_input(q, x)).output
    fq = torch.round(run_fake_quant(q, x) / q.body[3].oq.scale).long().numpy()
    assert np.abs(y - fq).max() <= 1


def test_bn_folding_float_equivalence() -> None:
    torch.manual_seed(2)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(fold_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fold", [True, False])
def test_bn_fold_before_and_after_quantization(fold: bool) -> None:
    torch.manual_seed(3)
    model = Seq(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                nn.Linear(4 * 16, 3))
    with torch.no_grad():
        model.body[1].running_mean.uniform_(-0.5, 0.5)
        model.body[1].weight.copy_(torch.tensor([1.5, -0.7, 0.9, -1.2]))   # negative gammas
    model.eval()
    q = quantize_model(model, {**SPEC, "fold_bn": fold})
    assert isinstance(q.body[1], nn.BatchNorm2d) != fold
    x = torch.rand(32, 2, 4, 4)
    calibrate(q, x)
    recs = fuse(q, x)
    assert recs[0].meta["bn"] == (None if fold else "body.1")
    y = run_network(recs, quantize_input(q, x)).output
    fq = torch.round(run_fake_quant(q, x) / q.body[4].oq.scale).long().numpy()
    assert np.abs(y - fq).max() <= 1 and np.mean(y != fq) < 0.05


def test_avgpool_and_add_records() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.add = Add()
            self.relu = nn.ReLU()
            self.pool = nn.AvgPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gap(self.pool(self.relu(self.add(self.conv(x), x))))

    q = quantize_model(Net(), SPEC)
    assert isinstance(q.add, QAdd) and q.add.qb is q.conv.aq      # fork: skip tied to conv input
    x = torch.rand(8, 2, 4, 4)
    calibrate(q, x)
    recs = {r.name: r for r in fuse(q, x)}
    add, pool, gap = recs["add"], recs["pool"], recs["gap"]
    s_a, s_b, s_y = add.meta["s_x"], add.meta["s_b"], add.meta["s_y"]
    ma, mb = add.M0.tolist()
    sh = int(add.sh[0])
    assert abs(ma / 2**sh - s_a / s_y) <= 2.0**-sh and abs(mb / 2**sh - s_b / s_y) <= 2.0**-sh
    assert max(ma, mb) >= 2**31 and add.lo == add.z_y                 # shared shift, fused relu
    assert abs(pool.M0[0] / 2.0**pool.sh[0] - pool.meta["s_x"] / (pool.meta["s_y"] * 4)) \
        <= 2.0**-int(pool.sh[0])
    assert gap.op.value == "gavgpool" and gap.h == 2


def test_overflow_check_and_wrap_ok() -> None:
    lin = QLinear(64, 2, wq=fixed(1.0), aq=fixed(1.0), oq=fixed(64.0))
    with torch.no_grad():
        lin.weight.fill_(100.0)
        lin.bias.zero_()
    # worst case 64 * 100 * 128 = 819200 > 2^15 - 1 for a 16-bit accumulator
    net = Seq(lin)
    with pytest.raises(OverflowRiskError, match="layer 'body.0'.*819200"):
        fuse(net, torch.zeros(1, 64), acc_bits=16)
    (rec,) = fuse(net, torch.zeros(1, 64), acc_bits=16, wrap_ok=True)
    assert rec.wrap_ok and rec.meta["worst_acc"] == 819200
    (rec32,) = fuse(net, torch.zeros(1, 64), acc_bits=32)
    assert not rec32.wrap_ok


def test_nan_scale_names_module() -> None:
    model = Seq(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    q = quantize_model(model, SPEC)
    calibrate(q, torch.rand(8, 4))
    q.body[2].aq.scale.fill_(float("nan"))
    with pytest.raises(FuseError, match=r"body\.2\.aq"):
        fuse(q, torch.rand(2, 4))


def test_tokenwise_into_conv_and_unsupported_module() -> None:
    conv = QConv2d(2, 2, 1, wq=fixed(0.1), aq=make_quantizer("minmax_token", nbit=8),
                   oq=fixed(0.1))
    with pytest.raises(FuseError, match="container"):
        fuse(conv, torch.rand(1, 2, 3, 3))
    with pytest.raises(FuseError, match="body.0.*token-wise"):
        fuse(Seq(conv), torch.rand(1, 2, 3, 3))
    model = Seq(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
    with pytest.raises(ModelError, match=r"Sigmoid .body\.1.*not an integer op.*nn.ReLU"):
        quantize_model(model, SPEC)


def test_tokenwise_linear_records_are_per_row() -> None:
    torch.manual_seed(4)
    model = Seq(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    spec = {**SPEC, "act": {"quantizer": "minmax_token", "nbit": 8},
            "output": {"quantizer": "minmax", "nbit": 8}}
    q = quantize_model(model, spec)
    x = torch.randn(2, 4, 6)
    calibrate(q, x)
    recs = fuse(q, x)
    assert recs[0].bias_eff.shape == (8, 5) and recs[0].M0.shape == (8, 5)
    assert recs[0].meta["input_specific"]
    s = recs[0].meta["s_x"]
    assert len(s) == 8 and len(set(s)) > 1
    y = run_network(recs, quantize_input(q, x)).output
    fq = torch.round(run_fake_quant(q, x) / q.body[2].oq.scale).long().numpy()
    assert np.abs(y - fq).max() <= 1
