"""The benchmarks' shared results file, ``benchmarks/results.json``."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def merge_results(entries: list[dict]) -> None:
    """Write ``entries`` into the results file, replacing entries of the same name."""
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    names = {e["name"] for e in entries}
    RESULTS.write_text(json.dumps([e for e in existing if e["name"] not in names] + entries, indent=2) + "\n")
