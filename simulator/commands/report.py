"""``poisonlab report``: Markdown and PNG charts of a run or a sweep."""

from __future__ import annotations

import argparse

from rich.console import Console

from simulator.commands.common import DEFAULT_DB, UsageError, open_repository


def register(sub) -> None:
    parser = sub.add_parser("report", help="write a Markdown report with PNG charts of a run or a sweep")
    parser.add_argument("id", metavar="RUN_OR_SWEEP_ID", help="a run id or a sweep id (a unique prefix is enough)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for report.md and the PNGs")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"results database URL (default {DEFAULT_DB})")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from simulator.report import write_report

    with open_repository(args.db) as repo:
        try:
            path = write_report(repo, args.id, args.out)
        except LookupError as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    console.print(f"report written to {path}" + (f" with {', '.join(pngs)}" if pngs else ""))
    return 0
