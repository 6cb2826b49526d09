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
            "transformer_mlp.yaml", "digits_cnn_w8a8_2of4_gradual.yaml",
            "transformer_mlp_smoothquant.yaml"} <= names
    for p in RECIPES:
        r = load_recipe(p)
        assert r.path == str(p) and r.model


def test_good_recipe_values(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(GOOD)
    r = load_recipe(p)
    assert r.name == "r" and r.train.epochs == 2 and r.sparsity.nm == SparsitySpec(2, 4)
    assert r.fuse.acc_bits == 24 and r.fuse.mode is RoundMode.HALF_UP
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
    (GOOD.replace("model: digits_cnn", "model: {}"), "model"),
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
    with pytest.raises(ConfigError, match="line 2: not valid YAML") as ei:
        load_recipe(p)
    assert ei.value.file == str(p) and ei.value.line == 2


GRADUAL = GOOD.replace('sparsity: {nm: "2:4"}', 'sparsity: {nm: "2:4", finetune_epochs: 2, '
                       'schedule: gradual, start: 5, interval: 3, repetition: 2, mode: groups}')


def test_gradual_schedule_values(tmp_path: Path) -> None:
    p = tmp_path / "g.yaml"
    p.write_text(GRADUAL)
    sp = load_recipe(p).sparsity
    assert (sp.schedule, sp.start, sp.interval, sp.repetition, sp.mode) == (
        "gradual", 5, 3, 2, "groups")
    pr = sp.pruner()
    assert (pr.n, pr.m, pr.mode) == (2, 4, "groups")
    assert pr.schedule.update_steps == [8, 11] and pr.schedule.end == 11   # start + interval*k


@pytest.mark.parametrize("old, new, key", [
    ("start: 5", "start: -1", "sparsity.start"),
    ("interval: 3", "interval: 0", "sparsity.interval"),
    ("repetition: 2", "repetition: 0", "sparsity.repetition"),
    ("mode: groups", "mode: random", "sparsity.mode"),
    ("schedule: gradual", "schedule: cubic", "sparsity.schedule"),
    ("schedule: gradual", "schedule: oneshot", "sparsity.start"),   # gradual keys with oneshot
    ("finetune_epochs: 2", "finetune_epochs: 0", "sparsity.finetune_epochs"),
    ('"2:4"', "dense", "sparsity.nm"),
    ("interval: 3", "interval: 2.5", "sparsity.interval"),
])
def test_gradual_schedule_errors(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GRADUAL
    p = tmp_path / "bad.yaml"
    p.write_text(GRADUAL.replace(old, new))
    with pytest.raises(ConfigError) as ei:
        load_recipe(p)
    assert ei.value.file == str(p) and ei.value.key == key, str(ei.value)


def test_oneshot_rejects_each_gradual_key(tmp_path: Path) -> None:
    for extra in ("start: 0", "interval: 4", "repetition: 2", "mode: step_n"):
        p = tmp_path / "bad.yaml"
        p.write_text(GOOD.replace('sparsity: {nm: "2:4"}', f'sparsity: {{nm: "2:4", {extra}}}'))
        with pytest.raises(ConfigError, match="only valid with 'schedule: gradual'") as ei:
            load_recipe(p)
        assert ei.value.key == f"sparsity.{extra.split(':')[0]}"


def test_per_type_and_smoothquant_values(tmp_path: Path) -> None:
    text = GOOD.replace("  act: {quantizer: minmax, nbit: 8}\n",
                        "  act: {quantizer: minmax, nbit: 8}\n"
                        "  conv: {weight: {quantizer: lsq, nbit: 8, granularity: channel}}\n"
                        "  linear: {act: {quantizer: minmax, nbit: 6}}\n"
                        "  smoothquant: {alpha: 0.25, layers: [fc]}\n")
    p = tmp_path / "t.yaml"
    p.write_text(text)
    q = load_recipe(p).quant
    assert q.conv == {"weight": {"quantizer": "lsq", "nbit": 8, "granularity": "channel"}}
    assert q.spec()["types"]["linear"] == {"act": {"quantizer": "minmax", "nbit": 6}}
    assert q.smoothquant is not None and q.smoothquant.alpha == 0.25
    assert q.smoothquant.layers == ("fc",)


@pytest.mark.parametrize("block, key", [
    ("  conv: {bias: {quantizer: minmax}}\n", "quant.conv.bias"),
    ("  linear: {weight: {quantizer: nosuch}}\n", "quant.linear.weight"),
    ("  linear: {act: {quantizer: minmax, nbits: 8}}\n", "quant.linear.act.nbits"),
    ("  conv: [minmax]\n", "quant.conv"),
    ("  attention: {weight: {quantizer: minmax}}\n", "quant.attention"),
    ("  smoothquant: {alpha: 1.5, layers: [fc]}\n", "quant.smoothquant.alpha"),
    ("  smoothquant: {alpha: 0.5}\n", "quant.smoothquant.layers"),
    ("  smoothquant: {alpha: 0.5, layers: fc}\n", "quant.smoothquant.layers"),
    ("  smoothquant: {alpha: 0.5, layers: [fc], migrate: 1}\n", "quant.smoothquant.migrate"),
])
def test_per_type_and_smoothquant_errors(tmp_path: Path, block: str, key: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD.replace("  act: {quantizer: minmax, nbit: 8}\n",
                              "  act: {quantizer: minmax, nbit: 8}\n" + block))
    with pytest.raises(ConfigError) as ei:
        load_recipe(p)
    assert ei.value.file == str(p) and ei.value.key == key, str(ei.value)
