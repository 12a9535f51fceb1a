"""`sparsenas export`: a stored trial's trained sub-network as a standalone `torch.export` program.

The run stored each trial's trained weights (`store.weights`). Export rebuilds the trial's parent
from the run's stored spec and seed, loads those weights into the *compacted* sub-network (a node
trial's smaller dense net; a weight trial's net with every unit whose outputs are never read
removed, its other zeros kept), and writes it with `torch.export.save`, which loads with
`torch.export.load(path).module()` and plain PyTorch: no sparsenas, no model class.

Before the file is kept, the exported program's outputs are compared with the *masked parent's*
(the full-size parent holding the trained weights at the kept positions and zeros elsewhere) on
real test inputs; a mismatch removes the file and is an error. Then both are timed at batch 1 and
128 (warm-up, repeats, median and its 95% CI), with the compacted `nn.Module` run eagerly beside
them, so the report separates what compaction buys from what the exported runtime adds or costs;
the result is recorded in the store for the report.

The program takes any batch size N (the batch dimension is exported dynamic) of inputs shaped like
the run's data, normalized as sparsenas's loader normalized them. What it expects is written into
the file itself, as the extra file `sparsenas.json`, readable with plain PyTorch::

    extra = {"sparsenas.json": ""}
    program = torch.export.load(open("model.pt2", "rb"), extra_files=extra)
    json.loads(extra["sparsenas.json"])["input"]  # 'float32 (N, 1, 8, 8)'
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset, fingerprint, load_dataset
from ..errors import SparsenasError, one_line
from ..masks import NodeMask, compact, count_flops, count_params, dense_mask, expand
from ..models import Parent, build_parent
from ..runtime import resolve_device
from ..store import Store, TrialRecord
from ..store.weights import unpack_weights
from ..timing import UNSTABLE_CI, Latency, measure_latency, speedup
from ..timing import steady as steady_ci

BATCHES = (1, 128)
INFO_FILE = "sparsenas.json"  # the extra file inside the .pt2 that says what the program expects


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote, checked and measured (stored as JSON in the run's `exports` table)."""

    key: str
    path: str
    file_bytes: int
    params_parent: int
    params_export: int
    flops_export: int
    kept_nodes: tuple[int, ...]
    check_samples: int
    max_abs_diff: float
    argmax_agree: float  # fraction of check inputs whose predicted class is the same
    latency_parent: tuple[Latency, ...]  # the masked full-size parent, one per batch size
    latency_compact: tuple[Latency, ...]  # the compacted nn.Module, eager (compaction alone)
    latency_export: tuple[Latency, ...]  # the exported program, same batch sizes
    device: str
    torch: str
    host: str
    created: str
    input: str = ""  # what the program takes, e.g. "float32 (N, 1, 8, 8)": any batch size N
    num_classes: int = 0  # the program returns logits (N, num_classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("key")
        d.pop("path")
        return d

    def summary(self) -> str:
        """Lines for the terminal: the check, then latency per batch size."""
        lines = [
            f"input: {self.input}, any batch size N -> logits (N, {self.num_classes}); stored in the file as the extra file {INFO_FILE!r}",
            f"check: {self.check_samples} test inputs, max |exported - masked parent| = {self.max_abs_diff:.2e}, "
            f"same class on {100 * self.argmax_agree:.1f}%",
            f"params {self.params_parent:,} (masked parent, dense tensors) -> {self.params_export:,} (export)",
        ]
        unstable = []
        for a, c, b in zip(self.latency_parent, self.latency_compact, self.latency_export):
            lines.append(
                f"latency at batch {a.batch:>3} ({self.device}, {a.threads} threads): masked parent {a}; "
                f"compacted module {c} ({ratio(a, c)}); export {b} ({ratio(a, b)})"
            )
            unstable += [
                f"{name} at batch {lat.batch}"
                for name, lat in (("masked parent", a), ("compacted module", c), ("export", b))
                if not steady(lat)
            ]
        if unstable:
            lines.append(
                f"unstable timings: {', '.join(unstable)} (95% CI of the median wider than {UNSTABLE_CI:.0%} of it; "
                "another process was using the CPU?): no speed-up is given for them; re-run export on an idle machine or with more --repeats"
            )
        return "\n".join(lines)


def steady(lat: Latency) -> bool:
    """Whether a latency's 95% CI of the median is narrow enough to divide by (`timing.steady`).

    >>> steady(Latency(1, 2.0, 1.8, 2.4, 50, 1)), steady(Latency(128, 5.0, 0.054, 23.99, 50, 1))
    (True, False)
    """
    return steady_ci(lat.median_ms, lat.lo_ms, lat.hi_ms)


def ratio(a: Latency, b: Latency) -> str:
    """How many times faster `b` is than `a` ("x2.00"), or "speed-up unstable" when either timing is not `steady`.

    >>> ratio(Latency(1, 2.0, 1.9, 2.1, 50, 1), Latency(1, 1.0, 0.9, 1.1, 50, 1))
    'x2.00'
    >>> ratio(Latency(1, 5.0, 0.054, 23.99, 50, 1), Latency(1, 0.054, 0.05, 0.06, 50, 1))
    'speed-up unstable'
    """
    return f"x{speedup(a, b):.2f}" if steady(a) and steady(b) else "speed-up unstable"


def resolve_key(store: Store, key: str) -> TrialRecord:
    """The stored trial whose key is `key` or starts with it (a unique prefix is enough)."""
    trials = store.trials()
    matches = [t for t in trials if t.key == key] or [t for t in trials if t.key.startswith(key)]
    old = [(k, new) for k, new in store.superseded().items() if key and k.startswith(key)]
    if not matches and len(old) == 1:
        raise SparsenasError(
            f"trial {old[0][0]} was superseded by trial {old[0][1]}, the same trial keyed by newer sparsenas code "
            f"(its masks changed); export {old[0][1]}, or pass --trial {old[0][0]} to an older sparsenas"
        )
    if not key or not matches:
        raise SparsenasError(f"no trial '{key}' in '{store.run_dir}'; trial keys are in the 'key' column of {store.run_dir / 'trials.csv'}")
    if len(matches) > 1:
        raise SparsenasError(f"'{key}' starts {len(matches)} trial keys in '{store.run_dir}'; give more of the key")
    return matches[0]


def _dataset(spec: dict, data_dir: str | None) -> Dataset:
    data = load_dataset(spec["dataset"], data_dir, spec.get("limit"))
    if spec.get("data") and fingerprint(data) != spec["data"]:
        raise SparsenasError(
            f"the {spec['dataset']} data found here differs from the data the run was trained on; pass the run's --data-dir"
        )
    return data


def _read_units(net: Parent) -> NodeMask:
    """The units of `net` (a full-size weight-masked parent) whose outputs some consumer reads:
    dropping the others changes no output (a group keeps at least one unit, whose columns are zero)."""
    state = dict(net.named_parameters()) | dict(net.named_buffers())
    kept = []
    for g in net.node_groups():
        read = torch.zeros(g.size, dtype=torch.bool)
        for sl in g.consumers:
            t = sl.rows(state[sl.tensor].detach(), g.size)  # row i: the entries node i owns
            read |= t.ne(0).any(1).cpu()
        idx = read.nonzero().flatten().tolist() or [0]
        kept.append(tuple(idx))
    return NodeMask(tuple(kept))


def _info(record: TrialRecord, data: Dataset, x: torch.Tensor) -> dict:
    """What someone holding only the .pt2 file needs to call it: saved inside it as INFO_FILE."""
    dtype = str(x.dtype).removeprefix("torch.")
    return {
        "input": f"{dtype} (N, {', '.join(map(str, data.input_shape))})",  # N: any batch size
        "input_shape": ["N", *data.input_shape],
        "input_dtype": dtype,
        "input_normalization": f"as sparsenas's '{data.name}' loader: standardized with its train split's statistics",
        "output": f"logits (N, {data.num_classes})",
        "num_classes": data.num_classes,
        "trial": record.key,
        "dataset": data.name,
        "model": record.spec.get("model", ""),
        "finder": record.arm,
        "sparsity": record.sparsity,
        "seed": record.seed,
        "torch": torch.__version__,
    }


def load_trained(run_dir: str | Path, key: str, data_dir: str | None = None) -> tuple[TrialRecord, Dataset, Parent, Parent]:
    """A stored trial's record, its data, its masked parent and its compacted trained sub-network.

    >>> import tempfile; from sparsenas.protocol import RunSpec, run; from sparsenas.train import TrainSpec
    >>> d = tempfile.mkdtemp(); _ = run(RunSpec(sparsities=(0.5,), seeds=(0,), finders=("random",), limit=64, train=TrainSpec(epochs=1)), d)
    >>> rec, data, masked, small = load_trained(d, Store(d).trials()[0].key)
    >>> small.fc1.weight.shape[0], masked.fc1.weight.shape[0]
    (128, 256)
    """
    with Store(run_dir, create=False) as store:
        spec = store.spec()
        if spec is None:
            raise SparsenasError(f"'{run_dir}' holds no finished run; run it first")
        record = resolve_key(store, key)
        blob = store.weights(record.key)
    if record.status != "done":
        raise SparsenasError(
            f"trial {record.key} diverged during training (its loss went non-finite); it has no trained sub-network to export"
        )
    if blob is None:
        raise SparsenasError(
            f"trial {record.key} has no stored weights (trained by a sparsenas that did not keep them); "
            "re-run it into a new --out directory to export it"
        )
    data = _dataset(spec, data_dir)
    parent = build_parent(spec["model"], data.input_shape, data.num_classes, record.seed, parent_widths(spec))
    if record.space == "weight":
        mask, target = None, copy.deepcopy(parent)  # the full-size net, its masked weights stored as zeros
    else:
        mask = NodeMask(record.node_mask) if record.node_mask else dense_mask(parent.node_groups())
        target = compact(parent, mask)
    try:
        target.load_state_dict(unpack_weights(blob))
    except (ValueError, RuntimeError) as e:  # a damaged or tampered blob; tensors that do not fit raise RuntimeError
        raise SparsenasError(_unreadable(Path(run_dir), record.key, e)) from None
    if mask is None:
        masked, small = target, compact(target, _read_units(target))
    else:
        masked, small = expand(parent, mask, target), target
    return record, data, masked.eval(), small.eval()


def parent_widths(spec: dict[str, Any]) -> tuple[int, ...] | None:
    """The `--widths` that rebuild a stored run's parent: its group sizes, or the option itself where
    the run stored it (`bind_run_dir`: models whose one width makes many groups, as ResNets).

    >>> parent_widths({"widths": [300, 100]}), parent_widths({"widths": [4, 4, 8], "parent_widths": None})
    ((300, 100), None)
    """
    w = spec["parent_widths"] if "parent_widths" in spec else spec["widths"]
    return tuple(w) if w is not None else None


def _unreadable(run_dir: Path, key: str, e: Exception) -> str:
    """The one-line error for a trial whose stored weights cannot be read, with the commands that re-train it."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    if isinstance(e, RuntimeError):  # load_state_dict: "Error(s) in loading state_dict for MLP:" then the keys
        reason = "they do not fit the trial's sub-network: " + (lines[-1] if lines else "")[:160]
    else:
        reason = lines[0] if lines else type(e).__name__
    # re-running the run trains exactly the forgotten trial again, and writes the same weights; the
    # command goes first, so a message cut to length (a long path) keeps it whole
    return (
        f"stored weights of trial {key} are unreadable; to train it again run: sparsenas forget "
        f"{shlex.quote(str(run_dir))} --trial {key}, then the run's own 'sparsenas run' command ({one_line(reason, 160)})"
    )


def export_trial(
    run_dir: str | Path,
    key: str,
    out: str | Path,
    data_dir: str | None = None,
    device: str = "cpu",
    check_samples: int = 1000,
    repeats: int = 50,
) -> ExportResult:
    """Export trial `key` of `run_dir` to `out` (torch.export), check it, time it, record it.

    >>> import tempfile; from sparsenas.protocol import RunSpec, run; from sparsenas.train import TrainSpec
    >>> d = tempfile.mkdtemp(); _ = run(RunSpec(sparsities=(0.5,), seeds=(0,), finders=("random",), limit=64, train=TrainSpec(epochs=1)), d)
    >>> r = export_trial(d, Store(d).trials()[0].key, d + "/m.pt2", repeats=5)
    >>> r.max_abs_diff < 1e-4, r.params_export < r.params_parent, [lat.batch for lat in r.latency_export]
    (True, True, [1, 128])
    """
    out = Path(out)
    if out.is_dir():
        raise SparsenasError(f"-o '{out}' is a directory; pass a file name such as model.pt2")
    dev = resolve_device(device)
    record, data, masked, small = load_trained(run_dir, key, data_dir)
    try:  # only now: a bad key or run leaves no empty folder behind
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SparsenasError(f"cannot create folder '{out.parent}' for '{out}' ({e.strerror}); pass another -o") from None
    masked, small = masked.to(dev), small.to(dev)
    x = data.test.x[:check_samples].to(dev)
    try:
        program = torch.export.export(small, (x[:2].clone(),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    except Exception as e:  # torch.export raises many types; a user sees one line, not a trace
        raise SparsenasError(f"torch.export could not trace the sub-network ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    info = _info(record, data, x)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as f:  # a file object: torch.export's own suffix check wants .pt2 names
        torch.export.save(program, f, extra_files={INFO_FILE: json.dumps(info)})
    with open(tmp, "rb") as saved:
        loaded = torch.export.load(saved).module()
    with torch.inference_mode():
        want, got = masked(x), loaded(x)
    diff = float((want - got).abs().max())
    agree = float((want.argmax(1) == got.argmax(1)).float().mean())
    scale = float(want.abs().max())
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, scale)):
        tmp.unlink()
        raise SparsenasError(
            f"export check failed: the exported program's outputs differ from the masked parent's by up to {diff:.3g} "
            f"on {len(x)} test inputs; nothing written (please report this with the run's spec)"
        )
    os.replace(tmp, out)  # the file appears only once checked

    def inputs(b: int) -> torch.Tensor:
        reps = -(-b // len(x))
        return x.repeat(reps, *([1] * (x.dim() - 1)))[:b]

    # interleaved per batch size, so a slow spell of a shared machine hits all three alike
    lat: dict[str, list[Latency]] = {"parent": [], "compact": [], "export": []}
    for b in BATCHES:
        for name, fn in (("parent", masked), ("compact", small), ("export", loaded)):
            lat[name].append(measure_latency(fn, inputs(b), repeats=repeats * (4 if b == 1 else 1)))
    result = ExportResult(
        key=record.key,
        path=str(out),
        file_bytes=out.stat().st_size,
        params_parent=count_params(masked),
        params_export=count_params(small),
        flops_export=count_flops(small, data.input_shape),
        kept_nodes=tuple(g.size for g in small.node_groups()),
        check_samples=len(x),
        max_abs_diff=diff,
        argmax_agree=agree,
        latency_parent=tuple(lat["parent"]),
        latency_compact=tuple(lat["compact"]),
        latency_export=tuple(lat["export"]),
        device=str(dev),
        torch=torch.__version__,
        host=platform.node(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        input=info["input"],
        num_classes=data.num_classes,
    )
    with Store(run_dir, create=False) as store:
        store.put_export(record.key, str(out), result.to_dict())
    return result
