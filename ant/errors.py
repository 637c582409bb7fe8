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


def parse_yaml_value(raw: str, field: str) -> Any:
    """A `--set key=value` / `-o key=value` value parsed as YAML; malformed text is a ConfigError naming `field`."""
    import yaml

    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(field, f"{raw!r} is not valid YAML ({_yaml_problem(e)})") from None


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
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(field, f"{p} is not valid YAML: {_yaml_problem(e)}") from None
