"""What one trial leaves behind: its identity, its sub-network, its learning curve, its costs.

These are plain frozen dataclasses so the store, the report and the tests share one shape. Derived
quantities that need other trials (epochs to reach a fraction of the dense parent's accuracy, paired
differences) are computed by the report, not stored, so the store holds only what the trial saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EpochRecord:
    """One point of a learning curve, measured after `epoch` epochs of training (epoch 0 = at init)."""

    epoch: int
    train_loss: float  # mean minibatch loss over the epoch (at epoch 0: loss on the train split)
    val_loss: float
    val_acc: float  # in [0, 1]
    test_acc: float  # in [0, 1]; recorded every epoch so best-validation test accuracy can be read


@dataclass(frozen=True)
class SearchCost:
    """What a finder spent before the final training (zero for `dense` and `random`)."""

    candidates: int = 0  # masks proposed and scored
    steps: int = 0  # training steps summed over candidates (candidate-steps)
    flops: float = 0.0  # forward+backward FLOPs spent scoring and training candidates
    seconds: float = 0.0


@dataclass(frozen=True)
class TrialRecord:
    """A trained sub-network: one (dataset, parent, finder, sparsity, seed).

    `status` is "done" or "diverged" (a non-finite loss stopped training; the curve holds the epochs
    completed before it). `kept_nodes[i]` is how many nodes hidden group i keeps; `node_mask[i]` is
    the list of kept node indices of group i in the parent.
    """

    key: str
    finder: str
    sparsity: float  # target node sparsity (0 for the dense parent)
    seed: int
    status: str
    node_sparsity: float  # achieved fraction of hidden nodes removed
    weight_sparsity: float  # fraction of the parent's prunable weights that are zero
    params: int  # parameters of the compacted sub-network (weights and biases)
    flops: int  # forward FLOPs per sample of the compacted sub-network (a multiply-add counts 2)
    kept_nodes: tuple[int, ...]
    node_mask: tuple[tuple[int, ...], ...]
    final_test_acc: float  # test accuracy after the last epoch (nan if diverged)
    best_val_epoch: int  # epoch of highest validation accuracy (earliest on ties)
    best_val_test_acc: float  # test accuracy at best_val_epoch
    min_val_loss_epoch: int  # epoch of lowest validation loss: the convergence epoch
    wall_seconds: float  # final training only
    search: SearchCost = field(default_factory=SearchCost)
    curve: tuple[EpochRecord, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)  # the canonical trial spec that was hashed

    def to_row(self) -> dict[str, Any]:
        """Flat dict for CSV export: curve and spec left out, search cost prefixed ``search_``."""
        d = asdict(self)
        d.pop("curve")
        d.pop("spec")
        d.pop("node_mask")
        for k, v in d.pop("search").items():
            d[f"search_{k}"] = v
        d["kept_nodes"] = "-".join(str(n) for n in self.kept_nodes)
        return d
