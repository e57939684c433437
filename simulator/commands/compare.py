"""``poisonlab compare``: several defense chains and a no-attack baseline on one scenario and seed."""

from __future__ import annotations

import argparse
import os
import uuid

from rich.console import Console

from simulator.commands.common import (
    UsageError,
    check_broker,
    experiment_args,
    masked,
    parse_chain,
    run_all,
    scenario_from_args,
    table,
    write_json,
)


def register(sub) -> None:
    parser = sub.add_parser("compare", help="run several defense chains and a no-attack baseline")
    experiment_args(parser)
    parser.add_argument("--defenses", default="none,majority,reputation",
                        help="chains to compare, comma-separated; join a chain's members with + "
                             "(default none,majority,reputation)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="runs in parallel worker processes (default: one per core)")
    parser.add_argument("--chart", default="poisonlab-compare.png", help="PNG chart path (default %(default)s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    from simulator.charts import comparison_chart

    check_broker(args.broker)
    chains = [parse_chain(c) for c in args.defenses.split(",") if c.strip()]
    if not chains:
        raise UsageError("--defenses: name at least one defense chain")
    scenarios = [(scenario_from_args(args, ["none"], ["attack.strategy='none'"]), "no attack")]
    scenarios += [(scenario_from_args(args, chain), "+".join(chain)) for chain in chains]
    group_id = uuid.uuid4().hex
    docs = run_all(scenarios, args, console, group_id)
    console.print(table(docs, [label for _, label in scenarios]))
    chart = comparison_chart(docs, args.chart)
    console.print(f"chart written to {chart}; runs stored in {masked(args.db)} (group {group_id})")
    if args.json_path:
        write_json(args.json_path, docs)
        console.print(f"result documents written to {args.json_path}")
    return 0


