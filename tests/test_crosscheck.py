"""The digits done-criterion as a correctness check: NumPy == PyTorch integer paths, integer
within 1 LSB of fake-quant; power-of-two scales exact.

Builds the shipped recipes (trained float weights cached under build/cache).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from t2c_sim.fuse import fuse, quantize_input, run_fake_quant
from t2c_sim.golden import run_network
from t2c_sim.recipe import build, load_recipe
from t2c_sim.verify.crosscheck import layer_diffs, lsb_stats
from t2c_sim.verify.torch_int import run_network_torch

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "cache"


@pytest.fixture(scope="module")
def w8a8():
    torch.set_num_threads(1)
    return build(load_recipe(ROOT / "models" / "digits_cnn_w8a8_2of4.yaml"), cache_dir=CACHE)


@pytest.fixture(scope="module")
def pot():
    torch.set_num_threads(1)
    return build(load_recipe(ROOT / "models" / "digits_cnn_pot.yaml"), cache_dir=CACHE)


def test_lsb_stats() -> None:
    s = lsb_stats(np.array([0, 1, -1, 0, 0, 2]))
    assert s == {"max": 2, "nonzero_rate": 0.5, "hist": {-1: 1, 0: 3, 1: 1, 2: 1}, "n": 6}


def test_digits_w8a8_2of4_integer_is_exact_and_within_one_lsb(w8a8) -> None:
    """Correctness on the whole test split, whatever the training reached: the golden integer
    network == the independent PyTorch integer path (dense and compressed 2:4, every layer,
    accumulators included), and every arithmetic layer is within 1 LSB of the fake-quant model
    fed the same integer input."""
    recs = w8a8.records
    assert not any(r.meta.get("input_specific") for r in recs)     # valid for any input
    xq = quantize_input(w8a8.qmodel, w8a8.split.x_test)
    gold = run_network(recs, xq)
    for nm_mode in ("dense", "sparse"):
        out = run_network_torch(recs, xq, nm_mode=nm_mode)
        for rec in recs:
            acc, y = out[rec.name]
            assert np.array_equal(y.numpy(), gold.outputs[rec.name].y), (rec.name, nm_mode)
            if acc is not None:
                assert np.array_equal(acc.numpy(), gold.outputs[rec.name].acc), rec.name
    d = layer_diffs(w8a8.qmodel, recs, xq)
    assert set(d) == {"conv1", "conv2", "fc"}
    assert all(v["max"] <= 1 and v["n"] > 0 for v in d.values()), d
    for rec in recs:                                  # 2:4 everywhere, compressed form present
        if rec.op.value in ("conv2d", "linear"):
            assert (rec.n, rec.m) == (2, 4) and rec.values.shape[1] == rec.k // 2
            assert rec.acc is not None and rec.y is not None


def test_one_lsb_bound_catches_a_wrong_multiplier(w8a8) -> None:
    """The same bound fails for an integer layer whose shift is off by one (y doubled)."""
    x = w8a8.split.x_test[:64]
    recs = [r.replace(sh=r.sh - 1) if r.name == "conv2" else r for r in w8a8.records]
    d = layer_diffs(w8a8.qmodel, recs, quantize_input(w8a8.qmodel, x))
    assert d["conv2"]["max"] > 1 and d["conv1"]["max"] <= 1


def test_numpy_and_torch_paths_identical_per_layer(w8a8) -> None:
    recs, xq = w8a8.records, w8a8.x_q
    gold = run_network(recs, xq)
    for nm_mode in ("dense", "sparse"):
        out = run_network_torch(recs, xq, nm_mode=nm_mode)
        for rec in recs:
            acc, y = out[rec.name]
            assert np.array_equal(y.numpy(), gold.outputs[rec.name].y), rec.name
            if acc is not None:
                assert np.array_equal(acc.numpy(), gold.outputs[rec.name].acc), rec.name
            assert np.array_equal(y.numpy(), rec.y), rec.name       # attached golden results


def test_power_of_two_exact_everywhere(pot) -> None:
    for rec in pot.records:                     # every multiplier is a power of two
        if rec.M0 is not None:
            assert all(int(v) & (int(v) - 1) == 0 for v in rec.M0.ravel()), rec.name
    layers = pot.crosscheck["layers"]
    assert layers and all(v["max"] == 0 and v["nonzero_rate"] == 0.0 for v in layers.values())
    e2e = pot.crosscheck["end_to_end"]
    assert e2e["integer_acc"] == e2e["fake_quant_acc"] and e2e["top1_agreement"] == 100.0
    # the whole network, not just top-1: integer logits == fake-quant logits quantized
    x = pot.split.x_test
    recs = fuse(pot.qmodel, x[:64])
    y_int = run_network(recs, quantize_input(pot.qmodel, x[:64])).output
    oq = pot.qmodel.fc.oq
    y_fq = torch.round(run_fake_quant(pot.qmodel, x[:64]) / oq.scale).long().numpy()
    assert np.array_equal(y_int, y_fq)


def test_non_pot_has_legitimate_one_lsb_differences(w8a8) -> None:
    # the same check that is exact for power-of-two scales does see rounding differences here
    x = w8a8.split.x_test[:64]
    recs = fuse(w8a8.qmodel, x)
    d = layer_diffs(w8a8.qmodel, recs, quantize_input(w8a8.qmodel, x))
    assert any(v["nonzero_rate"] > 0 for v in d.values())
    assert all(v["max"] <= 1 for v in d.values())
