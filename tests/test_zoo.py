"""The model zoo end to end (t2c_sim/models: plain nn.Modules in the style people write them).

Every zoo recipe goes through ``t2c-sim run``: quantize -> 2:4 prune -> calibrate -> fuse ->
golden -> cross-check (and co-simulation). Checked per run, from the reports:

- every layer's fake-quant vs integer difference stays within the bound docs/crosscheck.md
  explains (at most 1 LSB, on a small share of the outputs), the NumPy and PyTorch integer paths
  are identical, and the trained models' integer accuracy follows the fake-quant accuracy;
- with a simulator, every MAC layer is bit-exact on Verilator and its measured cycles equal the
  cycle model.

Fast tier: the trained small models (LeNet-5, the QSPARSE tutorial net, Inception-mini with its
channel concats) and the user-model fixture co-simulated on Verilator; the CIFAR ResNet-18 with
``--sim none``; MobileNetV2 (width 0.35, 64x64) through the Python flow. Slow tier: the ImageNet
models (ResNet-18, ResNet-50, MobileNetV2, VGG-11-BN) and the CIFAR ResNet-18 co-simulated on
Verilator, on the default hardware file when the RTL can split long reductions, else on
``hw/large.yaml`` (scratchpads deep enough for one dot product of every layer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2c_sim.cli import EXIT_OK, main
from t2c_sim.config import HwConfig
from t2c_sim.cosim.run import to_gemm
from t2c_sim.errors import RecordError
from t2c_sim.models import make_model
from t2c_sim.recipe import build, parse_recipe
from t2c_sim.workloads import gen

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CACHE = ROOT / "build" / "cache"
MAX_RATE = 0.01       # share of outputs at 1 LSB (measured: at most 0.7 %, most layers < 0.1 %)


@pytest.mark.parametrize("name, shape, classes", [
    ("lenet5", (2, 1, 28, 28), 10), ("qsparse_mnist", (2, 1, 28, 28), 10),
    ("inception_mini", (2, 1, 28, 28), 10), ("resnet18_cifar", (2, 3, 32, 32), 10),
    ("resnet18", (1, 3, 224, 224), 1000), ("resnet50", (1, 3, 224, 224), 1000),
    ("mobilenet_v2", (1, 3, 224, 224), 1000), ("vgg11_bn", (1, 3, 224, 224), 1000),
])
def test_zoo_models_run_on_their_shapes(name, shape, classes):
    torch.manual_seed(0)
    m = make_model(name).eval()
    with torch.no_grad():
        assert m(torch.randn(shape)).shape == (shape[0], classes)


def run_cli(recipe: Path, out: Path, sim: str, hw: Path | None = None,
            layers: list[str] | None = None) -> dict:
    argv = ["run", str(recipe), "--sim", sim, "--out", str(out), "--no-progress",
            "--cache-dir", str(CACHE)]
    if hw is not None:
        argv += ["--hw", str(hw)]
    if layers:
        argv += ["--layers", ",".join(layers)]
    assert main(argv) == EXIT_OK
    return json.loads((out / "results.json").read_text())


def check_report(res: dict, sim: str | None, trained: bool, skipped: tuple[str, ...] = ()) -> None:
    assert res["verdict"] == ("pass" if sim else "golden")
    macs = [lay for lay in res["layers"] if lay["op"] in ("conv2d", "linear")]
    assert macs
    for lay in res["layers"]:
        if lay["lsb"] is not None:          # every layer with arithmetic was cross-checked
            assert lay["lsb"]["max"] <= 1 and lay["lsb"]["nonzero_rate"] <= MAX_RATE, lay
    assert all(lay["lsb"] is not None for lay in macs)
    for lay in macs:
        if sim is None or lay["name"] in skipped:
            assert not lay["sims"]
            continue
        (o,) = lay["sims"]
        assert (o["sim"], o["verdict"]) == (sim, "pass"), (lay["name"], o)
        assert o["cycles_measured"] == lay["cycles_est"], lay["name"]
    s = res["summary"]
    assert s["numpy_torch_identical"]
    if trained:
        assert s["float_acc"] > 80.0 and abs(s["integer_acc"] - s["fake_quant_acc"]) <= 2.0
    else:
        assert s["top1_agreement"] >= 50.0 and "float_agreement" in s


SMALL = ["lenet5_2of4", "qsparse_mnist_2of4", "inception_mini_2of4"]
#: Layers whose one dot product is longer than the default scratchpads hold (K = 9216): until the
#: RTL splits K they run in the slow tier on hw/large.yaml.
BIG_LAYERS = {"qsparse_mnist_2of4": ("fc1",)}
MAC_LAYERS = {"qsparse_mnist_2of4": ("conv1", "conv2", "fc1", "fc2")}


def ksplit_capable() -> bool:
    """Whether the RTL build takes a dot product longer than the default scratchpads hold (the
    K-splitting issue): a record the default array would refuse for size."""
    rec = gen.random_linear_record(np.random.default_rng(0), c_in=8192, c_out=4, rows=1, n=2, m=4,
                                   name="probe")
    try:
        to_gemm(rec, HwConfig())
    except RecordError:
        return False
    return True


@pytest.mark.sim
@pytest.mark.parametrize("name", SMALL + ["user_model"])
def test_small_zoo_co_simulated_on_verilator(name, tmp_path):
    recipe = MODELS / f"{name}.yaml" if name != "user_model" else \
        ROOT / "tests" / "fixtures" / "user_model.yaml"
    big = () if ksplit_capable() else BIG_LAYERS.get(name, ())
    layers = [n for n in MAC_LAYERS[name] if n not in big] if big else None
    res = run_cli(recipe, tmp_path / "out", "verilator", layers=layers)
    check_report(res, "verilator", trained=True, skipped=big)
    ops = {lay["op"] for lay in res["layers"]}
    if name == "inception_mini_2of4":
        cats = [lay for lay in res["layers"] if lay["op"] == "concat"]
        assert len(cats) == 2 and all(c["lsb"] is not None for c in cats)
    if name == "qsparse_mnist_2of4":   # BatchNorm1d folded into fc1, F.max_pool2d, torch.flatten
        assert [lay["name"] for lay in res["layers"]] == ["conv1", "conv2", "maxpool", "flatten",
                                                          "fc1", "fc2"]
    assert "linear" in ops


def test_cifar_resnet18_through_the_cli(tmp_path):
    res = run_cli(MODELS / "resnet18_cifar_2of4.yaml", tmp_path / "out", "none")
    check_report(res, None, trained=False)
    names = [lay["name"] for lay in res["layers"]]
    assert names.count("avgpool") == 1 and "view" in names
    assert sum(n.endswith(".add") for n in names) == 8      # out += self.shortcut(x), 8 blocks


def test_mobilenet_v2_small_through_the_flow():
    r = parse_recipe({
        "model": "mobilenet_v2", "model_args": {"width_mult": 0.35, "num_classes": 10},
        "data": {"synthetic": {"shape": [3, 64, 64], "samples": 8, "test": 2}},
        "init": {"bn_stats": "data"},
        "quant": {"weight": {"quantizer": "minmax_channel", "nbit": 8},
                  "act": {"quantizer": "minmax", "nbit": 8}},
        "sparsity": {"nm": "2:4"}, "calibration": {"samples": 6}, "export": {"samples": 1}})
    res = build(r, cache_dir=None)
    recs = {x.name: x for x in res.records}
    dw = [x for x in recs.values() if x.op.value == "conv2d" and x.groups > 1]
    assert dw and all(x.groups == x.c_in == x.c_out for x in dw)            # depthwise
    assert all(x.meta["act"] == "relu6" for x in dw)                         # ReLU6 in the clamp
    adds = [x for x in recs.values() if x.op.value == "add"]
    assert len(adds) == 10 and all(x.name.endswith(".add") for x in adds)   # x + self.conv(x)
    assert all(x.n == 2 and x.m == 4 for x in recs.values() if x.op.value in ("conv2d", "linear"))
    lay = res.crosscheck["layers"]
    assert all(v["max"] <= 1 and v["nonzero_rate"] <= MAX_RATE for v in lay.values())
    assert res.crosscheck["end_to_end"]["numpy_torch_identical"]


# ---- slow: the ImageNet models on Verilator ----------------------------------------------------
LARGE = ["resnet18_cifar_2of4", "resnet18_imagenet_2of4", "resnet50_imagenet_2of4",
         "mobilenet_v2_imagenet_2of4", "vgg11_bn_imagenet_2of4"]


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name", LARGE)
def test_large_zoo_co_simulated_on_verilator(name, tmp_path):
    hw = None if ksplit_capable() else ROOT / "hw" / "large.yaml"
    res = run_cli(MODELS / f"{name}.yaml", tmp_path / "out", "verilator", hw)
    check_report(res, "verilator", trained=False)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.skipif(ksplit_capable(), reason="the default array splits K: the fast tier runs them")
@pytest.mark.parametrize("name", sorted(BIG_LAYERS))
def test_long_layers_of_small_models_on_deep_scratchpads(name, tmp_path):
    res = run_cli(MODELS / f"{name}.yaml", tmp_path / "out", "verilator", ROOT / "hw" / "large.yaml",
                  layers=list(BIG_LAYERS[name]))
    others = tuple(n for n in MAC_LAYERS[name] if n not in BIG_LAYERS[name])
    check_report(res, "verilator", trained=True, skipped=others)
