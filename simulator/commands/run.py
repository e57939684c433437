"""``poisonlab run``: one experiment."""

from __future__ import annotations

import argparse

from rich.console import Console

from simulator.commands.common import (
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
    parser = sub.add_parser("run", help="run one experiment")
    experiment_args(parser)
    parser.add_argument("--defense", help="defense chain, comma-separated (e.g. reputation or majority,reputation)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    check_broker(args.broker)
    chain = parse_chain(args.defense) if args.defense else None
    scenario = scenario_from_args(args, chain)
    [doc] = run_all([(scenario, f"{scenario.name} · {'+'.join(scenario.defense.chain)}")], args, console)
    console.print(table([doc], [doc["defense"]]))
    console.print(f"run {doc['run_id']} stored in {masked(args.db)}")
    if args.json_path:
        write_json(args.json_path, doc)
        console.print(f"result document written to {args.json_path}")
    return 0


