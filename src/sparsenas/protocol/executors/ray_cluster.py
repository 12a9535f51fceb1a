"""The Ray executor (`--executor ray`): a run's populations trained as Ray tasks, the driver the only writer.

The driver plans the run and binds the store as for the local executor. Each seed's finds are one
task (`find_seed`: the seed's finders share work through one memo); once every seed's are back, the
driver cuts them into populations across seeds by the same code as locally (`run_populations`), and
each population is one training task (`train_members`). A task returns plain data (records, packed masks, packed weights), and the driver
writes each population in one transaction as it arrives, so the store has one writer and a run
killed at any moment resumes as a local one does.

Same numbers as local: a task rebuilds its seeds' parents from the seeds, trains with the same code,
and sets torch's thread count to the driver's (or `--threads`; a task asks Ray for that many CPUs),
because a matrix product's rounding depends on how many threads split it.

A worker that dies mid-task (killed, out of memory, its node lost) makes Ray run the task again
(`max_retries`); the task is a pure function of its inputs, and the driver stores the one result
that comes back, so nothing is lost and nothing written twice.

User-registered datasets, models and finders (a script's `@MODELS.register`) are not in a worker's
registries: the driver sends its registries' entries that live outside sparsenas with every task,
pickled by value where they were defined in `__main__` (cloudpickle), and the worker adds them.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import torch

from ...data import DATASETS, Dataset
from ...errors import SparsenasError
from ...finders import FINDERS
from ...finders.base import Found
from ...models import MODELS, build_parent
from ...registry import Registry
from ...runtime import resolve_device
from ..members import EpochHook, Trained, train_members
from ..plan import PlannedTrial
from ..populations import find_seed, run_populations
from ..spec import RunSpec
from .base import Driver, Executor, register

RETRIES = 3  # re-runs of a task whose worker died, before the run stops (what is stored stays)
_REGISTRIES: dict[str, Registry] = {"dataset": DATASETS, "model": MODELS, "finder": FINDERS}

Entries = list[tuple[str, str, Any, str]]  # (registry kind, name, object, help)


def _ship_by_value(entries: Entries) -> None:
    """Have cloudpickle send the code of user entries defined in the user's own files (a script, a
    test module, a project folder) by value: a worker may not be able to import those files. Code
    from installed packages (site-packages) goes by reference, as the workers have it installed."""
    import ray.cloudpickle as cloudpickle

    for _, _, obj, _ in entries:
        module = sys.modules.get(getattr(obj, "__module__", ""))
        path = getattr(module, "__file__", None) or ""
        if module is not None and module.__name__ != "__main__" and path and "-packages" not in path:
            cloudpickle.register_pickle_by_value(module)


def user_entries() -> Entries:
    """Registry entries defined outside sparsenas: what a worker must be sent to run this spec.

    >>> [name for _, name, _, _ in user_entries() if name in ("mlp", "digits", "snip")]  # shipped ones stay home
    []
    """
    out = []
    for kind, reg in _REGISTRIES.items():
        for e in reg.entries():
            if not getattr(e.obj, "__module__", "sparsenas").startswith("sparsenas."):
                out.append((kind, e.name, e.obj, e.help))
    return out


def install_entries(entries: Entries) -> None:
    """Register `entries` in this process where missing (a worker runs many tasks)."""
    for kind, name, obj, help in entries:
        reg = _REGISTRIES[kind]
        if name not in reg:
            reg.register(name, help)(obj)


def _prepare(entries: Entries, threads: int) -> None:
    install_entries(entries)
    torch.set_num_threads(threads)


def _seed_task(entries: Entries, threads: int, spec: RunSpec, data: Dataset, seed: int, trials: list[PlannedTrial], memo: dict):
    _prepare(entries, threads)
    device = resolve_device(spec.device)
    _, found = find_seed(spec, data.to(device), seed, trials, device, memo)
    return found, memo  # the memo now holds the seed's front-finder state, for the driver to store


def _train_task(entries: Entries, threads: int, spec: RunSpec, data: Dataset, members: list[tuple[PlannedTrial, Found]]) -> Trained:
    _prepare(entries, threads)
    device = resolve_device(spec.device)
    data = data.to(device)
    seeds = dict.fromkeys(t.seed for t, _ in members)
    parents = {s: build_parent(spec.model, data.input_shape, data.num_classes, s, spec.widths).to(device) for s in seeds}
    return train_members(parents, data, spec, members)


def _check_reachable(address: str) -> None:
    # ray.init retries an unreachable address for minutes; a closed port should fail in seconds
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SparsenasError(f"--address '{address}' is not HOST:PORT; pass the address 'ray start --head' printed, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise SparsenasError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one with 'ray start --head --port {port}' or fix --address"
        ) from None


def connect(address: str | None) -> bool:
    """Connect to the cluster at `address`, or start a Ray of this run's own on loopback (None).
    True if this call started or joined Ray (so the run disconnects at its end); False if the
    caller already had."""
    try:
        import ray
    except ImportError:
        raise SparsenasError("--executor ray needs Ray; install it with: pip install 'sparsenas[ray]'") from None
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a run
    if address is not None and address != "auto":  # auto: the cluster `ray start` left on this machine
        _check_reachable(address)
    saved = os.environ.get("RAY_AUTH_MODE")
    if address is None and saved is None:
        # the run's own Ray listens on loopback only, so it needs no token; without this Ray 2.60
        # writes ~/.ray/auth_token, and every later `ray start --head` then demands that token
        os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        if address is None:
            # "local", not None: None would join whatever cluster a stale /tmp/ray/ray_current_cluster
            # names, and wait for it forever if that cluster is gone
            ray.init(
                address="local", _node_ip_address="127.0.0.1", include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False
            )
        else:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        text = str(e)
        if "auth" in text.lower() or "token" in text.lower():
            raise SparsenasError(
                f"the Ray cluster at {address} wants an authentication token; set RAY_AUTH_MODE=token (and "
                "RAY_AUTH_TOKEN, or the token in ~/.ray/auth_token) in this shell and re-run"
            ) from None
        raise SparsenasError(f"cannot start or join Ray ({text.splitlines()[0]}); check --address and 'ray status'") from None
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
    return True


def _check_feasible(cpus: int, gpus: int) -> None:
    """Refuse tasks no node can take: Ray would queue them forever."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        most = max((int(r.get("CPU", 0)) for r in nodes), default=0)
        if gpus and not any(r.get("GPU", 0) >= gpus for r in nodes):
            raise SparsenasError("--device cuda, but no node of the Ray cluster has a GPU; use --device cpu or add GPU nodes")
        raise SparsenasError(
            f"each task asks for {cpus} CPUs (--threads) but the largest Ray node has {most}; pass --threads {max(most, 1)}"
        )


@register
class RayExecutor(Executor):
    name = "ray"
    help = "Ray tasks: one per seed's finds, one per population; on a cluster (--address) or a Ray of the run's own"
    epoch_progress = False  # workers report whole populations

    def data_device(self, spec: RunSpec) -> torch.device:
        return torch.device("cpu")  # the driver only ships the data; the workers place it

    def execute(
        self,
        spec: RunSpec,
        data: Dataset,
        pending: Sequence[PlannedTrial],
        driver: Driver,
        on_epoch: EpochHook | None = None,
    ) -> None:
        # the driver's thread count (set from --threads by the runner): a task must split its
        # matrix products the same way for the same bits
        run_on_ray(spec, data, pending, driver, threads=torch.get_num_threads())


def run_on_ray(spec: RunSpec, data: Dataset, pending: Sequence[PlannedTrial], driver: Driver, threads: int) -> None:
    """Find and train `pending` on Ray; `driver.commit` (in this process) stores each population as it ends.

    >>> run_on_ray(RunSpec(executor="ray"), None, [], None, 1)  # nothing pending: Ray is not even started
    """
    if not pending:
        return
    joined = connect(spec.address)  # first: it turns a missing Ray into a one-line error
    import ray
    from ray.exceptions import RayError, RayTaskError

    waiting: dict[Any, tuple[str, Any]] = {}
    try:
        gpus = 1 if spec.device == "cuda" else 0
        _check_feasible(threads, gpus)
        options = dict(num_cpus=threads, num_gpus=gpus, max_retries=RETRIES, retry_exceptions=False)
        seed_task = ray.remote(_seed_task).options(name="sparsenas_find", **options)
        train_task = ray.remote(_train_task).options(name="sparsenas_train", **options)
        entries = user_entries()
        _ship_by_value(entries)
        data_ref = ray.put(data.to("cpu"))
        seeds = list(dict.fromkeys(t.seed for t in pending))
        found: dict[int, list] = {}  # seed -> its found trials; populations are cut once all are back
        for seed in seeds:
            trials = [t for t in pending if t.seed == seed]
            waiting[seed_task.remote(entries, threads, spec, data_ref, seed, trials, driver.state(seed))] = ("find", seed)
        while waiting:
            [ref], _ = ray.wait(list(waiting), num_returns=1)
            kind, what = waiting.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as e:
                cause = e.cause  # the worker's own exception, not Ray's traceback text around it
                if isinstance(cause, SparsenasError):
                    raise SparsenasError(str(cause)) from None
                first = (str(cause).strip().splitlines() or [""])[0]
                raise SparsenasError(
                    f"a Ray task failed ({type(cause).__name__}: {first}); "
                    "finished populations are stored, re-run the same command to resume"
                ) from None
            except RayError as e:
                raise SparsenasError(
                    f"a Ray task was lost after {RETRIES} retries ({type(e).__name__}); finished "
                    "populations are stored, re-run the same command to resume"
                ) from None
            if kind == "find":
                found[what], memo = result
                driver.keep_state(what, memo)  # before any of the seed's front slots trains
                if len(found) < len(seeds):
                    continue
                # in plan order (seed-major), as the local executor cuts them
                for members in run_populations([x for s in seeds for x in found[s]]):
                    driver.started([t for t, _ in members])
                    waiting[train_task.remote(entries, threads, spec, data_ref, members)] = ("train", [t for t, _ in members])
            else:
                driver.commit(what, result)
    finally:
        if joined:
            ray.shutdown()  # our own Ray, or our connection: its tasks go with it
        else:
            for ref in waiting:  # the caller's Ray stays up: stop what this run started on it
                ray.cancel(ref, force=True)
