"""Model layer: parent networks that declare their prunable node groups."""

from . import lenet5, mlp, resnet, vgg  # noqa: E402,F401  (registration)
from .autoparent import as_parent
from .base import NodeGroup, Parent, TensorSlice, init_parameters, is_stochastic
from .discover import describe_node_groups, discover_node_groups
from .registry import MODELS, build_parent, initialize

__all__ = [
    "MODELS",
    "NodeGroup",
    "Parent",
    "TensorSlice",
    "as_parent",
    "build_parent",
    "initialize",
    "describe_node_groups",
    "discover_node_groups",
    "init_parameters",
    "is_stochastic",
]
