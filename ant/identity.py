"""What makes two runs the same run: declared on the config's own fields (ant.config), read here.

A run id (RunConfig.run_id) is a readable prefix plus a hash of `identity_dict(cfg)`: the resolved config with
each field's `metadata` deciding whether it enters. Declare a field with `meta(...)` instead of `field(...)`:

    seed: int = 0                                        # plain: always part of the identity
    num_threads: int = meta(0, identity=False)           # never: it cannot change the result
    decay_frac: float = meta(0.2, when={"optim.schedule": "wsd"})   # only while another field holds a value
    max_tokens: int | None = meta(None, since="2026-11-29")         # only when it differs from its default

The rule that keeps committed results matching their grids: **a field added after run ids were first committed
carries `since=` (the date it was added) and a default that reproduces the old behaviour**, so it enters the hash
only when a run sets it to something else, and every existing run id stays what it was. A field that cannot
change the result (where files go, threads, loggers, evaluation spacing) is `identity=False`.
tests/test_identity.py holds the fields hashed unconditionally as of 2026-12-07 and fails on any other field
without `since=` or `identity=False`, and checks that every run id of every grid under sweeps/ survives an added
`since=` field.

`family_free=True` marks the fields that may differ between the members of a wsd family (ant.train.branches):
the budget and what follows from it, and settings that never change a single step's arithmetic.

A primitive (imports nothing of ant): config declares its fields with it, branches reads the family flag.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

IDENTITY, SINCE, WHEN, FAMILY_FREE = "identity", "since", "when", "family_free"


def meta(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    identity: bool = True,
    since: str | None = None,
    when: dict[str, Any] | None = None,
    family_free: bool = False,
) -> Any:
    """A dataclass field with its identity declared (see the module docstring)."""
    if since is not None and not identity:
        raise ValueError("a field is either outside the identity (identity=False) or in it since a date, not both")
    md = {IDENTITY: identity, SINCE: since, WHEN: dict(when or {}), FAMILY_FREE: family_free}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=md)


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def identity_dict(cfg: Any) -> dict[str, Any]:
    """The nested dict of `cfg`'s identity fields (a dataclass of dataclasses), as dataclasses.asdict spells it."""
    full = dataclasses.asdict(cfg)
    return _select(cfg, full)


def digest(cfg: Any, length: int = 10) -> str:
    """The hash a run id ends with. json with sorted keys, str() for anything else: the spelling every committed
    run id was made with."""
    text = json.dumps(identity_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _select(obj: Any, full: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):  # a section: its own fields decide
            out[f.name] = _select(v, full)
            continue
        if not f.metadata.get(IDENTITY, True):
            continue
        if any(_dotted(full, k) != want for k, want in f.metadata.get(WHEN, {}).items()):
            continue
        if f.metadata.get(SINCE) is not None and v == default_of(f):
            continue
        out[f.name] = v
    return out


def _dotted(d: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        d = d[part]
    return d


def fields_where(cls: type, key: str, value: Any = True, prefix: str = "") -> tuple[str, ...]:
    """Dotted names of the fields of `cls` (sections included) whose metadata `key` equals `value`."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        d = default_of(f)
        if dataclasses.is_dataclass(d):
            out += fields_where(type(d), key, value, f"{prefix}{f.name}.")
        elif f.metadata.get(key, _plain(key)) == value:
            out.append(prefix + f.name)
    return tuple(out)


def _plain(key: str) -> Any:
    """The value of metadata `key` on a field declared without meta()."""
    return {IDENTITY: True, SINCE: None, WHEN: {}, FAMILY_FREE: False}[key]
