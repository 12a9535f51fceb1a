"""Multi-layer perceptrons: `mlp` with any hidden widths, and the `lenet-300-100` preset."""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import NodeGroup, Parent, linear_chain_groups, stacked_linear
from .registry import MODELS


class MLP(Parent):
    """Flatten -> [Linear -> ReLU] * len(widths) -> Linear classifier.

    >>> m = MLP((1, 8, 8), 10, (32, 16)); m(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> [g.size for g in m.node_groups()]
    [32, 16]
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        dims = [math.prod(input_shape), *widths]
        self.names = [f"fc{i + 1}" for i in range(len(widths))] + ["out"]
        for i, name in enumerate(self.names[:-1]):
            setattr(self, name, nn.Linear(dims[i], dims[i + 1]))
        self.out = nn.Linear(dims[-1], num_classes)
        self.widths = tuple(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, C*H*W)
        for name in self.names[:-1]:
            x = torch.relu(getattr(self, name)(x))
        return self.out(x)

    def node_groups(self) -> list[NodeGroup]:
        return linear_chain_groups(self.names, list(self.widths))

    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """K MLPs of this shape on one batch: the first layer as one wide GEMM, then batched GEMMs.

        >>> m = MLP((1, 8, 8), 10, (32, 16))
        >>> p = {n: t.detach().expand(3, *t.shape) for n, t in m.named_parameters()}
        >>> y = m.stacked_forward(p, torch.randn(5, 1, 8, 8)); tuple(y.shape)
        (3, 5, 10)
        """
        return self._stacked(params, x.flatten(1))  # (B, C*H*W), shared by the K members

    def stacked_forward_each(self, params: dict[str, torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
        """K MLPs of this shape, each on its own batch xs (K, B, ...): batched GEMMs throughout.

        >>> m = MLP((1, 8, 8), 10, (32, 16))
        >>> p = {n: t.detach().expand(3, *t.shape) for n, t in m.named_parameters()}
        >>> tuple(m.stacked_forward_each(p, torch.randn(3, 5, 1, 8, 8)).shape)
        (3, 5, 10)
        """
        return self._stacked(params, xs.flatten(2))  # (K, B, C*H*W)

    def _stacked(self, params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        for name in self.names[:-1]:
            h = torch.relu(stacked_linear(h, params[f"{name}.weight"], params[f"{name}.bias"]))
        return stacked_linear(h, params["out.weight"], params["out.bias"])


@MODELS.register("mlp", help="MLP with ReLU; hidden widths from --widths (default 256,128)")
def mlp(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> MLP:
    return MLP(input_shape, num_classes, widths or (256, 128))


@MODELS.register("lenet-300-100", help="LeNet-300-100: MLP with hidden widths 300 and 100 (LeCun et al. 1998)")
def lenet_300_100(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, ...] | None = None) -> MLP:
    return MLP(input_shape, num_classes, widths or (300, 100))
