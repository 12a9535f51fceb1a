"""`as_parent`: a plain `nn.Module` becomes a `Parent` in place, its node groups discovered.

The module's class is swapped for a subclass of it and of `Parent` whose `node_groups()` runs
`discover_node_groups` on the module's current shapes, so a compacted copy describes its own smaller
groups. Pickle and deepcopy rebuild that subclass from the original class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import SparsenasError
from .base import NodeGroup, Parent
from .discover import _check_input_shape, discover_node_groups

_PARENT_CLASSES: dict[type, type[Parent]] = {}
_CACHE_SIZE = 8  # shape signatures remembered per instance: a parent and a few compacted shapes


def _shape_key(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, ...]:
    return (input_shape, tuple((n, tuple(p.shape)) for n, p in module.named_parameters()))


def _discovered_node_groups(self: nn.Module) -> list[NodeGroup]:
    """Node groups found by tracing this module at its current shapes (see `discover_node_groups`)."""
    shape = self.__dict__.get("sparsenas_input_shape")
    if shape is None:
        raise SparsenasError(f"{type(self).__name__} was not made by as_parent(module, input_shape); call as_parent on it")
    key = _shape_key(self, shape)
    # a compacted copy has sliced tensors, hence another key: it describes its own, smaller groups
    cache: dict[tuple[Any, ...], tuple[NodeGroup, ...]] = self.__dict__.setdefault("_sparsenas_node_groups", {})
    if key not in cache:
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = tuple(discover_node_groups(self, shape))
    return list(cache[key])


def _reduce_ex(self: nn.Module, protocol: int) -> tuple[Any, ...]:
    # the dynamic class is in no module's namespace, so pickle names the original class instead and
    # `_rebuild_parent` recreates the subclass on load; the state is the module's own
    # `_sparsenas_wraps` is set in the namespace `_parent_class` builds, so no class declares it
    return (_rebuild_parent, (getattr(type(self), "_sparsenas_wraps"),), self.__getstate__())


def _rebuild_parent(cls: type) -> nn.Module:
    """An empty instance of the Parent subclass of `cls` (pickle then restores its state).

    >>> type(_rebuild_parent(nn.Sequential)).__mro__[1:3] == (nn.Sequential, Parent)
    True
    """
    pcls = _parent_class(cls)
    return pcls.__new__(pcls)


def _parent_class(cls: type) -> type[Parent]:
    """The Parent subclass of `cls` with discovery as `node_groups` (one per class, made on demand)."""
    if cls not in _PARENT_CLASSES:
        made = type(
            cls.__name__,
            (cls, Parent),
            {
                # same names as the user's class: repr and error messages read as their model
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
                "_sparsenas_wraps": cls,
                "node_groups": _discovered_node_groups,
                "__reduce_ex__": _reduce_ex,
            },
        )
        assert issubclass(made, Parent)
        _PARENT_CLASSES[cls] = made
    return _PARENT_CLASSES[cls]


def is_discovered(module: nn.Module) -> bool:
    """Whether `module`'s node groups come from discovery (`as_parent`) rather than its author.

    >>> is_discovered(as_parent(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), (4,)))
    True
    """
    return "sparsenas_input_shape" in module.__dict__


def as_parent(module: nn.Module, input_shape: tuple[int, ...]) -> Parent:
    """`module` itself, now a `Parent` whose `node_groups()` are discovered (see `discover_node_groups`).

    The module's class is swapped for a subclass of it and of `Parent`; its parameters, forward and
    repr are unchanged. `input_shape` (one sample's shape) is kept as `sparsenas_input_shape`.
    Discovery runs once here, so an unsupported model fails now with a `SparsenasError`, and again
    (cached per shape) whenever the module's tensors change shape, as after compaction. A module that
    already is a Parent is returned as it is. Deepcopy and pickle give Parents again.

    >>> net = as_parent(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), (4,))
    >>> isinstance(net, Parent), type(net).__name__, [(g.name, g.size) for g in net.node_groups()]
    (True, 'Sequential', [('0', 8)])
    """
    if isinstance(module, Parent):
        return module
    if not isinstance(module, nn.Module):
        raise SparsenasError(f"as_parent needs an nn.Module, got {type(module).__name__}")
    shape = _check_input_shape(input_shape)
    groups = discover_node_groups(module, shape)  # before touching the module: a refusal leaves it as it was
    module.__class__ = _parent_class(type(module))
    module.__dict__["sparsenas_input_shape"] = shape
    module.__dict__["_sparsenas_node_groups"] = {_shape_key(module, shape): tuple(groups)}
    assert isinstance(module, Parent)
    return module
