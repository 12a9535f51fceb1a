"""Trained weights as bytes: what `sparsenas export` rebuilds a trained sub-network from.

A trial's trained state dict (the compacted net of a node trial; the full-size net with its masked
weights at zero of a weight trial) is saved with `torch.save` and compressed with zlib, which also
squeezes a weight trial's zeros: at weight sparsity 0.99 the blob is a few percent of the dense size.
Trained float weights without zeros shrink by 8%, for 70 ms a dense LeNet-300-100 and 11 ms a
sub-network at node sparsity 0.8 (0.34 s of a run of 32 one-epoch controls): a state with under
`ZEROS_WORTH_IT` of its entries at zero is stored as an uncompressed zlib stream (level 0), which
every reader of these blobs reads the same way.
"""

from __future__ import annotations

import io
import re
import warnings
import zlib

import torch
from torch import nn

ZEROS_WORTH_IT = 0.125  # the share of entries at zero from which compressing pays for its time


def pack_weights(net: nn.Module) -> bytes:
    """`net`'s parameters and buffers (on the CPU) as zlib bytes: compressed where zeros make it pay.

    >>> blob = pack_weights(nn.Linear(3, 2)); sorted(unpack_weights(blob))
    ['bias', 'weight']
    """
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    entries = sum(t.numel() for t in state.values())
    zeros = sum(int((t == 0).sum()) for t in state.values())
    buf = io.BytesIO()
    torch.save(state, buf)
    return zlib.compress(buf.getvalue(), level=6 if zeros >= ZEROS_WORTH_IT * entries else 0)


def _reason(e: Exception) -> str:
    """One short line saying why `torch.load` refused a blob (its messages run over many lines)."""
    text = str(e)
    # weights_only's message is a page of advice around one line naming what it refused
    text = text.split("WeightsUnpickler error:", 1)[-1]
    advice = ("Weights only load failed", "Please file", "Check the documentation")
    lines = [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith(advice)]
    first = re.split(r"(?<=\.) ", lines[0])[0][:160] if lines else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def unpack_weights(blob: bytes) -> dict[str, torch.Tensor]:
    """The state dict `pack_weights` stored, loaded with `weights_only=True` (tensors only).

    Anything else - random or truncated bytes, a pickle of other objects - raises `ValueError` with a
    one-line reason; the caller, who knows the trial and the run, turns it into an error with the fix.

    >>> unpack_weights(zlib.compress(b"not a state dict"))
    Traceback (most recent call last):
    ...
    ValueError: not a torch.save file of tensors (UnpicklingError: Unsupported operand 110)
    """
    try:
        raw = zlib.decompress(blob)
    except zlib.error as e:
        raise ValueError(f"not zlib data ({e})") from None
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before failing; the error says it all
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # untrusted bytes fail in many ways (pickle, zip, EOF, struct...): all mean "damaged"
        raise ValueError(f"not a torch.save file of tensors ({_reason(e)})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"a {type(state).__name__}, not a state dict of named tensors")
    return state
