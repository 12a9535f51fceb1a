"""The ops discovery lets through between layers, as it knows them.

The unary ones act on every node separately (an activation, dropout, 2-d pooling, a channel-major
flatten), so removing a node is removing its producer rows and consumer columns. The binary ones
combine two tensors of one shape node by node (a residual add, a gate), which ties the two tensors'
nodes into one group; concatenation lays nodes side by side. `discover.py` refuses everything else.
A new elementwise op that discovery should let through is one more entry here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

SUPPORTED = "activations, dropout, 2-d pooling, a channel-major flatten, elementwise add/mul of layers' outputs and channel concatenation"

# Ops that act on each element (hence on each node) alone: the shape in is the shape out.
ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.Mish,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
POOL_MODULES: tuple[type[nn.Module], ...] = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_ELEMENTWISE_NAMES = (
    "relu",
    "relu_",
    "relu6",
    "gelu",
    "tanh",
    "sigmoid",
    "silu",
    "mish",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "softplus",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "dropout",
    "dropout1d",
    "dropout2d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "abs",
    "neg",
    "clamp",
    "clamp_min",
    "clamp_max",
)
# the same function may live in torch, torch.nn.functional or both; fx records the object called
ELEMENTWISE_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    f for mod in (torch, F) for name in _ELEMENTWISE_NAMES if (f := getattr(mod, name, None)) is not None
) | {operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pos, torch.add, torch.sub, torch.mul, torch.div}
ELEMENTWISE_METHODS = (
    frozenset(_ELEMENTWISE_NAMES)
    | {f"{n}_" for n in _ELEMENTWISE_NAMES}
    | {"add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "contiguous", "clone"}
)
# node i of the result reads node i of both operands: `out += shortcut(x)` (fx records operator.add),
# `a * torch.sigmoid(b)`; two layers' outputs combined so become one group
BINARY_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul, operator.itruediv}
) | {torch.add, torch.sub, torch.mul, torch.div}
BINARY_METHODS = frozenset({"add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_"})
CAT_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset({torch.cat, torch.concat, torch.concatenate})
POOL_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.max_pool2d}
)
RESHAPE_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset({torch.flatten, torch.reshape})
RESHAPE_METHODS = frozenset({"flatten", "view", "reshape"})
# queries that read a tensor's metadata, not its values: `x.view(x.size(0), -1)` is still one chain
META_METHODS = frozenset({"size", "dim", "numel", "nelement"})
META_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "is_cuda"})
