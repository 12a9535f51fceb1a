"""The trial plan: which (finder, sparsity, seed) trials a spec asks for, each named by content.

A trial's key is a hash of its canonical spec (open_lth's ``Desc.hashname``): the same trial is
never run twice, a re-run resumes, and a trial's key does not change when unrelated options do
(random-search's `candidates` is not part of a random control's key). New fields must default to a
value that leaves old hashes unchanged; tests pin a few keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..finders import get_finder
from .spec import RunSpec

HASH_VERSION = 1


@dataclass(frozen=True)
class PlannedTrial:
    finder: str
    sparsity: float
    seed: int
    key: str
    spec: dict[str, Any]  # the canonical trial spec that `key` hashes


def trial_spec(run: RunSpec, widths: tuple[int, ...], finder: str, sparsity: float, seed: int) -> dict[str, Any]:
    """The canonical description of one trial: what its numbers depend on, nothing else."""
    f = get_finder(finder)
    return {
        "v": HASH_VERSION,
        "dataset": run.dataset,
        "limit": run.limit,
        "model": run.model,
        "widths": list(widths),  # resolved, so a model whose default widths change gets new keys
        "train": dataclasses.asdict(run.train),
        "finder": finder,
        "options": {k: getattr(run, k) for k in f.options},
        "sparsity": 0.0 if f.sparsity_free else float(sparsity),
        "seed": seed,
    }


def trial_key(spec: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of `spec`.

    >>> trial_key({"a": 1, "b": [1, 2]}) == trial_key({"b": [1, 2], "a": 1})
    True
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def make_plan(run: RunSpec, widths: tuple[int, ...]) -> list[PlannedTrial]:
    """All trials of a run, seed-major (so each seed's parent is built once), dense first.

    >>> plan = make_plan(RunSpec(seeds=(0,), sparsities=(0.5, 0.9)), (256, 128))
    >>> [(t.finder, t.sparsity) for t in plan]
    [('dense', 0.0), ('random', 0.5), ('random-search', 0.5), ('random', 0.9), ('random-search', 0.9)]
    """
    out: list[PlannedTrial] = []
    for seed in run.seeds:
        cells: list[tuple[str, float]] = []
        for name in run.finders:
            if get_finder(name).sparsity_free:
                cells.append((name, 0.0))
        for s in run.sparsities:
            cells.extend((name, s) for name in run.finders if not get_finder(name).sparsity_free)
        for name, s in cells:
            ts = trial_spec(run, widths, name, s, seed)
            out.append(PlannedTrial(name, ts["sparsity"], seed, trial_key(ts), ts))
    return out


def finder_seed(seed: int, sparsity: float, finder: str) -> int:
    """The seed of a finder's own generator at (seed, sparsity): independent of what else runs.

    >>> finder_seed(0, 0.5, "random") == finder_seed(0, 0.5, "random")
    True
    """
    digest = hashlib.sha256(f"{seed}|{sparsity!r}|{finder}".encode()).hexdigest()
    return int(digest[:15], 16)
