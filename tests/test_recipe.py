"""Recipe loading: every shipped recipe validates; bad input names the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2c_sim.config import RoundMode, SparsitySpec
from t2c_sim.errors import ConfigError
from t2c_sim.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "models").glob("*.yaml"))

GOOD = """\
model: digits_cnn
train: {epochs: 2, lr: 0.01}
quant:
  weight: {quantizer: minmax_channel, nbit: 8}
  act: {quantizer: minmax, nbit: 8}
sparsity: {nm: "2:4"}
fuse: {acc_bits: 24, rounding: half_up}
"""


def test_shipped_recipes_load() -> None:
    names = {p.name for p in RECIPES}
    assert {"digits_cnn_w8a8_2of4.yaml", "digits_cnn_pot.yaml", "mlp.yaml", "resnet_block.yaml",
            "transformer_mlp.yaml"} <= names
    for p in RECIPES:
        r = load_recipe(p)
        assert r.path == str(p) and r.model


def test_good_recipe_values(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(GOOD)
    r = load_recipe(p)
    assert r.name == "r" and r.train.epochs == 2 and r.sparsity.nm == SparsitySpec(2, 4)
    assert r.fuse.acc_bits == 24 and r.fuse.rounding is RoundMode.HALF_UP
    assert r.quant.spec()["weight"] == {"quantizer": "minmax_channel", "nbit": 8}
    with pytest.raises(AttributeError):
        r.seed = 3  # frozen


@pytest.mark.parametrize("text, key", [
    (GOOD + "bogus: 1\n", "bogus"),
    (GOOD.replace("epochs: 2", "epochs: two"), "train.epochs"),
    (GOOD.replace("epochs: 2", "epocs: 2"), "train.epocs"),
    (GOOD.replace('"2:4"', '"2-4"'), "sparsity.nm"),
    (GOOD.replace('"2:4"', '"5:4"'), "sparsity.nm"),
    (GOOD.replace("minmax_channel", "nosuch"), "quant.weight"),
    (GOOD.replace("nbit: 8}\n  act", "nbits: 8}\n  act"), "quant.weight.nbits"),
    (GOOD.replace("half_up", "sideways"), "fuse.rounding"),
    (GOOD.replace("acc_bits: 24", "acc_bits: true"), "fuse.acc_bits"),
    (GOOD.replace("model: digits_cnn", "model: vgg"), "model"),
    (GOOD.replace("model: digits_cnn\n", ""), "model"),
])
def test_errors_name_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_recipe(p)
    assert ei.value.file == str(p) and ei.value.key == key, str(ei.value)
    assert str(p) in str(ei.value) and key in str(ei.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as ei:
        load_recipe(tmp_path / "nope.yaml")
    assert ei.value.file.endswith("nope.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("model: [digits_cnn\n  x: {")
    with pytest.raises(ConfigError, match="malformed YAML") as ei:
        load_recipe(p)
    assert ei.value.file == str(p)
