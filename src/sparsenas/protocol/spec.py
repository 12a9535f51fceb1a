"""The run spec: one typed, frozen dataclass; the CLI flags and spec files are built from it.

It holds what every run shares (data, parent, finders, sparsities, seeds, training) and the finders'
option values; each finder declares its options, their defaults and bounds in its own file
(`finders.options`). Those values sit in one mapping by option name, not one per finder, because a
name is one flag: ``--candidates`` sets random-search and halving alike, so one value per name is
what the spec can hold, and trial keys and the run directory's stored spec stay keyed by name as
they always were. `options_for` hands a finder its typed options.

A spec file (TOML or YAML) holds the same keys as the flags (``epochs = 20``, ``sparsities = [0.5,
0.8]``); flags given on the command line override it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Self

from ..data import DATASETS
from ..errors import SparsenasError, quote
from ..finders import FINDERS
from ..finders.base import declared_options
from ..finders.options import FinderOptions
from ..masks import check_sparsity
from ..models import MODELS
from ..train import TrainSpec
from ..train.spec import canonical_train
from .ranges import check_choice, check_range, check_ranges

# Fields that say where or how to compute, not what: they never enter a trial's hash, and a run
# directory may be resumed with other values for them.
RUNTIME_FIELDS = ("data_dir", "device", "population_cap", "executor", "address", "threads")
MAX_SEEDS = 10_000  # a seed count beyond this is a typo, not an experiment
# sanity checks of a found mask (Frankle et al. 2021, "Pruning neural networks at initialization:
# why are we missing the mark?"): each is one more trial per finder, sparsity and seed
CHECKS = ("shuffle", "reinit", "invert")
# where a found sub-network starts besides θ0 restricted to its mask (Liu et al., ICLR 2019,
# "Rethinking the Value of Network Pruning"): each is one more trial per finder, sparsity and seed,
# an arm of its own ("l1-norm~finetune") paired by seed with the finder and the random control
STARTS = ("scratch-e", "scratch-b", "finetune")
# Scratch-B trains at most this many times the epochs by default: Liu et al. 2019's rule on ImageNet
# (their CIFAR code spends the parent's full FLOPs: --scratch-b-cap 0). In scratch-b trials' keys
SCRATCH_B_CAP = 2.0
# fields added after stored specs existed: left out of a spec's identity while unused (no starts; the
# fine-tune budget while no run asks for the finetune start), so those run directories bind as before
LATER_FIELDS = ("starts", "finetune_epochs", "finetune_lr", "scratch_b_cap")


@dataclass(frozen=True)
class RunFields:
    """What every run shares, and the finders' option values by name; `RunSpec` builds it."""

    dataset: str = field(default="digits", metadata={"help": "dataset name (sparsenas list)"})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "folder with the dataset's files (fashion-mnist: the four IDX files; default /usr/share/datasets/fashion-mnist)"},
    )
    limit: int | None = field(
        default=None, metadata={"help": "keep only the first N samples of each split (quick tries, tests)", "range": (1, 10**9)}
    )
    model: str = field(default="mlp", metadata={"help": "parent network name (sparsenas list)"})
    widths: tuple[int, ...] | None = field(
        default=None, metadata={"help": "hidden widths of the parent, e.g. 300,100 (default: the model's own)", "range": (1, 2**20)}
    )
    finders: tuple[str, ...] = field(default=("dense", "random", "random-search"), metadata={"help": "finders to run, comma-separated"})
    space: str = field(
        default="node",
        metadata={"help": "mask space: node (hidden units/channels, compacted) or weight (single weights)", "choices": ("node", "weight")},
    )
    sparsities: tuple[float, ...] = field(
        default=(0.5, 0.8, 0.9, 0.95),
        metadata={"help": "sparsities in [0, 1), comma-separated: of hidden nodes (--space node) or of prunable weights (--space weight)"},
    )
    allocation: str = field(
        default="per-layer",
        metadata={
            "help": "how scoring finders spread a sparsity over layers: per-layer (each layer alike) or global (one ranking)",
            "choices": ("per-layer", "global"),
        },
    )
    checks: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "sanity checks of every finder's mask: shuffle (layerwise), reinit (fresh init), invert (lowest scores kept); default: none"
        },
    )
    starts: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "where each finder's sub-network also starts, each start one more trial: scratch-e (a fresh init of the "
            "sub-network, same epochs), scratch-b (fresh, same training FLOPs as the dense parent, at most --scratch-b-cap x the epochs), "
            "finetune (the trained parent's weights, fine-tuned --finetune-epochs); default: θ0 only"
        },
    )
    finetune_epochs: int | None = field(
        default=None,
        metadata={"help": "epochs of the finetune start (default: a quarter of --epochs, at least 1)", "range": (1, 100_000)},
    )
    finetune_lr: float | None = field(default=None, metadata={"help": "constant learning rate of the finetune start (default: --lr / 100)"})
    scratch_b_cap: float = field(
        default=SCRATCH_B_CAP,
        metadata={
            "help": "the scratch-b start trains at most this many times --epochs (default 2: Liu et al. 2019 on ImageNet); "
            "0: no cap, the dense parent's full training FLOPs (their CIFAR code)"
        },
    )
    seeds: tuple[int, ...] = field(
        default=(0, 1, 2, 3, 4), metadata={"help": "a count N (seeds 0..N-1) or a comma-separated list of seeds"}
    )
    # every registered finder's options by name (`finders.options`); here, so the stored spec keeps its order
    finder_options: dict[str, Any] = field(default_factory=dict)
    controls: int = field(
        default=1,
        metadata={"help": "random controls per sparsity and seed: the report compares a finder with their mean", "range": (1, 1000)},
    )
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or auto", "choices": ("cpu", "cuda", "auto")})
    # the cap: how many a population may hold (a trial's record keeps how many it actually trained with)
    population_cap: int = field(
        default=128,
        metadata={
            "help": "most same-shape sub-networks trained at once (fewer if memory is short); 1 trains one at a time",
            "aliases": ("population",),  # its name before 0.2: flags and spec files keep working
            "range": (1, 100_000),
        },
    )
    executor: str = field(
        default="local",
        metadata={"help": "local (this process) or ray (populations as Ray tasks; see --address)", "choices": ("local", "ray")},
    )
    address: str | None = field(
        default=None,
        metadata={
            "help": "ray: the cluster's address, e.g. 10.0.0.5:6379, or auto for the one ray start runs on this machine (default: start Ray for this run)"
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": "torch threads per training process (ray: CPUs per task); numbers depend on it (default: torch's own, the driver's with ray)",
            "range": (1, 1024),
        },
    )
    train: TrainSpec = field(default_factory=TrainSpec)

    def __post_init__(self) -> None:
        # an option declared "implies_finder" (nsga2's --objectives) runs its finder when it is set
        for name, d in declared_options().items():
            if d.implies and self.finder_options.get(name, d.default) != d.default:
                missing = tuple(f for f in d.implies if f not in self.finders)
                object.__setattr__(self, "finders", (*self.finders, *missing))

    def __hash__(self) -> int:
        # the options mapping is a dict: hash what it holds, so a spec stays usable as a key
        return hash(json.dumps(dataclasses.asdict(self), sort_keys=True, default=str))

    def __getattr__(self, name: str) -> Any:
        # the flat view, as on the command line: spec.candidates is the value of --candidates
        options = self.__dict__.get("finder_options")
        if options is not None and name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def options_for(self, finder: str) -> FinderOptions:
        """Finder `finder`'s typed options in this run (what its `SearchContext` carries).

        >>> RunSpec(candidates=7).options_for("halving")
        HalvingOptions(candidates=7, halving_eta=3, halving_steps=8)
        """
        cls = FINDERS.get(finder).Options
        return cls(**{k: self.finder_options[k] for k in FINDERS.get(finder).options if k in self.finder_options})

    def validate(self) -> Self:
        """Raise `SparsenasError` on the first bad value; return self so calls chain."""
        DATASETS.get(self.dataset)
        MODELS.get(self.model)
        for f in self.finders:
            FINDERS.get(f)
        if not self.finders:
            raise SparsenasError("no finders given; e.g. --finders dense,random,random-search")
        if len(set(self.finders)) != len(self.finders):
            raise SparsenasError(f"finders listed twice in {','.join(self.finders)}; list each once")
        if not self.sparsities:
            raise SparsenasError("no sparsities given; e.g. --sparsities 0.5,0.8,0.9")
        for s in self.sparsities:
            check_sparsity(s)
        check_choice("space", self.space, RunSpec)
        check_choice("allocation", self.allocation, RunSpec)
        for f in self.finders:
            if self.space not in FINDERS.get(f).spaces:
                raise SparsenasError(
                    f"finder '{f}' searches {' and '.join(FINDERS.get(f).spaces)} masks only; drop it from --finders or use --space {FINDERS.get(f).spaces[0]}"
                )
        for c in self.checks:
            if c not in CHECKS:
                raise SparsenasError(f"unknown check '{c}'; choose from {', '.join(CHECKS)}, e.g. --checks shuffle,reinit")
        if len(set(self.checks)) != len(self.checks):
            raise SparsenasError(f"checks listed twice in {','.join(self.checks)}; list each once")
        for st in self.starts:
            if st not in STARTS:
                raise SparsenasError(f"unknown start '{st}'; choose from {', '.join(STARTS)}, e.g. --starts scratch-b,finetune")
        if len(set(self.starts)) != len(self.starts):
            raise SparsenasError(f"starts listed twice in {','.join(self.starts)}; list each once")
        if self.starts and not any(FINDERS.get(f).searches() for f in self.finders):
            raise SparsenasError(
                "--starts applies to finders that search (not dense, the random controls or front finders); "
                "add one, e.g. --finders dense,random,l1-norm"
            )
        for name in ("finetune_epochs", "finetune_lr"):
            if getattr(self, name) is not None and "finetune" not in self.starts:
                flag = "--" + name.replace("_", "-")
                raise SparsenasError(f"{flag} sets the finetune start's budget; add --starts finetune or drop {flag}")
        if self.scratch_b_cap != SCRATCH_B_CAP and "scratch-b" not in self.starts:
            raise SparsenasError("--scratch-b-cap sets the scratch-b start's budget; add --starts scratch-b or drop --scratch-b-cap")
        if not (self.scratch_b_cap == 0 or (math.isfinite(self.scratch_b_cap) and self.scratch_b_cap >= 1)):
            raise SparsenasError(f"--scratch-b-cap must be 0 (no cap) or a number >= 1, got {self.scratch_b_cap}; e.g. --scratch-b-cap 2")
        if self.finetune_lr is not None and not (math.isfinite(self.finetune_lr) and self.finetune_lr > 0):
            raise SparsenasError(f"--finetune-lr must be a positive number, got {self.finetune_lr}")
        if len({round(s, 6) for s in self.sparsities}) != len(self.sparsities):
            raise SparsenasError(f"sparsities listed twice in {','.join(map(str, self.sparsities))}; list each once")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0 or max(self.seeds) >= 2**63:
            raise SparsenasError(f"seeds must be distinct integers in [0, 2^63), got {_short(self.seeds)}; e.g. --seeds 5")
        if self.controls > 1000:
            raise SparsenasError(f"--controls {self.controls} is more than 1000 random controls per cell; a few to a few dozen is plenty")
        for owner in (self, self.train):
            check_ranges(owner)
        for name, d in declared_options().items():  # every value given, whichever finders run
            if d.range is not None and name in self.finder_options:
                check_range(name, self.finder_options[name], d.range, d.above)
            if d.choices is not None and self.finder_options.get(name, d.default) not in d.choices:
                raise SparsenasError(
                    f"--{name.replace('_', '-')} must be one of {', '.join(d.choices)}, got {quote(self.finder_options[name])}"
                )
        for f in FINDERS.names():  # every finder's values; checks that matter only when it runs, then
            self.options_for(f).validate(in_run=f in self.finders)
        if not (math.isfinite(self.train.lr) and self.train.lr > 0):
            raise SparsenasError(f"--lr must be a positive number, got {self.train.lr}")
        if not 0.0 <= self.train.momentum < 1.0:
            raise SparsenasError(f"--momentum must be in [0, 1), got {self.train.momentum}")
        if not (math.isfinite(self.train.weight_decay) and self.train.weight_decay >= 0):
            raise SparsenasError(f"--weight-decay must be 0 or a positive number, got {self.train.weight_decay}")
        if self.widths is not None and not self.widths:
            raise SparsenasError("--widths is empty; give positive integers, e.g. --widths 300,100")
        for name in ("optimizer", "schedule", "augment"):
            check_choice(name, getattr(self.train, name), TrainSpec)
        check_choice("device", self.device, RunSpec)
        check_choice("executor", self.executor, RunSpec)
        if self.address is not None and self.executor != "ray":
            raise SparsenasError(f"--address {self.address} is for --executor ray; add --executor ray or drop --address")
        return self

    def identity(self) -> dict[str, Any]:
        """The spec as JSON-able data without runtime fields: what a run directory is bound to.

        Finder options are flat keys beside the shared ones, as they were before finders declared
        them, so a run directory made then binds to the same spec now.

        >>> RunSpec().identity()["candidates"], "finder_options" in RunSpec().identity()
        (20, False)
        """
        d = {}
        for k, v in dataclasses.asdict(self).items():
            if k == "finder_options":
                d.update(v)
            elif k == "train":
                d[k] = canonical_train(self.train)  # a field added later shows only when set: stored specs bind as before
            elif k in LATER_FIELDS:
                # the fine-tune budget is part of a run only when it fine-tunes: resolved, so a default that
                # changes cannot rebind a run directory to other numbers
                if k == "starts" and v:
                    d[k] = v
                elif k == "scratch_b_cap":
                    if "scratch-b" in self.starts and v != SCRATCH_B_CAP:  # at the default: as stored before it was an option
                        d[k] = float(v)
                elif k != "starts" and "finetune" in self.starts:
                    d[k] = self.finetune_budget()[0 if k == "finetune_epochs" else 1]
            elif k not in RUNTIME_FIELDS:
                d[k] = v
        return json.loads(json.dumps(d))  # tuples -> lists, as they come back from the store

    def finetune_budget(self) -> tuple[int, float]:
        """The finetune start's epochs and constant learning rate, defaults resolved: a quarter of the
        training epochs (at least 1; Li et al. 2017 fine-tune 40 of 160 epochs) at a hundredth of the
        learning rate (the last rate of the 0.1, 0.01, 0.001 schedule Liu et al. 2019 fine-tune at).

        >>> from sparsenas.train import TrainSpec
        >>> RunSpec(train=TrainSpec(epochs=30, lr=0.1)).finetune_budget()
        (8, 0.001)
        """
        epochs = self.finetune_epochs if self.finetune_epochs is not None else max(1, math.floor(self.train.epochs / 4 + 0.5))
        lr = self.finetune_lr if self.finetune_lr is not None else self.train.lr / 100
        return epochs, lr


class RunSpec(RunFields):
    """Everything that defines a run: data, parent, finders, sparsities, seeds, training, and the
    finders' options, which may be given flat by name as on the command line.

    >>> spec = RunSpec(seeds=(0, 1), sparsities=(0.5,), candidates=5)
    >>> spec.dataset, spec.model, spec.train.epochs, spec.options_for("random-search").candidates
    ('digits', 'mlp', 30, 5)
    """

    def __init__(self, finder_options: dict[str, Any] | None = None, **values: Any) -> None:
        declared = declared_options()
        options = {name: d.default for name, d in declared.items()}
        options.update(finder_options or {})
        options.update({k: values.pop(k) for k in list(values) if k in declared})
        super().__init__(finder_options=options, **values)


def _short(xs: tuple) -> str:
    return str(xs) if len(xs) <= 6 else f"({', '.join(map(str, xs[:3]))}, ..., {xs[-1]})"


def build_spec(values: dict[str, Any]) -> RunSpec:
    """A validated RunSpec from flat {field name: value} (defaults for what is missing).

    >>> build_spec({"epochs": 3, "sparsities": (0.5,)}).train.epochs
    3
    """
    train_names = {f.name for f in dataclasses.fields(TrainSpec)}
    train = TrainSpec(**{k: v for k, v in values.items() if k in train_names})
    run = {k: v for k, v in values.items() if k not in train_names}
    return RunSpec(**run, train=train).validate()
