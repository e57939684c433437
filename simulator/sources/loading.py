"""Reading a corpus from disk once per process.

Parsing the SpamAssassin corpus takes a couple of seconds; a ``compare`` or a sweep
builds one source per run, so parsed corpora are kept in a small per-process cache
keyed by kind, absolute path, modification time and columns. Nothing is read
until the first call.
"""

from __future__ import annotations

import functools
from pathlib import Path

from simulator.config import ScenarioError
from simulator.sources.corpus import Corpus

REAL_KINDS = ("spamassassin", "csv", "jsonl")


@functools.lru_cache(maxsize=4)
def _load(kind: str, path: str, mtime_ns: int, text_column: str, label_column: str) -> Corpus:
    if kind == "spamassassin":
        from simulator.sources.spamassassin import read_spamassassin

        return read_spamassassin(path)
    from simulator.sources.tabular import read_table

    return read_table(kind, path, text_column, label_column)


def load_corpus(kind: str, path: str | Path, text_column: str = "text", label_column: str = "label") -> Corpus:
    """The parsed corpus at ``path`` (cached: a second call in the process is free).

    Raises
    ------
    ScenarioError
        If the path does not exist or the corpus cannot be read.
    """
    if kind not in REAL_KINDS:
        raise ScenarioError(f"mail.source: unknown corpus kind {kind!r} (choose from {', '.join(REAL_KINDS)})")
    resolved = Path(path).expanduser().absolute()
    try:
        mtime_ns = resolved.stat().st_mtime_ns
    except OSError:
        raise ScenarioError(f"mail.source: corpus not found: {path}") from None
    return _load(kind, str(resolved), mtime_ns, text_column, label_column)
