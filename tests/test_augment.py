"""Crop-flip augmentation: the crops and flips themselves, one augmented stream per data seed for
every trial (alone, in a population, in the runner, on resume, in a fresh process), bit-identical
training without it, trial keys, the CLI and spec file, and data it cannot take refused in one line."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from collections import Counter

import pytest
import torch
from torch.nn import functional as F

from sparsenas.cli import main
from sparsenas.data import DATASETS, Dataset, Split, batches, load_dataset
from sparsenas.errors import SparsenasError
from sparsenas.models import build_parent
from sparsenas.protocol import RunSpec, make_plan, run
from sparsenas.protocol.plan import trial_spec
from sparsenas.store import Store
from sparsenas.train import Population, TrainSpec, train, train_population
from sparsenas.train.augment import apply_crop_flip, augment_seed, crop_flip, draw_crop_flip, epoch_augment

CROP_FLIP = TrainSpec(epochs=2, batch_size=32, augment="crop-flip")


def _images(n: int = 96, side: int = 16) -> Dataset:
    """Learnable generated images: the class sets the mean brightness of one of 4 quadrants."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 1, side, side, generator=g) * 0.5
    h = side // 2
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, r * h : (r + 1) * h, q * h : (q + 1) * h] += 1.0
    s = Split(x, y)
    return Dataset("quadrants", s, s, s, 4)


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


@pytest.fixture
def seen(monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every training batch (x, y) any population steps on while the test runs, in order."""
    batches_seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    step = Population.step

    def spy(self, x, y, lr):
        batches_seen.append((x.clone(), y.clone()))
        return step(self, x, y, lr)

    monkeypatch.setattr(Population, "step", spy)
    return batches_seen


# --- the crops and flips ---


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(5, 3, 32, 32), (4, 1, 8, 8), (3, 2, 5, 7), (1, 1, 1, 1)])
def test_shape_dtype_and_device_are_kept(shape, dtype):
    x = torch.randn(shape).to(dtype)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device and out.is_contiguous()


def test_the_same_generator_state_gives_the_same_batch_and_another_seed_another():
    x = torch.randn(64, 3, 32, 32)
    a, b = (crop_flip(x, torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, crop_flip(x, torch.Generator().manual_seed(6)))


def test_each_sample_is_its_padded_window_mirrored_where_drawn():
    x = torch.arange(40 * 2 * 6 * 6, dtype=torch.float32).view(40, 2, 6, 6) + 1  # every pixel distinct and non-zero
    offsets, flips = draw_crop_flip(40, torch.Generator().manual_seed(1))
    out = apply_crop_flip(x, offsets, flips)
    padded = F.pad(x, (4, 4, 4, 4))
    for b in range(40):
        r, c = offsets[b].tolist()
        window = padded[b, :, r : r + 6, c : c + 6]
        assert torch.equal(out[b], window.flip(-1) if flips[b] else window), b
    # the same sample, by hand: offset (4, 4) is the image itself, (0, 0) shifts it 4 down and right
    one = x[:1]
    same = apply_crop_flip(one, torch.tensor([[4, 4]]), torch.tensor([False]))
    assert torch.equal(same, one)
    assert torch.equal(apply_crop_flip(one, torch.tensor([[4, 4]]), torch.tensor([True])), one.flip(-1))
    shifted = apply_crop_flip(one, torch.tensor([[0, 0]]), torch.tensor([False]))
    assert torch.equal(shifted[..., 4:, 4:], one[..., :2, :2]) and not shifted[..., :4, :].any() and not shifted[..., :, :4].any()
    # zero is the train mean of normalized data: the padding adds no new value
    assert torch.equal(
        apply_crop_flip(torch.zeros(2, 3, 4, 4), torch.tensor([[0, 8], [8, 0]]), torch.tensor([True, False])), torch.zeros(2, 3, 4, 4)
    )


def test_every_offset_and_both_flips_occur_about_equally_often():
    n = 18_000
    offsets, flips = draw_crop_flip(n, torch.Generator().manual_seed(2))
    for axis in (0, 1):
        counts = Counter(offsets[:, axis].tolist())
        assert sorted(counts) == list(range(9))
        assert all(abs(k - n / 9) < 0.1 * n / 9 for k in counts.values()), counts  # ~7 standard deviations
    assert len(Counter(map(tuple, offsets.tolist()))) == 81  # row and column offsets drawn independently
    assert abs(flips.float().mean().item() - 0.5) < 0.02
    # and the images themselves follow the draws: an image's single bright pixel lands where its offset says
    x = torch.zeros(n, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # the centre pixel
    out = crop_flip(x, torch.Generator().manual_seed(2))
    where = out.view(n, -1).argmax(1)
    row, col = where // 9, where % 9
    assert torch.equal(row, 8 - offsets[:, 0])
    assert torch.equal(torch.where(flips, offsets[:, 1], 8 - offsets[:, 1]), col)


def test_the_epochs_draws_are_the_public_function_applied_to_the_epochs_order():
    data = load_dataset("digits", limit=200)
    order = torch.Generator().manual_seed(3)
    perm = torch.randperm(len(data.train), generator=order)
    epoch1 = epoch_augment("crop-flip", 3, 1, len(data.train), torch.device("cpu"))
    assert epoch1 is not None
    in_batches = torch.cat([epoch1(data.train.x[perm[i : i + 32]], start=i) for i in range(0, len(perm), 32)])
    whole = crop_flip(data.train.x[perm], torch.Generator().manual_seed(augment_seed("crop-flip", 3, 1)))
    assert torch.equal(in_batches, whole)


# --- one augmented stream per data seed ---


def test_training_batches_are_augmented_and_the_permutation_does_not_move(seen):
    data = _images()
    net = build_parent("mlp", data.input_shape, 4, seed=0, widths=(16,))
    train(copy.deepcopy(net), data, TrainSpec(epochs=2, batch_size=32), data_seed=4)
    plain = list(seen)
    seen.clear()
    train(net, data, CROP_FLIP, data_seed=4)
    order = torch.Generator().manual_seed(4)
    # without augmentation the loop steps on `batches` as it always did
    expected = [b for _ in range(2) for b in batches(data.train, 32, order)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(plain, expected)) and len(plain) == len(expected)
    # with it: the same samples in the same batches (labels equal), each image cropped and flipped
    assert [torch.equal(a[1], b[1]) for a, b in zip(seen, plain)] == [True] * len(plain)
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(seen, plain))
    for epoch in (1, 2):
        aug = epoch_augment("crop-flip", 4, epoch, len(data.train), torch.device("cpu"))
        assert aug is not None
        for i in range(3):
            b = (epoch - 1) * 3 + i
            assert torch.equal(seen[b][0], aug(plain[b][0], start=32 * i))


def test_without_augmentation_training_is_bit_identical(seen):
    data = _images()
    net = build_parent("lenet5", data.input_shape, 4, seed=0, widths=(4, 4, 8, 8))
    absent, explicit, augmented = (copy.deepcopy(net) for _ in range(3))
    r_absent = train(absent, data, TrainSpec(epochs=2, batch_size=32), data_seed=1)
    r_explicit = train(explicit, data, TrainSpec(epochs=2, batch_size=32, augment="none"), data_seed=1)
    for (name, a), (_, b) in zip(absent.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), name
    assert r_absent.curve == r_explicit.curve
    train(augmented, data, CROP_FLIP, data_seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(augmented.state_dict().values(), absent.state_dict().values()))


@pytest.mark.parametrize("model,widths", [("mlp", (32, 16)), ("lenet5", (6, 8, 24, 12))], ids=["linear", "conv"])
def test_members_trained_together_with_augmentation_equal_each_trained_alone(model, widths):
    data = _images()
    parent = build_parent(model, data.input_shape, 4, seed=0, widths=widths)
    nets = [copy.deepcopy(parent), build_parent(model, data.input_shape, 4, seed=1, widths=widths)]
    solos = [copy.deepcopy(n) for n in nets]
    together = train_population(nets, data, CROP_FLIP, data_seed=7)
    for net, res, solo in zip(nets, together, solos):
        alone = train(solo, data, CROP_FLIP, data_seed=7)
        for (name, a), (_, b) in zip(net.named_parameters(), solo.named_parameters()):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
        for p, s in zip(res.curve, alone.curve):
            assert p.train_loss == pytest.approx(s.train_loss, rel=1e-4) and p.val_loss == pytest.approx(s.val_loss, rel=1e-4)
    plain = copy.deepcopy(parent)
    train(plain, data, TrainSpec(epochs=2, batch_size=32), data_seed=7)
    assert not all(torch.allclose(a, b) for a, b in zip(plain.parameters(), nets[0].parameters()))  # augmentation trained


def _spec(**overrides) -> RunSpec:
    """A tiny digits run trained with crop-flip: 150 samples, 2 epochs of 5 batches."""
    base = dict(
        dataset="digits",
        limit=150,
        widths=(16, 8),
        sparsities=(0.5, 0.8),
        seeds=(0, 1),
        controls=2,
        candidates=2,
        train=TrainSpec(epochs=2, batch_size=32, augment="crop-flip"),
    )
    return RunSpec(**(base | overrides)).validate()


def test_every_trial_of_a_seed_steps_on_the_same_augmented_batches_and_another_seed_on_others(tmp_path, monkeypatch, seen):
    import sparsenas.protocol.members as members

    streams: dict[int, list[list[str]]] = {}  # data seed -> one list of batch digests per trial
    inner = members.train_population

    def spy(nets, data, spec, data_seed, **kw):
        start = len(seen)
        out = inner(nets, data, spec, data_seed, **kw)
        seeds = [data_seed] * len(nets) if isinstance(data_seed, int) else list(data_seed)
        for m, seed in enumerate(seeds):
            # a population of several seeds steps on per-member batches (K, B, ...): row m is member m's
            own = [(x[m], y[m]) if y.dim() == 2 else (x, y) for x, y in seen[start:]]
            streams.setdefault(seed, []).append([_digest(x) + _digest(y) for x, y in own])
        return out

    monkeypatch.setattr(members, "train_population", spy)
    run(_spec(), tmp_path / "together")
    assert {k: len(v) for k, v in streams.items()} == {0: 7, 1: 7}  # dense; random x2 + random-search at each sparsity
    for seed in (0, 1):
        assert all(s == streams[seed][0] for s in streams[seed]) and len(streams[seed][0]) == 2 * 5
    assert not set(streams[0][0]) & set(streams[1][0])
    first = streams[0][0]
    streams.clear()
    run(_spec(seeds=(0,), population_cap=1), tmp_path / "alone")
    assert len(streams[0]) == 7 and all(s == first for s in streams[0])  # every trial alone: the same stream


def test_a_resumed_trial_retrains_to_the_same_bits(tmp_path):
    spec = _spec(sparsities=(0.5,), seeds=(0,), finders=("dense", "random"), controls=1, population_cap=1)
    run(spec, tmp_path)
    with Store(tmp_path) as s:
        before = {t.key: (t.curve, s.weights(t.key)) for t in s.trials()}
    key = sorted(before)[0]
    assert main(["forget", str(tmp_path), "--trial", key]) == 0
    assert run(spec, tmp_path).ran == 1
    with Store(tmp_path) as s:
        after = {t.key: (t.curve, s.weights(t.key)) for t in s.trials()}
    assert after == before


STREAM_SCRIPT = """
import hashlib, torch
from sparsenas.data import batches, load_dataset
from sparsenas.train.augment import epoch_augment
data = load_dataset("digits", limit=150)
order, h = torch.Generator().manual_seed(9), hashlib.sha256()
for epoch in (1, 2):
    aug = epoch_augment("crop-flip", 9, epoch, len(data.train), torch.device("cpu"))
    for i, (x, y) in enumerate(batches(data.train, 32, order)):
        h.update(aug(x, start=32 * i).numpy().tobytes())
print(h.hexdigest())
"""


def test_a_fresh_process_draws_the_same_stream(capsys):
    torch.rand(100)  # this process's global generators have moved; the stream must not care
    fresh = subprocess.run([sys.executable, "-c", STREAM_SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    exec(STREAM_SCRIPT, {})
    assert fresh.stdout == capsys.readouterr().out


# --- keys, CLI, spec file, refusals ---


def test_the_default_keeps_every_key_and_crop_flip_changes_every_key():
    plain, none, cropped = (RunSpec(train=TrainSpec(**kw)) for kw in ({}, {"augment": "none"}, {"augment": "crop-flip"}))
    assert "augment" not in trial_spec(plain, (64, 32), "random", 0.5, seed=0)["train"]
    keys = [[t.key for t in make_plan(s, (64, 32))] for s in (plain, none, cropped)]
    assert keys[0] == keys[1]
    assert not set(keys[0]) & set(keys[2]) and len(set(keys[2])) == len(keys[2])
    assert trial_spec(cropped, (64, 32), "random", 0.5, seed=0)["train"]["augment"] == "crop-flip"


def test_the_cli_flag_and_spec_file_key_train_with_crop_flip(tmp_path, capsys):
    args = ["--limit", "120", "--widths", "16,8", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5", "--finders", "dense,random"]
    assert main(["run", *args, "--augment", "crop-flip", "--quiet", "--no-report", "--out", str(tmp_path / "flag")]) == 0
    cfg = tmp_path / "spec.toml"
    cfg.write_text('augment = "crop-flip"\n')
    assert main(["run", "--config", str(cfg), *args, "--quiet", "--no-report", "--out", str(tmp_path / "file")]) == 0
    assert main(["run", *args, "--quiet", "--no-report", "--out", str(tmp_path / "plain")]) == 0
    runs = {}
    for name in ("flag", "file", "plain"):
        with Store(tmp_path / name) as s:
            runs[name] = {t.key: t.curve for t in s.trials()}
            assert s.spec()["train"].get("augment", "none") == ("none" if name == "plain" else "crop-flip")
    assert runs["flag"] == runs["file"] and len(runs["flag"]) == 2
    assert not runs["flag"].keys() & runs["plain"].keys()
    assert "--augment {none,crop-flip}" in _cli_help()


def _cli_help() -> str:
    r = subprocess.run([sys.executable, "-m", "sparsenas", "run", "--help"], capture_output=True, text=True, timeout=120)
    return " ".join(r.stdout.split())


@DATASETS.register("test-augment-table", help="test: tabular (N, 6) features, 3 classes")
def _table(data_dir: str | None) -> Dataset:
    g = torch.Generator().manual_seed(0)
    s = Split(torch.randn(60, 6, generator=g), torch.arange(60) % 3)
    return Dataset("test-augment-table", s, s, s, 3)


def test_tabular_data_is_refused_in_one_line_before_training(tmp_path, capsys, seen):
    data = _table(None)
    net = build_parent("mlp", data.input_shape, 3, seed=0, widths=(8,))
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(SparsenasError) as e:
        train(net, data, TrainSpec(epochs=1, augment="crop-flip"), data_seed=0)
    message = str(e.value)
    assert "\n" not in message and "--augment crop-flip" in message and "'test-augment-table' holds (N, 6) inputs" in message
    assert not seen and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    train(net, data, TrainSpec(epochs=1), data_seed=0)  # without augmentation it trains
    args = "run --dataset test-augment-table --widths 8 --epochs 1 --seeds 1 --sparsities 0.5 --finders dense --augment crop-flip"
    code = main([*args.split(), "--quiet", "--no-report", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "crops and flips images (N, C, H, W)" in err[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_crops_and_flips_exactly_as_the_cpu():
    x = torch.randn(128, 3, 32, 32)
    cpu = epoch_augment("crop-flip", 0, 1, 1000, torch.device("cpu"))
    gpu = epoch_augment("crop-flip", 0, 1, 1000, torch.device("cuda"))
    assert cpu is not None and gpu is not None
    assert torch.equal(gpu(x.cuda(), start=256).cpu(), cpu(x, start=256))
    assert torch.equal(crop_flip(x.cuda(), torch.Generator().manual_seed(1)).cpu(), crop_flip(x, torch.Generator().manual_seed(1)))


@pytest.mark.slow
def test_a_ray_worker_trains_the_same_numbers(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = dict(sparsities=(0.5,), seeds=(0,), controls=1, threads=1)
    run(_spec(**spec), tmp_path / "local")
    run(_spec(**spec, executor="ray"), tmp_path / "ray")
    numbers = {}
    for name in ("local", "ray"):
        with Store(tmp_path / name) as s:
            numbers[name] = {t.key: (t.curve, t.population, s.weights(t.key)) for t in s.trials()}
    assert numbers["ray"] == numbers["local"] and len(numbers["local"]) == 3


def test_bad_or_unusable_augment_is_refused_before_binding_and_a_resume_must_match(tmp_path):
    from sparsenas.protocol.spec import build_spec
    with pytest.raises(SparsenasError, match="--augment must be one of none, crop-flip, got 'bogus'"):
        build_spec({"augment": "bogus"})
    code = main(["run", "--dataset", "test-augment-table", "--widths", "8", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5",
                 "--finders", "dense", "--augment", "crop-flip", "--quiet", "--no-report", "--out", str(tmp_path / "t")])
    assert code == 2 and not (tmp_path / "t" / "sparsenas.db").exists()
    args = ["--limit", "120", "--widths", "16,8", "--epochs", "1", "--seeds", "1", "--sparsities", "0.5", "--finders", "dense", "--quiet", "--no-report"]
    assert main(["run", *args, "--augment", "crop-flip", "--out", str(tmp_path / "r")]) == 0
    with pytest.raises(SparsenasError, match=r"differs in: augment \(crop-flip -> none\)"):
        run(build_spec({"limit": 120, "widths": (16, 8), "epochs": 1, "seeds": (0,), "sparsities": (0.5,), "finders": ("dense",)}), tmp_path / "r")
    assert main(["run", *args, "--out", str(tmp_path / "p")]) == 0
    with pytest.raises(SparsenasError, match=r"differs in: augment \(none -> crop-flip\)"):
        run(build_spec({"limit": 120, "widths": (16, 8), "epochs": 1, "seeds": (0,), "sparsities": (0.5,), "finders": ("dense",), "augment": "crop-flip"}), tmp_path / "p")
    with Store(tmp_path / "p") as s:
        assert "augment" not in s.spec()["train"]
