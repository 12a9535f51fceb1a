"""Binding a run directory to its spec: resume it, grow it, or refuse another spec.

A run directory holds the trials of one experiment. It may grow along finders, sparsities and seeds
(the stored spec becomes the union and finished trials are reused); anything that changes how a
trial is trained, or the data itself, is another experiment and is refused with a message that
names what differs, so nothing already stored is mixed with incomparable trials.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..errors import SparsenasError
from ..finders import FINDERS, get_finder
from ..store import Store
from ..store.records import identity
from ..train import TrainSpec
from .plan import PlannedTrial
from .spec import SCRATCH_B_CAP, RunSpec

GROWABLE = ("finders", "sparsities", "seeds", "controls", "checks", "starts")  # a run may grow along these; trials are reused


def _union(old: Any, new: Any) -> Any:
    if isinstance(old, int):  # controls: the run holds as many as it was ever asked for
        return max(old, new)
    merged = list(old) + [x for x in new if x not in old]
    return merged if all(isinstance(x, str) for x in merged) else sorted(merged)


def _options_by_finder(finders: list[str]) -> dict[str, set[str]]:
    # option name -> the finders among `finders` that read it
    out: dict[str, set[str]] = {}
    for f in finders:
        for k in get_finder(f).options:
            out.setdefault(k, set()).add(f)
    return out


def _differences(full: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a stored spec and a new one, in words, ignoring what may differ."""
    options = _options_by_finder(full["finders"])
    finder_options = _options_by_finder(FINDERS.names())  # every option any finder reads
    shared = set(full["finders"]) & set(new["finders"])
    out = []
    for k in sorted(new):
        if k in (*GROWABLE, "data") or full.get(k) == new[k]:
            continue
        if k.startswith("finetune_") and k not in full:
            continue  # this directory never fine-tuned: its trials do not depend on the budget
        if k == "scratch_b_cap":
            continue  # compared below, where both runs train scratch-b
        if k == "train":
            # a field at its default is left out of a spec (`canonical_train`): compare it at its default
            default = dataclasses.asdict(TrainSpec())
            old, now = default | full["train"], default | new["train"]
            out += [f"{t} ({old[t]} -> {now[t]})" for t in sorted(now) if old[t] != now[t]]
        elif k in finder_options:
            # a finder option matters only if a finder that reads it is in both runs
            if options.get(k, set()) & shared:
                out.append(f"{k} ({full.get(k)} -> {new[k]})")
        else:
            out.append(f"{k} ({full.get(k)} -> {new[k]})")
    if all("scratch-b" in d.get("starts", []) for d in (full, new)):
        # the cap is in a spec only away from its default (`RunSpec.identity`)
        old_cap, new_cap = (float(d.get("scratch_b_cap", SCRATCH_B_CAP)) for d in (full, new))
        if old_cap != new_cap:
            out.append(f"scratch_b_cap ({old_cap:g} -> {new_cap:g})")
    return out


def bind_run_dir(store: Store, spec: RunSpec, data_fingerprint: str, widths: tuple[int, ...], rebuildable: bool = True) -> None:
    """Bind `store`'s run directory to `spec` (with its resolved parent `widths`), or refuse.

    The stored spec's `widths` are the parent's group sizes. Where the model cannot be rebuilt from
    them (`rebuildable` False: a ResNet's one width option makes twelve coupled groups), the option
    itself is kept too, as `parent_widths` (null: the model's default); chains store nothing more, so
    their stored specs stay as they were.

    >>> import tempfile; s = Store(tempfile.mkdtemp())
    >>> bind_run_dir(s, RunSpec(seeds=(0,)), "abc", (256, 128))
    >>> bind_run_dir(s, RunSpec(seeds=(1,)), "abc", (256, 128))
    >>> s.spec()["seeds"]
    [0, 1]
    """
    new = spec.identity() | {"data": data_fingerprint, "widths": list(widths)}
    if not rebuildable:
        new["parent_widths"] = list(spec.widths) if spec.widths is not None else None
    stored = store.spec()
    if stored is None:
        store.set_spec(new)
        return
    # a store written before a field existed is compared at that field's default
    defaults = RunSpec().identity()
    full = {**defaults, "data": data_fingerprint, **stored}
    full["train"] = {**defaults["train"], **stored.get("train", {})}
    if "parent_widths" in new and "parent_widths" not in stored:
        # stored before the option was kept: equal group sizes of the same model mean the same parent
        full["parent_widths"] = new["parent_widths"]
    diff = _differences(full, new)
    if diff:
        raise SparsenasError(
            f"'{store.run_dir}' holds a run of a different spec (differs in: {'; '.join(diff)}); "
            "pass a new --out directory, or the same options to resume it"
        )
    if full["data"] != data_fingerprint:
        raise SparsenasError(
            f"'{store.run_dir}' holds a run on other data than this {spec.dataset} (another --data-dir or "
            "changed files?); pass a new --out directory"
        )
    # `starts` is left out of a spec that has none (protocol.spec.LATER_FIELDS)
    merged = full | {k: _union(full.get(k, []), new.get(k, [])) for k in GROWABLE if k in full or k in new}
    for k in ("finetune_epochs", "finetune_lr"):
        if k in new and k not in full:
            merged[k] = new[k]  # the first run of this directory to fine-tune sets its budget
    if "scratch_b_cap" in new and "scratch-b" not in full.get("starts", []):
        merged["scratch_b_cap"] = new["scratch_b_cap"]  # likewise the first to train scratch-b, its cap
    # an option of a finder this directory has not run yet takes the new run's value
    for k, users in _options_by_finder(new["finders"]).items():
        if not users & set(full["finders"]):
            merged[k] = new[k]
    if merged != stored:
        store.set_spec(merged)


def supersede_older_versions(store: Store, plan: Sequence[PlannedTrial]) -> int:
    """Mark stored trials that a planned trial replaces: the same trial (finder, sparsity, seed, arm)
    under another key, which only a change of the code's keying makes (a run directory binds one
    spec; a finder whose masks change gets a new key, e.g. `topk: floor`). Their rows stay; the
    report and `load_run` read the current version only. Returns how many were marked.

    >>> import tempfile; from sparsenas.protocol import make_plan
    >>> supersede_older_versions(Store(tempfile.mkdtemp()), make_plan(RunSpec(seeds=(0,)), (256, 128)))
    0
    """
    planned = {identity({**t.spec, "control": t.control, "check": t.check, "slot": t.slot}): t.key for t in plan}
    replaced = {key: planned[ident] for key, ident in store.identities().items() if ident in planned and planned[ident] != key}
    store.supersede(replaced)
    return len(replaced)
