"""The one decoder of YAML/CLI input into typed dataclasses, and the checks every settings class shares.

    cfg = build(RunConfig, yaml_dict)             # unknown keys name the allowed ones; values decoded by type
    value = decode("train.tokens", "1e6", int)    # 1000000: what a person means, or a ConfigError naming the field
    key, value = parse_assignment("train.seed=3") # `--set`, the value read as YAML
    assign(RunConfig, config_dict, key, value)    # set it, the key checked against the dataclass's fields

Hand-written on purpose: pydantic v2 dataclasses, cattrs and dacite were tried on the inputs a config must take
(issue 12; 2026-11-29). YAML 1.1 reads `1e6` as a string and `true` as a bool, and `--set train.loggers=csv` gives
a scalar for a list. pydantic rejects '1e6' for an int and a bool for a str (each field would need a
BeforeValidator) and its ValidationError would still have to be rewritten into "field: message (allowed: ...)"
lines; cattrs silently truncates 2.5 to 2 and splits 'csv' into ['c', 's', 'v']; dacite has no field path on
unknown keys and its `cast` truncates 2.5 too. Each needs more code than the ~70 lines below to produce today's
messages, and adds an import (pydantic: ~90 ms) to every `ant` command.

A primitive like ant.errors (it imports nothing else of `ant`): configs, executor, tune and bench settings can all
decode through it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Literal

from ant.errors import ConfigError, check_choice, parse_yaml_value

# No integer of any field is larger: each field has its own, tighter, bound (its section's validate()); this one
# stops a 400-digit number before float() or torch sees it (OverflowError tracebacks, issue 26).
MAX_INT = 2**63 - 1


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# get_type_hints evaluates every annotation string on each call (~0.5 ms a section): once per class is enough,
# and from_dict runs several times per run of a 10,000-run grid (issue 17)
_type_hints = functools.cache(typing.get_type_hints)


def build(cls: type, d: dict[str, Any], prefix: str = ""):
    """An instance of the dataclass `cls` from a YAML/CLI mapping: unknown keys name the allowed ones, each value
    goes through `decode` as its field's type, nested dataclasses recurse. Any settings dataclass can use it
    (ant bench decodes its flags with `decode`, field by field; executor and tune settings are still parsed by
    hand: issue 12 leaves them to their owners)."""
    if not isinstance(d, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a mapping, got {type(d).__name__}")
    hints = _type_hints(cls)
    names = field_names(cls)
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"{prefix}{key}", "unknown config key", names)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):  # only an empty section means the defaults: `model: []` is a mistake
            kwargs[key] = build(hint, {} if value is None else value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = decode(f"{prefix}{key}", value, hint)
    return cls(**kwargs)


def decode(name: str, value: Any, hint: Any) -> Any:
    """`value` from YAML or the command line as type `hint`, or a ConfigError naming `name`. YAML gives '1e6' as a
    string and 1 for a float field: accept what a person means, reject the rest. A Literal decodes as its base
    type; whether the value is one of its members is each section's validate() (old run folders and synthetic
    runs hold sizes outside the ladder and must still load)."""
    base, optional = hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `X | None`
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next(a for a in args if a is not type(None))
    if value is None:
        if optional:
            return None
        raise ConfigError(name, "must not be empty")
    origin = typing.get_origin(base) or base
    if origin is Literal:
        origin = type(typing.get_args(base)[0])
    if origin is list:
        if isinstance(value, str):  # `--set train.loggers=csv` means a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"expected a list, got {value!r}")
        (item,) = typing.get_args(base) or (Any,)
        return [decode(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, f"expected a mapping, got {value!r}")
        return dict(value)
    if origin is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, f"expected true/false, got {value!r}")
    if origin in (int, float):
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if isinstance(value, int) and abs(value) > MAX_INT:  # float(10**400) and math.isnan would raise
            raise ConfigError(name, f"{len(str(abs(value)))}-digit integer out of range", f"|value| <= {MAX_INT:.3g}")
        if isinstance(value, str):
            try:
                value = float(value.replace("_", ""))
            except ValueError:
                raise ConfigError(name, f"expected a number, got {value!r}") from None
        if not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if origin is int:
            if not math.isfinite(value) or float(value) != int(value):  # int(inf) would raise OverflowError
                raise ConfigError(name, f"expected an integer, got {value!r}")
            return int(value)
        return float(value)
    if origin is str:
        if isinstance(value, bool):  # YAML reads `compile: true` as a bool; keep the string vocabulary
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(name, f"expected a string, got {value!r}")
        return value
    return value


def parse_assignment(text: str, where: str = "--set") -> tuple[str, Any]:
    """`key=value` (the value read as YAML) -> (key, value); the one parser of `ant train|sweep|params --set`."""
    if "=" not in text:
        raise ConfigError(where, f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), parse_yaml_value(raw, key.strip())


def assign(root: type, d: dict[str, Any], key: str, value: Any, where: str | None = None) -> None:
    """Set the dotted `key` (`train.seed`, `model.options.n_layers`) in the dict form of the dataclass `root`,
    creating missing sections. The key is checked against the config's fields, not against `d`, so a partial dict (a
    grid's `base`) works too; an unknown key names the allowed ones (prefixed with `where`)."""
    parts = key.split(".")
    cls: Any = root
    node = d
    for i, part in enumerate(parts):
        shown = ".".join(([where] if where else []) + parts[: i + 1])
        last = i == len(parts) - 1
        if cls is dict:  # model.options: any name (the model checks it), one level deep
            if not last:
                raise ConfigError(shown, "options are one level deep: model.options.NAME=value")
            break
        if part not in field_names(cls):
            raise ConfigError(shown, "unknown config key", field_names(cls))
        if last:
            break
        hint = _type_hints(cls)[part]
        if dataclasses.is_dataclass(hint):
            cls = hint
        elif typing.get_origin(hint) is dict:
            cls = dict
        else:
            raise ConfigError(shown, "is a value, not a section")
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def check_choices(section: Any, name: str) -> None:
    """Every Literal-typed field of `section` (a list of them too) holds one of the Literal's values."""
    for f in dataclasses.fields(section):
        hint = _type_hints(type(section))[f.name]
        value = getattr(section, f.name)
        if typing.get_origin(hint) is list:
            (hint,) = typing.get_args(hint)
            for i, v in enumerate(value):
                if typing.get_origin(hint) is Literal:
                    check_choice(f"{name}.{f.name}[{i}]", v, typing.get_args(hint))
        elif typing.get_origin(hint) is Literal:
            check_choice(f"{name}.{f.name}", value, typing.get_args(hint))


def check_int(name: str, value: Any, minimum: int, maximum: int = MAX_INT) -> None:
    """`value` is an integer in [minimum, maximum]: every integer field has finite bounds (README)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not minimum <= value <= maximum:
        shown = value if not ok or abs(value) < 10**20 else f"a {len(str(abs(value)))}-digit integer"
        top = str(maximum) if maximum < 10**12 else f"{maximum:.3g}"
        raise ConfigError(name, f"must be an integer in [{minimum}, {top}], got {shown!r}")
