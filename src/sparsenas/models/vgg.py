"""CIFAR VGGs with BatchNorm (Simonyan & Zisserman 2015, as open_lth trains them): `vgg11-bn`, `vgg16-bn`.

open_lth's CIFAR plans keep VGG's conv stacks but drop the last pool and the 4096-wide classifier:
four 2x2 pools, then global average pooling and one Linear layer. Network slimming and "Rethinking
the Value of Network Pruning" prune exactly these nets, so they are plain `nn.Module`s written as
their users write them (conv3x3 -> BatchNorm -> ReLU, 'M' a max pool) and `build_parent` discovers
their node groups: every conv's channels, with the BatchNorm after it following them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SparsenasError
from .base import kaiming_init
from .registry import MODELS

# conv widths in order, "M" a 2x2 max pool (open_lth's cifar_vgg plans 11 and 16); four pools take
# 32x32 to 2x2 and 28x28 to 1x1 (14, 7, 3, 1), and need at least 16x16. On 28x28 the last convs see
# 1x1 maps, so their BatchNorm in train mode needs batches of two or more images, as on any 1x1 map
PLANS: dict[str, tuple[int | str, ...]] = {
    "vgg11-bn": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg16-bn": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
}


class VGG(nn.Module):
    """`features` (conv3x3 + BN + ReLU per width in `plan`, a 2x2 max pool per "M"), global average
    pooling, Linear classifier.

    Convs have no bias: the BatchNorm right after each subtracts the batch mean, so a bias would be a
    parameter with no effect (open_lth keeps it; torchvision's vgg*_bn too, at zero). `sparsenas_init`
    is `kaiming_init`: Kaiming-normal convs (fan_out, ReLU gain), BatchNorm 1 and 0, PyTorch's default
    Linear init.

    >>> m = VGG((1, 28, 28), 10, (8, "M", 16, "M", 32, "M", 32, "M", 64)); tuple(m(torch.zeros(2, 1, 28, 28)).shape)
    (2, 10)
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, plan: tuple[int | str, ...], name: str = "vgg") -> None:
        super().__init__()
        c = _image_channels(input_shape, plan.count("M"), name)
        layers: list[nn.Module] = []
        for v in plan:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, last width, H/16, W/16)
        x = self.pool(x).flatten(1)  # (B, last width)
        return self.classifier(x)

    def sparsenas_init(self, generator: torch.Generator) -> None:
        """He et al.'s initialization from `generator` (see `kaiming_init`); `build_parent` calls it."""
        kaiming_init(self, generator)


def _image_channels(input_shape: tuple[int, ...], pools: int, name: str) -> int:
    """The channel count of an image input that survives `pools` halvings, or a one-line refusal."""
    if len(input_shape) != 3:
        raise SparsenasError(f"{name} needs image inputs (C, H, W), got shape {tuple(input_shape)}; use --model mlp")
    c, h, w = input_shape
    side = 2**pools
    if h < side or w < side:
        raise SparsenasError(f"{name} needs images of at least {side}x{side}, got {h}x{w}; use --model resnet20 (8x8 and up) or mlp")
    return c


def scaled_plan(name: str, widths: tuple[int, ...] | None) -> tuple[int | str, ...]:
    """`name`'s plan with `--widths`: none (the plan), one W (the first conv W, the rest in the plan's
    ratios), or one width per conv layer.

    >>> scaled_plan("vgg11-bn", (8,))
    (8, 'M', 16, 'M', 32, 32, 'M', 64, 64, 'M', 64, 64)
    """
    plan = PLANS[name]
    convs = [v for v in plan if v != "M"]
    ws = tuple(widths) if widths is not None else (64,)
    if len(ws) not in (1, len(convs)) or any(not isinstance(v, int) or v < 1 for v in ws):
        raise SparsenasError(
            f"{name} takes --widths W (the first conv's width, default 64; the others keep the plan's ratios) or "
            f"{len(convs)} positive widths, one per conv layer, got {','.join(map(str, ws))}; e.g. --widths 16"
        )
    if len(ws) == 1:
        # every plan width is 64 times a power of two, so the scaled widths are whole
        ws = tuple(int(v) * ws[0] // 64 for v in convs)
    it = iter(ws)
    return tuple(v if v == "M" else next(it) for v in plan)


_HELP = "CIFAR VGG-{} with BatchNorm (open_lth's plan: {} convs, 4 pools, one fc); --widths W or one per conv (default 64)"


@MODELS.register("vgg11-bn", help=_HELP.format(11, 8))
def vgg11_bn(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> VGG:
    return VGG(input_shape, num_classes, scaled_plan("vgg11-bn", widths), "vgg11-bn")


@MODELS.register("vgg16-bn", help=_HELP.format(16, 13))
def vgg16_bn(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> VGG:
    return VGG(input_shape, num_classes, scaled_plan("vgg16-bn", widths), "vgg16-bn")
