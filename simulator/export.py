"""``poisonlab export``: runs and per-tick metrics as CSV or Parquet files.

Two tables are written to the output directory:

``runs.csv`` / ``runs.parquet``
    One row per run: ``run_id``, ``created_at``, ``name``, ``defense``,
    ``seed``, ``status``, ``attack_strategy``, ``group_id``, ``sweep_id``,
    ``cell_key``, then the scenario values flattened as ``scenario.<key>``
    (e.g. ``scenario.population.bot_fraction``; lists as JSON text) and the
    result metrics as ``metrics.<name>``.
``ticks.csv`` / ``ticks.parquet``
    One row per run and tick: ``run_id``, ``tick`` and every per-tick value.

Each column has one type: boolean, integer, float or text (values of mixed
kinds become text); missing values are empty cells in CSV and nulls in
Parquet. Floats are written with full precision.

>>> import tempfile
>>> from stream.storage import Repository
>>> repo = Repository("sqlite://")
>>> repo.save_result({"run_id": "r1", "scenario": {"name": "s", "population": {"bot_fraction": 0.05}},
...                   "defense": "none", "seed": 1, "metrics": {"attack_success_rate": 0.5},
...                   "timeline": [{"tick": 0, "votes": 3}]})
>>> with tempfile.TemporaryDirectory() as out:
...     [(p.name, n) for p, n in export(repo, None, "csv", out)]
[('runs.csv', 1), ('ticks.csv', 1)]
>>> repo.close()
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stream.sweep_records import lookup

__all__ = ["FORMATS", "RUN_COLUMNS", "export", "flatten", "run_rows", "tick_rows"]

FORMATS = ("csv", "parquet")
RUN_COLUMNS = ("run_id", "created_at", "name", "defense", "seed", "status", "attack_strategy", "group_id",
               "sweep_id", "cell_key")


def flatten(document: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys; lists become JSON text.

    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}, "x.")
    {'x.a.b': 1, 'x.a.c': '[1, 2]', 'x.d': None}
    """
    out: dict[str, Any] = {}
    for key, value in (document or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def run_rows(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per stored run document (as :meth:`~stream.storage.Repository.get_run` returns)."""
    rows = []
    for doc in docs:
        row = {column: doc.get(column) for column in RUN_COLUMNS}
        row["name"] = lookup(doc.get("scenario"), "name")
        row["attack_strategy"] = lookup(doc.get("scenario"), "attack.strategy")
        row.update(flatten(doc.get("scenario"), "scenario."))
        row.update(flatten(doc.get("metrics"), "metrics."))
        rows.append(row)
    return rows


def tick_rows(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per run and tick."""
    rows = []
    for doc in docs:
        for entry in doc.get("timeline") or []:
            row = {"run_id": doc["run_id"], "tick": entry.get("tick")}
            row.update(flatten({k: v for k, v in entry.items() if k != "tick"}))
            rows.append(row)
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _kind(values: list[Any], text_when_empty: bool) -> str:
    present = [v for v in values if v is not None]
    if not present:  # e.g. a metric no run measured
        return "text" if text_when_empty else "float"
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "text"


def _typed(values: list[Any], kind: str) -> list[Any]:
    if kind == "float":
        return [None if v is None else float(v) for v in values]
    if kind == "text":
        return [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values]
    return values


def _write_csv(path: Path, columns: list[str], data: dict[str, list[Any]], n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i in range(n):
            writer.writerow(["" if data[c][i] is None else data[c][i] for c in columns])


def _write_parquet(path: Path, columns: list[str], data: dict[str, list[Any]], kinds: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "text": pa.string()}
    table = pa.table({c: pa.array(data[c], type=types[kinds[c]]) for c in columns})
    pq.write_table(table, path)


def _write(rows: list[dict[str, Any]], path: Path, fmt: str, first: tuple[str, ...]) -> int:
    columns = [c for c in first if any(c in r for r in rows) or not rows] + [
        c for c in _columns(rows) if c not in first]
    kinds = {c: _kind([r.get(c) for r in rows], c in first) for c in columns}
    data = {c: _typed([r.get(c) for r in rows], kinds[c]) for c in columns}
    if fmt == "csv":
        _write_csv(path, columns, data, len(rows))
    else:
        _write_parquet(path, columns, data, kinds)
    return len(rows)


def export(repo, ident: str | None, fmt: str, out_dir: str | Path) -> list[tuple[Path, int]]:
    """Write ``runs.<fmt>`` and ``ticks.<fmt>`` for a run, a sweep or (``ident=None``) every run.

    Parameters
    ----------
    repo : stream.storage.Repository
        Where the runs are stored.
    ident : str or None
        A run id, a sweep id or a unique prefix of one; ``None`` for every run.
    fmt : {"csv", "parquet"}
        File format.
    out_dir : str or Path
        Output directory (created if missing).

    Returns
    -------
    list of (Path, int)
        Each file written and its number of rows.

    Raises
    ------
    LookupError
        If `ident` names no run or sweep (or several), or there is nothing to export.
    ValueError
        For an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if ident is None:
        run_ids = [r["run_id"] for r in reversed(repo.list_runs(limit=None))]
        if not run_ids:
            raise LookupError(f"nothing to export: no runs in {repo.masked_url}")
    else:
        kind, full = repo.resolve_id(ident)
        run_ids = [full] if kind == "run" else [r["run_id"] for r in repo.sweep_runs(full)]
        if not run_ids:
            raise LookupError(f"nothing to export: sweep {full} has no runs yet")
    docs = [doc for doc in (repo.get_run(run_id) for run_id in run_ids) if doc is not None]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs_path, ticks_path = out / f"runs.{fmt}", out / f"ticks.{fmt}"
    return [(runs_path, _write(run_rows(docs), runs_path, fmt, RUN_COLUMNS)),
            (ticks_path, _write(tick_rows(docs), ticks_path, fmt, ("run_id", "tick")))]
