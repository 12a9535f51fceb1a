"""Trained weights as bytes: what `sparsenas export` rebuilds a trained sub-network from.

A trial's trained state dict (the compacted net of a node trial; the full-size net with its masked
weights at zero of a weight trial) is saved with `torch.save` and compressed with zlib, which also
squeezes a weight trial's zeros: at weight sparsity 0.99 the blob is a few percent of the dense size.
"""

from __future__ import annotations

import io
import zlib

import torch
from torch import nn

from ..errors import SparsenasError


def pack_weights(net: nn.Module) -> bytes:
    """`net`'s parameters and buffers (on the CPU) as compressed bytes.

    >>> blob = pack_weights(nn.Linear(3, 2)); sorted(unpack_weights(blob))
    ['bias', 'weight']
    """
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buf)
    return zlib.compress(buf.getvalue(), level=6)


def unpack_weights(blob: bytes) -> dict[str, torch.Tensor]:
    """The state dict `pack_weights` stored (tensors only: loaded with `weights_only=True`)."""
    try:
        return torch.load(io.BytesIO(zlib.decompress(blob)), map_location="cpu", weights_only=True)
    except (zlib.error, RuntimeError, EOFError) as e:
        raise SparsenasError(f"stored weights are damaged ({e}); delete the trial's rows and re-run to train it again") from None
