"""Errors every layer raises for bad user input.

A `ConfigError` always names the offending field and what would have been accepted; the CLI turns it into one
line on stderr and exit code 2 (see `ant.cli`). Nothing may be half-written when it is raised: validate first,
write after.
"""

from __future__ import annotations

import json
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


def read_user_file(path: str | Path, field: str, fmt: str) -> Any:
    """Parse a user's YAML or JSON file (fmt "yaml" | "json"); a missing or malformed file is a ConfigError
    naming `field`, so every reader of config, grid and benchmark files fails the same clear way."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(field, f"file not found: {p}")
    text = p.read_text()
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(field, f"{p} is not valid JSON: {e}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(field, f"{p} is not valid YAML: {e}") from None
