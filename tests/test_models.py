"""Example models through the whole flow: shapes, determinism, fuse, both integer paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from t2c_sim.models import load_dataset, make_model
from t2c_sim.recipe import build, load_recipe

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "cache"


def test_dataset_split_is_deterministic() -> None:
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=0)
    assert torch.equal(a.x_test, b.x_test) and a.x_train.shape[1:] == (1, 8, 8)
    assert len(a.y_test) + len(a.y_train) == 1797
    assert not torch.equal(a.y_test, load_dataset("digits", seed=1).y_test)
    assert load_dataset("digits_tokens").x_test.shape[1:] == (8, 8)


@pytest.mark.parametrize("name, shape", [("digits_cnn", (2, 1, 8, 8)), ("mlp", (2, 1, 8, 8)),
                                         ("resnet_block", (2, 1, 8, 8)),
                                         ("transformer_mlp", (2, 8, 8))])
def test_model_shapes(name: str, shape: tuple[int, ...]) -> None:
    assert make_model(name)(torch.rand(shape)).shape == (2, 10)


def _check(res, expect_layers: set[str]) -> None:
    e2e = res.crosscheck["end_to_end"]
    assert e2e["numpy_torch_identical"]
    assert abs(e2e["integer_acc"] - e2e["fake_quant_acc"]) <= 1.0
    assert e2e["float_acc"] > 90.0
    assert expect_layers <= set(res.crosscheck["layers"])
    assert all(v["max"] <= 1 for v in res.crosscheck["layers"].values())


def test_mlp_recipe() -> None:
    res = build(load_recipe(ROOT / "models" / "mlp.yaml"), cache_dir=CACHE)
    _check(res, {"fc1", "fc2", "fc3"})
    fc2 = next(r for r in res.records if r.name == "fc2")
    assert fc2.meta["act"] == "relu6" and fc2.lo == fc2.z_y           # ReLU6 in the clamp
    assert fc2.hi == min(fc2.y_range[1], fc2.z_y + round(6.0 / fc2.meta["s_y"]))


def test_transformer_mlp_tokenwise() -> None:
    res = build(load_recipe(ROOT / "models" / "transformer_mlp.yaml"), cache_dir=CACHE)
    _check(res, {"embed", "fc1", "fc2", "head"})
    recs = {r.name: r for r in res.records}
    rows = res.recipe.export_samples * 8
    assert recs["embed"].bias_eff.shape == (rows, 32)       # output scale token-wise (fc1.aq)
    assert recs["fc1"].M0.shape == (rows, 64) and recs["fc1"].meta["input_specific"]
    assert recs["head"].M0.shape == (10,)


@pytest.mark.slow
def test_resnet_block_recipe() -> None:
    res = build(load_recipe(ROOT / "models" / "resnet_block.yaml"), cache_dir=CACHE)
    _check(res, {"stem", "conv1", "conv2", "add", "gap", "fc"})
    recs = {r.name: r for r in res.records}
    assert recs["add"].inputs == ("conv2", "stem") and recs["add"].lo == recs["add"].z_y
    assert recs["conv1"].inputs == ("stem",) and recs["stem"].n == 1
    assert np.array_equal(recs["add"].M0.shape, (2,))
