"""Run spec: defaults, flags, spec files (TOML and YAML), and every bad value named in one line."""

from __future__ import annotations

import pytest

from sparsenas.errors import SparsenasError
from sparsenas.protocol import RunSpec, build_spec, load_spec_file, options
from sparsenas.protocol.options import parse_value

OPT = {o.name: o for o in options()}


def test_defaults_are_the_embedded_default_run():
    spec = build_spec({})
    assert (spec.dataset, spec.model, spec.finders) == ("digits", "mlp", ("dense", "random", "random-search"))
    assert spec.sparsities == (0.5, 0.8, 0.9, 0.95) and spec.seeds == (0, 1, 2, 3, 4)


def test_flag_values_parse():
    assert parse_value(OPT["seeds"], "3") == (0, 1, 2)
    assert parse_value(OPT["seeds"], "4,9") == (4, 9)
    assert parse_value(OPT["seeds"], "4,9,") == (4, 9)
    assert parse_value(OPT["widths"], "300,100") == (300, 100)
    assert parse_value(OPT["finders"], "dense, random") == ("dense", "random")
    assert parse_value(OPT["lr"], "0.1") == 0.1


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("epochs", "ten", "--epochs must be an integer, got 'ten'"),
        ("sparsities", "0.5,high", "--sparsities must be a comma-separated list of numbers"),
        ("seeds", "0", r"--seeds must be a count in \[1, 10000\]"),
        ("seeds", "10000000000", r"--seeds must be a count in \[1, 10000\]"),
        ("epochs", True, "--epochs must be an integer"),
        ("epochs", 2.5, "--epochs must be an integer"),
    ],
)
def test_bad_flag_values_are_named(name, value, message):
    with pytest.raises(SparsenasError, match=message):
        parse_value(OPT[name], value)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"sparsities": (0.5, 1.0)}, r"sparsity must be in \[0, 1\), got 1.0"),
        ({"sparsities": (-0.2,)}, r"sparsity must be in \[0, 1\)"),
        ({"dataset": "mnst"}, "unknown dataset 'mnst'; choose one of: cifar10, cifar100, digits, fashion-mnist, mnist5k"),
        ({"model": "resnet"}, "unknown model 'resnet'; choose one of: lenet-300-100, lenet5, mlp"),
        ({"finders": ("dense", "lottery")}, "unknown finder 'lottery'; choose one of: (.*, )?bn-scale, dense, evolution, grasp, halving, imp, l1-norm, lce-search, magnitude, nsga2, random, random-erk, random-search, snip, synflow"),
        ({"finders": ("random", "random")}, "finders listed twice"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"candidates": 0}, "--candidates must be at least 1"),
        ({"lr": -1.0}, "--lr must be a positive number"),
        ({"lr": float("nan")}, "--lr must be a positive number"),
        ({"lr": float("inf")}, "--lr must be a positive number"),
        ({"momentum": -1.0}, r"--momentum must be in \[0, 1\)"),
        ({"momentum": 1.0}, r"--momentum must be in \[0, 1\)"),
        ({"weight_decay": -0.1}, "--weight-decay must be 0 or a positive number"),
        ({"sparsities": (0.5, 0.50)}, "sparsities listed twice"),
        ({"seeds": (2**64, 1)}, r"seeds must be distinct integers in \[0, 2\^63\)"),
        ({"seeds": (1, 1)}, "seeds must be distinct"),
        ({"optimizer": "rmsprop"}, "--optimizer must be one of sgd, adam"),
        ({"device": "tpu"}, "--device must be one of cpu, cuda, auto"),
        ({"widths": (0, 3)}, "--widths must be at least 1"),
    ],
)
def test_bad_specs_are_named(values, message):
    with pytest.raises(SparsenasError, match=message):
        build_spec(values)


def test_toml_and_yaml_spec_files(tmp_path):
    (tmp_path / "s.toml").write_text('dataset = "digits"\nsparsities = [0.5, 0.9]\nseeds = 3\nepochs = 4\nproxy-steps = 2\n')
    (tmp_path / "s.yaml").write_text("dataset: digits\nsparsities: [0.5, 0.9]\nseeds: 3\nepochs: 4\nproxy_steps: 2\n")
    a, b = (build_spec(load_spec_file(tmp_path / f)) for f in ("s.toml", "s.yaml"))
    assert a == b
    assert a.sparsities == (0.5, 0.9) and a.seeds == (0, 1, 2) and a.train.epochs == 4 and a.proxy_steps == 2


@pytest.mark.parametrize(
    "text,message",
    [
        ("epochz = 3\n", "unknown key 'epochz' in spec file .*; known keys: .*epochs"),
        ('epochs = "ten"\n', "key 'epochs' in '.*s.toml' must be an integer, got 'ten'"),
        ("sparsities = 0.5\n", "key 'sparsities' in .* must be a comma-separated list of numbers"),
        ("sparsities = {}\n", "key 'sparsities' in .* must be a comma-separated list of numbers"),
        ("epochs = 2.5\n", "key 'epochs' in .* must be an integer, got 2.5"),
        ("epochs = [\n", "is not valid TOML"),
    ],
)
def test_bad_spec_files_are_named(tmp_path, text, message):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(SparsenasError, match=message):
        load_spec_file(tmp_path / "s.toml")


def test_spec_file_kinds_and_existence(tmp_path):
    with pytest.raises(SparsenasError, match="not found"):
        load_spec_file(tmp_path / "missing.toml")
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(SparsenasError, match="must end in .toml, .yaml or .yml"):
        load_spec_file(tmp_path / "s.json")
    (tmp_path / "s.yaml").write_text("- a list\n")
    with pytest.raises(SparsenasError, match="must hold a table"):
        load_spec_file(tmp_path / "s.yaml")
    (tmp_path / "t.yaml").write_text("epochs: [1,\n")
    with pytest.raises(SparsenasError, match="not valid YAML"):
        load_spec_file(tmp_path / "t.yaml")
    (tmp_path / "latin1.toml").write_bytes("model = 'caf\xe9'".encode("latin-1"))
    with pytest.raises(SparsenasError, match="cannot read spec file .* pass a UTF-8"):
        load_spec_file(tmp_path / "latin1.toml")
    (tmp_path / "nested.toml").write_text("[train]\nepochs = 3\n")
    with pytest.raises(SparsenasError, match="unknown key 'train'"):
        load_spec_file(tmp_path / "nested.toml")


def test_identity_ignores_runtime_fields():
    a = RunSpec(device="cpu", data_dir=None).identity()
    b = RunSpec(device="auto", data_dir="/somewhere").identity()
    assert a == b and "device" not in a


# -- hardening: bounds, one-line messages, hostile spec files ------------------------------------


@pytest.mark.parametrize(
    "values,message",
    [
        ({"threads": 18446744073709551616}, r"--threads must be at most 1,024, got 18446744073709551616"),
        ({"threads": 9223372036854775808}, r"--threads must be at most 1,024"),
        ({"batch_size": 2**64}, r"--batch-size must be at most 16,777,216"),
        ({"population_cap": int(1e30)}, r"--population-cap must be at most 100,000"),
        ({"limit": int(1e30)}, r"--limit must be at most 1,000,000,000"),
        ({"rewind_steps": 2**64}, r"--rewind-steps must be at most 10,000,000"),
        ({"synflow_iterations": 2**64}, r"--synflow-iterations must be at most 10,000, got \d+; the paper uses 100"),
        ({"widths": (300, 2**40)}, r"--widths must be at most 1,048,576"),
        ({"generations": -1}, r"--generations must be at least 0"),
        ({"epochs": 10**9}, r"--epochs must be at most 100,000"),
    ],
)
def test_absurd_sizes_are_refused_with_the_bound(values, message):
    with pytest.raises(SparsenasError, match=message):
        build_spec(values)


def test_every_integer_option_declares_its_bounds():
    # a new integer option without bounds would let 2^64 through to torch again
    for o in options():
        inner = [a for a in (o.type.__args__ if hasattr(o.type, "__args__") else (o.type,)) if a is not type(None)]
        if int in inner and o.name != "seeds":  # seeds: a count in [1, 10000] or values in [0, 2^63)
            assert o.range is not None, o.name
            assert f"{o.range[0]:,} to {o.range[1]:,}" in o.full_help


def test_toml_threads_beyond_a_machine_word_is_one_line(tmp_path):
    (tmp_path / "s.toml").write_text("threads = 9223372036854775808\n")
    with pytest.raises(SparsenasError, match="--threads must be at most 1,024") as e:
        build_spec(load_spec_file(tmp_path / "s.toml"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ['dataset = "a\\nb"\n', "dataset: \"a\\nb\"\n", "\"ep\\nochs\": 3\n"])
def test_names_with_newlines_give_one_line(tmp_path, text):
    f = tmp_path / ("s.toml" if " = " in text else "s.yaml")
    f.write_text(text)
    with pytest.raises(SparsenasError) as e:
        build_spec(load_spec_file(f))
    assert "\n" not in str(e.value) and "\\n" in str(e.value)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    # 396 bytes that expand to 10^8 values: refused before anything is expanded
    lines = ["a0: &a0 [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    lines.append("sparsities: *a7")
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n")
    import time

    start = time.perf_counter()
    with pytest.raises(SparsenasError, match="more than 10,000 values through YAML aliases") as e:
        load_spec_file(f)
    assert time.perf_counter() - start < 2.0 and len(str(e.value)) < 600


def test_a_huge_value_quoted_in_an_error_is_cut():
    with pytest.raises(SparsenasError) as e:
        parse_value(OPT["epochs"], "9" * 100_000 + "x")
    assert len(str(e.value)) < 200 and "--epochs must be an integer" in str(e.value)


def test_small_yaml_aliases_still_work(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("epochs: &e 4\nhalving_steps: *e\n")
    assert load_spec_file(f) == {"epochs": 4, "halving_steps": 4}


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("s.yaml", "epochs: 1\nepochs: 7\n", "gives key 'epochs' twice"),
        ("s.yaml", "proxy-steps: 1\nproxy_steps: 2\n", "gives 'proxy_steps' twice"),
        ("s.toml", "proxy-steps = 1\nproxy_steps = 2\n", "gives 'proxy_steps' twice"),
        ("s.toml", "epochs = 1\nepochs = 7\n", "not valid TOML"),
    ],
)
def test_duplicate_keys_are_refused(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(SparsenasError, match=message):
        load_spec_file(tmp_path / name)


def test_byte_order_mark_is_accepted_in_both_formats(tmp_path):
    (tmp_path / "s.toml").write_bytes("\ufeffepochs = 4\n".encode("utf-8"))
    (tmp_path / "s.yaml").write_bytes("\ufeffepochs: 4\n".encode("utf-8"))
    assert load_spec_file(tmp_path / "s.toml") == load_spec_file(tmp_path / "s.yaml") == {"epochs": 4}


# -- finder options grouped by finder --------------------------------------------------------------


def test_finder_options_may_be_grouped_by_finder(tmp_path):
    (tmp_path / "s.toml").write_text('finders = ["dense", "random-search", "halving"]\n'
                                     "[options.random-search]\ncandidates = 50\nproxy-steps = 2\n[options.halving]\nhalving_eta = 4\n")
    (tmp_path / "s.yaml").write_text("finders: [dense, random-search, halving]\ncandidates: 50\n"
                                     "options:\n  random-search: {candidates: 50, proxy_steps: 2}\n  halving: {halving-eta: 4}\n")
    a, b = (build_spec(load_spec_file(tmp_path / f)) for f in ("s.toml", "s.yaml"))
    assert a == b and a.options_for("halving") == type(a.options_for("halving"))(candidates=50, halving_eta=4)


@pytest.mark.parametrize(
    "text,message",
    [
        ("candidates = 50\n[options.halving]\ncandidates = 5\n",
         r"gives 'candidates' as 50 at the top level and as 5 under \[options.halving\]; one value sets every finder that "
         r"declares it \(halving, lce-search, random-search\): keep one"),
        ("[options.random-search]\ncandidates = 5\n[options.halving]\ncandidates = 6\n", "as 5 under .*random-search.* as 6 under"),
        ("[options.halving]\nproxy_steps = 5\n", r"unknown key 'proxy_steps' under \[options.halving\] .*; known keys: candidates, halving_eta"),
        ("[options.lottery]\ncandidates = 5\n", r"\[options.lottery\] in spec file .* names no finder"),
        ("[options.halving]\ncandidates = 5\nCandidates = 5\ncandidates-x = 1\n", "unknown key 'Candidates'"),
        ("options = 3\n", "'options' in spec file .* must be a table of finders"),
        ("[options.halving]\ncandidates = 'many'\n", "key 'candidates' in .* must be an integer, got 'many'"),
    ],
)
def test_grouped_finder_options_are_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(SparsenasError, match=message) as e:
        build_spec(load_spec_file(tmp_path / "s.toml"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("s.yaml", "epochs: !!int abc\n", "is not valid YAML"),
        ("s.yaml", "epochs: !!float abc\n", "is not valid YAML"),
        ("s.yaml", "epochs: 2001-13-45\n", "is not valid YAML"),
        ("s.yaml", "epochs: " + "9" * 5000 + "\n", "is not valid YAML"),
        ("s.toml", "epochs = " + "9" * 5000 + "\n", "is not valid TOML"),
        ("s.yaml", "base: &b {epochs: 1}\n", "unknown key 'base'"),
        ("s.yaml", "<<: {epochs: 1}\nepochs: 7\n", r"uses a YAML merge key \(<<, line 1\)"),
    ],
)
def test_values_yaml_or_toml_cannot_build_are_one_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(SparsenasError, match=message) as e:
        load_spec_file(tmp_path / name)
    assert len(str(e.value)) <= 600 and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name,raw,message",
    [
        ("limit", "1e30", r"--limit must be at most 1,000,000,000, got 1000000000000000019884624838656"),
        ("population_cap", "1e30", r"--population-cap must be at most 100,000"),
        ("widths", "300,99999999999999999999", r"--widths must be at most 1,048,576, got 99999999999999999999;"),
    ],
)
def test_whole_numbers_in_scientific_notation_meet_their_bound(name, raw, message):
    with pytest.raises(SparsenasError, match=message):
        build_spec({name: parse_value(OPT[name], raw)})


def test_population_is_read_as_population_cap_from_flags_and_files(tmp_path, capsys):
    """`population` means the cap; its name before 0.2 keeps working as a flag and a spec-file key."""
    from sparsenas.cli.parsers import build_parser

    args = build_parser().parse_args(["run", "--population", "7"])
    assert args.population_cap == "7"
    (tmp_path / "s.toml").write_text("population = 9\n")
    assert load_spec_file(tmp_path / "s.toml") == {"population_cap": 9}
    (tmp_path / "t.toml").write_text("population = 9\npopulation-cap = 9\n")
    with pytest.raises(SparsenasError, match="gives 'population_cap' twice"):
        load_spec_file(tmp_path / "t.toml")
