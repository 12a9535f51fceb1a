"""Measure Torch-Pruning's DependencyGraph on the models in models.py.

Usage (in a virtualenv of its own: torch==2.13.0, numpy, torch-pruning==1.6.1 --no-deps):
    python benchmarks/torch_pruning/measure.py run1.json
"""
import json
import platform
import random
import statistics
import sys
import time
import traceback
import warnings
from importlib.metadata import version as dist_version

import torch
import torch.nn as nn

torch.set_num_threads(1)

with warnings.catch_warnings(record=True) as w_import:
    warnings.simplefilter("always")
    import torch_pruning as tp
IMPORT_WARNINGS = [f"{w.category.__name__}: {w.message}" for w in w_import]

import models as M

N_TIMING = 5
N_ROUNDS = 3  # report median of the 3 per-round medians of 5
ATOL = 1e-5


def ranges(idxs):
    """[0,1,2,5,7,8] -> '0-2,5,7-8'"""
    idxs = sorted(set(int(i) for i in idxs))
    if not idxs:
        return ""
    out, lo, prev = [], idxs[0], idxs[0]
    for i in idxs[1:]:
        if i == prev + 1:
            prev = i
            continue
        out.append(f"{lo}-{prev}" if lo != prev else f"{lo}")
        lo = prev = i
    out.append(f"{lo}-{prev}" if lo != prev else f"{lo}")
    return ",".join(out)


def build(model, x, record_warnings=False):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        DG = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    return DG, [f"{w.category.__name__}: {w.message}" for w in ws]


def describe_group(DG, group, real_names):
    """Turn a tp Group into plain data."""
    items, out_set, in_map, pseudo = [], set(), {}, []
    for dep, idxs in group:
        mod = dep.target.module
        name = DG._module2name.get(mod)
        fn = dep.handler.__name__
        kind = "out" if DG.is_out_channel_pruning_fn(dep.handler) else "in"
        rec = {"target": name if name is not None else repr(mod),
               "module_type": type(mod).__name__,
               "handler": f"{type(dep.handler.__self__).__name__}.{fn}",
               "kind": kind, "n": len(idxs), "idxs": ranges(idxs)}
        items.append(rec)
        if name in real_names:
            is_conv_lin = isinstance(mod, (nn.Conv2d, nn.Linear))
            is_depthwise = isinstance(mod, nn.Conv2d) and mod.groups == mod.out_channels and mod.groups > 1
            if fn == "prune_in_channels" and is_conv_lin and not is_depthwise:
                in_map[name] = ranges(idxs) if name not in in_map else ranges(
                    [*expand(in_map[name]), *idxs])
            else:
                out_set.add(name)
        else:
            pseudo.append(rec["target"])
    return items, out_set, in_map, pseudo


def expand(r):
    out = []
    for part in r.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def zero_channels(model, names, idxs):
    """Zero output channels `idxs` of conv/linear rows (+bias) and BN weight/bias."""
    mods = dict(model.named_modules())
    idx = torch.tensor(idxs, dtype=torch.long)
    with torch.no_grad():
        for n in names:
            m = mods[n]
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                m.weight[idx] = 0
                if m.bias is not None:
                    m.bias[idx] = 0
            else:
                raise TypeError(f"don't know how to zero {n}: {type(m)}")


def check_group(name, root_name, n_ch, pattern, expected_out):
    """Prune half of root's channels with tp on one copy; zero the same channels
    (per the hand-written expectation) on another copy; compare outputs."""
    if pattern == "random_half":
        idxs = sorted(random.Random(1234 + n_ch).sample(range(n_ch), n_ch // 2))
    elif pattern == "even":
        idxs = list(range(0, n_ch, 2))
    elif pattern == "first_half":
        idxs = list(range(n_ch // 2))
    res = {"pattern": pattern, "idxs": ranges(idxs)}
    x = torch.randn(*M.INPUT_SHAPE, generator=torch.Generator().manual_seed(7))
    ref_model = M.make(name)
    with torch.no_grad():
        y_orig = ref_model(x)
    # tp prune
    m2 = M.make(name)
    try:
        DG2, _ = build(m2, x)
        root = dict(m2.named_modules())[root_name]
        pruner = DG2.get_pruner_of_module(root)
        g = DG2.get_pruning_group(root, pruner.prune_out_channels, idxs)
        res["check_pruning_group"] = bool(DG2.check_pruning_group(g))
        res["params_before"] = sum(p.numel() for p in m2.parameters())
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            g.prune()
        res["prune_warnings"] = [str(w.message) for w in ws]
        res["params_after"] = sum(p.numel() for p in m2.parameters())
        with torch.no_grad():
            y_pruned = m2.eval()(x)
        res["pruned_forward_ok"] = True
    except Exception as e:
        res["pruned_forward_ok"] = False
        res["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        res["ok"] = False
        return res
    # zero reference
    m3 = M.make(name)
    zero_channels(m3, sorted(expected_out), idxs)
    with torch.no_grad():
        y_zero = m3(x)
    diff = (y_pruned - y_zero).abs().max().item()
    res["max_abs_diff_vs_zeroed"] = diff
    res["max_abs_diff_vs_original"] = (y_pruned - y_orig).abs().max().item()
    res["ok"] = bool(y_pruned.shape == y_zero.shape and diff <= ATOL)
    return res


def high_level_pruner(name, x):
    """BasePruner (GroupMagnitudeImportance, ratio 0.5, fc ignored) end to end."""
    m = M.make(name)
    res = {}
    try:
        base = sum(p.numel() for p in m.parameters())
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            pr = tp.pruner.BasePruner(m, x, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                      pruning_ratio=0.5, ignored_layers=[m.fc])
            pr.step()
        res["warnings"] = sorted(set(str(w.message)[:200] for w in ws))
        with torch.no_grad():
            y = m.eval()(x)
        # correctness: zero, in an unpruned copy, the channels tp removed (from its
        # pruning history: [root_name, is_out_channel_pruning, idxs]), compare outputs
        hist = pr.DG.pruning_history()
        res["history"] = [[h[0], bool(h[1]), ranges(h[2])] for h in hist]
        ref = M.make(name)
        for root_name, is_out, idxs in hist:
            exp = next(e for e in M.EXPECTED[name] if root_name in e["out"])
            zero_channels(ref, sorted(exp["out"]), list(idxs))
        with torch.no_grad():
            y_zero = ref(x)
        res["max_abs_diff_vs_zeroed"] = (y - y_zero).abs().max().item()
        res["matches_zeroed"] = bool(res["max_abs_diff_vs_zeroed"] <= ATOL)
        res.update(ok=tuple(y.shape) == (x.shape[0], 10), params_before=base,
                   params_after=sum(p.numel() for p in m.parameters()),
                   shapes={n: list(mm.weight.shape) for n, mm in m.named_modules()
                           if isinstance(mm, (nn.Conv2d, nn.Linear))})
    except Exception as e:
        res.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    return res


def main():
    report = {
        "tool": "torch-pruning",
        "dist_version": dist_version("torch-pruning"),
        "module___version__": tp.__version__,
        "torch": torch.__version__, "numpy": dist_version("numpy"),
        "python": platform.python_version(), "num_threads": torch.get_num_threads(),
        "input_shape": list(M.INPUT_SHAPE),
        "import_warnings": IMPORT_WARNINGS,
        "models": {},
    }
    for name in M.MODELS:
        print(f"== {name}", flush=True)
        x = torch.randn(*M.INPUT_SHAPE)
        model = M.make(name)
        real_names = {n for n, _ in model.named_modules() if n}
        entry = {}
        # timing: 1 untimed warm-up (also records warnings), then N_TIMING timed builds
        try:
            t0 = time.perf_counter()
            DG, build_warnings = build(model, x)
            entry["first_build_ms"] = (time.perf_counter() - t0) * 1e3
        except Exception:
            entry["build_error"] = traceback.format_exc()
            report["models"][name] = entry
            continue
        entry["build_warnings"] = build_warnings
        rounds = []
        for _ in range(N_ROUNDS):
            times = []
            for _ in range(N_TIMING):
                t0 = time.perf_counter()
                DG, _ = build(model, x)
                times.append((time.perf_counter() - t0) * 1e3)
            rounds.append(times)
        entry["build_ms_runs"] = rounds
        entry["build_ms_round_medians"] = [statistics.median(t) for t in rounds]
        entry["build_ms_median"] = statistics.median(entry["build_ms_round_medians"])
        # the forward pass alone (grad enabled), which build_dependency includes
        ft = []
        for _ in range(N_TIMING):
            t0 = time.perf_counter()
            model(x)
            ft.append((time.perf_counter() - t0) * 1e3)
        entry["forward_only_ms_median"] = statistics.median(ft)
        # what build_dependency does to a model in train mode
        mt = M.make(name).train()
        build(mt, x)
        entry["model_training_flag_after_build"] = mt.training
        gtimes = []
        for _ in range(N_TIMING):
            t0 = time.perf_counter()
            groups = list(DG.get_all_groups(ignored_layers=[model.fc],
                                            root_module_types=[nn.Conv2d, nn.Linear]))
            gtimes.append((time.perf_counter() - t0) * 1e3)
        entry["get_all_groups_ms_median"] = statistics.median(gtimes)

        # probe: single-channel group from the first conv, to see the in-index mapping
        first_conv = next(n for n, mm in model.named_modules() if isinstance(mm, nn.Conv2d))
        fc_mod = dict(model.named_modules())[first_conv]
        pg = DG.get_pruning_group(fc_mod, DG.get_pruner_of_module(fc_mod).prune_out_channels, [3])
        entry["probe_channel3_of_" + first_conv] = describe_group(DG, pg, real_names)[2]
        expected = [dict(e) for e in M.EXPECTED[name]]
        entry["groups"] = []
        for group in groups:
            root_mod = group[0].dep.target.module
            root_name = DG._module2name[root_mod]
            n_ch = len(group[0].idxs)
            items, out_set, in_map, pseudo = describe_group(DG, group, real_names)
            exp = next((e for e in expected if root_name in e["out"]), None)
            g = {"root": root_name, "channels": n_ch, "n_items": len(items),
                 "out_layers": sorted(out_set), "in_layers": in_map,
                 "bn_layers": sorted(n for n in out_set
                                     if isinstance(dict(model.named_modules())[n], nn.BatchNorm2d)),
                 "pseudo_ops": pseudo, "items": items}
            if exp is None:
                g["matches_expected"] = False
                g["expected"] = None
            else:
                g["matches_expected"] = (out_set == exp["out"] and in_map == exp["in"])
                g["expected"] = {"out": sorted(exp["out"]), "in": exp["in"]}
                exp["_found"] = True
            zero_set = exp["out"] if exp is not None else out_set
            g["checks"] = [check_group(name, root_name, n_ch, p, zero_set)
                           for p in ("random_half", "even", "first_half")]
            g["correct"] = all(c["ok"] for c in g["checks"])
            entry["groups"].append(g)
            print(f"  root={root_name:20s} ch={n_ch:3d} out={sorted(out_set)} in={in_map} "
                  f"match={g['matches_expected']} checks={[c['ok'] for c in g['checks']]}", flush=True)
        entry["missing_expected_groups"] = [
            {"out": sorted(e["out"]), "in": e["in"]} for e in expected if not e.get("_found")]
        entry["n_groups"] = len(entry["groups"])
        entry["all_groups_match_expected"] = (all(g["matches_expected"] for g in entry["groups"])
                                              and not entry["missing_expected_groups"])
        entry["all_checks_ok"] = all(g["correct"] for g in entry["groups"])
        entry["high_level_pruner"] = high_level_pruner(name, x)
        print(f"  build median {entry['build_ms_median']:.2f} ms; high-level pruner ok="
              f"{entry['high_level_pruner'].get('ok')} {entry['high_level_pruner'].get('error', '')}",
              flush=True)
        report["models"][name] = entry
    with open(sys.argv[1] if len(sys.argv) > 1 else "report.json", "w") as f:
        json.dump(report, f, indent=1)
    print("wrote", sys.argv[1] if len(sys.argv) > 1 else "report.json")


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    main()
