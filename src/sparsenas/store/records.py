"""What one trial leaves behind: its identity, its sub-network, its learning curve, its costs.

These are plain frozen dataclasses so the store, the report and the tests share one shape. Derived
quantities that need other trials (epochs to reach a fraction of the dense parent's accuracy, paired
differences) are computed by the report, not stored, so the store holds only what the trial saw.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..measures import EpochRecord, SearchCost


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


# -- how a record is stored: JSON (NaN as null) and curve rows --------------------------------


def identity(record: dict[str, Any]) -> tuple:
    """What a trial is within its run, from its record or its canonical spec: (finder, sparsity, seed,
    control, check, slot, match). Two stored trials of one run with the same identity and different
    keys were keyed by two versions of the code (a run directory binds one spec).

    >>> identity({"finder": "snip", "sparsity": 0.9, "seed": 1, "check": "shuffle"})
    ('snip', 0.9, 1, 0, 'shuffle', -1, '')
    """
    spec = record.get("spec") or {}
    return (
        record["finder"],
        float(spec.get("sparsity", record.get("sparsity", 0.0))),
        int(record["seed"]),
        int(record.get("control", 0)),
        record.get("check", ""),
        int(record.get("slot", -1)),
        spec.get("match", record.get("match", "")),
    )


def _nan_to_none(x: Any) -> Any:
    # JSON has no NaN: a diverged trial's accuracy is stored as null, readable by any JSON tool
    return None if isinstance(x, float) and math.isnan(x) else x


def record_to_json(t: TrialRecord) -> str:
    d = {k: _nan_to_none(v) for k, v in asdict(t).items() if k != "curve"}
    return json.dumps(d, sort_keys=True, allow_nan=False)


_FLOAT_FIELDS = {f.name for f in fields(TrialRecord) if f.type in ("float", float)}


def record_from_json(text: str, curve: tuple[EpochRecord, ...]) -> TrialRecord:
    d = json.loads(text)
    for k in _FLOAT_FIELDS:
        if d.get(k) is None:
            d[k] = math.nan
    d["search"] = SearchCost(**d["search"])
    d["kept_nodes"] = tuple(d["kept_nodes"])
    d["kept_weights"] = tuple(d.get("kept_weights", ()))
    d["node_mask"] = tuple(tuple(m) for m in d["node_mask"])
    return TrialRecord(**d, curve=curve)


def epoch_from_row(row: tuple[Any, ...]) -> EpochRecord:
    # SQLite stores NaN in a REAL column as NULL; read it back as NaN
    epoch, *vals = row
    return EpochRecord(epoch, *(math.nan if v is None else v for v in vals))
