"""The run spec: one typed, frozen dataclass; the CLI flags and spec files are built from it.

Defaults live here and nowhere else. A spec file (TOML or YAML) holds the same keys as the flags
(``epochs = 20``, ``sparsities = [0.5, 0.8]``); flags given on the command line override it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from ..data import DATASETS
from ..errors import SparsenasError
from ..finders import FINDERS
from ..masks import check_sparsity
from ..models import MODELS
from ..train import TrainSpec

# Fields that say where or how to compute, not what: they never enter a trial's hash, and a run
# directory may be resumed with other values for them.
RUNTIME_FIELDS = ("data_dir", "device", "population", "executor", "address", "threads")
MAX_SEEDS = 10_000  # a seed count beyond this is a typo, not an experiment
# sanity checks of a found mask (Frankle et al. 2021, "Pruning neural networks at initialization:
# why are we missing the mark?"): each is one more trial per finder, sparsity and seed
CHECKS = ("shuffle", "reinit", "invert")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run: data, parent, finders, sparsities, seeds, training.

    >>> spec = RunSpec(seeds=(0, 1), sparsities=(0.5,))
    >>> spec.dataset, spec.model, spec.train.epochs
    ('digits', 'mlp', 30)
    """

    dataset: str = field(default="digits", metadata={"help": "dataset name (sparsenas list)"})
    data_dir: str | None = field(default=None, metadata={"help": "folder with the dataset's files (fashion-mnist: the four IDX files; default /usr/share/datasets/fashion-mnist)"})
    limit: int | None = field(default=None, metadata={"help": "keep only the first N samples of each split (quick tries, tests)"})
    model: str = field(default="mlp", metadata={"help": "parent network name (sparsenas list)"})
    widths: tuple[int, ...] | None = field(default=None, metadata={"help": "hidden widths of the parent, e.g. 300,100 (default: the model's own)"})
    finders: tuple[str, ...] = field(default=("dense", "random", "random-search"), metadata={"help": "finders to run, comma-separated"})
    space: str = field(default="node", metadata={"help": "mask space: node (hidden units/channels, compacted) or weight (single weights)", "choices": ("node", "weight")})
    sparsities: tuple[float, ...] = field(default=(0.5, 0.8, 0.9, 0.95), metadata={"help": "sparsities in [0, 1), comma-separated: of hidden nodes (--space node) or of prunable weights (--space weight)"})
    allocation: str = field(default="per-layer", metadata={"help": "how scoring finders spread a sparsity over layers: per-layer (each layer alike) or global (one ranking)", "choices": ("per-layer", "global")})
    checks: tuple[str, ...] = field(default=(), metadata={"help": "sanity checks of every finder's mask: shuffle (layerwise), reinit (fresh init), invert (lowest scores kept)"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2, 3, 4), metadata={"help": "a count N (seeds 0..N-1) or a comma-separated list of seeds"})
    candidates: int = field(default=20, metadata={"help": "random-search: random masks sampled and scored"})
    proxy_steps: int = field(default=0, metadata={"help": "random-search: training steps before scoring (0 = validation loss at init)"})
    imp_rate: float = field(default=0.2, metadata={"help": "imp: fraction of the remaining weights (nodes) pruned per round (the classifier layer: half)"})
    rewind_steps: int = field(default=0, metadata={"help": "imp: rewind survivors to the dense parent after this many steps (0 = to init)"})
    score_samples: int = field(default=256, metadata={"help": "snip, grasp: training samples in the scoring batch"})
    synflow_iterations: int = field(default=100, metadata={"help": "synflow: pruning rounds (exponential schedule)"})
    evo_population: int = field(default=16, metadata={"help": "evolution: masks per generation"})
    generations: int = field(default=10, metadata={"help": "evolution: generations"})
    halving_eta: int = field(default=3, metadata={"help": "halving: keep the best 1/eta at every rung, eta x the steps"})
    halving_steps: int = field(default=8, metadata={"help": "halving: training steps of every candidate at the first rung"})
    objectives: tuple[str, ...] = field(default=(), metadata={"help": "nsga2: accuracy and one cost to trade it against: latency, params or flops (runs the nsga2 finder; default accuracy,latency)"})
    front_size: int = field(default=6, metadata={"help": "nsga2: sub-networks of the found front trained in full, each beside a random one of its size"})
    nsga_steps: int = field(default=50, metadata={"help": "nsga2: training steps of every candidate before its proxy accuracy is read"})
    controls: int = field(default=1, metadata={"help": "random controls per sparsity and seed: the report compares a finder with their mean"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or auto", "choices": ("cpu", "cuda", "auto")})
    population: int = field(default=128, metadata={"help": "most same-shape sub-networks trained at once (fewer if memory is short); 1 trains one at a time"})
    executor: str = field(default="local", metadata={"help": "local (this process) or ray (populations as Ray tasks; see --address)", "choices": ("local", "ray")})
    address: str | None = field(default=None, metadata={"help": "ray: the cluster's address, e.g. 10.0.0.5:6379, or auto for the one ray start runs on this machine (default: start Ray for this run)"})
    threads: int | None = field(default=None, metadata={"help": "torch threads per training process (ray: CPUs per task); numbers depend on it (default: torch's own, the driver's with ray)"})
    train: TrainSpec = field(default_factory=TrainSpec)

    def __post_init__(self) -> None:
        # --objectives is the hardware-aware search: it runs the nsga2 finder without naming it
        if self.objectives and "nsga2" not in self.finders:
            object.__setattr__(self, "finders", (*self.finders, "nsga2"))

    def validate(self) -> "RunSpec":
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
        _check_choice("space", self.space, RunSpec)
        _check_choice("allocation", self.allocation, RunSpec)
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
        if not 0.0 < self.imp_rate < 1.0:
            raise SparsenasError(f"--imp-rate must be in (0, 1), got {self.imp_rate}; e.g. --imp-rate 0.2")
        if self.rewind_steps < 0:
            raise SparsenasError(f"--rewind-steps must be 0 or more, got {self.rewind_steps}")
        for name in ("score_samples", "synflow_iterations", "evo_population", "halving_steps"):
            _positive(name.replace("_", "-"), getattr(self, name))
        if self.generations < 0:
            raise SparsenasError(f"--generations must be 0 or more, got {self.generations}")
        if self.halving_eta < 2:
            raise SparsenasError(f"--halving-eta must be at least 2, got {self.halving_eta}")
        if len({round(s, 6) for s in self.sparsities}) != len(self.sparsities):
            raise SparsenasError(f"sparsities listed twice in {','.join(map(str, self.sparsities))}; list each once")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0 or max(self.seeds) >= 2**63:
            raise SparsenasError(f"seeds must be distinct integers in [0, 2^63), got {_short(self.seeds)}; e.g. --seeds 5")
        _positive("epochs", self.train.epochs)
        _positive("batch-size", self.train.batch_size)
        _positive("candidates", self.candidates)
        _positive("controls", self.controls)
        _positive("population", self.population)
        if self.controls > 1000:
            raise SparsenasError(f"--controls {self.controls} is more than 1000 random controls per cell; a few to a few dozen is plenty")
        if not (math.isfinite(self.train.lr) and self.train.lr > 0):
            raise SparsenasError(f"--lr must be a positive number, got {self.train.lr}")
        if not 0.0 <= self.train.momentum < 1.0:
            raise SparsenasError(f"--momentum must be in [0, 1), got {self.train.momentum}")
        if not (math.isfinite(self.train.weight_decay) and self.train.weight_decay >= 0):
            raise SparsenasError(f"--weight-decay must be 0 or a positive number, got {self.train.weight_decay}")
        if self.proxy_steps < 0:
            raise SparsenasError(f"--proxy-steps must be 0 or more, got {self.proxy_steps}")
        if self.widths is not None and (not self.widths or min(self.widths) < 1):
            raise SparsenasError(f"--widths must be positive integers, got {self.widths}; e.g. --widths 300,100")
        if self.limit is not None:
            _positive("limit", self.limit)
        for name in ("optimizer", "schedule"):
            _check_choice(name, getattr(self.train, name), TrainSpec)
        _check_choice("device", self.device, RunSpec)
        _check_choice("executor", self.executor, RunSpec)
        if self.objectives:
            from ..finders.nsga2 import COSTS

            objs = tuple(self.objectives)
            if len(objs) != 2 or objs[0] != "accuracy" or objs[1] not in COSTS:
                raise SparsenasError(
                    f"--objectives {','.join(objs)} is not accuracy and one cost; use accuracy,latency or accuracy,params or accuracy,flops"
                )
        if "nsga2" in self.finders:
            _positive("front-size", self.front_size)
            _positive("nsga-steps", self.nsga_steps)
            if self.front_size > self.evo_population:
                raise SparsenasError(f"--front-size {self.front_size} is more than --evo-population {self.evo_population}; "
                                     "raise --evo-population or lower --front-size")
        if self.address is not None and self.executor != "ray":
            raise SparsenasError(f"--address {self.address} is for --executor ray; add --executor ray or drop --address")
        if self.threads is not None:
            _positive("threads", self.threads)
        return self

    def identity(self) -> dict[str, Any]:
        """The spec as JSON-able data without runtime fields: what a run directory is bound to."""
        d = dataclasses.asdict(self)
        for k in RUNTIME_FIELDS:
            d.pop(k)
        return json.loads(json.dumps(d))  # tuples -> lists, as they come back from the store


def _short(xs: tuple) -> str:
    return str(xs) if len(xs) <= 6 else f"({', '.join(map(str, xs[:3]))}, ..., {xs[-1]})"


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise SparsenasError(f"--{name} must be at least 1, got {value}")


def _check_choice(name: str, value: str, owner: type) -> None:
    choices = next(f.metadata["choices"] for f in dataclasses.fields(owner) if f.name == name)
    if value not in choices:
        raise SparsenasError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")


# -- flat view: CLI flags and spec-file keys ------------------------------------------------------



@dataclass(frozen=True)
class Option:
    """One flat option: a CLI flag ``--name-with-dashes`` and a spec-file key ``name_with_underscores``."""

    name: str
    type: Any  # resolved annotation, e.g. tuple[float, ...] or int | None
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def options() -> list[Option]:
    """RunSpec's fields with TrainSpec's spliced in place of `train`: one flat namespace of options."""
    out = []
    for owner in (RunSpec, TrainSpec):
        hints = get_type_hints(owner)
        for f in dataclasses.fields(owner):
            if f.name != "train":
                out.append(Option(f.name, hints[f.name], f.default, f.metadata.get("help", "")))
    return out


def parse_value(opt: Option, value: Any, source: str | None = None) -> Any:
    """Coerce a flag string (or a value from spec file `source`) to the option's type.

    A value that does not fit raises a one-line `SparsenasError` naming the flag or the file's key.

    >>> opt = next(o for o in options() if o.name == "sparsities")
    >>> parse_value(opt, "0.5,0.9")
    (0.5, 0.9)
    """
    tp = opt.type
    if value is None and type(None) in get_args(tp):
        return None
    if type(None) in get_args(tp):  # X | None -> X
        tp = next(a for a in get_args(tp) if a is not type(None))
    try:
        if opt.name == "seeds":
            return _parse_seeds(value)
        if get_origin(tp) is tuple:
            elem = get_args(tp)[0]
            if isinstance(value, dict):
                raise TypeError  # a table is no list, even if Python would iterate its keys
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(_scalar(elem, v) for v in items if not (isinstance(v, str) and not v.strip()))
        return _scalar(tp, value)
    except (TypeError, ValueError):
        what = opt.flag if source is None else f"key '{opt.name}' in '{source}'"
        kind = f"a count in [1, {MAX_SEEDS}] or a comma-separated list of seeds" if opt.name == "seeds" else _type_word(tp)
        raise SparsenasError(f"{what} must be {kind}, got {value!r}") from None


def _parse_seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int) or (isinstance(value, str) and "," not in value):
        n = _scalar(int, value)
        if not 1 <= n <= MAX_SEEDS:
            raise ValueError
        return tuple(range(n))
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(_scalar(int, v) for v in items if not (isinstance(v, str) and not v.strip()))


def _scalar(tp: type, v: Any) -> Any:
    if isinstance(v, bool) or isinstance(v, (list, dict)):
        raise TypeError  # True is an int to Python, never to a user
    if tp is int:
        if isinstance(v, float) and not v.is_integer():
            raise ValueError
        return int(v) if not isinstance(v, str) else int(v.strip())
    if tp is float:
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise TypeError
        return v.strip()
    raise TypeError(tp)


def _type_word(tp: Any) -> str:
    if get_origin(tp) is tuple:
        plural = {int: "integers", float: "numbers", str: "names"}[get_args(tp)[0]]
        return f"a comma-separated list of {plural}"
    return {int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML spec file into {field name: typed value}, rejecting unknown keys.

    >>> import pathlib, tempfile; p = pathlib.Path(tempfile.mkdtemp()) / "spec.toml"
    >>> _ = p.write_text("epochs = 5\\nsparsities = [0.5, 0.9]\\n"); load_spec_file(p)
    {'epochs': 5, 'sparsities': (0.5, 0.9)}
    """
    p = Path(path)
    if p.is_dir():
        raise SparsenasError(f"spec file '{p}' is a directory; pass a .toml or .yaml file to --config")
    if not p.is_file():
        raise SparsenasError(f"spec file '{p}' not found; pass an existing .toml or .yaml file to --config")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SparsenasError(f"cannot read spec file '{p}' ({e}); pass a UTF-8 .toml or .yaml file") from None
    try:
        if p.suffix.lower() == ".toml":
            raw = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raise SparsenasError(f"spec file '{p}' must end in .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as e:
        raise SparsenasError(f"spec file '{p}' is not valid TOML ({e}); fix the line it names") from None
    except Exception as e:  # yaml.YAMLError, without importing yaml at module load
        if isinstance(e, SparsenasError):
            raise
        msg = str(e).replace("\n", " ")
        raise SparsenasError(f"spec file '{p}' is not valid YAML ({msg}); fix the line it names") from None
    if not isinstance(raw, dict):
        raise SparsenasError(f"spec file '{p}' must hold a table of keys such as 'epochs = 20'")
    known = {o.name: o for o in options()}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise SparsenasError(
                f"unknown key '{key}' in spec file '{p}'; known keys: {', '.join(sorted(known))}"
            )
        out[name] = parse_value(known[name], value, str(p))
    return out


def build_spec(values: dict[str, Any]) -> RunSpec:
    """A validated RunSpec from flat {field name: value} (defaults for what is missing).

    >>> build_spec({"epochs": 3, "sparsities": (0.5,)}).train.epochs
    3
    """
    train_names = {f.name for f in dataclasses.fields(TrainSpec)}
    train = TrainSpec(**{k: v for k, v in values.items() if k in train_names})
    run = {k: v for k, v in values.items() if k not in train_names}
    return RunSpec(**run, train=train).validate()
