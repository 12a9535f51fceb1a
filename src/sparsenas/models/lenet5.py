"""LeNet-5 (LeCun et al. 1998): two conv layers whose nodes are channels, then three linear layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SparsenasError
from .base import NodeGroup, Parent, linear_chain_groups
from .registry import MODELS


class LeNet5(Parent):
    """conv5x5(pad 2) -> ReLU -> maxpool2 -> conv5x5 -> ReLU -> maxpool2 -> fc -> fc -> classifier.

    >>> m = LeNet5((1, 28, 28), 10); m(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> [(g.name, g.size) for g in m.node_groups()]
    [('conv1', 6), ('conv2', 16), ('fc1', 120), ('fc2', 84)]
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] = (6, 16, 120, 84)) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise SparsenasError(f"lenet5 needs image inputs (C, H, W), got shape {input_shape}; use --model mlp")
        c, h, w = input_shape
        # spatial size after conv1 (pad 2 keeps it), pool, conv2 (valid), pool
        sh, sw = (h // 2 - 4) // 2, (w // 2 - 4) // 2
        if sh < 1 or sw < 1:
            raise SparsenasError(f"lenet5 needs images of at least 12x12, got {h}x{w}; use --model mlp for this dataset")
        if len(widths) != 4:
            raise SparsenasError(f"lenet5 takes 4 widths (conv1, conv2, fc1, fc2), got {len(widths)}")
        c1, c2, f1, f2 = widths
        self.conv1 = nn.Conv2d(c, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.fc1 = nn.Linear(c2 * sh * sw, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.out = nn.Linear(f2, num_classes)
        self.widths = tuple(widths)
        self._spatial = sh * sw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)  # (B, c1, H/2, W/2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)  # (B, c2, sh, sw)
        x = x.flatten(1)  # (B, c2*sh*sw): channel-major, so channel i owns a block of sh*sw columns
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.out(x)

    def node_groups(self) -> list[NodeGroup]:
        names = ["conv1", "conv2", "fc1", "fc2", "out"]
        return linear_chain_groups(names, list(self.widths), consumer_blocks=[1, self._spatial, 1, 1])


@MODELS.register("lenet5", help="LeNet-5: conv 6,16 (channels are nodes) + fc 120,84; needs images >= 12x12")
def lenet5(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> LeNet5:
    return LeNet5(input_shape, num_classes, widths or (6, 16, 120, 84))
