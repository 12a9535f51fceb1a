"""A front finder's per-seed state, kept in the run so a resumed run reuses it.

A front finder (`Finder.front`, e.g. nsga2) searches once per seed and answers each of its slots
from that search. Where the search is not repeatable (a latency objective), a resumed run that
searched again would train the rest of a different front and size the random twins from it, so the
state is stored before the first slot trains and read back on resume. The runner names no finder:
it asks each front finder of the run to dump and load its own state (`Finder.dump_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..finders import get_finder
from ..finders.scoring import STORED_DENSE, StoredDense
from ..store import Store
from ..store.weights import unpack_weights
from .plan import PlannedTrial


def _note_name(plan: Sequence[PlannedTrial], seed: int, finder: str) -> str | None:
    # named by the finder's slot-0 trial of the seed, whose key holds everything its search depends on
    key = next((t.key for t in plan if t.seed == seed and t.slot == 0 and t.finder == finder), None)
    return None if key is None else f"front:{key}"


def stored_state(store: Store, plan: Sequence[PlannedTrial], seed: int, finders: Sequence[str]) -> dict[str, Any]:
    """A memo holding the seed's stored state of every front finder among `finders` that has one.

    >>> import tempfile; from sparsenas.protocol import RunSpec, make_plan
    >>> stored_state(Store(tempfile.mkdtemp()), make_plan(RunSpec(seeds=(0,)), (8,)), 0, ("dense",))
    {}
    """
    memo = {}
    for name in finders:
        finder = get_finder(name)
        note = _note_name(plan, seed, name) if finder.front else None
        text = store.note(note) if note else None
        if text:
            memo[name] = finder.load_state(text)
    return memo


def stored_dense(store: Store, plan: Sequence[PlannedTrial], seed: int) -> dict[str, StoredDense]:
    """A memo holding the seed's stored dense trial (`finders.scoring.StoredDense`) if it finished,
    so the seed's finders that rank a trained parent (magnitude, IMP, l1-norm, a finetune start)
    load it rather than train the parent again: 1/3 of such a run's work on a ResNet. The runner asks
    only where that is the same computation (a parent whose training draws nothing from torch's
    generators: the dense trial and the shared parent are seeded differently, `scoring.shared_work`),
    and it is offered only if it trained alone: the finders train the parent alone, and a dense trial
    trained in a population (every seed's together) equals that only to fp32 rounding, so a resumed
    or grown run would not give an uninterrupted one's bits.

    >>> import tempfile; from sparsenas.protocol import RunSpec, make_plan
    >>> stored_dense(Store(tempfile.mkdtemp()), make_plan(RunSpec(seeds=(0,)), (8,)), 0)
    {}
    """
    dense = next((t for t in plan if t.seed == seed and t.finder == "dense"), None)
    status = None if dense is None else store.status(dense.key)
    if dense is None or status is None or status[0] != "done" or status[2] != 1:
        return {}  # not in this run, not trained yet, diverged, or not trained alone: whoever needs it trains it
    blob = store.weights(dense.key)
    if blob is None:
        return {}
    return {STORED_DENSE: StoredDense(unpack_weights(blob), status[1])}


def keep_state(store: Store, plan: Sequence[PlannedTrial], seed: int, memo: dict[str, Any]) -> None:
    """Store the seed's state of every front finder in `memo`, before any of its slots trains
    (a note is written once: a stored state is never replaced)."""
    for name, state in memo.items():
        note = _note_name(plan, seed, name)
        if note and get_finder(name).front:
            store.put_note(note, get_finder(name).dump_state(state))
