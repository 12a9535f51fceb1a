"""The report's run-spec section: the options every run shares, then each finder's own.

The stored spec keeps every finder's options as flat keys (what a run directory is bound to), so a
run of dense and random alone stores random-search's `candidates` too. The report shows a finder's
options only for the finders the run used, and under that finder, as each finder declares them.
"""

from __future__ import annotations

import json
from typing import Any

from ..finders import FINDERS
from ..finders.base import declared_options
from .markup import Block


def spec_blocks(spec: dict[str, Any]) -> list[Block]:
    """The shared options as one table, and the options of the finders the run used as another.

    >>> blocks = spec_blocks({"finders": ["dense", "halving"], "epochs": 3, "candidates": 20, "imp_rate": 0.2})
    >>> blocks[1][2], [row[:2] for row in blocks[3][2]]
    ([['epochs', '3'], ['finders', '["dense", "halving"]']], [['halving', 'candidates']])
    """
    declared = declared_options()
    # a key no registered finder declares (a finder of the user's own, not imported) stays in view
    shared = {k: v for k, v in spec.items() if k not in declared}
    blocks: list[Block] = [
        (
            "p",
            "The options this directory was run with; finders, sparsities and seeds are the union over "
            "every 'sparsenas run' into it (the trials actually stored are counted per cell above).",
        ),
        ("table", ["key", "value"], [[k, json.dumps(v)] for k, v in sorted(shared.items())]),
    ]
    rows = [[f, k, json.dumps(spec[k])] for f in spec.get("finders", []) if f in FINDERS for k in FINDERS.get(f).options if k in spec]
    if rows:
        blocks.append(("p", "The options of the finders this run used (a name shared by finders is one option, set for all of them):"))
        blocks.append(("table", ["finder", "option", "value"], rows))
    return blocks
