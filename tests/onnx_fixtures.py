"""ONNX fixtures made here: small PyTorch models exported with ``torch.onnx.export`` (TorchScript
exporter, opset 13, offline) and quantized with ONNX Runtime's ``quantize_static`` (QDQ and
QOperator, per-channel int8 weights, a CalibrationDataReader over synthetic batches), plus
hand-built graphs (``onnx.helper``) for the patterns and mistakes a quantizer does not produce.

Every builder writes into a folder and returns the path; :func:`build` caches by name within a
test session (``tmp_path_factory``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from torch import nn

OPSET = 13


# ---- PyTorch models ---------------------------------------------------------------------------
class ResCNN(nn.Module):
    """conv-relu, conv-relu, residual add, max pool, conv-relu -> flatten -> fc, and a global
    average pool -> fc branch, summed (a second residual add)."""

    def __init__(self, c_in: int = 3) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c_in, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16 * 4 * 4, 10)
        self.fc._chw = (16, 4, 4)                   # reads the flattened [16, 4, 4] map
        self.fc_g = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.c1(x))
        y = self.pool(a + torch.relu(self.c2(a)))
        z = torch.relu(self.c3(y))
        return self.fc(torch.flatten(z, 1)) + self.fc_g(torch.flatten(self.gap(y), 1))


class DepthwiseNet(nn.Module):
    """pointwise, depthwise (groups = channels) with stride and ReLU6, average pool, flatten, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.pw = nn.Conv2d(4, 12, 1)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, stride=2, groups=12)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(12 * 2 * 2, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.relu6(self.dw(torch.relu(self.pw(x))))
        return self.fc(torch.flatten(self.avg(y), 1))


class MLP(nn.Module):
    """Linear-ReLU-Linear (Gemm) and a bias-free matmul (MatMul) on 2-D inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(48, 32)
        self.l2 = nn.Linear(32, 16)
        self.w3 = nn.Parameter(torch.randn(16, 10) * 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.l2(torch.relu(self.l1(x)))) @ self.w3


MODELS = {"rescnn": (ResCNN, (4, 3, 16, 16)), "depthwise": (DepthwiseNet, (2, 4, 8, 8)),
          "mlp": (MLP, (8, 48))}


def prune_2_of_4(model: nn.Module) -> None:
    """Zero the 2 smallest |w| of every 4 consecutive input channels of each conv tap, and of
    each linear row; a linear after a flatten (``_chw``) in its ``(h, w, c)`` columns (the order
    the integer layer reduces in). Layers with fewer than 4 input channels are left dense."""
    def prune(w4: torch.Tensor) -> torch.Tensor:          # [O, C, KH, KW], groups along C
        t = w4.permute(0, 2, 3, 1).contiguous()
        g = t.reshape(-1, 4)
        g.scatter_(1, g.abs().argsort(dim=1)[:, :2], 0.0)
        return t.permute(0, 3, 1, 2)

    with torch.no_grad():
        for mod in model.modules():
            if not isinstance(mod, (nn.Conv2d, nn.Linear)):
                continue
            w = mod.weight
            chw = getattr(mod, "_chw", None)
            if isinstance(mod, nn.Conv2d) and w.shape[1] % 4 == 0:
                w.copy_(prune(w))
            elif isinstance(mod, nn.Linear) and chw is not None and chw[0] % 4 == 0:
                w.copy_(prune(w.reshape(w.shape[0], *chw)).reshape(w.shape))
            elif isinstance(mod, nn.Linear) and w.shape[1] % 4 == 0:
                w.copy_(prune(w[:, :, None, None]).reshape(w.shape))


class _Reader(CalibrationDataReader):
    def __init__(self, name: str, shape: tuple[int, ...], n: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.it = iter([{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(n)])

    def get_next(self):
        return next(self.it, None)


def export(model: nn.Module, shape: tuple[int, ...], path: Path, dynamic: bool = False) -> Path:
    """``torch.onnx.export`` (TorchScript exporter: offline, no onnxscript), opset 13."""
    model.eval()
    kw = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.randn(*shape), str(path), opset_version=OPSET,
                          dynamo=False, input_names=["x"], output_names=["y"], **kw)
    return path


def quantize(src: Path, dst: Path, shape: tuple[int, ...], fmt: str, act: str = "int8",
             seed: int = 0) -> Path:
    """``quantize_static``: per-channel int8 weights, ``act`` activations, QDQ or QOperator."""
    quantize_static(str(src), str(dst), _Reader("x", shape, seed=seed),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8 if act == "int8" else QuantType.QUInt8)
    return dst


def quantized_model(folder: Path, name: str, fmt: str, act: str = "int8", pruned: bool = False,
                    seed: int = 0) -> Path:
    """Build, export and quantize model ``name`` (:data:`MODELS`) into ``folder``."""
    cls, shape = MODELS[name]
    torch.manual_seed(seed)
    model = cls()
    if pruned:
        prune_2_of_4(model)
    tag = f"{name}_{fmt}_{act}{'_2of4' if pruned else ''}_s{seed}"
    f32 = export(model, shape, folder / f"{tag}_f32.onnx")
    return quantize(f32, folder / f"{tag}.onnx", shape, fmt, act, seed)


# ---- hand-built QDQ graphs ---------------------------------------------------------------------
def qdq_conv(path: Path, *, act: str | None = None, clip: tuple[float, float] = (0.0, 6.0),
             w_zp: int = 0, per_tensor: bool = False, bias: str = "int32",
             op_after: str | None = None, seed: int = 0) -> Path:
    """Q -> DQ -> Conv(DQ(w), DQ(b)) [-> Relu | Clip] -> Q -> DQ [-> op_after], 1x4x6x6 -> 1x8x6x6.

    ``w_zp``: the weights' zero point (nonzero: asymmetric); ``per_tensor``: one weight scale
    and zero point; ``bias``: ``int32`` (DQ of an int32 tensor), ``float`` (a plain float
    initializer) or ``none``.
    """
    rng = np.random.default_rng(seed)
    s_x, s_y = np.float32(0.05), np.float32(0.04)
    s_w = rng.uniform(0.002, 0.01, 8).astype(np.float32)
    if per_tensor:
        s_w = np.full(8, s_w[0], np.float32)
    w = rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8)
    b = rng.integers(-2000, 2000, 8).astype(np.int32)
    init = [numpy_helper.from_array(np.array(s_x), "sx"),
            numpy_helper.from_array(np.array(3, np.int8), "zx"),
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(s_w[0] if per_tensor else s_w, "sw"),
            numpy_helper.from_array(np.array(w_zp, np.int8) if per_tensor
                                    else np.full(8, w_zp, np.int8), "zw"),
            numpy_helper.from_array(np.array(s_y), "sy"),
            numpy_helper.from_array(np.array(-5, np.int8), "zy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="x_q"),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="x_dq"),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], name="w_dq", axis=0)]
    conv_in = ["xd", "wd"]
    if bias == "int32":
        init += [numpy_helper.from_array(b, "b"), numpy_helper.from_array(s_x * s_w, "sb"),
                 numpy_helper.from_array(np.zeros(8, np.int32), "zb")]
        nodes.append(helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bd"], name="b_dq", axis=0))
        conv_in.append("bd")
    elif bias == "float":
        init.append(numpy_helper.from_array(b.astype(np.float32) * s_x * s_w, "bf"))
        conv_in.append("bf")
    nodes.append(helper.make_node("Conv", conv_in, ["c"], name="conv", pads=[1, 1, 1, 1],
                                  kernel_shape=[3, 3]))
    last = "c"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
        last = "r"
    elif act == "clip":
        init += [numpy_helper.from_array(np.float32(clip[0]), "cmin"),
                 numpy_helper.from_array(np.float32(clip[1]), "cmax")]
        nodes.append(helper.make_node("Clip", ["c", "cmin", "cmax"], ["r"], name="clip"))
        last = "r"
    nodes += [helper.make_node("QuantizeLinear", [last, "sy", "zy"], ["yq"], name="y_q"),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"], name="y_dq")]
    out = "y"
    if op_after:
        nodes.append(helper.make_node(op_after, ["y"], ["z"], name="tail"))
        out = "z"
    g = helper.make_graph(nodes, "qdq_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [1, 4, 6, 6])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 8, 6, 6])],
                          initializer=init)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def with_dynamic_batch(src: Path, dst: Path) -> Path:
    """A copy whose input's dimension 0 is the symbolic ``batch``."""
    m = onnx.load(str(src))
    d = m.graph.input[0].type.tensor_type.shape.dim[0]
    d.ClearField("dim_value")
    d.dim_param = "batch"
    onnx.save(m, str(dst))
    return dst
