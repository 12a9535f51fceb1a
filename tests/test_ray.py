"""The Ray executor on a real Ray cluster on loopback (a head and two worker nodes, started with
`ray start`): same numbers as the local executor, a worker killed mid-task loses and duplicates
nothing, user-registered models reach the workers, and bad addresses are one-line errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import tiny_spec
from sparsenas.errors import SparsenasError
from sparsenas.finders.base import Finder, register
from sparsenas.models import MODELS
from sparsenas.protocol import run
from sparsenas.store import Store

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    near = Path(sys.executable).with_name("ray")
    return str(near) if near.exists() else (shutil.which("ray") or "ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node (no CPUs: tasks go to the workers) and two 1-CPU worker nodes, all on 127.0.0.1."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # loopback only, no token: independent of a ~/.ray/auth_token another Ray left on this machine
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the driver side (this process) alike
    common = ["--node-ip-address", "127.0.0.1", "--block", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    logs = tmp_path_factory.mktemp("ray-nodes")

    def start(name: str, *args: str) -> subprocess.Popen:
        with open(logs / f"{name}.log", "ab") as log:
            p = subprocess.Popen([_ray_cli(), "start", *args, *common], env=env, start_new_session=True,
                                 stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    def stop(p: subprocess.Popen) -> None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)

    try:  # whatever fails while starting, the nodes started so far are taken down below
        start("head", "--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard", "false")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        try:
            # one worker node at a time (two starting at once have been seen to race on a busy
            # machine and leave one out); a node that has not joined in a minute is replaced
            for n in (1, 2):
                for attempt in range(3):
                    p = start(f"worker{n}-{attempt}", "--address", address, "--num-cpus", "1")
                    until = time.monotonic() + 60
                    while ray.cluster_resources().get("CPU", 0) < n and time.monotonic() < until:
                        time.sleep(0.5)
                    if ray.cluster_resources().get("CPU", 0) >= n:
                        break
                    stop(p)
                else:
                    tails = {f.name: f.read_text()[-400:] for f in sorted(logs.iterdir())}
                    raise AssertionError(f"worker node {n} did not join the loopback cluster; logs: {tails}")
        finally:
            ray.shutdown()
        yield address
    finally:
        for p in reversed(procs):  # --block: the `ray start` process takes its node down with it
            stop(p)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _numbers(run_dir) -> dict:
    """Everything a trial's numbers are, per key (not wall time, device or search seconds)."""
    with Store(run_dir) as s:
        return {
            t.key: (t.finder, t.sparsity, t.seed, t.status, t.final_test_acc, t.kept_nodes, t.node_mask, t.population,
                    t.kept_weights, [(e.train_loss, e.val_loss, e.val_acc, e.test_acc) for e in t.curve])
            for t in s.trials()
        }


def _kill_first_training_task(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first worker process that is training a population (Ray titles it by task name)."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::sparsenas_train"):
                time.sleep(0.3)  # let it get into the training loop
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_worker_killed_mid_task_loses_and_duplicates_nothing(cluster, tmp_path):
    # long enough (about a second per population) that the watcher catches a task mid-training
    spec = dict(finders=("dense", "random", "random-search"), controls=2, seeds=(0, 1), epochs=12, limit=None, threads=1)
    run(tiny_spec(**spec), tmp_path / "local")
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_first_training_task, args=(killed, stop), daemon=True)
    watcher.start()
    try:
        summary = run(tiny_spec(**spec, executor="ray", address=cluster), tmp_path / "ray")
    finally:
        stop.set()
        watcher.join(5)
    assert killed, "no training task was seen to kill"
    assert summary.ran == summary.planned == 14 and summary.skipped == 0
    with Store(tmp_path / "ray") as s:
        assert len(s) == 14 and len(s.done_keys()) == 14
        assert all(len(t.curve) == 13 for t in s.trials())  # epochs 0..12, none written twice
        assert "ray" in s.sessions()[-1]["executor"]
    assert _numbers(tmp_path / "ray") == _numbers(tmp_path / "local")  # bit for bit, the re-run task included


class _TwoLayer(nn.Sequential):
    pass


@MODELS.register("test-ray-seq", help="test: a plain nn.Sequential registered by the test module")
def _seq(input_shape, num_classes, widths=None):
    w = widths or (24, 12)
    return _TwoLayer(nn.Flatten(), nn.Linear(64, w[0]), nn.GELU(), nn.Linear(w[0], w[1]), nn.ReLU(), nn.Linear(w[1], num_classes))


@pytest.mark.slow
def test_user_model_and_weight_space_reach_the_workers(cluster, tmp_path):
    spec = dict(model="test-ray-seq", widths=None, finders=("random", "magnitude", "snip"), space="weight",
                sparsities=(0.9,), seeds=(0,), epochs=3, threads=1)
    run(tiny_spec(**spec), tmp_path / "local")
    run(tiny_spec(**spec, executor="ray", address=cluster), tmp_path / "ray")
    assert _numbers(tmp_path / "ray") == _numbers(tmp_path / "local")
    with Store(tmp_path / "ray") as s, Store(tmp_path / "local") as l:
        for t in s.trials():
            assert s.weight_mask(t.key) == l.weight_mask(t.key) and s.weights(t.key) is not None


@pytest.mark.slow
def test_tasks_no_node_can_take_are_refused(cluster, tmp_path):
    with pytest.raises(SparsenasError, match="largest Ray node has 1; pass --threads 1"):
        run(tiny_spec(executor="ray", address=cluster, threads=2), tmp_path / "a")
    if not torch.cuda.is_available():
        with pytest.raises(SparsenasError, match="no node of the Ray cluster has a GPU"):
            run(tiny_spec(executor="ray", address=cluster, threads=1, device="cuda"), tmp_path / "b")


def test_unreachable_address_is_a_one_line_error(tmp_path):
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(SparsenasError, match="no Ray cluster answers"):
        run(tiny_spec(executor="ray", address=f"127.0.0.1:{port}"), tmp_path)
    assert time.monotonic() - t0 < 30
    with pytest.raises(SparsenasError, match="not HOST:PORT"):
        run(tiny_spec(executor="ray", address="nowhere"), tmp_path / "b")
    with pytest.raises(SparsenasError, match="is for --executor ray"):
        tiny_spec(address="127.0.0.1:6379")


def test_ray_missing_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(SparsenasError, match=r"pip install 'sparsenas\[ray\]'"):
        run(tiny_spec(executor="ray"), tmp_path)


def test_threads_option_sets_and_restores_torch_threads(tmp_path):
    before = torch.get_num_threads()
    with pytest.raises(SparsenasError, match="--threads"):
        tiny_spec(threads=0)
    run(tiny_spec(seeds=(0,), sparsities=(0.5,), epochs=1, threads=1), tmp_path)
    assert torch.get_num_threads() == before
    with Store(tmp_path) as s:
        assert s.sessions()[-1]["threads"] == 1 and s.sessions()[-1]["executor"] == "local"


@pytest.mark.slow
def test_without_address_a_fresh_local_ray_runs_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = dict(seeds=(0,), epochs=2, threads=1)
    run(tiny_spec(**spec), tmp_path / "local")
    summary = run(tiny_spec(**spec, executor="ray"), tmp_path / "ray")
    assert summary.ran == 5 and not ray.is_initialized()  # the run's own Ray is gone with it
    assert _numbers(tmp_path / "ray") == _numbers(tmp_path / "local")


@register
class _Failing(Finder):
    name = "test-ray-failing"
    help = "test: a finder that fails in the worker"
    spaces = ("node",)

    def find(self, ctx):
        if ctx.sparsity > 0.6:
            raise ValueError("bad value\nsecond line")
        raise SparsenasError("this finder needs a larger --limit")


@pytest.mark.slow
@pytest.mark.parametrize("sparsity, message", [
    (0.5, r"^this finder needs a larger --limit$"),
    (0.8, r"^a Ray task failed \(ValueError: bad value\); finished populations are stored"),
])
def test_worker_errors_arrive_as_their_own_one_line_message(cluster, tmp_path, sparsity, message):
    spec = tiny_spec(finders=("test-ray-failing",), sparsities=(sparsity,), seeds=(0,), executor="ray", address=cluster, threads=1)
    with pytest.raises(SparsenasError, match=message):
        run(spec, tmp_path)
