"""``poisonlab export``: runs and per-tick metrics of a run, a sweep or everything, as CSV or Parquet."""

from __future__ import annotations

import argparse

from rich.console import Console

from simulator.commands.common import DEFAULT_DB, UsageError, open_repository


def register(sub) -> None:
    parser = sub.add_parser("export", help="export runs and per-tick metrics as CSV or Parquet")
    parser.add_argument("id", nargs="?", metavar="RUN_OR_SWEEP_ID",
                        help="a run id or a sweep id, or a unique prefix (default: every run)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for runs.* and ticks.*")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"results database URL (default {DEFAULT_DB})")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from simulator.export import export

    with open_repository(args.db) as repo:
        try:
            written = export(repo, args.id, args.format, args.out)
        except LookupError as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    for path, rows in written:
        console.print(f"{path}: {rows} rows")
    return 0
