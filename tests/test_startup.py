"""Issue 16's fast start and busy-machine default: what each command imports, the kept `list`, and the
OpenMP wait policy the entry point sets before torch loads. Behaviour only; the timings live in
benchmarks/startup.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from report_fixtures import ACC, store

from sparsenas.export.exporter import ratio, steady
from sparsenas.timing import Latency

HEAVY = ("torch", "numpy", "matplotlib", "pymoo", "scipy", "sklearn", "ray", "rich", "pandas", "sympy")


def _python(code: str, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SPARSENAS_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # never the user's own cache folder
    return env | extra


# run a command through the entry point and report, on stderr's last line, which heavy modules it imported
COMMAND = f"""
import sys
from sparsenas.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("imported:", ",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _imported(r: subprocess.CompletedProcess) -> set[str]:
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("imported:"), r.stderr
    return {m for m in line.removeprefix("imported:").strip().split(",") if m}


def test_importing_the_command_line_imports_no_heavy_library():
    r = _python(f"import sys, sparsenas.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


def test_help_imports_no_torch(tmp_path):
    r = _python(COMMAND, "--help", env=_env(tmp_path))
    assert r.returncode == 0 and "{run,report,list,export,forget,bench}" in r.stdout
    assert _imported(r) == set()


def test_a_run_without_its_report_imports_only_what_training_needs(tmp_path):
    args = ("run", "--limit", "100", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5", "--no-report", "--quiet")
    r = _python(COMMAND, *args, "--out", str(tmp_path / "run"), env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    # sympy came with torch.autograd.grad's grad_outputs (0.4 s), rich with bars a quiet run never draws (0.14 s);
    # plots, pymoo and Ray come with the report and other finders
    assert not _imported(r) & {"sympy", "rich", "matplotlib", "pymoo", "ray"}, r.stderr


def test_list_is_kept_and_then_printed_without_torch(tmp_path):
    first = _python(COMMAND, "list", env=_env(tmp_path))
    assert first.returncode == 0 and "torch" in _imported(first)  # rendered from the live registries
    assert "  random-search " in first.stdout and "  lenet-300-100 " in first.stdout and "  digits " in first.stdout
    second = _python(COMMAND, "list", env=_env(tmp_path))
    assert second.returncode == 0 and second.stdout == first.stdout
    assert _imported(second) == set()
    assert len(list((tmp_path / "cache" / "sparsenas").glob("list-*.txt"))) == 1


def test_list_shows_a_plugins_finder_even_when_a_list_is_kept(tmp_path):
    user = tmp_path / "my_finder.py"
    user.write_text(
        textwrap.dedent(
            """
            from sparsenas.finders import Finder, register

            @register
            class Mine(Finder):
                name, help = "mine-startup", "test: a finder registered in the user's file"
            """
        )
    )
    assert _python(COMMAND, "list", env=_env(tmp_path)).returncode == 0  # keeps the built-ins' list
    r = _python(COMMAND, "list", "--import", str(user), env=_env(tmp_path))
    assert r.returncode == 0 and "  mine-startup " in r.stdout and "  random-search " in r.stdout


def test_a_kept_list_of_other_source_is_not_read(tmp_path, monkeypatch):
    from sparsenas.cli import catalog

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SPARSENAS_CACHE")  # the folder comes from XDG_CACHE_HOME, as on a user's machine
    monkeypatch.setattr(catalog, "REGISTRY_MODULES", ())  # as in a fresh process: no registry imported yet
    (tmp_path / "sparsenas").mkdir()
    (tmp_path / "sparsenas" / "list-0000000000000000.txt").write_text("stale\n")
    assert catalog.catalog() == catalog.render()
    assert (tmp_path / "sparsenas" / f"list-{catalog.source_hash()}.txt").read_text() == catalog.render()


def test_report_verdict_imports_no_figures_and_no_torch(tmp_path):
    run_dir = store(tmp_path / "run", list(ACC))
    r = _python(COMMAND, "report", str(run_dir), "--verdict", env=_env(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("Finder − the random control with uniform per-layer counts"), r.stderr
    assert "\n| finder |" in r.stdout
    assert _imported(r) <= {"numpy", "scipy"}  # the statistics need scipy; the figures and the spec section are not drawn


def test_the_report_layer_still_exports_every_name():
    import sparsenas.report as report
    from sparsenas.report import stats

    assert all(getattr(report, name) is not None for name in report.__all__)
    assert report.verdict is stats.verdict  # the function, as before, not the submodule report/verdict.py


# what the OpenMP runtime is told, seen from the user's code, which `--import` runs before torch loads
PROBE = """
import os, sys
print("policy:", os.environ.get("OMP_WAIT_POLICY"), "torch loaded:", "torch" in sys.modules, file=sys.stderr)
import torch
torch.ones(1)
"""


@pytest.mark.parametrize("given,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_wait_policy_is_passive_before_torch_loads_unless_the_user_chose(tmp_path, given, expected):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = _env(tmp_path, OMP_DISPLAY_ENV="VERBOSE") | ({"OMP_WAIT_POLICY": given} if given else {})
    r = subprocess.run(
        [sys.executable, "-m", "sparsenas", "list", "--import", str(probe)], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr
    assert f"policy: {expected} torch loaded: False" in r.stderr
    if "GOMP_SPINCOUNT" in r.stderr:  # torch's OpenMP is GNU libgomp, which prints what it read (OMP_DISPLAY_ENV)
        assert f"OMP_WAIT_POLICY = '{expected}'" in r.stderr
        assert ("GOMP_SPINCOUNT = '0'" in r.stderr) == (expected == "PASSIVE")  # PASSIVE: no spinning at all


def test_main_leaves_the_policy_alone_once_torch_is_loaded():
    r = _python(
        """
        import os, torch
        from sparsenas.cli import quiet_openmp
        quiet_openmp()
        print(os.environ.get("OMP_WAIT_POLICY"))
        """,
        env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"},
    )
    assert r.stdout.strip() == "None", r.stderr  # an API caller's process: too late to matter, so not changed


def test_an_unstable_latency_gets_no_speed_up():
    steady_ms, wide = Latency(1, 2.0, 1.9, 2.1, 50, 1), Latency(1, 5.0, 0.054, 23.99, 50, 1)
    assert steady(steady_ms) and not steady(wide)
    assert ratio(steady_ms, Latency(1, 1.0, 0.95, 1.05, 50, 1)) == "x2.00"
    assert ratio(wide, steady_ms) == ratio(steady_ms, wide) == "speed-up unstable"
    assert not steady(Latency(1, 0.0, 0.0, 0.0, 50, 1))  # a zero median divides nothing
