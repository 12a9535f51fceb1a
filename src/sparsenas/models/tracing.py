"""The torch.fx side of node-group discovery: trace a module, run the traced graph once to learn
every node's shape, and name a graph node the way its user would. Any failure is one
`SparsenasError` line (`_fail`) naming the layer and the way out (`HOW_TO`).

`discover.py` walks the graph this module returns; nothing here knows what a node group is.
"""

from __future__ import annotations

import operator
import os
import traceback
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

from ..errors import SparsenasError, first_line
from ..runtime import eval_mode

HOW_TO = "declare node_groups() yourself (see examples/bring_your_own.py)"


class _Tracer(fx.Tracer):
    """fx's default tracer, plus: a Linear/Conv2d subclass stays one layer (a call_module node)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, (nn.Linear, nn.Conv2d)) or super().is_leaf_module(m, module_qualified_name)


class _Shapes(fx.Interpreter):
    """Runs the traced graph and records each node's output shape (None: not a tensor), like fx's
    ShapeProp, and which node was running when something failed."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.shapes: dict[fx.Node, tuple[int, ...] | None] = {}
        self.current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        out = super().run_node(n)
        self.shapes[n] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        return out


def _fail(message: str) -> SparsenasError:
    # one line whatever the wrapped exception printed
    return SparsenasError("cannot discover node groups: " + " ".join(message.split()))


def _function_name(fn: Any) -> str:
    """The public name of a function fx recorded: F.gelu is torch._C._nn.gelu underneath."""
    for prefix, namespace in (("torch.nn.functional", F), ("torch", torch), ("operator", operator)):
        name = getattr(fn, "__name__", None)
        if name and getattr(namespace, name, None) is fn:
            return f"{prefix}.{name}"
    return f"{getattr(fn, '__module__', None) or ''}.{getattr(fn, '__name__', repr(fn))}".lstrip(".")


def _describe(n: fx.Node, modules: dict[str, nn.Module]) -> str:
    """The name a user recognizes: a module's qualified name, or the fx node and the function."""
    if n.op == "call_module":
        return f"layer '{n.target}' ({type(modules[str(n.target)]).__name__})"
    if n.op == "call_method":
        return f"op '{n.name}' (.{n.target}())"
    if n.op == "call_function":
        return f"op '{n.name}' ({_function_name(n.target)})"
    if n.op == "get_attr":
        return f"tensor '{n.target}'"
    return f"'{n.name}'"


def _check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise SparsenasError(f"input_shape must be a tuple of positive ints (one sample, no batch dim), got {input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise SparsenasError(f"input_shape must be a tuple of positive ints (one sample, no batch dim), got {input_shape!r}")
    return shape


def _trace(module: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as e:  # fx raises TraceError, TypeError, RuntimeError... all mean "not traceable"
        torch_dir = os.path.dirname(torch.__file__)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(torch_dir) and f.filename != __file__]
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} `{(frames[-1].line or '').strip()}`" if frames else ""
        raise _fail(
            f"torch.fx cannot trace {type(module).__name__}{where} ({first_line(e)}); make forward free of "
            f"data-dependent Python control flow or {HOW_TO}"
        ) from None
    return fx.GraphModule(tracer.root, graph)


def _propagate(gm: fx.GraphModule, module: nn.Module, input_shape: tuple[int, ...]) -> dict[fx.Node, tuple[int, ...] | None]:
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    required = [n for n in placeholders if not n.args]  # a placeholder's args hold its default
    if len(required) != 1:
        raise _fail(
            f"forward of {type(module).__name__} takes {len(required)} inputs; discovery feeds it one tensor "
            f"of shape (batch, *input_shape): {HOW_TO}"
        )
    p = next(iter(module.parameters()), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
    x = torch.zeros(2, *input_shape, dtype=dtype, device=p.device if p is not None else None)
    interp = _Shapes(gm)
    # dropout may run (F.dropout(x, p, training=True) is baked into the trace): fork the generators so
    # discovery never shifts the random stream of a seeded run
    cuda = [p.device.index or 0] if p is not None and p.device.type == "cuda" else []
    try:
        # eval mode: a BatchNorm in train mode would move its running statistics (a pretrained net's, or
        # θ0's, drawn from the global generator through the biases before it)
        with torch.random.fork_rng(devices=cuda), torch.no_grad(), eval_mode(module):
            out = interp.run(x)
    except Exception as e:
        at = f" at {_describe(interp.current, dict(gm.named_modules()))}" if interp.current is not None else ""
        raise _fail(
            f"running {type(module).__name__} on a zero batch of shape {tuple(x.shape)} failed{at}: {first_line(e)}; "
            "check input_shape (one sample's shape, e.g. (13,) or (1, 28, 28))"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise _fail(
            f"forward of {type(module).__name__} returns a {type(out).__name__}, not one tensor of logits; sparsenas trains "
            "and scores the logits alone: make forward return them (e.g. a wrapper returning out[0])"
        )
    return interp.shapes
