"""Finders declare their own options: typed, bounded, test-sized, one flag per name; spec files may
group them by finder; the report shows a finder's options only where the run used it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from helpers import shipped
from sparsenas.errors import SparsenasError
from sparsenas.finders import FINDERS, Finder, get_finder, register
from sparsenas.finders.options import FinderOptions
from sparsenas.protocol import RunSpec, build_spec, options
from sparsenas.report.runspec import spec_blocks


@pytest.mark.parametrize("name", shipped(FINDERS))
def test_every_finder_declares_typed_bounded_options_with_a_tiny_size(name):
    f = get_finder(name)
    assert issubclass(f.Options, FinderOptions) and f.options == tuple(x.name for x in dataclasses.fields(f.Options))
    tiny = f.Options.tiny()
    assert isinstance(tiny, f.Options)
    tiny.validate()  # test-size values are valid values
    for x in dataclasses.fields(f.Options):
        assert x.metadata.get("help"), f"{name}.{x.name} has no help"
        if "range" in x.metadata:
            lo, hi = x.metadata["range"]
            value = getattr(tiny, x.name)
            assert all(lo <= v <= hi for v in (value if isinstance(value, tuple) else (value,)))
    # the spec hands the finder exactly its declared options, typed
    assert RunSpec().options_for(name) == f.Options()


def test_a_shared_name_is_one_flag_whose_help_names_every_finder():
    by_name = {o.name: o for o in options()}
    assert by_name["candidates"].help.startswith("halving, lce-search, random-search: ")
    assert by_name["evo_population"].help == "evolution: masks per generation; nsga2: candidates per generation"
    spec = build_spec({"candidates": 9, "finders": ("dense", "random-search", "halving")})
    assert spec.options_for("halving").candidates == spec.options_for("random-search").candidates == 9


def test_a_disagreeing_declaration_is_refused_at_registration():
    @dataclass(frozen=True)
    class Other(FinderOptions):
        candidates: int = field(default=5, metadata={"help": "masks", "range": (1, 100_000)})

    class Clash(Finder):
        name = "test-clash"
        help = "declares candidates with another default"
        Options = Other

    with pytest.raises(SparsenasError, match=r"declares option 'candidates' with default 5, but .*random-search declares it with default 20"):
        register(Clash)
    assert "test-clash" not in FINDERS


def test_an_option_declared_implies_finder_adds_its_finder():
    assert RunSpec(objectives=("accuracy", "params")).finders == ("dense", "random", "random-search", "nsga2")
    assert RunSpec(objectives=()).finders == ("dense", "random", "random-search")


def test_values_are_checked_always_and_cross_field_checks_when_the_finder_runs():
    build_spec({"evo_population": 4, "finders": ("dense", "evolution")})  # nsga2's front is not asked for
    with pytest.raises(SparsenasError, match="^--front-size 6 is more than --evo-population 4; raise"):
        build_spec({"evo_population": 4, "finders": ("dense", "nsga2")})
    with pytest.raises(SparsenasError, match=r"^--imp-rate must be in \(0, 1\), got 1.5"):
        build_spec({"imp_rate": 1.5, "finders": ("dense", "random")})


def test_report_shows_the_options_of_the_finders_used_only():
    spec = RunSpec(finders=("dense", "random")).identity()
    blocks = spec_blocks(spec)
    tables = [b for b in blocks if b[0] == "table"]
    assert len(tables) == 1 and not {"candidates", "front_size", "imp_rate"} & {row[0] for row in tables[0][2]}
    rows = spec_blocks(RunSpec(finders=("dense", "snip", "synflow"), synflow_iterations=7).identity())[-1][2]
    assert rows == [["snip", "score_samples", "256"], ["synflow", "synflow_iterations", "7"]]


def test_a_user_finder_option_is_a_flag_and_a_spec_key(tmp_path):
    """examples/own_finder.py's option, set by `sparsenas run --layer-scale` and by a spec file's
    [options.init-magnitude] table: the same trial, so the second run resumes it."""
    import subprocess
    import sys
    from pathlib import Path

    from sparsenas.store import Store

    example = Path(__file__).parent.parent / "examples" / "own_finder.py"
    base = [sys.executable, "-m", "sparsenas", "run", "--import", str(example), "--finders", "init-magnitude", "--space", "weight",
            "--allocation", "global", "--sparsities", "0.9", "--seeds", "1", "--epochs", "1", "--limit", "100",
            "--widths", "16,8", "--out", str(tmp_path / "run"), "--quiet", "--no-report"]
    r = subprocess.run([*base, "--layer-scale", "fan-in"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    [trial] = Store(tmp_path / "run").trials()
    assert trial.spec["options"] == {"layer_scale": "fan-in"}
    (tmp_path / "s.toml").write_text('[options.init-magnitude]\nlayer_scale = "fan-in"\n')
    r = subprocess.run([*base, "--config", str(tmp_path / "s.toml")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 already stored, 0 run" in r.stdout, r.stderr
    r = subprocess.run([*base, "--layer-scale", "fan-out"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--layer-scale" in r.stderr and "fan-out" in r.stderr


@pytest.mark.parametrize("name", ["population", "out", "quiet", "epochs"])
def test_a_user_option_named_like_a_flag_every_run_has_is_one_line(tmp_path, name):
    # in a subprocess: the clashing finder must not stay registered for the rest of the suite
    import subprocess
    import sys

    user = tmp_path / "clash.py"
    user.write_text(
        "from dataclasses import dataclass, field\n"
        "from sparsenas.finders import Finder, register\n"
        "from sparsenas.finders.options import FinderOptions\n"
        "@dataclass(frozen=True)\n"
        f"class O(FinderOptions):\n    {name}: int = field(default=3, metadata={{'help': 'x', 'range': (1, 9)}})\n"
        "@register\n"
        "class C(Finder):\n    name, help, Options = 'test-flag-clash', 'test', O\n"
    )
    r = subprocess.run([sys.executable, "-m", "sparsenas", "run", "--import", str(user), "--finders", "dense", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"declares option '{name}', a name every run already has; rename the option" in r.stderr
