"""The trial plan: which (finder, sparsity, seed) trials a spec asks for, each named by content.

A trial's key is a hash of its canonical spec (open_lth's ``Desc.hashname``): the same trial is
never run twice, a re-run resumes, and a trial's key does not change when unrelated options do
(random-search's `candidates` is not part of a random control's key). New fields must default to a
value that leaves old hashes unchanged; tests pin a few keys.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..finders import get_finder
from ..train.spec import V1_TRAIN_FIELDS, canonical_train  # noqa: F401 (re-exported: the keys' rule)
from .spec import RunSpec

HASH_VERSION = 1


@dataclass(frozen=True)
class PlannedTrial:
    finder: str
    sparsity: float
    seed: int
    key: str
    spec: dict[str, Any]  # the canonical trial spec that `key` hashes
    control: int = 0  # which of the seed's random controls (0 for every other finder)
    # the arm's variant of its finder's trial, or "": a sanity check of the finder's mask ("shuffle",
    # "reinit", "invert") or where its sub-network starts ("scratch-e", "scratch-b", "finetune"); both
    # are paired by seed with the finder's own trial, and the report tells them apart by name
    check: str = ""
    slot: int = -1  # a front finder's member (nsga2), or the random net of that member's size; -1 otherwise

    @property
    def arm(self) -> str:
        """What the report compares: the finder, or the finder under a check or a start ("snip~shuffle")."""
        return f"{self.finder}~{self.check}" if self.check else self.finder


def trial_spec(
    run: RunSpec,
    widths: tuple[int, ...],
    finder: str,
    sparsity: float,
    seed: int,
    control: int = 0,
    check: str = "",
    slot: int = -1,
    match: str = "",
    prunable: int | None = None,
    engine: str = "",
    start: str = "",
    stochastic: bool = False,
    facts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The canonical description of one trial: what its numbers depend on, nothing else.

    Control 0 has no `control` key, and node-space trials no `space` key, so the keys of runs made
    before those existed still hold; `allocation` enters only where it is not per-layer and the
    finder ranks scores (the random control is per-layer in both allocations; dense has no mask);
    `topk` only where that global ranking is in the weight space, the finder counts it its own way
    (`Finder.global_topk`) and that count differs from the old rounding for the parent's `prunable`
    weights at this sparsity (`Finder.topk_changes_mask`): only there did the masks change. `facts`
    are the finder's `key_facts` about the parent, present only where a changed rule moved its masks.

    >>> ts = trial_spec(RunSpec(), (256, 128), "random", 0.8, seed=3)
    >>> ts["finder"], ts["sparsity"], ts["seed"], ts["options"], "control" in ts
    ('random', 0.8, 3, {}, False)
    >>> trial_spec(RunSpec(), (256, 128), "random", 0.8, seed=3, control=2)["control"]
    2
    """
    f = get_finder(finder)
    extra: dict[str, Any] = {"control": control} if control else {}
    if run.space != "node" and not f.sparsity_free:
        extra["space"] = run.space
    if run.allocation != "per-layer" and f.scored:
        extra["allocation"] = run.allocation
        if run.space == "weight" and f.global_topk != "round":
            if prunable is None:
                raise ValueError(f"the key of a global weight-space {finder} trial needs the parent's prunable weight count")
            if f.topk_changes_mask(prunable, sparsity, run.options_for(finder)):  # its masks changed: new keys
                extra["topk"] = f.global_topk
    extra |= facts or {}
    decided_by = f.decided_by_for(run.options_for(finder))
    if decided_by:
        extra["decided_by"] = decided_by
    if check:
        extra["check"] = check
    if start:
        extra["start"] = start
        if start == "finetune":  # its budget decides its numbers
            epochs, lr = run.finetune_budget()
            extra["finetune"] = {"epochs": epochs, "lr": lr}
        elif start == "scratch-b":  # its epochs follow from the mask's FLOPs under this rule: a new rule, new keys
            extra["scratch_b"] = {"flops": "forward-v1", "cap": float(run.scratch_b_cap)}
    options = run.options_for(finder).as_dict()  # in declaration order: the stored spec reads as before
    if slot >= 0:
        extra["slot"] = slot
    if match:  # a random net sized like front finder `match`'s member: it depends on that search
        extra["match"] = match
        options = run.options_for(match).as_dict()
    if stochastic and (f.shares_trained_work or start == "finetune"):  # finetune starts from the shared trained parent
        # a dropout parent: the shared trained parent was once seeded by whichever trial asked first
        # (`finders.scoring.shared_work`): another key, so no run mixes the two
        extra["rng"] = "shared-work"
    if engine == "graph":
        # populations of BatchNorm nets run train.stacked_graph, which rounds unlike the vmapped path
        # those nets' hand-declared parents trained with before it existed: another key, not mixed results
        extra["engine"] = "stacked-graph"
    return extra | {
        "v": HASH_VERSION,
        "dataset": run.dataset,
        "limit": run.limit,
        "model": run.model,
        "widths": list(widths),  # resolved, so a model whose default widths change gets new keys
        "train": canonical_train(run.train),
        "finder": finder,
        "options": options,
        "sparsity": 0.0 if f.sparsity_free or slot >= 0 else float(sparsity),
        "seed": seed,
    }


def trial_key(spec: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of `spec`.

    >>> trial_key({"a": 1, "b": [1, 2]}) == trial_key({"b": [1, 2], "a": 1})
    True
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def make_plan(
    run: RunSpec,
    widths: tuple[int, ...],
    prunable: int | None = None,
    engine: str = "",
    stochastic: bool = False,
    facts: dict[str, dict[str, str]] | None = None,
) -> list[PlannedTrial]:
    """All trials of a run, seed-major (so each seed's parent is built once), dense first.

    A control finder (`random`) is planned `run.controls` times per sparsity and seed. `facts` maps a
    finder to its `Finder.key_facts` about the parent.

    >>> plan = make_plan(RunSpec(seeds=(0,), sparsities=(0.5, 0.9)), (256, 128))
    >>> [(t.finder, t.sparsity) for t in plan]
    [('dense', 0.0), ('random', 0.5), ('random-search', 0.5), ('random', 0.9), ('random-search', 0.9)]
    >>> [(t.finder, t.control) for t in make_plan(RunSpec(seeds=(0,), sparsities=(0.5,), controls=2), (8,))]
    [('dense', 0), ('random', 0), ('random', 1), ('random-search', 0)]
    """
    out: list[PlannedTrial] = []
    facts_of = (facts or {}).get  # a finder's key facts, or None
    for seed in run.seeds:
        cells: list[tuple[str, float]] = []
        for name in run.finders:
            if get_finder(name).sparsity_free:
                cells.append((name, 0.0))
        for s in run.sparsities:
            cells.extend((name, s) for name in run.finders if not (get_finder(name).sparsity_free or get_finder(name).front))
        for name, s in cells:
            for c in range(run.controls if get_finder(name).control else 1):
                ts = trial_spec(
                    run, widths, name, s, seed, c, prunable=prunable, engine=engine, stochastic=stochastic, facts=facts_of(name)
                )
                out.append(PlannedTrial(name, ts["sparsity"], seed, trial_key(ts), ts, c))
            for check in checks_of(run, name):
                ts = trial_spec(
                    run, widths, name, s, seed, check=check, prunable=prunable, engine=engine, stochastic=stochastic, facts=facts_of(name)
                )
                out.append(PlannedTrial(name, ts["sparsity"], seed, trial_key(ts), ts, check=check))
            for start in starts_of(run, name):
                ts = trial_spec(
                    run, widths, name, s, seed, prunable=prunable, engine=engine, stochastic=stochastic, start=start, facts=facts_of(name)
                )
                out.append(PlannedTrial(name, ts["sparsity"], seed, trial_key(ts), ts, check=start))
        for name in run.finders:
            if not get_finder(name).front:
                continue
            for slot in range(get_finder(name).slots(run.options_for(name))):  # each member, and a random net of its size
                ts = trial_spec(run, widths, name, 0.0, seed, slot=slot, engine=engine)
                out.append(PlannedTrial(name, 0.0, seed, trial_key(ts), ts, slot=slot))
                ts = trial_spec(run, widths, "random", 0.0, seed, slot=slot, match=name, engine=engine)
                out.append(PlannedTrial("random", 0.0, seed, trial_key(ts), ts, slot=slot))
    return out


def starts_of(run: RunSpec, finder: str) -> list[str]:
    """The run's other starts (`--starts`) that apply to `finder`: none for dense (it is the parent),
    the random control (it is what every start is compared with) and front finders.

    >>> starts_of(RunSpec(starts=("finetune",)), "snip"), starts_of(RunSpec(starts=("finetune",)), "random")
    (['finetune'], [])
    """
    return list(run.starts) if get_finder(finder).searches() else []


def checks_of(run: RunSpec, finder: str) -> list[str]:
    """The run's sanity checks that apply to `finder`: none for dense and the random control, and
    `invert` only for finders that rank scores.

    >>> checks_of(RunSpec(checks=("shuffle", "invert")), "random-search"), checks_of(RunSpec(checks=("invert",)), "random")
    (['shuffle'], [])
    """
    f = get_finder(finder)
    if not f.searches():
        return []
    return [c for c in run.checks if c != "invert" or f.scored]


def finder_seed(seed: int, sparsity: float, finder: str, control: int = 0) -> int:
    """The seed of a finder's own generator at (seed, sparsity[, control]): independent of what else runs.

    >>> finder_seed(0, 0.5, "random") == finder_seed(0, 0.5, "random")
    True
    >>> finder_seed(0, 0.5, "random", control=1) != finder_seed(0, 0.5, "random")
    True
    """
    name = f"{seed}|{sparsity!r}|{finder}" + (f"|{control}" if control else "")
    digest = hashlib.sha256(name.encode()).hexdigest()
    return int(digest[:15], 16)
