"""What one trial leaves behind: its identity, its sub-network, its learning curve, its costs.

These are plain frozen dataclasses so the store, the report and the tests share one shape. Derived
quantities that need other trials (epochs to reach a fraction of the dense parent's accuracy, paired
differences) are computed by the report, not stored, so the store holds only what the trial saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..finders.cost import SearchCost
from ..train.records import EpochRecord


@dataclass(frozen=True)
class TrialRecord:
    """A trained sub-network: one (dataset, parent, finder, sparsity, seed).

    `status` is "done" or "diverged" (a non-finite loss stopped training; the curve holds the epochs
    completed before it). `kept_nodes[i]` is how many nodes hidden group i keeps (in the weight
    space: how many still lie on an input-output path); `node_mask[i]` is the list of kept node
    indices of group i in the parent (empty in the weight space).
    """

    key: str
    finder: str
    sparsity: float  # target sparsity in the run's space (0 for the dense parent)
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
    wall_seconds: float  # final training only: its population's wall time over its member count
    search: SearchCost = field(default_factory=SearchCost)
    device: str = ""  # where it was trained ("cpu", "cuda:0"); "" in stores that predate the field
    control: int = 0  # which of its seed's random controls (0 for other finders)
    population: int = 1  # how many sub-networks were trained together with it (itself included)
    space: str = "node"  # the mask space: "node" (compacted) or "weight" (masked at full size)
    check: str = ""  # the sanity check this trial is of its finder's mask ("shuffle", ...), or ""
    kept_weights: tuple[int, ...] = ()  # nonzero weights per prunable layer
    effective_sparsity: float = float("nan")  # fraction of prunable weights on no input-output path
    collapsed: bool = False  # a layer emptied, or no path left from input to output
    slot: int = -1  # hardware-aware runs: which member of the nsga2 front (or its random twin); -1 otherwise
    latency_ms: float = float("nan")  # hardware-aware runs: trained sub-network, batch 1, median ms
    curve: tuple[EpochRecord, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)  # the canonical trial spec that was hashed

    @property
    def arm(self) -> str:
        """What the report compares: the finder, or the finder under a check ("snip~shuffle")."""
        return f"{self.finder}~{self.check}" if self.check else self.finder

    def to_row(self) -> dict[str, Any]:
        """Flat dict for CSV export: curve and spec left out, search cost prefixed ``search_``."""
        d = asdict(self)
        d.pop("curve")
        d.pop("spec")
        d.pop("node_mask")
        for k, v in d.pop("search").items():
            d[f"search_{k}"] = v
        d["kept_nodes"] = "-".join(str(n) for n in self.kept_nodes)
        d["kept_weights"] = "-".join(str(n) for n in self.kept_weights)
        return d
