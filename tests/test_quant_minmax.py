"""MinMax quantizers and observers against NumPy oracles (ties, ranges, channel and token stats)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2c_sim.errors import QuantError, T2CError
from t2c_sim.quant.base import Quantizer
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer, MinMaxTokenQuantizer
from t2c_sim.quant.observers import MinMaxObserver, qparams_from_range

SEED = 1234


def np_quant(x: np.ndarray, s, z, qmin: int, qmax: int) -> np.ndarray:
    """Independent oracle: numpy rint is round-half-to-even."""
    return np.clip(np.rint(x.astype(np.float64) / s) + z, qmin, qmax).astype(np.int64)


@pytest.mark.parametrize("nbit,unsigned,lo,hi", [(8, False, -128, 127), (8, True, 0, 255),
                                                 (4, False, -8, 7), (2, True, 0, 3)])
def test_ranges(nbit, unsigned, lo, hi):
    q = MinMaxQuantizer(nbit=nbit, unsigned=unsigned)
    assert (q.qmin, q.qmax) == (lo, hi)
    q.set_qparams(torch.tensor(1.0), torch.tensor(0))
    q.observing = False
    big = torch.tensor([-1e6, 1e6])
    assert q.quantize(big).tolist() == [lo, hi]


def test_half_even_ties_match_numpy():
    # scale = 2^-2 makes x/s exact, so the ties are genuine.
    q = MinMaxQuantizer(nbit=8)
    q.set_qparams(torch.tensor(0.25), torch.tensor(0))
    q.observing = False
    x = torch.tensor([0.125, 0.375, -0.125, -0.375, 0.625, 1.125, -0.625, 31.875, -32.125])
    expect = np_quant(x.numpy(), 0.25, 0, -128, 127)
    got = q.quantize(x)
    assert got.dtype == torch.int64
    assert np.array_equal(got.numpy(), expect)
    assert got.tolist()[:4] == [0, 2, 0, -2]           # half-even, not half-up/away
    assert torch.equal(q(x), q.dequantize(got))
    assert np.array_equal(q.dequantize(got).numpy(), (expect * 0.25).astype(np.float32))


def test_asymmetric_zero_point_oracle():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    x = rng.uniform(-0.7, 3.1, size=(64,)).astype(np.float32)
    q = MinMaxQuantizer(nbit=8, unsigned=True)       # default asymmetric for unsigned
    qi = q.quantize(torch.from_numpy(x))
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    s = np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255))
    z = int(np.clip(0 - np.rint(np.float32(lo) / s), 0, 255))
    assert int(q.zero_point) == z
    assert np.isclose(float(q.scale), s, rtol=1e-6)
    assert np.array_equal(qi.numpy(), np_quant(x, np.float32(q.scale.item()), z, 0, 255))
    # real 0 is exactly representable
    assert float(q.dequantize(q.quantize(torch.tensor([0.0])))[0]) == 0.0


def test_symmetric_weight_is_zero_point_free_and_maps_amax_to_qmax():
    w = torch.tensor([[-0.5, 0.25, 1.0, -2.0]])
    q = MinMaxQuantizer(nbit=8)
    qi = q.quantize(w)
    assert int(q.zero_point) == 0
    assert qi.tolist() == [[-32, 16, 64, -127]]          # s = 2/127


def test_channel_wise_scales_oracle():
    rng = np.random.default_rng(SEED + 1)
    print("seed", SEED + 1)
    w = (rng.standard_normal((5, 3, 3, 3)) * rng.uniform(0.1, 4, size=(5, 1, 1, 1))).astype(
        np.float32)
    q = MinMaxChannelQuantizer(nbit=4)
    qi = q.quantize(torch.from_numpy(w))
    assert q.scale.shape == (5,) and q.zero_point.shape == (5,)
    s = np.abs(w).reshape(5, -1).max(1) / np.float32(7)
    assert np.allclose(q.scale.numpy(), s, rtol=1e-6)
    expect = np_quant(w, q.scale.numpy().astype(np.float64)[:, None, None, None], 0, -8, 7)
    assert np.array_equal(qi.numpy(), expect)
    # every channel reaches +-qmax somewhere
    assert np.array_equal(np.abs(qi.numpy()).reshape(5, -1).max(1), np.full(5, 7))


def test_channel_axis_one():
    x = torch.tensor([[1.0, 10.0], [-2.0, 5.0]])
    q = MinMaxQuantizer(nbit=8, granularity="channel", ch_axis=1)
    q(x)
    assert torch.allclose(q.scale, torch.tensor([2.0 / 127, 10.0 / 127]))


def test_token_wise_per_batch_and_token_rows():
    # batch 0 and batch 1 share token positions but have very different ranges: a quantizer
    # mixing batch (or token) statistics would give a shared scale.
    x = torch.zeros(2, 3, 4)
    x[0, 0] = torch.tensor([1.0, -1.0, 0.5, 0.25])
    x[1, 0] = torch.tensor([100.0, -50.0, 0.0, 3.0])
    x[0, 1] = torch.tensor([0.01, 0.02, -0.03, 0.0])
    x[1, 1] = torch.tensor([7.0, 7.0, -7.0, 1.0])
    x[:, 2] = torch.tensor([2.0, -4.0, 8.0, 0.0])
    q = MinMaxTokenQuantizer(nbit=8)
    y = q(x)
    assert q.scale.shape == (2, 3, 1)
    amax = x.abs().amax(-1, keepdim=True).numpy()
    assert np.allclose(q.scale.numpy(), amax / 127, rtol=1e-6)
    qi = q.quantize(x).numpy()
    expect = np_quant(x.numpy(), q.scale.numpy().astype(np.float64), 0, -128, 127)
    assert np.array_equal(qi, expect)
    # each row reaches qmax independently of every other row
    assert np.array_equal(np.abs(qi).max(-1), np.full((2, 3), 127))
    assert torch.allclose(y, q.dequantize(q.quantize(x)))


def test_token_wise_is_dynamic_and_unsigned_asymmetric():
    q = MinMaxTokenQuantizer(nbit=8, unsigned=True)
    a = torch.tensor([[[-1.0, 3.0], [0.0, 2.55]]])
    q(a)
    assert q.zero_point.shape == (1, 2, 1)
    assert q.zero_point[0, 0, 0].item() == 64 and q.zero_point[0, 1, 0].item() == 0
    q.observing = False
    b = a * 2
    q(b)                                        # token-wise ignores frozen ranges: per call
    assert torch.allclose(q.scale[0, 1, 0], torch.tensor(5.1 / 255))


def test_running_minmax_and_ema():
    obs = MinMaxObserver("tensor")
    obs(torch.tensor([-1.0, 2.0]))
    obs(torch.tensor([-3.0, 1.0]))
    assert (obs.min_val.item(), obs.max_val.item()) == (-3.0, 2.0)
    ema = MinMaxObserver("tensor", momentum=0.5)
    ema(torch.tensor([-1.0, 2.0]))
    ema(torch.tensor([-3.0, 4.0]))
    assert (ema.min_val.item(), ema.max_val.item()) == (-2.0, 3.0)
    q = MinMaxQuantizer(nbit=8)
    q(torch.tensor([1.0]))
    q(torch.tensor([-4.0]))
    assert q.scale.item() == pytest.approx(4.0 / 127)
    q.observing = False
    q(torch.tensor([100.0]))
    assert q.scale.item() == pytest.approx(4.0 / 127)   # frozen


def test_ste_gradient_inside_and_zero_outside():
    q = MinMaxQuantizer(nbit=4)
    q.set_qparams(torch.tensor(1.0), torch.tensor(0))
    q.observing = False
    x = torch.tensor([0.4, -3.6, 9.0, -20.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_zero_tensor_gives_eps_scale_and_zero():
    q = MinMaxQuantizer(nbit=8)
    assert torch.equal(q(torch.zeros(4)), torch.zeros(4))
    assert q.scale.item() == torch.finfo(torch.float32).eps
    s, z = qparams_from_range(torch.tensor(0.0), torch.tensor(0.0), 0, 255, False)
    assert s.item() > 0 and z.item() == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_inf_input_raises_naming_quantizer(bad):
    q = MinMaxQuantizer(nbit=8)
    q.label = "conv1.aq"
    with pytest.raises(QuantError, match="conv1.aq"):
        q(torch.tensor([1.0, bad]))


def test_bad_scale_and_uncalibrated_raise():
    q = MinMaxQuantizer(nbit=8)
    q.label = "fc.wq"
    q.observing = False
    with pytest.raises(QuantError, match="fc.wq: not calibrated"):
        q(torch.ones(3))
    with pytest.raises(QuantError, match="fc.wq: invalid scale"):
        q.set_qparams(torch.tensor(0.0), torch.tensor(0))
    with pytest.raises(QuantError, match="fc.wq: invalid scale"):
        q.set_qparams(torch.tensor(-1.0), torch.tensor(0))


@pytest.mark.parametrize("kw", [{"nbit": 1}, {"nbit": 8.0}, {"nbit": 17},
                                {"granularity": "row"}])
def test_bad_config_raises(kw):
    with pytest.raises(QuantError) as ei:
        MinMaxQuantizer(**kw)
    assert isinstance(ei.value, T2CError)
    assert "MinMaxQuantizer" in str(ei.value)


def test_state_dict_round_trip_channel_shapes():
    q = MinMaxChannelQuantizer(nbit=8)
    q(torch.randn(6, 4, generator=torch.Generator().manual_seed(SEED)))
    q2 = MinMaxChannelQuantizer(nbit=8)
    q2.load_state_dict(q.state_dict())
    q2.observing = False
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(SEED + 7))
    q.observing = False
    assert torch.equal(q2.quantize(x), q.quantize(x))


def test_base_quantizer_is_usable_directly():
    q = Quantizer(nbit=4)
    assert q(torch.tensor([-1.0, 0.1, 0.7])).tolist() == pytest.approx([-1.0, 1 / 7, 5 / 7])


# ------------------------------------------------------------------ property: any scale
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float32, st.integers(1, 40),
                elements=st.floats(-1e3, 1e3, width=32, allow_nan=False)),
       nbit=st.integers(2, 8), unsigned=st.booleans(),
       scale=st.floats(0.0009765625, 10.0, width=32), zp=st.integers(-3, 3))
def test_quantize_matches_numpy_oracle_property(x, nbit, unsigned, scale, zp):
    q = MinMaxQuantizer(nbit=nbit, unsigned=unsigned, symmetric=False)
    zp = min(max(zp + (q.qmin + q.qmax) // 2, q.qmin), q.qmax)
    q.set_qparams(torch.tensor(scale), torch.tensor(zp))
    q.observing = False
    got = q.quantize(torch.from_numpy(x)).numpy()
    # float32 division exactly as torch does it, then numpy's half-even rint
    v = np.rint(x / np.float32(scale)).astype(np.float64) + zp
    expect = np.clip(v, q.qmin, q.qmax).astype(np.int64)
    assert np.array_equal(got, expect)
    deq = q.dequantize(torch.from_numpy(expect)).numpy()
    assert np.array_equal(deq, (np.float32(scale) * (expect - zp).astype(np.float32)))
