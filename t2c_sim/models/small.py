"""Small models of the zoo, written the way PyTorch users write them (no t2c-sim modules in them),
trained on the digits (``digits28``: 28x28, see :mod:`t2c_sim.models.data`).

- :class:`LeNet5`: conv5(6)-relu-pool, conv5(16)-relu-pool, fc 120-84-10, ``x.view(-1, 16*5*5)``
  (the classic form, with ``padding=2`` on 28x28 inputs instead of a 32x32 frame);
- :class:`QSparseMNIST`: the float network of the QSPARSE tutorial's MNIST example (conv-bn-relu
  twice, ``F.max_pool2d``, dropout, ``torch.flatten``, linear + ``BatchNorm1d`` + relu, linear).
  The tutorial returns ``F.log_softmax(x)`` for ``F.nll_loss``; here the logits are returned and
  the loss is ``F.cross_entropy`` (the same training signal, the same argmax);
- :class:`InceptionMini`: two GoogLeNet-style Inception blocks (1x1, 3x3, double-3x3 and
  pool-projection branches joined by ``torch.cat(..., 1)``), global average pool, linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeNet5", "QSparseMNIST", "InceptionMini"]


class LeNet5(nn.Module):
    """LeNet-5 on ``[B, 1, 28, 28]``."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class QSparseMNIST(nn.Module):
    """The QSPARSE tutorial's MNIST network (float layers) on ``[B, 1, 28, 28]``."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(9216, 128)
        self.bn3 = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(128, num_classes)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.bn3(self.fc1(x)))
        x = self.dropout2(x)
        return self.fc2(x)


class BasicConv2d(nn.Module):
    """conv (no bias) - batch norm - relu."""

    def __init__(self, cin: int, cout: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four branches concatenated along the channels."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, kernel_size=1),
                                     BasicConv2d(c3r, c3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, kernel_size=1),
                                     BasicConv2d(c5r, c5, kernel_size=3, padding=1),
                                     BasicConv2d(c5, c5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                     BasicConv2d(cin, cp, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outputs, 1)


class InceptionMini(nn.Module):
    """stem conv-bn-relu, max pool, Inception, max pool, Inception, GAP, dropout, linear."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = BasicConv2d(1, w, kernel_size=3, padding=1)
        self.inception1 = Inception(w, w // 2, w // 2, w, w // 4, w // 2, w // 2)
        c1 = w // 2 + w + w // 2 + w // 2
        self.inception2 = Inception(c1, w, w // 2, w, w // 4, w // 2, w // 2)
        c2 = w + w + w // 2 + w // 2
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.stem(x), 2)
        x = F.max_pool2d(self.inception1(x), 2)
        x = self.inception2(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(self.dropout(x))
