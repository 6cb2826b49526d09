"""Front end: gradual N:M schedules, per-layer-type quantizers, QAT with LSQ, SmoothQuant folding.

Recipes build on the cached float weights (build/cache); expectations are computed here
independently (reduction-order grouping, cubic ramp, smoothing maxima, host-side input
quantization), integer results compared with ``np.array_equal``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from t2c_sim.errors import ConfigError, FuseError, ModelError
from t2c_sim.fuse import fuse, quantize_input
from t2c_sim.golden import run_network
from t2c_sim.models import make_model
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.lsq import LSQQuantizer
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer
from t2c_sim.quant.modules import InputSmooth, QLinear
from t2c_sim.quant.quantize import quantize_model
from t2c_sim.quant.smoothquant import SmoothQuantizer, smooth_linear, smooth_model
from t2c_sim.recipe import QatCfg, build, load_recipe, parse_recipe
from t2c_sim.sparse.pruners import NMPruner
from t2c_sim.sparse.schedules import PruneSchedule
from t2c_sim.train import apply_masks, finetune_gradual
from t2c_sim.verify.torch_int import run_network_torch

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "cache"
TRAIN = {"epochs": 15, "lr": 0.01, "batch": 64}          # = the shipped digits recipes (cache hit)


def red_order(mask: torch.Tensor, m: int, chw: tuple[int, int, int] | None = None) -> np.ndarray:
    """Independent oracle: a torch-layout mask in the SPEC reduction order ``[C_out, K]``.

    Conv: ``k = (kh*KW + kw)*C_in_p + c``; linear after a flatten of ``(C, H, W)``: integer column
    ``(h*W + w)*C + c`` reads torch column ``c*H*W + h*W + w``. Padding columns are 0.
    """
    a = mask.detach().numpy()
    if a.ndim == 4:
        co, ci, kh, kw = a.shape
        cp = -(-ci // m) * m
        out = np.zeros((co, kh, kw, cp), a.dtype)
        for c in range(ci):
            out[:, :, :, c] = a[:, c, :, :]
        return out.reshape(co, -1)
    if chw is not None:
        c, h, w = chw
        cols = [cc * h * w + hh * w + ww for hh in range(h) for ww in range(w) for cc in range(c)]
        a = a[:, cols]
    pad = (-a.shape[1]) % m
    return np.pad(a, ((0, 0), (0, pad)))


def kept_per_group(mask_red: np.ndarray, m: int) -> np.ndarray:
    return mask_red.reshape(mask_red.shape[0], -1, m).sum(-1)


def check_pipeline_exact(res) -> None:
    """Golden == torch_int (dense and sparse) == attached results, on the exported records."""
    gold = run_network(res.records, res.x_q)
    for mode in ("dense", "sparse"):
        out = run_network_torch(res.records, res.x_q, nm_mode=mode)
        for rec in res.records:
            acc, y = out[rec.name]
            assert np.array_equal(y.numpy(), gold.outputs[rec.name].y), (mode, rec.name)
            assert np.array_equal(y.numpy(), rec.y), rec.name
            if acc is not None:
                assert np.array_equal(acc.numpy(), gold.outputs[rec.name].acc), rec.name
    assert res.crosscheck["end_to_end"]["numpy_torch_identical"]


# ---- 1. gradual N:M --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gradual():
    torch.set_num_threads(1)
    return build(load_recipe(ROOT / "models" / "digits_cnn_w8a8_2of4_gradual.yaml"),
                 cache_dir=CACHE)


def test_gradual_masks_shrink_monotonically_to_2of4(gradual) -> None:
    sp = gradual.recipe.sparsity
    hist = gradual.mask_history
    # updates at start + interval*k, k = 1..repetition
    assert [t for t, _ in hist] == [sp.start + sp.interval * k for k in range(1, sp.repetition + 1)]
    chw = {"fc": (32, 4, 4)}
    prev = {n: torch.ones_like(m) for n, m in hist[0][1].items()}
    for k, (_, masks) in enumerate(hist, start=1):
        p = 1.0 - (1.0 - k / sp.repetition) ** 3               # cubic ramp
        n_t = max(2, 4 - int(round(2 * p)))                      # step_n: N_t:4
        for name, mk in masks.items():
            assert torch.all(mk <= prev[name]), (k, name)       # subset of the previous mask
            kept = kept_per_group(red_order(mk, 4, chw.get(name)), 4)
            real = kept_per_group(red_order(torch.ones_like(mk), 4, chw.get(name)), 4)
            assert np.array_equal(kept, np.minimum(real, n_t)), (k, name, n_t)
        prev = masks
    dens = [sum(float(m.sum()) for m in ms.values()) for _, ms in hist]
    assert dens == sorted(dens, reverse=True)                  # nonincreasing kept count
    assert dens[-1] < dens[0] < sum(m.numel() for m in hist[0][1].values())
    for name, mk in gradual.masks.items():                     # ends at the final update's mask
        assert torch.equal(mk, hist[-1][1][name]), name


def test_gradual_fused_records_legal_and_masked(gradual) -> None:
    mods = dict(gradual.qmodel.named_modules())
    chw = {"fc": (32, 4, 4)}
    for rec in gradual.records:
        rec.validate()
        if rec.op.value not in ("conv2d", "linear"):
            continue
        assert (rec.n, rec.m) == (2, 4)
        mk = red_order(gradual.masks[rec.name], 4, chw.get(rec.name))
        assert np.all(rec.w_q[mk == 0] == 0), rec.name            # pruned -> exactly 0 in W_q
        assert np.all(kept_per_group((rec.w_q != 0).astype(int), 4) <= 2), rec.name
        assert torch.equal(mods[rec.name].mask, gradual.masks[rec.name])
    check_pipeline_exact(gradual)


def test_gradual_digits_criterion(gradual) -> None:
    e2e = gradual.crosscheck["end_to_end"]
    assert e2e["float_acc"] > 95.0 and e2e["n"] == 359
    assert abs(e2e["integer_acc"] - e2e["fake_quant_acc"]) <= 1.0
    assert all(v["max"] <= 1 for v in gradual.crosscheck["layers"].values())


class _ConvFlatFC(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.relu(self.conv(x))))


def test_gradual_groups_mode_flatten_grouping_and_schedule_end() -> None:
    torch.manual_seed(3)
    model = _ConvFlatFC()
    x, y = torch.randn(64, 3, 4, 4), torch.randint(0, 5, (64,))
    pruner = NMPruner(2, 4, PruneSchedule(start=0, interval=2, repetition=3), mode="groups")
    seen: list[tuple[int, dict[str, torch.Tensor]]] = []
    final = finetune_gradual(model, pruner, x, y, epochs=2, batch=8, example_input=x[:2],
                             on_update=lambda t, m: seen.append((t, m)))
    assert [t for t, _ in seen] == [2, 4, 6]
    chw = {"fc": (8, 4, 4)}
    for name in ("conv", "fc"):
        frac = []
        real = kept_per_group(red_order(torch.ones_like(final[name]), 4, chw.get(name)), 4)
        for _, ms in seen:
            kept = kept_per_group(red_order(ms[name], 4, chw.get(name)), 4)
            assert np.all((kept == real) | (kept == 2)), name      # a group is 2:4 or dense
            frac.append(float(np.mean(kept < real)))
        assert frac == sorted(frac) and frac[-1] == 1.0, frac   # more groups pruned each update
        assert frac[0] == pytest.approx(round((1 - (2 / 3) ** 3) * kept.size) / kept.size)
        w = getattr(model, name).weight.detach()
        assert torch.all(w[final[name] == 0] == 0)               # masked weights stay zero
    # the fc groups follow the integer (h, w, c) order, not torch's (c, h, w) order
    assert np.all(kept_per_group(red_order(final["fc"], 4, chw["fc"]), 4) == 2)
    with pytest.raises(ConfigError) as ei:                       # ends after the last iteration
        finetune_gradual(model, NMPruner(2, 4, PruneSchedule(0, 8, 2)), x, y, epochs=2, batch=8,
                         example_input=x[:2])
    assert ei.value.key == "sparsity.repetition"


# ---- 2. quantizer per layer type ---------------------------------------------------------------
def test_per_type_quantizers_and_precedence() -> None:
    r = parse_recipe({"model": "digits_cnn", "quant": {
        "weight": {"quantizer": "minmax_channel", "nbit": 8},
        "act": {"quantizer": "minmax", "nbit": 8},
        "conv": {"weight": {"quantizer": "lsq", "nbit": 8, "granularity": "channel"}},
        "linear": {"act": {"quantizer": "minmax", "nbit": 6},
                   "output": {"quantizer": "minmax", "nbit": 7}},
        "overrides": {"conv2": {"weight": {"quantizer": "minmax_channel", "nbit": 4}}}}})
    q = quantize_model(make_model("digits_cnn"), r.quant.spec())
    assert type(q.conv1.wq) is LSQQuantizer and q.conv1.wq.granularity == "channel"
    assert type(q.conv2.wq) is MinMaxChannelQuantizer and q.conv2.wq.qmax == 7   # override wins
    assert type(q.fc.wq) is MinMaxChannelQuantizer and q.fc.wq.qmax == 127       # default
    assert type(q.conv1.aq) is MinMaxQuantizer and q.conv1.aq.qmax == 127        # default act
    assert type(q.fc.aq) is MinMaxQuantizer and q.fc.aq.qmax == 31               # linear act
    assert q.fc.oq is not None and q.fc.oq.qmax == 63                            # linear output


# ---- 3. QAT with LSQ --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qat_lsq():
    torch.set_num_threads(1)
    r = parse_recipe({"model": "digits_cnn", "train": TRAIN, "quant": {
        "weight": {"quantizer": "lsq", "nbit": 8, "granularity": "channel"},
        "act": {"quantizer": "lsq", "nbit": 8}},
        "sparsity": {"nm": "2:4", "finetune_epochs": 1},
        "calibration": {"samples": 128, "batch": 128},
        "qat": {"epochs": 1, "lr": 1e-3}}, file="qat_lsq")
    return build(r, cache_dir=CACHE)


def test_qat_lsq_changes_steps_keeps_masks_and_stays_exact(qat_lsq) -> None:
    res = qat_lsq
    # the calibrated model before QAT, rebuilt the way build() makes it (deterministic)
    pre = quantize_model(res.float_model, res.recipe.quant.spec())
    apply_masks(pre, res.masks, 2, 4)
    calibrate(pre, [res.split.x_calib])
    post_q = {n: m for n, m in res.qmodel.named_modules() if isinstance(m, LSQQuantizer)}
    pre_q = {n: m for n, m in pre.named_modules() if isinstance(m, LSQQuantizer)}
    no_qat = build(replace(res.recipe, qat=QatCfg(epochs=0)), cache_dir=CACHE).qmodel
    for name, q in no_qat.named_modules():                     # the rebuilt state is the real one
        if isinstance(q, LSQQuantizer):
            assert torch.equal(q.scale.detach(), pre_q[name].scale.detach()), name
    assert set(post_q) == set(pre_q) and len(post_q) >= 6     # wq + aq of each layer, fc.oq
    for name, q in post_q.items():
        assert isinstance(q.scale, nn.Parameter) and q.scale.requires_grad, name
        assert not torch.equal(q.scale.detach(), pre_q[name].scale.detach()), name   # learned
    mods = dict(res.qmodel.named_modules())
    chw = {"fc": (32, 4, 4)}
    for rec in res.records:
        if rec.op.value not in ("conv2d", "linear"):
            continue
        mod = mods[rec.name]
        assert torch.equal(mod.mask, res.masks[rec.name])
        assert torch.all(mod.weight.detach()[mod.mask == 0] == 0), rec.name
        mk = red_order(mod.mask, 4, chw.get(rec.name))
        assert np.all(rec.w_q[mk == 0] == 0) and np.all(kept_per_group(mk, 4) <= 2), rec.name
    check_pipeline_exact(res)
    e2e = res.crosscheck["end_to_end"]
    assert e2e["integer_acc"] > 90.0 and abs(e2e["integer_acc"] - e2e["fake_quant_acc"]) <= 1.0


# ---- 4. SmoothQuant through fuse -------------------------------------------------------------
def test_smooth_model_keeps_float_function_and_balances() -> None:
    torch.manual_seed(0)
    model = make_model("transformer_mlp").eval()
    x = torch.rand(64, 8, 8) * torch.linspace(0.1, 8.0, 8)      # outlier features
    ref = model(x)
    sm, s = smooth_model(model, x, ["embed", "fc1", "fc2"], alpha=0.5)
    with torch.no_grad():
        assert torch.allclose(sm(x), ref, rtol=1e-5, atol=1e-5)
        assert torch.equal(model(x), ref)                          # the original is untouched
    assert isinstance(sm.input_smooth, InputSmooth) and torch.equal(sm.input_smooth.s, s["embed"])
    w0 = dict(model.named_parameters())
    w1 = dict(sm.named_parameters())
    # columns * s; 1/s folded into the producer's rows and bias
    assert torch.allclose(w1["fc2.weight"], w0["fc2.weight"] * s["fc2"], rtol=1e-6)
    assert torch.allclose(w1["fc1.weight"], w0["fc1.weight"] * s["fc1"] / s["fc2"][:, None],
                          rtol=1e-5)
    assert torch.allclose(w1["fc1.bias"], w0["fc1.bias"] / s["fc2"], rtol=1e-6)
    assert torch.allclose(w1["embed.bias"], w0["embed.bias"] / s["fc1"], rtol=1e-6)
    # alpha = 0.5: smoothed activation and weight maxima agree per channel (fc2 input)
    h = torch.relu(sm.fc1(sm.embed(sm.input_smooth(x)))).detach()
    a = h.reshape(-1, h.shape[-1]).abs().amax(0)
    wmax = w1["fc2.weight"].detach().abs().amax(0)
    live = a > 1e-3
    assert torch.allclose(a[live], wmax[live], rtol=1e-4)
    assert float(s["embed"].max() / s["embed"].min()) > 2.0     # non-trivial factors


@pytest.mark.parametrize("model, layers, match", [
    ("mlp", ["fc3"], "fc3.*relu2.*ReLU6"),                   # relu6 does not commute with s
    ("mlp", ["fc1"], "fc1.*flatten"),                        # input through a flatten
    ("transformer_mlp", ["head"], "head.*flatten"),
    ("digits_cnn", ["conv1"], "conv1.*not a Linear"),
])
def test_smooth_model_unfoldable_raises(model: str, layers: list[str], match: str) -> None:
    x = torch.rand(4, 8, 8) if model == "transformer_mlp" else torch.rand(4, 1, 8, 8)
    with pytest.raises(ModelError, match=match):
        smooth_model(make_model(model), x, layers)


class _Fork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.b(h) + self.c(h)


def test_smooth_model_forked_producer_raises() -> None:
    with pytest.raises(ModelError, match="'b'.*other consumers"):
        smooth_model(_Fork(), torch.rand(3, 4), ["b"])


def test_fuse_refuses_inner_smoothed_input_quantizer() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(QLinear(4, 6, wq=MinMaxChannelQuantizer(), aq=MinMaxQuantizer()),
                          nn.ReLU(),
                          QLinear(6, 3, wq=MinMaxChannelQuantizer(), aq=SmoothQuantizer(),
                                  oq=MinMaxQuantizer()))
    x = torch.rand(16, 4)
    calibrate(model, x)                           # the SmoothQuantizer records max|X_j| too
    smooth_linear(model[2], model[2].aq)
    calibrate(model, x)
    with pytest.raises(FuseError, match="'2'.*SmoothQuant"):
        fuse(model, x)


@pytest.fixture(scope="module")
def smoothq():
    torch.set_num_threads(1)
    return build(load_recipe(ROOT / "models" / "transformer_mlp_smoothquant.yaml"),
                 cache_dir=CACHE)


def test_smoothquant_recipe_through_fuse_is_exact(smoothq) -> None:
    res = smoothq
    s = torch.tensor(res.input_smooth, dtype=torch.float32)
    assert set(res.smooth) == {"embed", "fc1", "fc2"} and torch.equal(s, res.smooth["embed"])
    (first,) = [r for r in res.records if "input" in r.inputs]
    assert first.name == "embed" and first.meta["input_smooth"] == pytest.approx(res.input_smooth)
    # host-side input quantization, independently: clamp(round_half_even(x / s / s_x) + z_x)
    aq = res.qmodel.embed.aq
    x = res.split.x_test[:res.recipe.export_samples]
    u = (x / s) / aq.scale.detach()
    expect = torch.clamp(torch.round(u) + aq.zero_point, aq.qmin, aq.qmax).long().numpy()
    assert np.array_equal(res.x_q, expect)
    assert not np.array_equal(res.x_q, quantize_input(_without_smooth(res.qmodel), x))
    check_pipeline_exact(res)
    e2e = res.crosscheck["end_to_end"]
    assert e2e["float_acc"] > 90.0 and abs(e2e["integer_acc"] - e2e["fake_quant_acc"]) <= 1.0
    assert set(res.crosscheck["layers"]) == {"embed", "fc1", "fc2", "head"}
    assert all(v["max"] <= 1 for v in res.crosscheck["layers"].values())


def _without_smooth(qmodel: nn.Module) -> nn.Module:
    m = copy.deepcopy(qmodel)
    m.input_smooth.s.fill_(1.0)
    return m
