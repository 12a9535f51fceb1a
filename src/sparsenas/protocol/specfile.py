"""Spec files: TOML or YAML with the same keys as the `run` flags, read strictly.

Strict because a spec file is a record of an experiment: a key given twice (``epochs: 1`` then
``epochs: 7``, or ``proxy-steps`` beside ``proxy_steps``) is refused rather than silently won by the
later one, and YAML's aliases, which let 400 bytes expand to a billion values, are refused beyond
`MAX_YAML_VALUES`. A UTF-8 byte-order mark (what Windows editors write) is accepted in both formats.

A finder's options may also be grouped under the finder, in a table named `options` (not `finders`:
that key holds the list of finders, and TOML cannot make it a table too)::

    finders = ["dense", "random", "random-search"]
    [options.random-search]
    candidates = 50

A name is still one option: a group sets it for every finder that declares it, so two places that
give it different values (``[options.halving] candidates = 5`` beside ``candidates = 50``) are refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import SparsenasError, one_line, quote
from ..finders import FINDERS
from .options import Option, options, parse_value

MAX_YAML_VALUES = 10_000  # values a YAML spec may hold once its aliases are expanded


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
        text = p.read_text(encoding="utf-8-sig")  # -sig: a leading byte-order mark is dropped, in both formats
    except (OSError, UnicodeDecodeError) as e:
        raise SparsenasError(f"cannot read spec file '{p}' ({e}); pass a UTF-8 .toml or .yaml file") from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        try:
            raw = tomllib.loads(text)  # refuses a key given twice itself ("Cannot overwrite a value")
        except (tomllib.TOMLDecodeError, ValueError) as e:  # ValueError: an integer past 4,300 digits
            raise SparsenasError(f"spec file '{p}' is not valid TOML ({one_line(str(e), 200)}); fix the line it names") from None
    elif suffix in (".yaml", ".yml"):
        raw = _load_yaml(text, p)
    else:
        raise SparsenasError(f"spec file '{p}' must end in .toml, .yaml or .yml")
    if not isinstance(raw, dict):
        raise SparsenasError(f"spec file '{p}' must hold a table of keys such as 'epochs = 20'")
    known = {o.name: o for o in options()}
    groups = raw.pop("options", {})
    out = _read_keys(raw, known, p, "")
    if not isinstance(groups, dict):
        raise SparsenasError(f"'options' in spec file '{p}' must be a table of finders, e.g. [options.random-search] with candidates = 50")
    where = {name: "at the top level" for name in out}  # where each value was given, for a conflict's message
    for finder, table in groups.items():
        if str(finder) not in FINDERS:
            raise SparsenasError(f"[options.{finder}] in spec file '{p}' names no finder; choose one of: {', '.join(FINDERS.names())}")
        declares = FINDERS.get(str(finder)).options
        if not isinstance(table, dict):
            raise SparsenasError(
                f"[options.{finder}] in spec file '{p}' must be a table of {finder}'s options, e.g. {declares[0] if declares else 'none'} = ..."
            )
        ours = {k: o for k, o in known.items() if k in declares}
        for name, value in _read_keys(table, ours, p, f"under [options.{finder}] ").items():
            if name in out and out[name] != value:
                raise SparsenasError(
                    f"spec file '{p}' gives '{name}' as {quote(out[name])} {where[name]} and as {quote(value)} under [options.{finder}]; "
                    f"one value sets every finder that declares it ({', '.join(known[name].finders)}): keep one"
                )
            out[name], where[name] = value, f"under [options.{finder}]"
    return out


def _read_keys(raw: dict, known: dict[str, Option], p: Path, table: str) -> dict[str, Any]:
    """{field name: typed value} of one table of the file (`table`: its name in messages, or "")."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # field name -> the key as the file spells it
    aliases = {a: o.name for o in known.values() for a in o.aliases}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        name = aliases.get(name, name)  # a former name reads as today's
        if name not in known:
            raise SparsenasError(f"unknown key '{key}' {table or ''}in spec file '{p}'; known keys: {', '.join(sorted(known)) or 'none'}")
        if name in given:
            raise SparsenasError(f"spec file '{p}' gives '{name}' twice {table}(as '{given[name]}' and '{key}'); keep one")
        given[name] = str(key)
        out[name] = parse_value(known[name], value, str(p))
    return out


def _load_yaml(text: str, p: Path) -> Any:
    """YAML's safe loader, refusing duplicate keys and alias expansion beyond `MAX_YAML_VALUES`."""
    import yaml  # imported here: a TOML-only user never pays for it

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_yaml_node(node, p)
        return loader.construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
        # ValueError & co.: a value YAML itself cannot build (`!!int abc`, the date 2001-13-45, an
        # integer past 4,300 digits)
        raise SparsenasError(f"spec file '{p}' is not valid YAML ({one_line(str(e), 200)}); fix the line it names") from None
    finally:
        loader.dispose()


def _check_yaml_node(root: Any, p: Path) -> None:
    """Count the values `root` holds with its aliases expanded (memoized: an alias is counted, not
    walked, again) and refuse duplicate keys in every mapping."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a cycle (an alias inside its own anchor) counts once, then stops
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                if k.tag == "tag:yaml.org,2002:merge":
                    # `<<: *defaults` hides which value wins when a key is given again: refuse it too
                    raise SparsenasError(f"spec file '{p}' uses a YAML merge key (<<, line {k.start_mark.line + 1}); write the keys out")
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        raise SparsenasError(f"spec file '{p}' gives key '{k.value}' twice (line {k.start_mark.line + 1}); keep one")
                    seen.add(k.value)
                total += size(k) + size(v)
        sizes[id(node)] = total
        if total > MAX_YAML_VALUES:
            raise SparsenasError(
                f"spec file '{p}' expands to more than {MAX_YAML_VALUES:,} values through YAML aliases (&anchor/*alias); write the values out"
            )
        return total

    size(root)
