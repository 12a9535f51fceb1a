"""What a finder spent before the final training: candidates, steps, FLOPs, seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchCost:
    """What a finder spent before the final training (zero for `dense` and `random`)."""

    candidates: int = 0  # masks proposed and scored
    steps: int = 0  # training steps summed over candidates (candidate-steps)
    flops: float = 0.0  # forward+backward FLOPs spent scoring and training candidates
    seconds: float = 0.0
