"""Hand-written or library: our FLOP counter, latency timer and HTML renderer beside the library that
does the same job, measured side by side in one process (docs/library_choices.md reads the output).

    python benchmarks/library_choices.py [--threads 1]

FLOPs: `count_flops` against `torch.utils.flop_counter.FlopCounterMode` on every shipped parent, its
compacted sub-networks, weight-masked copies (the library rescaled per layer by kept/all weights), a
plain nn.Sequential parent, and three modules where the two conventions part. Latency:
`measure_latency` against `torch.utils.benchmark.Timer.blocked_autorange` on a compacted
LeNet-300-100 at batch 1 and 128. HTML: `to_html` against the same page written as a jinja2 template
with autoescape. About 30 s with one thread.
"""

from __future__ import annotations

import argparse
import base64
import html
import inspect
import time
from typing import Callable

import jinja2
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from sparsenas.masks import allocate, compact, count_flops, random_mask
from sparsenas.masks.weight import layer_counts, random_weight_mask
from sparsenas.models import Parent, as_parent, build_parent
from sparsenas.report import markup
from sparsenas.timing import measure_latency

SHAPES: dict[str, tuple[int, ...]] = {"mlp": (1, 8, 8), "lenet-300-100": (1, 28, 28), "lenet5": (1, 28, 28)}


def library_flops(model: nn.Module, input_shape: tuple[int, ...], kept: dict[str, int] | None = None) -> int:
    """FlopCounterMode's forward FLOPs for one sample; with `kept`, each layer's count scaled by its
    kept fraction of weights (the library counts a masked layer as dense)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_shape))
    if not kept:
        return counter.get_total_flops()
    per_module = counter.get_flop_counts()  # keyed "<RootClass>.<module name>"
    root = type(model).__name__
    total = 0
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            flops = sum(per_module[f"{root}.{name}"].values())
            total += flops * kept.get(f"{name}.weight", m.weight.numel()) // m.weight.numel()
    return total


def per_call_ms(fn: Callable[[], object], n: int = 50) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e3


def flops_section() -> None:
    print("## FLOPs per sample: count_flops vs FlopCounterMode\n")
    print("| network | ours | library | equal | ours ms | library ms | library/ours time |")
    print("|---|---:|---:|---|---:|---:|---:|")
    gen = torch.Generator().manual_seed(0)
    cases: list[tuple[str, nn.Module, tuple[int, ...], dict[str, int] | None]] = []
    for name, shape in SHAPES.items():
        parent = build_parent(name, shape, 10, 0)
        cases.append((f"{name} parent", parent, shape, None))
        groups = parent.node_groups()
        for s in (0.5, 0.8, 0.95):
            cases.append((f"{name} compacted {s}", compact(parent, random_mask(groups, allocate(groups, s), gen)), shape, None))
        sizes = tuple(dict(parent.named_parameters())[w].numel() for w in parent.prunable_weights())
        mask = random_weight_mask(parent, layer_counts(sizes, 0.9), gen)
        cases.append((f"{name} weight-masked 0.9", parent, shape, dict(zip(mask.tensors, mask.kept_counts()))))
    seq = nn.Sequential(nn.Flatten(), nn.Linear(13, 16), nn.ReLU(), nn.Linear(16, 8), nn.SiLU(), nn.Linear(8, 3))
    seq_parent: Parent = as_parent(seq, (13,))
    cases.append(("nn.Sequential parent (examples/own_model.py)", seq_parent, (13,), None))
    # where the conventions part: a Linear over a sequence, a Conv1d, a functional matmul
    cases.append(("Linear on a (4, 16) sample", nn.Linear(16, 8), (4, 16), None))
    cases.append(("Conv1d(3, 8, 5) on (3, 32)", nn.Conv1d(3, 8, 5), (3, 32), None))
    cases.append(("F.linear inside forward", _Functional(), (16,), None))
    for label, net, shape, kept in cases:
        ours, lib = count_flops(net, shape, kept), library_flops(net, shape, kept)
        t_ours = per_call_ms(lambda: count_flops(net, shape, kept))
        t_lib = per_call_ms(lambda: library_flops(net, shape, kept))
        print(f"| {label} | {ours} | {lib} | {'yes' if ours == lib else 'NO'} | {t_ours:.3f} | {t_lib:.3f} | {t_lib / t_ours:.1f}x |")
    print()


class _Functional(nn.Module):
    """A user's parent that multiplies by its own weight instead of calling an nn.Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(8, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.w)


def latency_section(rounds: int) -> None:
    print("## Latency: measure_latency vs torch.utils.benchmark.Timer (compacted LeNet-300-100, node sparsity 0.5)\n")
    print("| batch | ours median [95% CI] ms | ours s spent | Timer median (IQR) ms | Timer blocks x calls | Timer s spent | Timer/ours median |")
    print("|---:|---|---:|---|---|---:|---:|")
    parent = build_parent("lenet-300-100", (1, 28, 28), 10, 0)
    groups = parent.node_groups()
    net = compact(parent, random_mask(groups, allocate(groups, 0.5), torch.Generator().manual_seed(1))).eval()
    for _ in range(rounds):
        for batch in (1, 128):
            x = torch.randn(batch, 1, 28, 28)
            start = time.perf_counter()
            ours = measure_latency(net, x)
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            with torch.inference_mode():  # as measure_latency times: no autograd
                timer = benchmark.Timer("net(x)", globals={"net": net, "x": x}, num_threads=torch.get_num_threads())
                m = timer.blocked_autorange()
            timer_s = time.perf_counter() - start
            print(f"| {batch} | {ours} | {ours_s:.2f} | {m.median * 1e3:.3f} ({m.iqr * 1e3:.3f}) | "
                  f"{len(m.times)} x {m.number_per_run} | {timer_s:.2f} | {m.median * 1e3 / ours.median_ms:.2f} |")
    print()


# the page to_html writes, as a jinja2 template: autoescape escapes every {{ }} unless marked safe
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css|safe }}</style></head><body>
{% for b in blocks %}
{% if b[0] in ("h1", "h2", "p") %}<{{ b[0] }}>{{ b[1] }}</{{ b[0] }}>
{% elif b[0] == "ul" %}<ul>{% for line in b[1] %}<li>{{ line }}</li>{% endfor %}</ul>
{% elif b[0] == "table" %}<div class="wide"><table><thead><tr>{% for h in b[1] %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>\
{% for r in b[2] %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</tbody></table></div>
{% elif b[0] == "fig" %}<figure><img src="data:image/png;base64,{{ b[2]|b64 }}" alt="{{ b[3] }}"><figcaption>{{ b[3] }}</figcaption></figure>
{% endif %}
{% endfor %}
</body></html>
"""


def jinja_page() -> Callable[[list[markup.Block]], str]:
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             finalize=lambda v: markup.visible(v) if isinstance(v, str) else v)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    template = env.from_string(_PAGE)
    return lambda blocks: template.render(blocks=blocks, css=markup._CSS, title=blocks[0][1] if blocks else "sparsenas report")


def html_section() -> None:
    print("## HTML: to_html vs a jinja2 template\n")
    nasty = "<script>alert(1)</script>|`b`*[l](u)_x_ ~~s~~ & #1 \"q\" 'a' \u202eexe.jpg"
    blocks: list[markup.Block] = [("h1", f"Report {nasty}"), ("p", nasty), ("ul", [nasty] * 20),
                                  ("table", ["finder", *(f"c{i}" for i in range(11))], [[nasty, *map(str, range(11))]] * 200),
                                  ("fig", "f.png", bytes(range(256)) * 400, nasty)]
    render = jinja_page()
    ours, theirs = markup.to_html(blocks), render(blocks)
    print(f"- same page after html.unescape: {html.unescape(ours) == html.unescape(theirs)}; byte-identical: {ours == theirs} "
          "(markupsafe writes &#39; and &#34; where html.escape writes &#x27; and &quot;)")
    print(f"- no raw user markup in either: {'<script' not in ours and '<script' not in theirs}")
    t_ours, t_lib = per_call_ms(lambda: markup.to_html(blocks), 20), per_call_ms(lambda: render(blocks), 20)
    print(f"- render time: ours {t_ours:.2f} ms, jinja2 {t_lib:.2f} ms ({t_lib / t_ours:.2f}x)")
    ours_lines = len(inspect.getsource(markup.to_html).splitlines())
    theirs_lines = len(_PAGE.splitlines()) + len(inspect.getsource(jinja_page).splitlines())
    print(f"- lines with docstrings: to_html {ours_lines}; template and environment {theirs_lines}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steady on a shared machine)")
    p.add_argument("--rounds", type=int, default=2, help="latency rounds, alternating batch 1 and 128")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, jinja2 {jinja2.__version__}, {torch.get_num_threads()} thread(s)\n")
    flops_section()
    latency_section(args.rounds)
    html_section()


if __name__ == "__main__":
    main()
