"""CIFAR ResNets (He et al. 2016, section 4.2): `resnet20`, `resnet32`, `resnet56`, depth 6n+2.

These are the lottery-ticket field's standard parents (open_lth's cifar_resnet_20/56), so they are
written the way their users write them: plain `nn.Module`s with BatchNorm after every conv and
`out += self.shortcut(x)`, no hand-declared node groups. `build_parent` discovers the coupled
groups by tracing (every conv that writes into one residual stream keeps or drops a channel
together; see `discover.py`), so forward stays free of data-dependent control flow.

Where a block changes shape the shortcut is a 1x1 conv + BatchNorm projection ("option B", open_lth's
and torchvision's choice) rather than the paper's zero-padded identity ("option A"): a projection
starts the wider stage's stream afresh, so each stage's stream is one node group, where zero padding
would tie the first half of the wider stream to the narrower one channel by channel. It adds a few
parameters (resnet20: 272,474 rather than the paper's 269,722).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SparsenasError
from .base import kaiming_init
from .registry import MODELS

MIN_SIDE = 8  # two stride-2 stages: 8x8 leaves the last stage 2x2


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU.

    >>> b = BasicBlock(16, 32, stride=2); tuple(b(torch.zeros(2, 16, 8, 8)).shape)
    (2, 32, 4, 4)
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # no conv bias: the BatchNorm after each conv subtracts it again
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # an empty Sequential is the identity and vanishes from the traced graph
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, planes, H/stride, W/stride)
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)  # the residual stream: conv2's channels are the stream's channels
        return F.relu(out)


class ResNet(nn.Module):
    """CIFAR ResNet-(6n+2): stem conv3x3 + BN + ReLU, three stages of n `BasicBlock`s with widths
    `widths` (stride 2 entering stages 2 and 3), global average pooling, Linear classifier.

    The average pool is adaptive, so 28x28 Fashion-MNIST and 32x32 CIFAR both end in one vector.
    `sparsenas_init` is `kaiming_init`: Kaiming-normal convs (fan_out, ReLU gain), BatchNorm 1 and 0,
    PyTorch's default Linear init.

    >>> m = ResNet((3, 32, 32), 10, n=3, widths=(4, 8, 16)); tuple(m(torch.zeros(2, 3, 32, 32)).shape)
    (2, 10)
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, n: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        c = _image_channels(input_shape, f"resnet{6 * n + 2}")
        w1, w2, w3 = widths
        self.conv1 = nn.Conv2d(c, w1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.layer1 = _stage(w1, w1, n, stride=1)
        self.layer2 = _stage(w1, w2, n, stride=2)
        self.layer3 = _stage(w2, w3, n, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, w1, H, W)
        out = self.layer1(out)  # (B, w1, H, W)
        out = self.layer2(out)  # (B, w2, H/2, W/2)
        out = self.layer3(out)  # (B, w3, H/4, W/4)
        out = self.pool(out).flatten(1)  # (B, w3)
        return self.fc(out)

    def sparsenas_init(self, generator: torch.Generator) -> None:
        """He et al.'s initialization from `generator` (see `kaiming_init`); `build_parent` calls it."""
        kaiming_init(self, generator)


def _stage(in_planes: int, planes: int, n: int, stride: int) -> nn.Sequential:
    """n blocks; only the first changes width or resolution."""
    return nn.Sequential(*(BasicBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1) for i in range(n)))


def _image_channels(input_shape: tuple[int, ...], name: str) -> int:
    """The channel count of an image input (C, H, W) at least MIN_SIDE on a side, or a one-line refusal."""
    if len(input_shape) != 3:
        raise SparsenasError(f"{name} needs image inputs (C, H, W), got shape {tuple(input_shape)}; use --model mlp")
    c, h, w = input_shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise SparsenasError(f"{name} needs images of at least {MIN_SIDE}x{MIN_SIDE}, got {h}x{w}; use --model mlp for this dataset")
    return c


def stage_widths(name: str, widths: tuple[int, ...] | None) -> tuple[int, int, int]:
    """The three stage widths from `--widths`: none (16, 32, 64), one w (w, 2w, 4w), or three.

    >>> stage_widths("resnet20", None), stage_widths("resnet20", (4,)), stage_widths("resnet20", (8, 8, 24))
    ((16, 32, 64), (4, 8, 16), (8, 8, 24))
    """
    ws = tuple(widths) if widths is not None else (16,)
    if len(ws) not in (1, 3) or any(not isinstance(v, int) or v < 1 for v in ws):
        raise SparsenasError(
            f"{name} takes --widths W (the first stage's width; stages get W, 2W, 4W) or three positive widths "
            f"W1,W2,W3 (one per stage), got {','.join(map(str, ws))}; e.g. --widths 16"
        )
    if len(ws) == 1:
        return ws[0], 2 * ws[0], 4 * ws[0]
    return ws[0], ws[1], ws[2]


_HELP = "CIFAR ResNet-{} (He et al. 2016): {} BasicBlocks a stage, BatchNorm, projection shortcuts; --widths W or W1,W2,W3 (default 16)"


@MODELS.register("resnet20", help=_HELP.format(20, 3))
def resnet20(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> ResNet:
    return ResNet(input_shape, num_classes, 3, stage_widths("resnet20", widths))


@MODELS.register("resnet32", help=_HELP.format(32, 5))
def resnet32(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> ResNet:
    return ResNet(input_shape, num_classes, 5, stage_widths("resnet32", widths))


@MODELS.register("resnet56", help=_HELP.format(56, 9))
def resnet56(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> ResNet:
    return ResNet(input_shape, num_classes, 9, stage_widths("resnet56", widths))
