"""Run sparsenas discovery on the same models and compare with EXPECTED; time it."""
import json
import statistics
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import torch
from models import EXPECTED, make

from sparsenas.errors import SparsenasError
from sparsenas.models import discover_node_groups

torch.set_num_threads(1)
out = {}
for name in EXPECTED:
    m = make(name)
    try:
        groups = discover_node_groups(m, (3, 32, 32))
    except SparsenasError as e:
        out[name] = {"refused": str(e)}; print(name, "REFUSED:", str(e)[:160]); continue
    mods = dict(m.named_modules())
    got = []
    for g in groups:
        outs = {s.tensor.rsplit(".", 1)[0] for s in g.producers}
        ins = {}
        for s in g.consumers:
            lo = s.offset; hi = s.offset + g.size * s.block - 1
            ins[s.tensor.rsplit(".", 1)[0]] = f"{lo}-{hi}"
        got.append({"out": outs, "in": ins})
    exp = EXPECTED[name]
    key = lambda d: (sorted(d["out"]), sorted(d["in"].items()))
    match = sorted(map(key, got)) == sorted(map(key, exp))
    ts = []
    for _ in range(3):
        r = []
        for _ in range(5):
            t = time.perf_counter(); discover_node_groups(m, (3, 32, 32)); r.append(time.perf_counter() - t)
        ts.append(statistics.median(r) * 1000)
    out[name] = {"groups": len(got), "sizes": [g.size for g in groups], "match": match, "ms": ts}
    print(name, len(got), [g.size for g in groups], "match" if match else f"DIFF got={got}", [round(t, 2) for t in ts])
json.dump(out, open(sys.argv[1] if len(sys.argv) > 1 else "ours.json", "w"), default=str, indent=1)
