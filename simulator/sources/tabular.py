"""Labelled mail from a CSV file or a JSON Lines file: one message per row.

Each row has a text column and a label column (names configurable). Labels may be
``spam``/``ham``, ``1``/``0``, ``true``/``false`` (any case; JSON booleans and
numbers too). A bad row stops loading with an error naming the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.config import ScenarioError
from simulator.sources.corpus import Corpus, CorpusMessage

SPAM_VALUES = frozenset({"spam", "1", "true", "yes", "junk"})
HAM_VALUES = frozenset({"ham", "0", "false", "no", "not_spam", "legit"})


def parse_label(value: Any) -> bool:
    """True for a spam label, False for a ham label.

    >>> [parse_label(v) for v in ("spam", "HAM", "1", 0, True, "false", 1.0)]
    [True, False, True, False, True, False, True]
    >>> parse_label("maybe")
    Traceback (most recent call last):
    ...
    ValueError: label 'maybe' is neither spam (spam, 1, true) nor ham (ham, 0, false)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in SPAM_VALUES:
        return True
    if text in HAM_VALUES:
        return False
    raise ValueError(f"label {value!r} is neither spam (spam, 1, true) nor ham (ham, 0, false)")


def _message(path: Path, line: int, row: dict[str, Any], text_column: str, label_column: str) -> CorpusMessage:
    for column in (text_column, label_column):
        if row.get(column) is None:
            raise ScenarioError(f"{path}:{line}: missing column {column!r}")
    text = row[text_column]
    if not isinstance(text, str):
        raise ScenarioError(f"{path}:{line}: column {text_column!r} is not text")
    try:
        is_spam = parse_label(row[label_column])
    except ValueError as exc:
        raise ScenarioError(f"{path}:{line}: {exc}") from None
    return CorpusMessage(f"{path.name}:{line}", "", "", text.strip(), is_spam)


def _csv_rows(path: Path, text_column: str, label_column: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (text_column, label_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise ScenarioError(f"{path}:1: no column {missing[0]!r} in the header "
                                f"(columns: {', '.join(reader.fieldnames or []) or 'none'}); "
                                "set mail.text_column / mail.label_column")
        start = reader.line_num
        try:
            for row in reader:
                if None in row:
                    raise ScenarioError(f"{path}:{start + 1}: more fields than the header has")
                yield start + 1, row
                start = reader.line_num
        except csv.Error as exc:
            raise ScenarioError(f"{path}:{reader.line_num}: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{path}:{line}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ScenarioError(f"{path}:{line}: expected a JSON object")
            yield line, row


def read_table(kind: str, path: str | Path, text_column: str = "text", label_column: str = "label") -> Corpus:
    """Read a ``csv`` or ``jsonl`` file of labelled messages (the text becomes the body).

    Raises
    ------
    ScenarioError
        If the file is missing, a column is missing, or a row is bad (naming file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"mail.source: corpus not found: {path}")
    rows = _csv_rows(path, text_column, label_column) if kind == "csv" else _jsonl_rows(path)
    messages = tuple(_message(path, line, row, text_column, label_column) for line, row in rows)
    n_spam = sum(m.is_spam for m in messages)
    if n_spam == 0 or n_spam == len(messages):
        raise ScenarioError(f"mail.source: {path} needs both spam and ham rows "
                            f"({n_spam} spam of {len(messages)})")
    return Corpus(str(path), messages, sources={path.name: len(messages)})
