"""Print ``benchmarks/results.json`` as one table (the last step of ``make bench``).

Every entry is ``{"name", "ours_per_s", "peer", "peer_per_s", "ratio", "same_result", ...}``;
rates are per second of whatever the entry counts (votes, emails, runs). With
``--markdown`` the table is printed in Markdown, ready for the README.

    python benchmarks/summary.py [--markdown] [--match PREFIX]
"""

from __future__ import annotations

import argparse
import json
import sys

from results import RESULTS

COLUMNS = ("name", "ours/s", "peer", "peer/s", "ratio", "same")


def rate(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def rows(entries: list[dict], match: str | None) -> list[tuple[str, ...]]:
    """One row of text per entry whose name starts with ``match``.

    >>> rows([{"name": "a", "ours_per_s": 2e6, "peer": "p", "peer_per_s": 1e5, "ratio": 20.0,
    ...        "same_result": True}], None)
    [('a', '2,000,000', 'p', '100,000', '20.0×', 'yes')]
    """
    out = []
    for e in entries:
        if match and not e["name"].startswith(match):
            continue
        same = {True: "yes", False: "NO", None: "—"}[e.get("same_result")]
        ratio = "—" if e.get("ratio") is None else f"{e['ratio']:.3g}×" if e["ratio"] < 10 else f"{e['ratio']:.1f}×"
        out.append((e["name"], rate(e.get("ours_per_s")), e.get("peer") or "—", rate(e.get("peer_per_s")), ratio, same))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--match", help="only entries whose name starts with this")
    args = parser.parse_args(argv)
    if not RESULTS.exists():
        print(f"error: {RESULTS} does not exist: run `make bench` first", file=sys.stderr)
        return 2
    table = rows(json.loads(RESULTS.read_text()), args.match)
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join("---" if i in (0, 2, 5) else "--:" for i in range(len(COLUMNS))) + "|")
        for row in table:
            print("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
        return 0
    widths = [max(len(c), *(len(r[i]) for r in table)) if table else len(c) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for row in table:
        print("  ".join(v.ljust(w) if i in (0, 2) else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
