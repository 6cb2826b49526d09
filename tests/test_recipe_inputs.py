"""Users' own code and data in a recipe (t2c_sim/recipe/inputs.py): a model file or module with a
factory and keyword arguments; a built-in dataset, an .npz or synthetic inputs; one clear error
(file, key, line) for every mistake, and bounded sizes with the limit in the message."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from t2c_sim.errors import ConfigError
from t2c_sim.recipe import build, load_recipe
from t2c_sim.recipe import inputs as I

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
CACHE = ROOT / "build" / "cache"

BASE = """\
name: r
model: {model}
data: {data}
train: {{epochs: {epochs}}}
quant:
  weight: {{quantizer: minmax_channel, nbit: 8}}
  act: {{quantizer: minmax, nbit: 8}}
sparsity: {{nm: dense}}
calibration: {{samples: 32}}
export: {{samples: 2}}
"""

USER_FILE = """\
import torch.nn as nn


class Tiny(nn.Module):
    def __init__(self, hidden=16, classes=10, channels=1):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 8, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.conv(x).relu()
        return self.fc2(self.fc1(x.flatten(1)).relu())


def not_a_model():
    return 3
"""


def recipe(tmp_path: Path, model: str = "tiny.py:Tiny", data: str = "digits", epochs: int = 0,
           extra: str = "", user: str = USER_FILE) -> Path:
    (tmp_path / "tiny.py").write_text(user)
    p = tmp_path / "r.yaml"
    p.write_text(BASE.format(model=model, data=data, epochs=epochs) + extra)
    return p


def test_user_file_relative_to_the_recipe_with_args(tmp_path):
    p = recipe(tmp_path, extra="model_args: {hidden: 12}\n")
    r = load_recipe(p)
    ms = r.model_source
    assert ms.kind == "file" and ms.path == str(tmp_path / "tiny.py") and ms.args == {"hidden": 12}
    res = build(r, cache_dir=None)
    assert res.float_model.fc1.out_features == 12
    assert [x.name for x in res.records] == ["conv", "flatten", "fc1", "fc2"]
    assert res.crosscheck["end_to_end"]["numpy_torch_identical"]


def test_package_module_factory(tmp_path, monkeypatch):
    pkg = tmp_path / "mynets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "small.py").write_text(USER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    r = load_recipe(recipe(tmp_path, model="mynets.small:Tiny"))
    assert r.model_source.kind == "module" and r.model_source.factory == "Tiny"
    assert isinstance(I.build_model(r.model_source), torch.nn.Module)
    sys.modules.pop("mynets.small", None)
    sys.modules.pop("mynets", None)


def _line_of(p: Path, key: str) -> int:
    return next(i + 1 for i, t in enumerate(p.read_text().splitlines()) if t.startswith(key + ":"))


@pytest.mark.parametrize("model, key, msg", [
    ("nope.py:Tiny", "model", r"model file nope.py not found \(looked for .*nope.py\)"),
    ("tiny.py:Missing", "model", r"tiny.py has no callable 'Missing' \(defined there: Tiny, "
                                 r"not_a_model\)"),
    ("tiny.py:not_a_model", "model", "returned a int, not a torch.nn.Module"),
    ("no_such_pkg.nets:Net", "model", "cannot import module 'no_such_pkg.nets'"),
    ("tiny.py:3d", "model", "expected 'path/to/file.py:factory'"),
    ("resnet99", "model", "unknown model 'resnet99'"),
])
def test_model_errors_name_recipe_key_and_line(tmp_path, model, key, msg):
    p = recipe(tmp_path, model=model)
    with pytest.raises(ConfigError, match=msg) as ei:
        r = load_recipe(p)
        I.build_model(r.model_source, r.path)
    assert (ei.value.file, ei.value.key, ei.value.line) == (str(p), key, _line_of(p, key))


def test_bad_model_args_and_errors_inside_the_users_file(tmp_path):
    p = recipe(tmp_path, extra="model_args: {depth: 3}\n")
    r = load_recipe(p)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'depth'") as ei:
        I.build_model(r.model_source, r.path)
    assert (ei.value.key, ei.value.file, ei.value.line) == ("model_args", str(p),
                                                             _line_of(p, "model_args"))
    broken = USER_FILE.replace("        self.fc2 = nn.Linear(hidden, classes)",
                               "        self.fc2 = nn.Linear(hidden, classes)\n        1 / 0")
    r = load_recipe(recipe(tmp_path, user=broken))
    with pytest.raises(ConfigError, match="ZeroDivisionError") as ei:
        I.build_model(r.model_source, r.path)
    line = broken.splitlines().index("        1 / 0") + 1
    assert (ei.value.file, ei.value.line) == (str(tmp_path / "tiny.py"), line)
    for text, line in (("import torch.nn as nn\ndef f(:\n", 2), ("x = 1\nraise ValueError('no')\n", 2)):
        d = tmp_path / f"l{line}{len(text)}"
        d.mkdir()
        with pytest.raises(ConfigError, match="cannot import the model file") as ei:
            load_recipe(recipe(d, user=text))
        assert (ei.value.file, ei.value.line, ei.value.key) == (str(d / "tiny.py"), line, "model")


def _npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    np.savez(tmp_path / "d.npz", **arrays)
    return "d.npz"


def test_npz_with_labels_trains_and_without_labels_calibrates(tmp_path):
    from sklearn.datasets import load_digits

    dg = load_digits()
    x = (dg.images[:400, None] / 16.0).astype(np.float32)
    name = _npz(tmp_path, x=x, y=dg.target[:400])
    r = load_recipe(recipe(tmp_path, data=name, epochs=10))
    assert r.data_source.kind == "npz" and r.data_source.labelled
    res = build(r, cache_dir=None)
    assert res.split.x_test.shape == (80, 1, 8, 8) and len(res.split.y_test) == 80
    assert res.crosscheck["end_to_end"]["integer_acc"] > 60.0
    name = _npz(tmp_path, x=x)
    r = load_recipe(recipe(tmp_path, data=f"{{npz: {name}, test_frac: 0.1}}", epochs=0))
    assert not r.data_source.labelled and r.train.epochs == 0
    res = build(r, cache_dir=None)
    e2e = res.crosscheck["end_to_end"]
    assert "integer_acc" not in e2e and e2e["n"] == 40 and "float_agreement" in e2e


@pytest.mark.parametrize("arrays, msg", [
    (dict(z=np.zeros((4, 2))), r"has no array 'x' \(arrays: z\)"),
    (dict(x=np.zeros(4)), r"x must be numbers of shape \[N >= 2, ...\]"),
    (dict(x=np.array([["a", "b"], ["c", "d"]])), "x must be numbers"),
    (dict(x=np.zeros((4, 2)), y=np.zeros(3, np.int64)), r"y must be integer labels of shape \[4\]"),
    (dict(x=np.zeros((4, 2)), y=np.zeros(4)), "y must be integer labels"),
])
def test_npz_errors(tmp_path, arrays, msg):
    p = recipe(tmp_path, data=_npz(tmp_path, **arrays))
    with pytest.raises(ConfigError, match=msg) as ei:
        load_recipe(p)
    assert (ei.value.file, ei.value.key, ei.value.line) == (str(p), "data.npz", _line_of(p, "data"))


def test_npz_size_bounds(tmp_path, monkeypatch):
    name = _npz(tmp_path, x=np.zeros((64, 32), np.float32))
    monkeypatch.setattr(I, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(ConfigError, match=r"bytes; the limit is 1000"):
        load_recipe(recipe(tmp_path, data=name))
    monkeypatch.setattr(I, "MAX_NPZ_BYTES", 1 << 31)
    monkeypatch.setattr(I, "MAX_ELEMENTS", 1000)
    with pytest.raises(ConfigError, match=r"has 2048 elements; the limits are 1000"):
        load_recipe(recipe(tmp_path, data=name))


@pytest.mark.parametrize("data, key, msg", [
    ("{synthetic: {shape: [0, 8]}}", "data.synthetic.shape", "list of 1 to 4 positive ints"),
    ("{synthetic: {shape: [1, 2, 3, 4, 5]}}", "data.synthetic.shape", "list of 1 to 4"),
    ("{synthetic: {shape: [3, 8192, 8192]}}", "data.synthetic.shape",
     "201326592 elements per sample; the limit is 16777216"),
    ("{synthetic: {shape: [3, 224, 224], samples: 4096}}", "data.synthetic.samples",
     "the limit is 134217728"),
    ("{synthetic: {shape: [8], samples: 4, test: 4}}", "data.synthetic.test", "int in 1..3"),
    ("{synthetic: {shap: [8]}}", "data.synthetic", "must be {shape"),
    ("{csv: a.csv}", "data", "exactly one of builtin, npz, synthetic"),
    ("mnist", "data", "unknown dataset 'mnist'"),
    ("missing.npz", "data.npz", "data file missing.npz not found"),
])
def test_data_errors(tmp_path, data, key, msg):
    p = recipe(tmp_path, data=data)
    with pytest.raises(ConfigError, match=msg) as ei:
        load_recipe(p)
    assert (ei.value.file, ei.value.key, ei.value.line) == (str(p), key, _line_of(p, "data"))


def test_training_needs_labels_and_data_or_dataset(tmp_path):
    p = recipe(tmp_path, data="{synthetic: {shape: [1, 8, 8]}}", epochs=2)
    with pytest.raises(ConfigError, match="training needs labels.*set train.epochs: 0") as ei:
        load_recipe(p)
    assert ei.value.key == "train.epochs"
    p = recipe(tmp_path, extra="dataset: digits\n")
    with pytest.raises(ConfigError, match="give data or dataset, not both"):
        load_recipe(p)


def test_wrong_input_shape_and_too_few_outputs(tmp_path):
    p = recipe(tmp_path, data="{synthetic: {shape: [3, 8, 8], samples: 8}}")
    with pytest.raises(ConfigError, match=r"cannot run on the data's inputs of shape \[1, 3, 8, 8\] "
                                          r"\(RuntimeError: .*channels") as ei:
        build(load_recipe(p), cache_dir=None)
    assert (ei.value.key, ei.value.line) == ("data", _line_of(p, "data"))
    p = recipe(tmp_path, extra="model_args: {classes: 5}\n")
    with pytest.raises(ConfigError, match="labels go up to 9 but model tiny.py:Tiny has 5 outputs"):
        build(load_recipe(p), cache_dir=None)
    p = recipe(tmp_path, extra="model_args: {hidden: [1, 2]}\n" + "x" * 0)
    with pytest.raises(ConfigError, match="failed"):
        I.build_model(load_recipe(p).model_source)
    big = "{" + ", ".join(f"a{i}: {'x' * 100}" for i in range(700)) + "}"
    with pytest.raises(ConfigError, match="the limit is 65536"):
        load_recipe(recipe(tmp_path, extra=f"model_args: {big}\n"))


def test_user_model_fixture_end_to_end():
    """tests/fixtures/user_model.py, written as a user would, through the recipe with no edit."""
    res = build(load_recipe(FIX / "user_model.yaml"), cache_dir=CACHE, crosscheck_samples=96)
    names = [r.name for r in res.records]
    assert {"blocks.0.add", "blocks.1.add", "cat", "maxpool", "view"} <= set(names)
    e2e = res.crosscheck["end_to_end"]
    assert e2e["numpy_torch_identical"] and e2e["float_acc"] > 85.0
    assert abs(e2e["integer_acc"] - e2e["fake_quant_acc"]) <= 2.0
    assert max(v["max"] for v in res.crosscheck["layers"].values()) <= 1


def test_cli_names_the_unsupported_op_in_the_users_file(tmp_path, capsys):
    from t2c_sim.cli import EXIT_USAGE, main

    bad = USER_FILE.replace("        x = self.conv(x).relu()", "        x = self.conv(x).sigmoid()")
    p = recipe(tmp_path, user=bad)
    assert main(["run", str(p), "--sim", "none", "--out", str(tmp_path / "out"),
                 "--no-progress"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    line = bad.splitlines().index("        x = self.conv(x).sigmoid()") + 1
    assert len(err) == 1 and err[0].startswith(f"t2c-sim: error: {tmp_path / 'tiny.py'}, line {line}, "
                                               "node 'sigmoid': tensor.sigmoid")
    assert "nn.ReLU" in err[0] and not (tmp_path / "out").exists()


def test_the_float_cache_key_follows_the_zoo_source(tmp_path, monkeypatch):
    """An edited zoo model (or any file of its package) must not reuse cached float weights:
    the key holds the package's content hash; a user file's key holds that file's hash."""
    r = load_recipe(ROOT / "models" / "lenet5_2of4.yaml")
    key = r.float_key(0)
    assert r.model_source.digest and key == load_recipe(ROOT / "models" / "lenet5_2of4.yaml").float_key(0)
    models_dir = Path(I.__file__).resolve().parents[1] / "models"
    real = Path.read_bytes

    def edited(p: Path) -> bytes:  # one zoo file as if edited by a developer
        data = real(p)
        return data + b"\n# edited\n" if p.resolve().parent == models_dir and p.name == "nets.py" else data

    I._zoo_digest.cache_clear()  # a new process: the digest is computed once per process
    monkeypatch.setattr(Path, "read_bytes", edited)
    try:
        assert load_recipe(ROOT / "models" / "lenet5_2of4.yaml").float_key(0) != key
    finally:
        I._zoo_digest.cache_clear()
