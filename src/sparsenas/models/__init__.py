"""Model layer: parent networks that declare their prunable node groups."""

from .base import NodeGroup, Parent, TensorSlice, init_parameters
from .registry import MODELS, build_parent
from . import lenet5, mlp  # noqa: E402,F401  (registration)

__all__ = ["MODELS", "NodeGroup", "Parent", "TensorSlice", "build_parent", "init_parameters"]
