"""Example float models (build them, train, then quantize with ``quantize_model``) and the
registry of every model a recipe can name (:data:`MODELS`; the zoo of real architectures is in
:mod:`.small`, :mod:`.resnet`, :mod:`.vgg` and :mod:`.mobilenet`).

- :class:`DigitsCNN`: conv-bn-relu, conv-bn-relu, max pool, flatten, linear (8x8 digits);
- :class:`MLP`: flatten, linear-relu, linear-relu, linear;
- :class:`ResNetBlockNet`: stem conv-bn-relu, a basic residual block (conv-bn-relu-conv-bn +
  skip, :class:`~t2c_sim.quant.modules.Add`, relu), global average pool, linear;
- :class:`TransformerMLP`: token embedding, transformer MLP block (linear-relu-linear over
  tokens), flatten, linear head (token-wise activation quantization inside the block).
"""

from __future__ import annotations

import torch
from torch import nn

from t2c_sim.errors import ConfigError
from t2c_sim.models.mobilenet import mobilenet_v2
from t2c_sim.models.resnet import resnet18, resnet18_cifar, resnet50
from t2c_sim.models.small import InceptionMini, LeNet5, QSparseMNIST
from t2c_sim.models.vgg import vgg11_bn
from t2c_sim.models.vit import deit_tiny_block, vit_digits
from t2c_sim.quant.modules import Add

__all__ = ["DigitsCNN", "MLP", "ResNetBlockNet", "TransformerMLP", "MODELS", "make_model"]


class DigitsCNN(nn.Module):
    """``[B, 1, 8, 8] -> conv3x3(c1)-bn-relu -> conv3x3(c2)-bn-relu -> maxpool2 -> linear(10)``."""

    def __init__(self, c1: int = 16, c2: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c2 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(self.flatten(x))


class MLP(nn.Module):
    """``[B, 1, 8, 8] -> flatten -> linear(h)-relu -> linear(h)-relu -> linear(10)``."""

    def __init__(self, hidden: int = 64, classes: int = 10, in_features: int = 64) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.relu2 = nn.ReLU6()
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.fc1(self.flatten(x)))
        return self.fc3(self.relu2(self.fc2(x)))


class ResNetBlockNet(nn.Module):
    """Stem conv-bn-relu, one basic block ``relu(bn(conv(relu(bn(conv(x))))) + x)``, GAP, fc."""

    def __init__(self, c: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_relu = nn.ReLU()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.add = Add()
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(x)))
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = self.relu2(self.add(y, x))
        return self.fc(self.flatten(self.gap(y)))


class TransformerMLP(nn.Module):
    """Tokens ``[B, T, F] -> embed linear(d) -> linear(h)-relu-linear(d) -> flatten -> fc``."""

    def __init__(self, tokens: int = 8, features: int = 8, d: int = 32, hidden: int = 64,
                 classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(features, d)
        self.fc1 = nn.Linear(d, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, d)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(tokens * d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.relu(self.fc1(self.embed(x))))
        return self.head(self.flatten(x))


MODELS = {"digits_cnn": DigitsCNN, "mlp": MLP, "resnet_block": ResNetBlockNet,
          "transformer_mlp": TransformerMLP,
          # the zoo: real architectures in the style PyTorch users write them
          "lenet5": LeNet5, "qsparse_mnist": QSparseMNIST, "inception_mini": InceptionMini,
          "vgg11_bn": vgg11_bn, "resnet18": resnet18, "resnet50": resnet50,
          "resnet18_cifar": resnet18_cifar, "mobilenet_v2": mobilenet_v2,
          "vit_digits": vit_digits, "deit_tiny_block": deit_tiny_block}


def make_model(name: str, **kw: object) -> nn.Module:
    """Instantiate a model by name (``MODELS``); ``kw`` are its constructor arguments."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r} (expected one of {', '.join(MODELS)})",
                          key="model")
    try:
        return MODELS[name](**kw)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}", key="model_args") from None
