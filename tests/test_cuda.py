"""The CUDA path (skipped without a GPU; CI has none): same protocol, same masks, deterministic."""

from __future__ import annotations

import pytest
import torch

from sparsenas.protocol import run
from sparsenas.store import Store

from helpers import tiny_spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def _by_key(out):
    return {t.key: t for t in Store(out).trials()}


def test_cuda_run_is_deterministic_and_agrees_with_cpu(tmp_path):
    run(tiny_spec(device="cuda"), tmp_path / "gpu1")
    run(tiny_spec(device="auto"), tmp_path / "gpu2")
    run(tiny_spec(device="cpu"), tmp_path / "cpu")
    g1, g2, cpu = _by_key(tmp_path / "gpu1"), _by_key(tmp_path / "gpu2"), _by_key(tmp_path / "cpu")
    assert g1.keys() == cpu.keys() and len(g1) == 10
    for k, t in g1.items():
        assert [e.val_loss for e in t.curve] == [e.val_loss for e in g2[k].curve]  # same numbers twice
        # same init, same masks (random draws happen on the CPU generator whatever the device)
        assert t.node_mask == cpu[k].node_mask or t.finder == "random-search"
        assert t.curve[0].val_loss == pytest.approx(cpu[k].curve[0].val_loss, rel=1e-4)
        assert abs(t.final_test_acc - cpu[k].final_test_acc) < 0.1


def test_cuda_population_equals_cuda_members_alone(tmp_path):
    """Populations on the GPU: members agree with the same trials trained one at a time there."""
    run(tiny_spec(device="cuda", controls=3, seeds=(0,)), tmp_path / "pop")
    run(tiny_spec(device="cuda", controls=3, seeds=(0,), population_cap=1), tmp_path / "alone")
    pop, alone = _by_key(tmp_path / "pop"), _by_key(tmp_path / "alone")
    assert pop.keys() == alone.keys() and max(t.population for t in pop.values()) == 4
    for k, t in pop.items():
        assert t.device.startswith("cuda") and t.node_mask == alone[k].node_mask
        assert t.curve[-1].val_loss == pytest.approx(alone[k].curve[-1].val_loss, rel=1e-3)


def test_cuda_export_checks_and_times_on_the_gpu(tmp_path):
    from sparsenas.export import export_trial

    run(tiny_spec(device="cuda", finders=("random",), seeds=(0,), sparsities=(0.5,), epochs=1), tmp_path)
    key = next(iter(_by_key(tmp_path)))
    r = export_trial(tmp_path, key, tmp_path / "m.pt2", device="cuda", repeats=5)
    assert r.device.startswith("cuda") and r.max_abs_diff < 1e-3 and r.argmax_agree == 1.0


def test_cuda_hardware_aware_search_times_on_the_gpu(tmp_path):
    run(tiny_spec(device="cuda", finders=("dense",), objectives=("accuracy", "latency"), front_size=2, evo_population=4,
                  generations=1, nsga_steps=3, seeds=(0,), epochs=1), tmp_path)
    slots = [t for t in _by_key(tmp_path).values() if t.slot >= 0]
    assert len(slots) == 4 and all(t.device.startswith("cuda") and t.latency_ms > 0 for t in slots)


def test_cuda_resnet_with_batchnorm_in_both_spaces(tmp_path):
    """A ResNet-20 (BatchNorm, residual streams) on the GPU: node trials in populations equal to
    alone, weight trials never collapsed by BatchNorm, and CPU and GPU runs start from one θ0."""
    common = dict(model="resnet20", widths=(4,), seeds=(0,), sparsities=(0.5,), epochs=1, augment="crop-flip")
    run(tiny_spec(device="cuda", controls=3, **common), tmp_path / "pop")
    run(tiny_spec(device="cuda", controls=3, population_cap=1, **common), tmp_path / "alone")
    run(tiny_spec(device="cpu", controls=3, **common), tmp_path / "cpu")
    pop, alone, cpu = _by_key(tmp_path / "pop"), _by_key(tmp_path / "alone"), _by_key(tmp_path / "cpu")
    assert pop.keys() == alone.keys() == cpu.keys() and max(t.population for t in pop.values()) == 4
    for k, t in pop.items():
        assert t.device.startswith("cuda") and t.status == "done" and t.node_mask == cpu[k].node_mask
        assert t.curve[-1].val_loss == pytest.approx(alone[k].curve[-1].val_loss, rel=1e-3)
        assert t.curve[0].val_loss == pytest.approx(cpu[k].curve[0].val_loss, rel=1e-4)
    run(tiny_spec(device="cuda", finders=("magnitude", "synflow"), space="weight", allocation="global", synflow_iterations=3, **common),
        tmp_path / "weight")
    assert all(t.status == "done" and not t.collapsed for t in _by_key(tmp_path / "weight").values())


@pytest.mark.parametrize("space", ["node", "weight"])
def test_cuda_starts_draw_their_init_on_the_cpu_and_agree_with_cpu(tmp_path, space):
    # scratch inits are drawn with a CPU generator: on a CUDA parent too, and to the same numbers
    spec = dict(space=space, finders=("dense", "random", "magnitude"), starts=("scratch-e", "scratch-b", "finetune"), seeds=(0,))
    run(tiny_spec(device="cuda", **spec), tmp_path / "gpu")
    run(tiny_spec(device="cpu", **spec), tmp_path / "cpu")
    gpu, cpu = _by_key(tmp_path / "gpu"), _by_key(tmp_path / "cpu")
    assert gpu.keys() == cpu.keys()
    for k, t in gpu.items():
        if t.check.startswith("scratch"):
            assert t.curve[0].val_loss == pytest.approx(cpu[k].curve[0].val_loss, rel=1e-4)
            assert len(t.curve) == len(cpu[k].curve)
