"""The ``poisonlab`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.config import Scenario, ScenarioError, load_scenario

DEFAULT_DB = "sqlite:///poisonlab.db"
TABLE_METRICS = ("attack_success_rate", "collateral_rate", "clean_accuracy", "clean_fpr", "clean_fnr",
                 "label_precision", "honest_vote_loss", "bot_precision", "bot_recall",
                 "detection_delay_ticks", "votes_per_s")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (default: the built-in default scenario)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. population.bot_fraction=0.1 (repeatable)")
    parser.add_argument("--seed", type=int, help="random seed (overrides the scenario's)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"results database URL (default {DEFAULT_DB})")
    parser.add_argument("--broker", default="memory", help="memory (default) or kafka://HOST:PORT")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="write the result document(s) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poisonlab", description=(
        "Simulate coordinated poisoning of an online spam filter through user feedback, "
        "and measure the defenses."))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment")
    _experiment_args(run)
    run.add_argument("--defense", help="defense chain, comma-separated (e.g. reputation or majority,reputation)")
    compare = sub.add_parser("compare", help="run several defense chains and a no-attack baseline")
    _experiment_args(compare)
    compare.add_argument("--defenses", default="none,majority,reputation",
                         help="chains to compare, comma-separated; join a chain's members with + "
                              "(default none,majority,reputation)")
    compare.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="runs in parallel worker processes (default: one per core)")
    compare.add_argument("--chart", default="poisonlab-compare.png", help="PNG chart path (default %(default)s)")
    return parser


def _scenario(args: argparse.Namespace, chain: list[str] | None = None, extra: list[str] | None = None) -> Scenario:
    overrides = list(args.overrides) + list(extra or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if chain is not None:
        overrides.append("defense.chain=" + json.dumps(chain))
    return load_scenario(args.scenario, overrides)


def _check_broker(url: str) -> None:
    if url != "memory":
        scheme = url.split("://", 1)[0]
        if scheme == "kafka":
            raise UsageError(f"--broker {url}: the Kafka transport is not part of this version; use --broker memory")
        raise UsageError(f"--broker {url}: expected 'memory' or kafka://HOST:PORT")


def _parse_chain(text: str) -> list[str]:
    chain = [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    if not chain:
        raise UsageError(f"empty defense chain {text!r}")
    return chain


def _masked(url: str) -> str:
    from stream.storage import mask_url

    return mask_url(url)


def _open_repository(url: str):
    from stream.storage import Repository, StorageError

    try:
        return Repository(url)
    except StorageError as exc:
        raise UsageError(str(exc)) from None


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=quiet)


def _run_all(scenarios: list[tuple[Scenario, str]], args: argparse.Namespace, console: Console,
             group_id: str | None = None) -> list[dict]:
    from simulator.runner import execute_many

    _open_repository(args.db).close()          # fail early, with one line, on a bad URL
    with _progress(console, args.quiet) as progress:
        tasks = [progress.add_task(label, total=s.ticks) for s, label in scenarios]
        return execute_many([s for s, _ in scenarios], args.db,
                            lambda i, done: progress.update(tasks[i], completed=done),
                            workers=getattr(args, "workers", 1), group_id=group_id)


def _fmt(key: str, value) -> str:
    if value is None:
        return "—"
    if key.endswith("_per_s"):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(docs: list[dict], labels: list[str]) -> Table:
    table = Table(title="PoisonLab results (rates over the final quarter of the ticks)")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for key in TABLE_METRICS:
        table.add_row(key, *[_fmt(key, d["metrics"].get(key)) for d in docs])
    return table


def _write_json(path: str, payload) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    _check_broker(args.broker)
    chain = _parse_chain(args.defense) if args.defense else None
    scenario = _scenario(args, chain)
    [doc] = _run_all([(scenario, f"{scenario.name} · {'+'.join(scenario.defense.chain)}")], args, console)
    console.print(_table([doc], [doc["defense"]]))
    console.print(f"run {doc['run_id']} stored in {_masked(args.db)}")
    if args.json_path:
        _write_json(args.json_path, doc)
        console.print(f"result document written to {args.json_path}")
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from simulator.charts import comparison_chart

    _check_broker(args.broker)
    chains = [_parse_chain(c) for c in args.defenses.split(",") if c.strip()]
    if not chains:
        raise UsageError("--defenses: name at least one defense chain")
    scenarios = [(_scenario(args, ["none"], ["attack.strategy='none'"]), "no attack")]
    scenarios += [(_scenario(args, chain), "+".join(chain)) for chain in chains]
    group_id = uuid.uuid4().hex
    docs = _run_all(scenarios, args, console, group_id)
    console.print(_table(docs, [label for _, label in scenarios]))
    chart = comparison_chart(docs, args.chart)
    console.print(f"chart written to {chart}; runs stored in {_masked(args.db)} (group {group_id})")
    if args.json_path:
        _write_json(args.json_path, docs)
        console.print(f"result documents written to {args.json_path}")
    return 0


COMMANDS = {"run": cmd_run, "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    try:
        return COMMANDS[args.command](args, console)
    except (ScenarioError, UsageError) as exc:
        print(f"poisonlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("poisonlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
