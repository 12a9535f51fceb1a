"""The report's section on where a sub-network starts (`--starts`; Liu et al., ICLR 2019,
"Rethinking the Value of Network Pruning"): each finder's mask trained from θ0, from a fresh init for
the same epochs (Scratch-E) or the dense parent's training FLOPs (Scratch-B), and fine-tuned from the
trained parent, side by side with each arm's training budget, and the paper's question answered
per finder and sparsity: does fine-tuning beat training from scratch at the same budget?
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..store.records import TrialRecord
from .compare import Comparison, _compare
from .markup import Block
from .tables import CONTROL, DENSE, STARTS, Cell, fmt, fmt_ci, fmt_mean_sd, fmt_p, mean_or_nan

WORDS = {
    "": "θ0 (the mask's own init; the controls' start)",
    "scratch-e": "scratch-e (a fresh init, the same epochs)",
    "scratch-b": "scratch-b (a fresh init, the dense parent's training FLOPs{cap})",
    "finetune": "finetune (the trained parent's weights, fine-tuned)",
}


def _cap(trials: Sequence[TrialRecord]) -> str:
    """How the run capped scratch-b's epochs, in words, read off its trials' specs ("" for no cap or
    no scratch-b trials; every scratch-b key holds its cap, 2 before it was an option).

    >>> _cap([])
    ''
    """
    caps = {float(t.spec.get("scratch_b", {}).get("cap", 2.0)) for t in trials if t.check == "scratch-b"}
    words = sorted(f"at most {c:g}x the epochs" if c else "no cap" for c in caps)
    return ", " + " or ".join(words) if caps and caps != {0.0} else ""


def _by_seed(t: TrialRecord) -> tuple[int, float]:
    return (t.seed, t.sparsity)


def compare_starts(trials: Sequence[TrialRecord], alpha: float = 0.05) -> list[Comparison]:
    """Each start arm against its finder's θ0 trial (`control` is the finder), then, where both ran,
    `finetune` against `scratch-b` (`control` "<finder>~scratch-b"): final test accuracy, paired by
    seed, Holm-adjusted across the finder's sparsities per pair of arms.

    >>> compare_starts([])
    []
    """
    out: list[Comparison] = []
    arms = sorted({t.arm for t in trials if t.check in STARTS}, key=lambda a: (a.split("~")[0], STARTS.index(a.split("~")[1])))
    for arm in arms:
        base = arm.split("~")[0]
        out += _compare([t for t in trials if t.arm in (base, arm)], base, _by_seed, ["final_test_acc"], alpha)
    for base in sorted({a.split("~")[0] for a in arms}):
        ft, sb = f"{base}~finetune", f"{base}~scratch-b"
        if ft in arms and sb in arms:
            out += _compare([t for t in trials if t.arm in (ft, sb)], sb, _by_seed, ["final_test_acc"], alpha)
    return out


def _epochs(ts: Sequence[TrialRecord]) -> float:
    # epochs trained by the finished trials (a curve holds epoch 0 and each trained epoch)
    return mean_or_nan(len(t.curve) - 1 for t in ts if t.status == "done")


def _train_flops(ts: Sequence[TrialRecord], dense: dict[int, TrialRecord]) -> float:
    """Training FLOPs relative to the seed's dense parent's (forward FLOPs x epochs; the same data
    per epoch): a finetune trial adds the parent's own training it starts from."""
    ratios = []
    for t in ts:
        d = dense.get(t.seed)
        if t.status != "done" or d is None or d.status != "done" or not d.flops:
            continue
        parent_epochs = len(d.curve) - 1
        own = t.flops * (len(t.curve) - 1) + (d.flops * parent_epochs if t.check == "finetune" else 0)
        ratios.append(own / (d.flops * parent_epochs))
    return mean_or_nan(ratios)


def _mark(c: Comparison | None) -> str:
    if c is None:
        return ""
    d = fmt(c.result.mean_diff, "+.2f", 100)
    return d + ("*" if c.verdict in ("better", "worse") else "")


def blocks(trials: Sequence[TrialRecord], cells: Sequence[Cell], label: str) -> list[Block]:
    """The "Where the sub-network starts" section; empty unless the run holds a start arm.

    >>> blocks([], [], "node sparsity")
    []
    """
    comps = compare_starts(trials)
    if not comps:
        return []
    vs_theta0 = {(c.finder, c.sparsity): c for c in comps if "~" not in c.control}
    # every arm against the random control of its seed (θ0, the same epochs): final test accuracy
    pool = [t for t in trials if not t.check or t.check in STARTS]
    vs_random = {(c.finder, c.sparsity): c for c in _compare(pool, CONTROL, _by_seed, ["final_test_acc"], 0.05)}
    ft_vs_sb = [c for c in comps if "~" in c.control]
    dense = {t.seed: t for t in trials if t.finder == DENSE}
    acc = {(c.finder, c.sparsity): c for c in cells}
    bases = sorted({c.finder.split("~")[0] for c in comps})
    rows = []
    cap = _cap(trials)
    for base in bases:
        for s in sorted({t.sparsity for t in trials if t.finder == base}):
            for start in ("", *STARTS):
                arm = f"{base}~{start}" if start else base
                ts = [t for t in trials if t.arm == arm and math.isclose(t.sparsity, s)]
                if not ts:
                    continue
                cell = acc.get((arm, s))
                rows.append(
                    [
                        base,
                        f"{s:g}",
                        start or "θ0",
                        fmt_mean_sd(cell.final_acc, ".2f", 100) if cell else "n/a",
                        _mark(vs_theta0.get((arm, s))) if start else "",
                        _mark(vs_random.get((arm, s))) or "—",
                        fmt(_epochs(ts), ".3g"),
                        fmt(_train_flops(ts, dense), ".3g"),
                    ]
                )
    out: list[Block] = [
        ("h2", "Where the sub-network starts (Liu et al. 2019)"),
        (
            "p",
            "Each finder's mask trained from each start: "
            + "; ".join(WORDS[k].format(cap=cap) for k in ("", *STARTS) if k == "" or any(t.check == k for t in trials))
            + ". Test acc: %, mean ± sd across seeds; Δ vs θ0: the start minus the finder's θ0 trial in pp, paired by seed; "
            "Δ vs random: the arm minus the random control of its seed (θ0, the run's epochs) "
            "(* Holm-adjusted p < 0.05 across the arm's sparsities); epochs: trained by the start; training FLOPs: "
            "its training (forward FLOPs x epochs) over the dense parent's, a finetune start counting the parent's "
            "training it starts from. Search cost is in the summary table.",
        ),
        ("table", ["finder", label, "start", "test acc %", "Δ vs θ0", "Δ vs random", "epochs", "training FLOPs (x dense)"], rows),
    ]
    if ft_vs_sb:
        out += [
            (
                "p",
                "Fine-tuning against training from scratch (finetune − scratch-b, final test accuracy, paired by seed; "
                "Liu et al. 2019 found scratch-B matches or beats fine-tuning on CIFAR, where it spends the dense parent's "
                f"full training FLOPs{'; here scratch-b trains' + cap[1:] + ', and the training FLOPs column says what each got' if cap else ''}):",
            ),
            (
                "table",
                ["finder", label, "Δ finetune − scratch-b", "95% CI", "Holm p", "n", "verdict"],
                [
                    [
                        c.finder.split("~")[0],
                        f"{c.sparsity:g}",
                        fmt(c.result.mean_diff, "+.2f", 100) + " pp",
                        fmt_ci(c.result, "+.2f", 100),
                        fmt_p(c.p_holm),
                        str(c.result.n),
                        "finetune better" if c.verdict == "better" else "scratch-b better" if c.verdict == "worse" else c.verdict,
                    ]
                    for c in ft_vs_sb
                ],
            ),
        ]
    return out
