"""The SpamAssassin public corpus in its original layout: folders or ``.tar.bz2`` archives.

The corpus ships as archives (``20021010_easy_ham.tar.bz2`` ...) that each hold one
folder (``easy_ham``, ``hard_ham``, ``spam``, ``easy_ham_2``, ``spam_2`` ...) with one
raw RFC 822 message per file and an index file ``cmds``. A folder whose name starts
with ``spam`` holds spam; one whose name contains ``ham`` holds ham. PATH may be a
directory holding such folders and/or archives (extracted or not, or both: a message
found twice under the same ``folder/file`` name is read once), or one archive.
"""

from __future__ import annotations

import os
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from simulator.config import ScenarioError
from simulator.sources.corpus import Corpus, CorpusMessage
from simulator.sources.rfc822 import parse_message

ARCHIVE_SUFFIXES = (".tar.bz2", ".tbz2", ".tar.gz", ".tgz", ".tar")
INDEX_FILES = frozenset({"cmds"})


def folder_label(folder: str) -> bool | None:
    """True for a spam folder, False for a ham folder, None for anything else.

    >>> [folder_label(f) for f in ("spam", "spam_2", "easy_ham", "hard_ham", "easy_ham_2", "misc")]
    [True, True, False, False, False, None]
    """
    name = folder.lower()
    if name.startswith("spam"):
        return True
    if "ham" in name:
        return False
    return None


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_files(path: Path) -> Iterator[tuple[str, str, bytes | None]]:
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                parts = member.name.strip("/").split("/")
                if len(parts) < 2:
                    yield "", parts[-1], None
                    continue
                handle = archive.extractfile(member)
                yield parts[-2], parts[-1], handle.read() if handle is not None else None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ScenarioError(f"{path}: not a readable archive ({exc})") from None


def _folder_files(folder: Path) -> Iterator[tuple[str, str, bytes | None]]:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            try:
                yield folder.name, entry.name, Path(entry.path).read_bytes()
            except OSError as exc:
                raise ScenarioError(f"{entry.path}: cannot be read ({exc.strerror})") from None


def _raw_files(path: Path) -> Iterator[tuple[str, str, bytes | None]]:
    if _is_archive(path):
        yield from _archive_files(path)
        return
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            yield from _folder_files(entry)
        elif _is_archive(entry):
            yield from _archive_files(entry)


def read_spamassassin(path: str | Path) -> Corpus:
    """Read and parse every message under ``path``.

    Raises
    ------
    ScenarioError
        If ``path`` does not exist, or holds no ham and spam messages.
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"mail.source: corpus not found: {path}")
    messages: dict[str, CorpusMessage] = {}
    charset_errors = skipped = 0
    sources: Counter[str] = Counter()
    for folder, name, raw in _raw_files(path):
        label = folder_label(folder)
        if raw is None or label is None or name in INDEX_FILES or name.startswith("."):
            skipped += 1
            continue
        key = f"{folder}/{name}"
        if key in messages:
            continue
        parsed = parse_message(raw)
        charset_errors += parsed.charset_errors
        messages[key] = CorpusMessage(key, parsed.sender, parsed.subject, parsed.body, label,
                                      parsed.list_id, parsed.bulk)
        sources[folder] += 1
    if not any(m.is_spam for m in messages.values()) or all(m.is_spam for m in messages.values()):
        raise ScenarioError(f"mail.source: {path} holds no SpamAssassin-layout ham and spam folders "
                            f"(found {dict(sources) or 'no messages'})")
    ordered = tuple(messages[k] for k in sorted(messages))
    return Corpus(str(path), ordered, charset_errors, skipped, dict(sorted(sources.items())))
