"""Standard CIFAR augmentation of training batches: a random crop after zero-padding by 4 pixels
on each side, and a random horizontal flip, per sample, on tensors on the run's device.

Seeded by the data seed, never the trial. The protocol compares arms of one seed (dense parent,
random controls, every finder) that differ only in their sub-network: same init, same budget, same
data. So, like the data order (`population.py`), the augmented batch is a function of the data seed,
the epoch and the batch's place in the epoch alone: every trial of a seed sees the same augmented
minibatches whichever population it trains in, alone or with others, in this process or a Ray
worker, fresh or retrained on resume. A draw seeded by the trial would hand each arm other crops,
and a finder could win or lose by its luck with them.

Its own generator, apart from the permutation's: the permutation stream does not move, so a run
without augmentation trains bit for bit as before, and turning augmentation on changes the crops
and flips, not which samples form a batch.

One generator per epoch, seeded from (data seed, epoch), and the epoch's draws made at its start:
sample i of the epoch's order takes the i-th draw, so a batch's crops do not depend on how many
batches came before in this process, and a GPU gets one small copy per epoch instead of one per batch.
The draws are made on the CPU from a CPU generator and moved to the device, so CPU and CUDA crop and
flip the same samples the same way for a seed (a CUDA generator draws another stream); the crop is a
gather, with no arithmetic on the values, so the augmented batches are equal bit for bit.

The padding is zero on data already normalized with the train split's statistics (`data.base`): a
padded pixel is the train mean, not black as in torchvision's pad-then-normalize recipe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..data import Dataset
from ..errors import SparsenasError
from .spec import TrainSpec

PAD = 4  # pixels of zeros on each side before the crop: the CIFAR recipe (He et al. 2016)


def draw_crop_flip(n: int, generator: torch.Generator, pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples' crop offsets (n, 2) (row, column; each in [0, 2 * pad]) and flips (n,) bool, on the CPU.

    >>> offsets, flips = draw_crop_flip(5, torch.Generator().manual_seed(0))
    >>> tuple(offsets.shape), flips.dtype, bool(((offsets >= 0) & (offsets <= 8)).all())
    ((5, 2), torch.bool, True)
    """
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flips = torch.randint(0, 2, (n,), generator=generator).bool()
    return offsets, flips


def apply_crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Crop each image of `x` (B, C, H, W), zero-padded by `pad`, at its `offsets`, then mirror the ones `flips` marks.

    Sample b is the (H, W) window of the padded image whose top-left corner is `offsets[b]`, read
    right to left where `flips[b]`: one gather over the whole batch (no loop over samples), on x's device.

    >>> x = torch.arange(4.0).view(1, 1, 2, 2)
    >>> apply_crop_flip(x, torch.tensor([[1, 1]]), torch.tensor([True]), pad=1)[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
    """
    b, c, h, w = x.shape
    offsets, flips = offsets.to(x.device), flips.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
    i = torch.arange(h, device=x.device)
    j = torch.arange(w, device=x.device)
    rows = offsets[:, :1] + i  # (B, H): rows of the padded image
    cols = offsets[:, 1:] + torch.where(flips[:, None], w - 1 - j, j)  # (B, W): columns, reversed where flipped
    flat = rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]  # (B, H, W): positions in a padded channel
    index = flat.reshape(b, 1, h * w).expand(b, c, h * w)  # every channel of a sample cropped alike
    return padded.reshape(b, c, -1).gather(2, index).reshape(b, c, h, w)


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """`x` (B, C, H, W), each image randomly cropped after zero-padding by `pad` and flipped with probability 1/2.

    The draws come from `generator` (a CPU generator) in the order `draw_crop_flip` makes them, so
    the same seed crops and flips alike on every device.

    >>> x = torch.randn(3, 1, 8, 8)
    >>> a, b = (crop_flip(x, torch.Generator().manual_seed(7)) for _ in range(2))
    >>> tuple(a.shape), torch.equal(a, b)
    ((3, 1, 8, 8), True)
    """
    offsets, flips = draw_crop_flip(len(x), generator, pad)
    return apply_crop_flip(x, offsets, flips, pad)


def augment_seed(kind: str, data_seed: int, epoch: int) -> int:
    """The seed of augmentation `kind`'s generator in `epoch` of data seed `data_seed` (63 bits).

    A hash, so the streams of neighbouring seeds and epochs, and of the permutation generator
    (seeded with `data_seed` itself), share nothing.

    >>> augment_seed("crop-flip", 0, 1) == augment_seed("crop-flip", 0, 1) != augment_seed("crop-flip", 0, 2)
    True
    """
    digest = hashlib.sha256(f"augment|{kind}|{data_seed}|{epoch}".encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass(frozen=True)
class EpochAugment:
    """One epoch's crops and flips, drawn at its start: sample i of the epoch's order takes draw i."""

    offsets: torch.Tensor  # (N, 2) on the data's device
    flips: torch.Tensor  # (N,) bool

    def __call__(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The batch `x` that starts at place `start` of the epoch's order, augmented."""
        stop = start + len(x)
        return apply_crop_flip(x, self.offsets[start:stop], self.flips[start:stop])


def epoch_augment(kind: str, data_seed: int, epoch: int, n: int, device: torch.device) -> EpochAugment | None:
    """The augmentation of `epoch` (from 1) over `n` training samples, or None for `kind` "none".

    >>> aug = epoch_augment("crop-flip", 0, 1, 10, torch.device("cpu"))
    >>> tuple(aug(torch.zeros(4, 1, 8, 8), start=6).shape), epoch_augment("none", 0, 1, 10, torch.device("cpu"))
    ((4, 1, 8, 8), None)
    """
    if kind == "none":
        return None
    if kind != "crop-flip":
        raise ValueError(f"unknown augmentation {kind!r}")  # users' values are checked by check_augment
    generator = torch.Generator().manual_seed(augment_seed(kind, data_seed, epoch))
    offsets, flips = draw_crop_flip(n, generator)
    return EpochAugment(offsets.to(device), flips.to(device))


def check_augment(spec: TrainSpec, data: Dataset) -> None:
    """Refuse, in one line, an augmentation the data cannot take: crops and flips need images (N, C, H, W).

    >>> from sparsenas.data import Split
    >>> s = Split(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))
    >>> check_augment(TrainSpec(augment="crop-flip"), Dataset("table", s, s, s, 2))
    Traceback (most recent call last):
    ...
    sparsenas.errors.SparsenasError: --augment crop-flip crops and flips images (N, C, H, W), but dataset 'table' holds (N, 5) inputs; drop --augment for this dataset
    """
    if spec.augment == "none":
        return
    if spec.augment != "crop-flip":
        raise SparsenasError(f"--augment must be one of none, crop-flip, got {spec.augment!r}")
    if len(data.input_shape) != 3:
        shape = ", ".join(("N", *map(str, data.input_shape)))
        raise SparsenasError(
            f"--augment {spec.augment} crops and flips images (N, C, H, W), but dataset '{data.name}' holds ({shape}) inputs; "
            "drop --augment for this dataset"
        )
