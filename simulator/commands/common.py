"""What the experiment commands share: arguments, scenario loading, progress, tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from simulator.config import Scenario, load_scenario

DEFAULT_DB = "sqlite:///poisonlab.db"
TABLE_METRICS = ("attack_success_rate", "collateral_rate", "clean_accuracy", "clean_fpr", "clean_fnr",
                 "label_precision", "honest_vote_loss", "bot_precision", "bot_recall",
                 "detection_delay_ticks", "votes_per_s")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (default: the built-in default scenario)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. population.bot_fraction=0.1 (repeatable)")
    parser.add_argument("--seed", type=int, help="random seed (overrides the scenario's)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"results database URL (default {DEFAULT_DB})")
    parser.add_argument("--broker", default="memory", help="memory (default) or kafka://HOST:PORT")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="write the result document(s) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def scenario_from_args(args: argparse.Namespace, chain: list[str] | None = None, extra: list[str] | None = None) -> Scenario:
    overrides = list(args.overrides) + list(extra or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if chain is not None:
        overrides.append("defense.chain=" + json.dumps(chain))
    return load_scenario(args.scenario, overrides)


def check_broker(url: str) -> None:
    """Accept ``memory`` or a reachable ``kafka://HOST:PORT``; else :class:`UsageError`."""
    if url == "memory":
        return
    from stream.kafka import KafkaSettings, check_reachable
    from stream.transport import TransportError

    try:
        settings = KafkaSettings.from_url(url)
    except ValueError:
        raise UsageError(f"--broker {url}: expected 'memory' or kafka://HOST:PORT") from None
    try:
        check_reachable(settings)
    except TransportError as exc:
        raise UsageError(f"--broker {url}: {exc}") from None


def parse_chain(text: str) -> list[str]:
    chain = [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    if not chain:
        raise UsageError(f"empty defense chain {text!r}")
    return chain


def masked(url: str) -> str:
    from stream.storage import mask_url

    return mask_url(url)


def open_repository(url: str):
    from stream.storage import Repository, StorageError

    try:
        return Repository(url)
    except StorageError as exc:
        raise UsageError(str(exc)) from None


def progress_bar(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=quiet)


def run_all(scenarios: list[tuple[Scenario, str]], args: argparse.Namespace, console: Console,
             group_id: str | None = None) -> list[dict]:
    from simulator.runner import execute_many

    open_repository(args.db).close()          # fail early, with one line, on a bad URL
    with progress_bar(console, args.quiet) as progress:
        tasks = [progress.add_task(label, total=s.ticks) for s, label in scenarios]
        return execute_many([s for s, _ in scenarios], args.db,
                            lambda i, done: progress.update(tasks[i], completed=done),
                            workers=getattr(args, "workers", 1), group_id=group_id,
                            broker=getattr(args, "broker", "memory"))


def fmt(key: str, value) -> str:
    if value is None:
        return "—"
    if key.endswith("_per_s"):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(docs: list[dict], labels: list[str]) -> Table:
    table = Table(title="PoisonLab results (rates over the final quarter of the ticks)")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for key in TABLE_METRICS:
        table.add_row(key, *[fmt(key, d["metrics"].get(key)) for d in docs])
    return table


def write_json(path: str, payload) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


