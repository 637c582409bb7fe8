"""Errors every layer raises for bad user input.

A `ConfigError` always names the offending field and what would have been accepted; the CLI turns it into one
line on stderr and exit code 2 (see `ant.cli`). Nothing may be half-written when it is raised: validate first,
write after. A `FaultError` is something wrong outside the user's input (a corrupt token cache, a cluster that
refuses a submission): one line naming the thing and how to recover, exit code 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """Bad user input: a config field, a CLI argument or a grid entry."""

    def __init__(self, field: str, message: str, allowed: Iterable[object] | str | None = None):
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed is not None:
            if not isinstance(allowed, str):
                allowed = ", ".join(str(a) for a in allowed)
            text += f" (allowed: {allowed})"
        super().__init__(text)


class FaultError(RuntimeError):
    """A fault in the environment, not in the input: the message names what broke and the command that repairs it."""


def check_choice(field: str, value: object, allowed: Iterable[object]) -> None:
    """Raise ConfigError unless `value` is one of `allowed`."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(field, f"unknown value {value!r}", allowed)


def check_positive(field: str, value: float | int | None, *, allow_none: bool = False, strict: bool = True) -> None:
    """Raise ConfigError unless `value` is a (strictly) positive number."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value > 0 if strict else value >= 0)
    if not ok:
        raise ConfigError(field, f"must be a {'positive' if strict else 'non-negative'} number, got {value!r}")


def check_range(field: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    """Raise ConfigError unless `value` is a finite number in [lo, hi] ((lo, hi] with lo_open): every number a
    user gives has finite bounds, so .inf, 1e400 and absurd magnitudes stop here rather than deep in a run."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (lo < value if lo_open else lo <= value) or value > hi:
        raise ConfigError(field, f"must be a finite number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")


# A YAML document that expands to more values than this is refused before anything walks it: nine levels of
# aliases (`a: &a [x,x,...]`, `b: &b [*a,*a,...]`, ...) make a few hundred bytes that expand to 10^9 values, and
# dataclasses.asdict / copy.deepcopy of them hang (issue 26). The largest grid in sweeps/ holds ~300 values.
MAX_YAML_VALUES = 100_000


def load_yaml(text: str, field: str, what: str) -> Any:
    """YAML text -> Python values, refusing what PyYAML silently accepts: a duplicate key (the last one would win
    silently: `model: {arch: gptplus, arch: angpt}` trained anGPT) and an alias bomb. `what` names the text in
    the message (a file path, or the value given to --set)."""
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())
    except _DuplicateKey as e:
        raise ConfigError(field, f"{what}: {e}") from None
    except _TooLarge as e:
        raise ConfigError(field, f"{what}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(field, f"{what} is not valid YAML: {_yaml_problem(e)}") from None


class _DuplicateKey(Exception):
    pass


class _TooLarge(Exception):
    pass


def _strict_loader():
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Strict(base):  # type: ignore[misc, valid-type]
        def construct_document(self, node):
            _check_expanded_size(node)
            return super().construct_document(node)

        def construct_mapping(self, node, deep=False):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then overrides: the point of a merge
                    continue
                key = self.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
                if key is None or not isinstance(key, (str, int, float, bool)):
                    continue
                if key in seen:
                    first, again = seen[key].start_mark, key_node.start_mark
                    where = f"line {first.line + 1}, column {first.column + 1}"
                    again_at = f"line {again.line + 1}, column {again.column + 1}"
                    raise _DuplicateKey(f"duplicate key {key!r} at {where} and {again_at} (give it once)")
                seen[key] = key_node
            return super().construct_mapping(node, deep=deep)

    return Strict


def _check_expanded_size(root) -> None:
    """Count the values `root` expands to, each shared (aliased) node once per use, in time linear in the nodes."""
    import yaml

    sizes: dict[int, int] = {}
    order, stack = [], [root]
    while stack:  # post-order without recursion: a deep document must not hit Python's recursion limit
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = -1
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
    for node in reversed(order):
        kids = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])  # fmt: skip
        sizes[id(node)] = 1 + sum(max(sizes[id(k)], 1) for k in kids)
        if sizes[id(node)] > MAX_YAML_VALUES:
            raise _TooLarge(
                f"expands to more than {MAX_YAML_VALUES:,} values (YAML aliases repeated inside each other)"
            )


def parse_yaml_value(raw: str, field: str) -> Any:
    """A `--set key=value` / `-o key=value` value parsed as YAML; malformed text is a ConfigError naming `field`."""
    if not raw.strip():
        return None
    return load_yaml(raw, field, repr(raw))


def _yaml_problem(e: Exception) -> str:
    """PyYAML's multi-line message as one line: the problem and where it is."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def read_user_file(path: str | Path, field: str, fmt: str) -> Any:
    """Parse a user's YAML or JSON file (fmt "yaml" | "json"); a missing, unreadable or malformed file is a
    ConfigError naming `field`, so every reader of config, grid and benchmark files fails the same clear way."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(field, f"{p} is a folder, not a {fmt.upper()} file")
    if not p.is_file():
        raise ConfigError(field, f"file not found: {p}")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        msg = f"{p} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        raise ConfigError(field, msg) from None
    except OSError as e:
        raise ConfigError(field, f"cannot read {p}: {e.strerror}") from None
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(field, f"{p} is not valid JSON: {e}") from None
    return load_yaml(text, field, str(p))


def int_in(lo: int, hi: int):
    """An argparse `type=` for an integer flag with finite bounds: `--tokens 10**12` or a 400-digit seed is one
    line naming the flag (argparse prefixes it), not an OverflowError or a run that never ends."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:  # also int() of a string over Python's 4300-digit limit
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {text[:40]!r}") from None
        if not lo <= value <= hi:
            shown = text if len(text) <= 20 else f"a {len(text)}-digit integer"
            raise argparse.ArgumentTypeError(f"must be an integer in [{lo}, {hi}], got {shown}")
        return value

    parse.__name__ = "int"  # argparse's "invalid int value" wording for other failures
    return parse
