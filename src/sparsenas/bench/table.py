"""A benchmark result as the markdown table README and benchmarks/ show, and the equality check in words."""

from __future__ import annotations

from typing import Any

from .methods import METHODS


def check_words(c: dict[str, Any]) -> str:
    """One equality check (`run.equality_check`) as a sentence ending in its verdict.

    >>> check_words({"population": 3, "members": 1, "steps": 3, "dtype": "float64", "max_abs_diff": 0.0,
    ...              "max_abs_weight": 0.5, "max_abs_logit_diff": 1e-16, "equal": True})
    '(d) in a population of 3 vs (a), 1 sub-networks, 3 steps in float64: max |w_d - w_a| = 0.0e+00 (largest |w| 0.50), eval-mode logits within 1.0e-16: same weights'
    """
    verdict = "same weights" if c["equal"] else "DIFFERENT WEIGHTS"
    return (
        f"(d) in a population of {c['population']} vs (a), {c['members']} sub-networks, {c['steps']} steps in "
        f"{c['dtype']}: max |w_d - w_a| = {c['max_abs_diff']:.1e} (largest |w| {c['max_abs_weight']:.2f}), "
        f"eval-mode logits within {c['max_abs_logit_diff']:.1e}: {verdict}"
    )


def machine_words(result: dict[str, Any]) -> str:
    """Where the figures were measured, and whether other processes shared the CPUs.

    The load average counts runnable processes: at the start it is the others' alone, when the
    timing ended it includes the bench's own threads.

    >>> machine_words({"cpus": 2, "threads": 1, "load_average": [3.1, 4.2], "date": "2026-01-01 12:00 UTC"})
    'machine: 2 CPUs, torch threads 1; load average 3.1 at the start, 4.2 when the timing ended: other processes were running, so absolute rates are unstable (compare methods within this table); 2026-01-01 12:00 UTC'
    """
    start, end = result["load_average"]
    busy = max(start, end - result["threads"]) >= 0.5
    note = (
        ": other processes were running, so absolute rates are unstable (compare methods within this table)"
        if busy
        else ": no other process was busy"
    )
    return (
        f"machine: {result['cpus']} CPUs, torch threads {result['threads']}; load average {start:.1f} at the start, "
        f"{end:.1f} when the timing ended{note}; {result['date']}"
    )


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark table as markdown (what README and benchmarks/ show), from `run_bench`'s result;
    with the command that made it when `sparsenas bench` added it as "command".

    >>> print(to_markdown({"model": "mlp", "widths": None, "parameters": 1000, "device": "cpu", "torch": "2.13",
    ...                    "data": "random data", "steps": 3, "rounds": 1, "batch": 128, "mm_peak_gflops": 100.0, "mm_peak_size": 1024,
    ...                    "cpus": 2, "threads": 2, "load_average": [0.1, 2.0], "date": "2026-01-01 12:00 UTC",
    ...                    "rows": [], "equality": []}))
    model mlp (1,000 parameters); device cpu, torch 2.13; random data; 3 steps of batch 128; torch.mm peak 100 GFLOP/s (1024^2)
    <BLANKLINE>
    machine: 2 CPUs, torch threads 2; load average 0.1 at the start, 2.0 when the timing ended: no other process was busy; 2026-01-01 12:00 UTC
    <BLANKLINE>
    | node sparsity | K | method | subnet-epochs/s | vs (a) | useful GFLOP/s | of mm peak | peak MiB (added) |
    |---|---|---|---|---|---|---|---|
    <BLANKLINE>
    <BLANKLINE>
    """
    widths = f"widths {','.join(map(str, result['widths']))}; " if result["widths"] else ""
    turns = f", the methods taking turns {result['rounds']} times" if result["rounds"] > 1 else ""
    lines = [
        f"model {result['model']} ({widths}{result['parameters']:,} parameters); device {result['device']}, torch {result['torch']}; "
        f"{result['data']}; {result['steps']} steps of batch {result['batch']}{turns}; "
        f"torch.mm peak {result['mm_peak_gflops']:.0f} GFLOP/s ({result['mm_peak_size']}^2)",
        "",
        machine_words(result),
    ]
    if "command" in result:
        lines += ["", f"command: `{result['command']}`"]
    lines += [
        "",
        "| node sparsity | K | method | subnet-epochs/s | vs (a) | useful GFLOP/s | of mm peak | peak MiB (added) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['sparsity']:g} | {r['k']} | ({r['method']}) {METHODS[r['method']]} | {r['subnet_epochs_per_s']:.4g} | "
            f"{r['speedup_vs_a']:.1f}x | {r['useful_gflops']:.1f} | {r['of_mm_peak']:.0%} | {r['peak_mib']:.0f} (+{r['added_mib']:.0f}) |"
        )
    lines.append("")
    for c in result["equality"]:
        lines.append(f"- node sparsity {c['sparsity']:g}: {check_words(c)}")
    return "\n".join(lines) + "\n"
