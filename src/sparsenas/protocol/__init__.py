"""Protocol layer: run spec, trial plan, runner."""

from .binding import bind_run_dir
from .members import run_trial
from .options import options
from .plan import PlannedTrial, make_plan, trial_key, trial_spec
from .runner import RunSummary, run
from .spec import RunSpec, build_spec
from .specfile import load_spec_file

__all__ = [
    "PlannedTrial",
    "RunSpec",
    "RunSummary",
    "bind_run_dir",
    "build_spec",
    "load_spec_file",
    "make_plan",
    "options",
    "run",
    "run_trial",
    "trial_key",
    "trial_spec",
]
