"""Memory: how many sub-networks fit in one population, and how much memory a run used at peak.

The population size is chosen from the device's *total* memory, not from what happens to be free at
the moment: free memory changes from run to run, and a population's members agree with their solo
twins only to fp32 rounding, so a size that moved with free memory would make the same spec give
different bits on the same machine. A cap (`--population`) bounds it from above.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

import torch
from torch import nn

from ..runtime import eval_mode
from .spec import TrainSpec
from .stacked import EVAL_ROWS, population_engine  # the evaluation chunks by EVAL_ROWS; its memory is planned here

CPU_FRACTION = 0.5  # of physical memory a population may plan for on the CPU
GPU_FRACTION = 0.8  # of a GPU's memory
# Evaluation through the BatchNorm graph (`stacked_graph`) frees each value after its last reader,
# so what it holds at once is a few layers' outputs (a residual block's input, the conv's output,
# the norm's), not all of them. Measured on resnet20 (1x28x28, 4096 rows of 16x28x28 widest
# outputs, 0.19 GiB each per member): 0.96 GiB held at K = 1 (5.0 widest) and 3.06 GiB at K = 4
# (4.0 widest per member). 6 leaves a fifth more. Other engines run eager forwards, which may hold
# every intermediate until they return: for them all activations count, as before.
EVAL_LIVE = 6


def total_memory(device: torch.device) -> int:
    """Bytes of memory the device has in all: physical RAM (or the container's cgroup limit, if
    lower) for the CPU, the card's memory for a GPU.

    >>> total_memory(torch.device("cpu")) > 0
    True
    """
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume a small laptop
        physical = 8 * 2**30
    # a container's limit (cgroup v2, then v1): planning with the host's RAM would get us killed
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            physical = min(physical, int(text))
    return physical


def activation_floats(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floats every leaf module outputs for one sample: a measure of activation memory.

    >>> activation_floats(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), (4,))
    10
    """
    return sum(_leaf_outputs(net, input_shape))


def widest_activation(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floats of the largest output any leaf module gives for one sample.

    >>> widest_activation(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), (4,))
    4
    """
    return max(_leaf_outputs(net, input_shape), default=0)


def _leaf_outputs(net: nn.Module, input_shape: tuple[int, ...]) -> list[int]:
    """Floats each leaf module outputs for one sample, in call order."""
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: sizes.append(o.numel()) if torch.is_tensor(o) else None)
        for m in net.modules()
        if not list(m.children())
    ]
    try:
        p = next(net.parameters())
        # eval: the net may be a run's parent at θ0, whose BatchNorm statistics a train-mode forward would move
        with torch.no_grad(), eval_mode(net):
            net(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
    return sizes


def eval_floats(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floats one evaluated sample holds at once: EVAL_LIVE widest outputs where the population runs
    the BatchNorm graph (values freed after their last reader), twice all activations elsewhere.
    (Counting all of them for the graph set aside 89 GiB for resnet20 on 28x28 inputs, and every
    ResNet population on a 24 GiB machine was a population of one.)

    >>> eval_floats(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), (4,))
    20
    """
    if population_engine(net) == "graph":
        return EVAL_LIVE * widest_activation(net, input_shape)
    return 2 * activation_floats(net, input_shape)


def member_bytes(net: nn.Module, input_shape: tuple[int, ...], spec: TrainSpec, masked: bool = False) -> int:
    """Estimated bytes one population member needs: weights, gradients, optimizer state (and a
    weight mask when `masked`), and its activations for a training batch (kept for backward, their
    gradients, one temporary each).

    >>> from sparsenas.models import build_parent
    >>> member_bytes(build_parent("lenet-300-100", (1, 28, 28), 10, 0), (1, 28, 28), TrainSpec()) > 266_610 * 12
    True
    """
    params = sum(p.numel() for p in net.parameters())
    states = (2 if spec.optimizer == "adam" else (1 if spec.momentum > 0 else 0)) + int(masked)
    # functional activations (ReLU called as a function) are not modules: count outputs twice
    act = 2 * activation_floats(net, input_shape)
    return 4 * (params * (2 + states) + 3 * act * spec.batch_size)


def population_size(
    net: nn.Module, input_shape: tuple[int, ...], spec: TrainSpec, device: torch.device, cap: int, masked: bool = False
) -> int:
    """How many members shaped like `net` (weight-masked when `masked`) one population holds: what
    fits, at most `cap`.

    >>> from sparsenas.models import build_parent
    >>> population_size(build_parent("mlp", (1, 8, 8), 10, 0), (1, 8, 8), TrainSpec(), torch.device("cpu"), 64)
    64
    """
    fraction = GPU_FRACTION if device.type == "cuda" else CPU_FRACTION
    budget = fraction * total_memory(device)
    # an evaluation chunk holds EVAL_ROWS samples' live activations whatever K is: set them aside
    budget -= 4 * eval_floats(net, input_shape) * EVAL_ROWS
    fits = int(budget // max(1, member_bytes(net, input_shape, spec, masked)))
    return max(1, min(cap, fits))


def reset_peak_memory(device: torch.device) -> int:
    """Start measuring peak memory afresh; returns the bytes held now.

    On Linux the process's peak resident set is reset (writing 5 to /proc/self/clear_refs), so what
    an earlier phase (loading data, an earlier run in the same process) held does not count; elsewhere
    the lifetime peak stands. On a GPU the allocator's peak statistics are reset.

    >>> reset_peak_memory(torch.device("cpu")) > 0
    True
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    release_memory()  # freed blocks must not count as resident
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    now = _status_bytes("VmRSS")
    return now if now is not None else peak_memory(device)


def peak_memory(device: torch.device) -> int:
    """Peak bytes held since the last `reset_peak_memory`: resident memory on the CPU (the lifetime
    peak where it cannot be reset), allocated memory on a GPU.

    >>> peak_memory(torch.device("cpu")) > 0
    True
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS reports bytes, Linux KiB


def _status_bytes(field: str) -> int | None:
    """A `kB` field of /proc/self/status in bytes (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def tune_malloc() -> bool:
    """Keep freed large blocks in glibc's heap instead of returning them to the kernel.

    Training allocates and frees the same few-MB tensors every step; glibc's default thresholds
    hand them back to the kernel and page-fault them in again, which measured up to 2x slower in
    the backward pass of a K=128 population. Returns False (and changes nothing) off glibc.

    >>> isinstance(tune_malloc(), bool)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def release_memory() -> bool:
    """Hand the heap's free pages back to the kernel (glibc `malloc_trim`); False off glibc.

    `reset_peak_memory` calls it: what was freed (a loader's temporaries, an earlier phase's
    tensors) would otherwise, with `tune_malloc`'s thresholds, stay resident and count as held.

    >>> isinstance(release_memory(), bool)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
