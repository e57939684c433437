"""``poisonlab sweep``: a grid of scenario values × defense chains × seeds, resumable."""

from __future__ import annotations

import argparse
import os
import signal
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from simulator.commands.common import (
    UsageError,
    check_broker,
    experiment_args,
    masked,
    open_repository,
    parse_chain,
    write_json,
)

SUMMARY_METRICS = (("attack_success_rate", "attack success"), ("collateral_rate", "collateral"),
                   ("clean_accuracy", "clean accuracy"), ("bot_recall", "bot recall"))


def register(sub) -> None:
    parser = sub.add_parser("sweep", help="run a grid of scenario values × defenses × seeds (resumable)")
    experiment_args(parser)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a scenario key and the values to sweep, e.g. population.bot_fraction=0.01,0.05 "
                             "(repeatable: the grid is the product)")
    parser.add_argument("--defenses", default="none,majority,reputation",
                        help="chains to run at every grid point, comma-separated; join a chain's members with + "
                             "(default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per grid point and chain: --seed, --seed+1, ... (default %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="runs in parallel worker processes (default: one per core)")
    parser.add_argument("--name", help="a label for the sweep (default: the scenario's name)")
    parser.add_argument("--save-models", action="store_true", help="store each run's final model (SHA-256 checked)")
    parser.set_defaults(handler=handle)


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, disable=quiet)


def _fmt(row: dict) -> str:
    if row["mean"] is None:
        return "—"
    if row["n"] == 1:
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} ({row['min']:.2f}–{row['max']:.2f})"


def summary_table(runs: list[dict], sweep_id: str) -> Table:
    """Mean (min–max) over seeds of the key metrics, per grid point and defense."""
    from simulator.sweep import summarize

    table = Table(title=f"sweep {sweep_id}: mean (min–max) over seeds, final quarter of the ticks")
    columns = [summarize(runs, metric) for metric, _ in SUMMARY_METRICS]
    keys = list(columns[0][0]["params"]) if columns[0] else []
    for key in keys:
        table.add_column(key.rsplit(".", 1)[-1], justify="right")
    table.add_column("defense")
    for _, label in SUMMARY_METRICS:
        table.add_column(label, justify="right")
    for rows in zip(*columns):
        table.add_row(*[str(rows[0]["params"][k]) for k in keys], rows[0]["defense"], *[_fmt(r) for r in rows])
    return table


def _interrupt_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def handle(args: argparse.Namespace, console: Console) -> int:
    from simulator.sweep import SweepBusy, plan_sweep, run_sweep

    check_broker(args.broker)
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: need at least one worker")
    chains = [parse_chain(c) for c in args.defenses.split(",") if c.strip()]
    plan = plan_sweep(args.scenario, args.overrides, args.grid, chains, args.seeds, args.seed, args.name)
    open_repository(args.db).close()          # fail early, with one line, on a bad URL
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)   # stop like Ctrl-C: runs marked, sweep resumable
    started = time.monotonic()

    with _progress(console, args.quiet) as progress:
        state: dict = {}

        def on_start(start) -> None:
            console.print(f"sweep {plan.sweep_id} ({plan.name}): {len(plan.cells)} cells, {start.done} already done"
                          + (f", {start.reset} unfinished run(s) discarded" if start.reset else "")
                          + f"; running {len(start.pending)} with {min(args.workers, max(1, len(start.pending)))}"
                          " worker(s)")
            state["ticks"] = {}
            state["pending"] = start.pending
            state["done"] = start.done
            total = sum(c.scenario.ticks for c in start.pending)
            if total:
                state["task"] = progress.add_task(f"cells {start.done}/{len(plan.cells)}", total=total)

        def on_progress(index: int, ticks: int) -> None:
            state["ticks"][index] = ticks
            progress.update(state["task"], completed=sum(state["ticks"].values()))

        def on_cell_done(index: int, doc: dict) -> None:
            state["done"] += 1
            state["ticks"][index] = state["pending"][index].scenario.ticks
            progress.update(state["task"], description=f"cells {state['done']}/{len(plan.cells)}",
                            completed=sum(state["ticks"].values()))

        try:
            run_sweep(plan, args.db, args.workers, on_start=on_start, on_progress=on_progress,
                      on_cell_done=on_cell_done, save_models=args.save_models, broker=args.broker)
        except SweepBusy as exc:
            raise UsageError(str(exc)) from None
        except KeyboardInterrupt:
            console.print(f"sweep {plan.sweep_id} interrupted; run the same command again to resume it")
            raise

    with open_repository(args.db) as repo:
        runs = repo.sweep_runs(plan.sweep_id)
    console.print(summary_table(runs, plan.sweep_id))
    elapsed = time.monotonic() - started
    console.print(f"sweep {plan.sweep_id}: {len(runs)} runs stored in {masked(args.db)} "
                  f"(this invocation took {elapsed:.0f} s); report with: poisonlab report {plan.sweep_id} --out DIR")
    if args.json_path:
        write_json(args.json_path, {"sweep_id": plan.sweep_id, "definition": plan.definition, "runs": runs})
        console.print(f"sweep runs written to {args.json_path}")
    return 0
