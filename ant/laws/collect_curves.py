"""The curves table of ant.laws.collect: each run's metrics.parquet plus its CURVE_KEYS, concatenated.

`read_curve` is the definition: one run's curve as pandas reads it, with the run's keys and FLOPs added. Doing
that 10,000 times costs ~10 ms a run (the parquet read, the per-run string columns, a concatenation of 10,000
frames), so `fast_concat` builds the same table from the runs' Arrow tables in one concatenation and adds the
per-run columns once, repeated. It applies only where the result is provably the same: numeric metrics (int64 or
double, which pandas turns into int64/float64 alone and into float64 when a run lacks the column or has nulls,
as Arrow's permissive concatenation does), no metrics column named flops, and per key one Python type across
runs (a metrics column named like a key is overwritten by the key in both ways). Anything else goes through
`read_curve`.

`lr` is not the run's peak LR (the runs table has that) but the SCHEDULED LR at the row's step: the LR of the last
optimizer step before it (step s -> lr_at(s - 1), what ant.train's monitor logs), the first step's at step 0;
computed from the run's config (`scheduled_lr`), so every row has it, the evaluation-only rows too.

A curve's schema ([[column, dtype], ...], as read_curve's frame has it) is what the incremental collect compares:
pandas gives each column of a concatenation the common dtype of the pieces that have it, so the table depends on
the set of distinct schemas, not on which run has which.
"""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ant import runfolder
from ant.schedules import Span, lr_factor, wsd_decay_steps

# Columns the curves table carries from its run, so a curve can be grouped without a join.
CURVE_KEYS = ("run_id", "arch", "size", "num_params", "batch_size", "lr", "seed", "status")
Schema = list[list[str]]


def scheduled_lr(step, row: dict) -> np.ndarray:
    """The scheduled LR at each logged `step` of the run whose runs-table row (cfg.* columns) is `row`: the LR of
    optimizer step max(step - 1, 0) (ant.schedules.lr_at). NaN where the
    row lacks the config (a folder without config.yaml never reaches here)."""
    step = np.asarray(step, dtype=float)
    peak, total = _num(row.get("cfg.optim.lr", row.get("lr"))), _num(row.get("cfg.steps", row.get("steps")))
    schedule = row.get("cfg.optim.schedule")
    if not (math.isfinite(peak) and math.isfinite(total) and isinstance(schedule, str)):
        return np.full(step.shape, math.nan)
    total = int(total)
    w = _num(row.get("cfg.optim.warmup_steps"))
    warmup = int(w) if math.isfinite(w) else int(round(_num(row.get("cfg.optim.warmup_frac"), 0.0) * total))
    decay = wsd_decay_steps(total, _num(row.get("cfg.optim.decay_frac"), 0.2)) if schedule == "wsd" else 0
    span = Span(steps=total, warmup=warmup, decay=decay, final=_num(row.get("cfg.optim.final_lr_frac"), 0.0),
                decay_shape=row.get("cfg.optim.decay_shape") or "1-sqrt")  # fmt: skip
    factors = {s: lr_factor(max(int(s) - 1, 0), schedule, span) for s in np.unique(step[np.isfinite(step)])}
    return np.array([peak * factors[s] if s in factors else math.nan for s in step.tolist()])


def _num(v, default: float = math.nan) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def read_curve(run_dir: Path, row: dict) -> tuple[pd.DataFrame | None, str | None]:
    """The run's curve (None without metrics.parquet), and a warning when the file is unreadable."""
    curve = None
    metrics_path = run_dir / runfolder.METRICS
    if metrics_path.is_file():
        try:
            curve = pd.read_parquet(metrics_path)
        except Exception as e:  # pyarrow raises several types for truncated files
            return None, f"{run_dir.name}: metrics.parquet unreadable ({e}); run kept without curve"
        if curve is not None and len(curve):
            for k in CURVE_KEYS:
                curve[k] = row.get(k)
            if "step" in curve:
                curve["lr"] = scheduled_lr(curve["step"], row)
            # FLOPs so far: the run's own FLOPs/token (summary) times tokens seen.
            fpt = row["flops"] / row["tokens"] if row.get("tokens") else math.nan
            if "tokens" in curve:
                curve["flops"] = curve["tokens"].astype(float) * fpt
    return curve, None


def frame_schema(curve: pd.DataFrame) -> Schema:
    return [[str(c), str(t)] for c, t in curve.dtypes.items()]


def probe(run_dir: Path, row: dict):
    """(Arrow table, None, schema) when the run's curve can go the fast way, else (None, read_curve's frame or
    None, its schema or None) and read_curve's warning as a fourth item."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = run_dir / runfolder.METRICS
    if not path.is_file():
        return None, None, None, None
    try:
        table = pq.ParquetFile(path).read(use_threads=False)  # threads cost more than they save on a small file
    except Exception:  # read_curve reports it, with pandas' message
        table = None
    if table is not None and table.num_rows and _fast_table(table, row):
        cols = []
        for f in table.schema:  # a metrics column named like a key (lr) is overwritten in place by the key
            if f.name == "lr":
                cols.append(["lr", "float64"])  # scheduled_lr's values
            elif f.name in CURVE_KEYS:
                cols.append([f.name, _scalar_dtype(type(row.get(f.name)))[0]])
            else:
                ints = f.type == pa.int64() and not table.column(f.name).null_count
                cols.append([f.name, "int64" if ints else "float64"])
        cols += [[k, "float64" if k == "lr" else _scalar_dtype(type(row.get(k)))[0]]
                 for k in CURVE_KEYS if k not in table.column_names]  # fmt: skip
        if "tokens" in table.column_names:
            cols.append(["flops", "float64"])
        return table, None, cols, None
    curve, warning = read_curve(run_dir, row)
    schema = frame_schema(curve) if curve is not None and len(curve) else None
    return None, curve, schema, warning


def _fast_table(table, row: dict) -> bool:
    import pyarrow as pa

    meta = table.schema.metadata or {}
    if b"PANDAS_ATTRS" in meta or any(f.type not in (pa.int64(), pa.float64()) for f in table.schema):
        return False
    if "flops" in table.column_names:  # read_curve overwrites it only where the run has tokens
        return False
    if "step" not in table.column_names:  # read_curve's lr is then the key's value, not the schedule's
        return False
    index = table.schema.pandas_metadata.get("index_columns", []) if b"pandas" in meta else []
    return all(isinstance(i, dict) for i in index)  # an index stored as a column would not be a metric


@cache
def _scalar_dtype(kind: type) -> tuple[str, object]:
    """The dtype `curve[k] = value` gives a column for a value of this type (pandas' own inference)."""
    probe_value = {str: "x", int: 1, float: 1.5, type(None): None, bool: True}.get(kind)
    df = pd.DataFrame({"m": [0.0]})
    df["x"] = probe_value
    return str(df["x"].dtype), df["x"].dtype


class Pieces:
    """Arrow tables of runs' curves in folder order (from `probe`), compacted every COMPACT tables: 10,000 small
    tables cost about twice their data in allocator overhead, a few compacted batches cost their data."""

    COMPACT = 256

    def __init__(self) -> None:
        self.names: list[str] = []
        self.lengths: list[int] = []
        self.tokens: list[bool] = []  # whether the run's metrics have a tokens column (read_curve's flops)
        self._batches: list[Any] = []
        self._pending: list[Any] = []

    def add(self, name: str, table: Any) -> None:
        self.names.append(name)
        self.lengths.append(table.num_rows)
        self.tokens.append("tokens" in table.column_names)
        self._pending.append(table.replace_schema_metadata(None))
        if len(self._pending) >= self.COMPACT:
            self._compact()

    def _compact(self) -> None:
        import pyarrow as pa

        if self._pending:
            # permissive: a column some runs lack gets nulls, int64 meeting double becomes double; applied per
            # batch and then across batches it gives the types one concatenation of all runs would
            self._batches.append(pa.concat_tables(self._pending, promote_options="permissive").combine_chunks())
            self._pending = []

    def take(self) -> Any:
        """All runs' rows as one table; the accumulator lets go of them."""
        import pyarrow as pa

        self._compact()
        batches, self._batches = self._batches, []
        return pa.concat_tables(batches, promote_options="permissive")


def fast_concat(pieces: Pieces, rows: list[dict], columns: list[str]) -> pd.DataFrame | None:
    """pd.concat([read_curve(run) for each run]) from the runs' Arrow tables, or None when a key has values of
    different types across runs. `pieces` is emptied: Arrow's buffers are freed as they convert."""
    import pyarrow as pa

    kinds = {k: {type(r.get(k)) for r in rows} for k in CURVE_KEYS}
    if any(len(v) != 1 or next(iter(v)) not in (str, int, float) for v in kinds.values()):
        return None
    lengths = np.array(pieces.lengths)
    # read_curve's own expression per run (and its exceptions, should a summary hold something odd)
    fpt = np.array([r["flops"] / r["tokens"] if r.get("tokens") else math.nan for r in rows], dtype=float)
    big = pieces.take()
    # the keys are added as Arrow columns (a string column from one value per run and an index: no Python str
    # per row), all in the final column order, so the frame is converted once, without a reordering copy;
    # split_blocks + self_destruct free Arrow's buffers column by column as they convert
    index = pa.array(np.repeat(np.arange(len(rows)), lengths))
    arrays = []
    for c in columns:
        if c == "lr":  # the scheduled LR at each row's step (read_curve: scheduled_lr), whatever the metrics held
            steps = np.split(big.column("step").to_numpy(zero_copy_only=False), np.cumsum(lengths)[:-1])
            lr = [scheduled_lr(s, r) for s, r in zip(steps, rows)]
            arrays.append((c, pa.array(np.concatenate(lr) if lr else np.zeros(0), pa.float64())))
        elif c in CURVE_KEYS:  # also where a metrics column has a key's name: read_curve overwrites it
            kind = next(iter(kinds[c]))
            values = [r.get(c) for r in rows]
            if kind is str:
                arrays.append((c, pa.array(values, pa.large_string()).take(index)))
            else:
                arrays.append(
                    (c, pa.array(np.repeat(np.array(values, np.int64 if kind is int else np.float64), lengths)))
                )
        elif c in big.column_names:
            arrays.append((c, big.column(c)))
    big = pa.table(dict(arrays))
    del arrays  # the table alone holds the buffers now, so self_destruct can free them as it goes
    df = big.to_pandas(split_blocks=True, self_destruct=True)
    del big
    pa.default_memory_pool().release_unused()  # hand Arrow's freed buffers back to the system
    if any(pieces.tokens):
        df.insert(columns.index("flops"), "flops", df["tokens"].astype(float) * np.repeat(fpt, lengths))
    return df


def curves_table(
    results_dir: Path,
    rdir: Path,
    names: list[str],
    entries: dict[str, dict[str, Any]],
    pieces: Pieces,
    fresh: dict[str, pd.DataFrame],
    read_now: set[str],
    cache: dict[str, Any] | None,
) -> tuple[pd.DataFrame, bytes | None]:
    """The curves of `names` (folders with a curve, in order) as a full read concatenates them, and, when they
    were made from the previous curves.parquet, the new file's bytes. `pieces` and `fresh` hold the curves read
    now (the fast and the exact way), `read_now` their names."""
    if not names:
        return pd.DataFrame(columns=[*CURVE_KEYS, "step"]), None
    columns = list(dict.fromkeys(c for n in names for c, _ in entries[n]["cols"]))  # concat's order: first seen
    data = reuse_file(results_dir, rdir, names, entries, read_now, fresh, cache, columns)
    if data is not None:
        return read_back(data), data
    if pieces.names != names and not fresh:  # some runs came from the manifest: read every curve, in order
        pieces = Pieces()
        for n in names:
            table, curve, _, _ = probe(rdir / n, entries[n]["row"])
            if table is None:
                fresh[n] = curve
                break
            pieces.add(n, table)
    if not fresh:
        df = fast_concat(pieces, [entries[n]["row"] for n in names], columns)
        if df is not None:
            return df, None
    del pieces
    curves = [fresh[n] if n in fresh else read_curve(rdir / n, entries[n]["row"])[0] for n in names]
    return pd.concat(curves, ignore_index=True), None


def read_back(data: bytes) -> pd.DataFrame:
    """pd.read_parquet of a curves.parquet's bytes, converted column by column (self_destruct) so that the
    Arrow table and the frame are not both whole in memory. pandas' reader adds nothing for such a file: no index
    columns, no attrs, and (pyarrow >= 19) no types mapper; tests/laws/test_collect_incremental.py compares."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data), use_threads=False, use_pandas_metadata=True)
    if b"PANDAS_ATTRS" in (table.schema.metadata or {}):
        del table
        return pd.read_parquet(io.BytesIO(data), use_threads=False)
    import pyarrow as pa

    df = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()
    return df


# what each Arrow type of curves.parquet reads back as; a table with only these survives a round trip unchanged
_ROUND_TRIP = {"int64": "int64", "double": "float64", "large_string": "str", "string": "str", "bool": "bool"}


def reuse_file(
    results_dir: Path,
    rdir: Path,
    names: list[str],
    entries: dict[str, dict[str, Any]],
    read_now: set[str],
    fresh: dict[str, pd.DataFrame],
    cache: dict[str, Any] | None,
    columns: list[str],
) -> bytes | None:
    """The new curves.parquet (ant.laws.collect's incremental mode) from the previous one's rows of unchanged
    runs and the curves read now, in folder order (Arrow slices: the old rows are never converted); None when
    reading it back would not give a full read's table. That needs the same set of distinct curve schemas as the
    old table was made from (the concatenation's dtypes depend on that set only, see the module docstring), the
    same column order, and dtypes that survive the parquet round trip (no object columns, whose None and NaN
    parquet does not keep apart)."""
    changed = [n for n in names if n in read_now]
    if cache is None or len(changed) == len(names):
        return None
    before = [n for n in sorted(cache["folders"]) if cache["folders"][n]["n"]]
    if {repr(cache["folders"][n]["cols"]) for n in before} != {repr(entries[n]["cols"]) for n in names}:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = pq.read_table(results_dir / "curves.parquet", use_threads=False)  # threads cost more on a busy CPU
    offsets, at = {}, 0
    for n in before:
        offsets[n] = at
        at += cache["folders"][n]["n"]
    kinds = [_ROUND_TRIP.get(str(f.type)) for f in old.schema]
    if old.num_rows != at or old.column_names != columns or kinds != [cache["curves_dtypes"][c] for c in columns]:
        return None
    blocks: list[Any] = []
    start = end = None  # the stretch of consecutive old rows being gathered
    for n in names:
        if n in read_now:
            if start is not None:
                blocks.append(old.slice(start, end - start))
                start = None
            curve = fresh[n] if n in fresh else read_curve(rdir / n, entries[n]["row"])[0]  # the exact way
            piece = pa.Table.from_pandas(curve, preserve_index=False)  # NaN -> null, as to_parquet writes it
            arrays = [piece.column(f.name).cast(f.type) if f.name in piece.column_names
                      else pa.nulls(len(curve), f.type) for f in old.schema]  # fmt: skip
            blocks.append(pa.Table.from_arrays(arrays, schema=old.schema))
            continue
        a, b = offsets[n], offsets[n] + entries[n]["n"]
        if start is not None and a == end:
            end = b
        else:
            if start is not None:
                blocks.append(old.slice(start, end - start))
            start, end = a, b
    if start is not None:
        blocks.append(old.slice(start, end - start))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.concat_tables(blocks), sink, compression="snappy")  # to_parquet's codec
    data = sink.getvalue().to_pybytes()
    del old, blocks, sink
    pa.default_memory_pool().release_unused()  # the old table's buffers, before the new one is read back
    return data
