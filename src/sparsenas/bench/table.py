"""A benchmark result as the markdown table README and benchmarks/ show, and the equality check in words."""

from __future__ import annotations

from typing import Any

from .methods import METHODS


def check_words(c: dict[str, Any]) -> str:
    """One equality check (`run.equality_check`) as a sentence ending in its verdict.

    >>> check_words({"population": 3, "members": 1, "steps": 3, "dtype": "float64", "max_abs_diff": 0.0,
    ...              "max_abs_weight": 0.5, "equal": True})
    '(d) in a population of 3 vs (a), 1 sub-networks, 3 steps in float64: max |w_d - w_a| = 0.0e+00 (largest |w| 0.50): same weights'
    """
    verdict = "same weights" if c["equal"] else "DIFFERENT WEIGHTS"
    return (
        f"(d) in a population of {c['population']} vs (a), {c['members']} sub-networks, {c['steps']} steps in "
        f"{c['dtype']}: max |w_d - w_a| = {c['max_abs_diff']:.1e} (largest |w| {c['max_abs_weight']:.2f}): {verdict}"
    )


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark table as markdown (what README and benchmarks/ show), from `run_bench`'s result.

    >>> print(to_markdown({"device": "cpu", "torch": "2.13", "data": "random data", "steps": 3, "batch": 128,
    ...                    "mm_peak_gflops": 100.0, "mm_peak_size": 1024, "rows": [], "equality": []}))
    device cpu, torch 2.13; random data; 3 steps of batch 128; torch.mm peak 100 GFLOP/s (1024^2)
    <BLANKLINE>
    | node sparsity | K | method | subnet-epochs/s | vs (a) | useful GFLOP/s | of mm peak | peak MiB (added) |
    |---|---|---|---|---|---|---|---|
    <BLANKLINE>
    <BLANKLINE>
    """
    lines = [
        f"device {result['device']}, torch {result['torch']}; {result['data']}; {result['steps']} steps of batch "
        f"{result['batch']}; torch.mm peak {result['mm_peak_gflops']:.0f} GFLOP/s ({result['mm_peak_size']}^2)",
        "",
        "| node sparsity | K | method | subnet-epochs/s | vs (a) | useful GFLOP/s | of mm peak | peak MiB (added) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['sparsity']:g} | {r['k']} | ({r['method']}) {METHODS[r['method']]} | {r['subnet_epochs_per_s']:.3f} | "
            f"{r['speedup_vs_a']:.1f}x | {r['useful_gflops']:.1f} | {r['of_mm_peak']:.0%} | {r['peak_mib']:.0f} (+{r['added_mib']:.0f}) |"
        )
    lines.append("")
    for c in result["equality"]:
        lines.append(f"- node sparsity {c['sparsity']:g}: {check_words(c)}")
    return "\n".join(lines) + "\n"
