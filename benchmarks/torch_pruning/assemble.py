"""Combine three measure.py runs (run1.json..run3.json) into report.json with per-run timings."""
import json
import statistics

runs = [json.load(open(f'run{i}.json')) for i in (1, 2, 3)]
rep = runs[2]
rep["note_timing"] = ("build_ms_median per run = median of 3 round-medians, each round = 5 timed "
    "build_dependency calls (after 1 untimed warm-up), torch.set_num_threads(1), input (2,3,32,32). "
    "Shared 2-core machine; 3 separate invocations recorded in timing_across_runs.")
for n, e in rep["models"].items():
    per_run = [r["models"][n]["build_ms_median"] for r in runs]
    e["timing_across_runs"] = {
        "build_ms_median_per_run": per_run,
        "build_ms_median_of_runs": statistics.median(per_run),
        "forward_only_ms_median_per_run": [r["models"][n]["forward_only_ms_median"] for r in runs],
        "get_all_groups_ms_median_per_run": [r["models"][n]["get_all_groups_ms_median"] for r in runs],
    }
rep["package"] = {
    "name": "torch-pruning", "version_installed": "1.6.1 (latest on PyPI at time of run; module __version__ string says 1.6.0)",
    "wheel": "torch_pruning-1.6.1-py3-none-any.whl, 70181 bytes, sha256 5cb619e55bb4d1b7ce71be9782865ad4977bfe99c148fdce9c3822eab08a9c08",
    "license": "MIT (classifier 'License :: OSI Approved :: MIT License'; LICENSE file 'MIT License, Copyright (c) 2019 Gongfan Fang'; pip show License field empty)",
    "requires_dist": ["torch>=2.0", "numpy"], "requires_python": ">=3.7",
    "py_files": 27, "py_lines_total": 5642, "py_lines_nonblank": 4810,
    "py_lines_by_part": {"dependency/": 1468, "pruner/": 2746, "utils/": 945, "top-level (ops.py, _helpers.py, serialization.py, __init__.py)": 483},
    "installed_bytes_pkg_without_pycache": 265717, "installed_bytes_pkg_with_pycache": 606486, "installed_bytes_dist_info": 47158,
    "pip_check": "No broken requirements found.",
}
rep["probes"] = {
    "import_with_-W_error": "ok, no warnings (torch 2.13.0+cpu)",
    "build_under_torch.no_grad": "AssertionError: Dependency graph relies on autograd for tracing. Please check and disable the torch.no_grad() in your code.",
    "build_dependency_sets_model_eval": "a model passed in train() mode has training=False after build_dependency (graph.py _trace calls model.eval() and does not restore)",
    "grouped_conv_first_half_conv1": "group.prune() raised RuntimeError (INDICES element is out of DATA bounds, id=8 axis_dim=4) in ConvPruner.prune_in_channels on gconv after conv1/bn1 were already pruned: model left partially pruned (conv1 8 out, gconv weight still (32,4,3,3)); check_pruning_group returned True beforehand",
    "grouped_conv_random_half_conv1": "group.prune() succeeded, forward runs, output differs from zeroed reference by 0.094 (silently wrong weights: ConvPruner.prune_in_channels keeps keep_idxs[:len//groups] for groups>1)",
    "grouped_conv_first_half_gconv_out": "group.prune() succeeded, forward runs, output differs from zeroed reference by 0.0998 (out channels move between conv groups)",
    "high_level_BasePruner_grouped": "BasePruner(GroupMagnitudeImportance(p=2), pruning_ratio=0.5) prunes gconv in balanced per-group blocks; result equals zeroed reference (diff 7.5e-09)",
    "torch_version_check_in_code": "index_mapping.py: torch.__version__ >= '1.8' (string comparison; true for '2.13.0+cpu')",
}
json.dump(rep, open('report.json', 'w'), indent=1)
for n, e in rep["models"].items():
    print(f"| {n} | {e['n_groups']} | {sorted(g['channels'] for g in e['groups'])} | {sorted(g['n_items'] for g in e['groups'])} | "
          f"{' / '.join(f'{t:.2f}' for t in e['timing_across_runs']['build_ms_median_per_run'])} | "
          f"{e['timing_across_runs']['build_ms_median_of_runs']:.2f} | {e['all_groups_match_expected']} | "
          f"{sum(c['ok'] for g in e['groups'] for c in g['checks'])}/{sum(len(g['checks']) for g in e['groups'])} | "
          f"{e['high_level_pruner']['matches_zeroed']} |")
