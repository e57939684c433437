"""Run experiments and store them as they go: one or several, in worker processes."""

from __future__ import annotations

import os
import queue as queue_module
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Manager

from simulator.config import Scenario
from stream.storage import Repository

Progress = Callable[[int, int], None]          # (run index, ticks done)
FLUSH_EVERY = 10


def execute(scenario: Scenario, repo: Repository, on_tick: Callable[[int], None] | None = None,
            group_id: str | None = None) -> dict:
    """Run one experiment, writing its ticks to ``repo`` as it goes (a live dashboard can
    follow it) and marking it failed if it stops early."""
    from simulator.engine import Simulation

    run_id = uuid.uuid4().hex
    pending: list[dict] = []

    def tick_done(tick: int, entry: dict) -> None:
        pending.append(entry)
        if len(pending) >= FLUSH_EVERY:
            repo.add_ticks(run_id, pending)
            pending.clear()
        if on_tick is not None:
            on_tick(tick + 1)

    sim = Simulation(scenario, on_tick=tick_done, run_id=run_id)
    repo.start_run(run_id, scenario.to_dict(), sim.chain.name, scenario.seed, group_id=group_id)
    try:
        doc = sim.run()
    except BaseException:
        repo.add_ticks(run_id, pending)
        repo.finish_run(run_id, {}, status="failed")
        raise
    repo.add_ticks(run_id, pending)
    repo.finish_run(run_id, doc["metrics"])
    return doc


def _worker(index: int, scenario: dict, db_url: str, group_id: str | None, progress) -> dict:
    repo = Repository(db_url)
    try:
        return execute(Scenario.model_validate(scenario), repo, lambda done: progress.put((index, done)),
                       group_id)
    finally:
        repo.close()


def execute_many(scenarios: list[Scenario], db_url: str, on_progress: Progress, workers: int | None = None,
                 group_id: str | None = None) -> list[dict]:
    """Run several experiments in up to ``workers`` processes; results in input order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(scenarios)))
    if workers == 1:
        repo = Repository(db_url)
        try:
            return [execute(s, repo, lambda done, i=i: on_progress(i, done), group_id)
                    for i, s in enumerate(scenarios)]
        finally:
            repo.close()
    with Manager() as manager, ProcessPoolExecutor(max_workers=workers) as pool:
        progress = manager.Queue()
        futures = [pool.submit(_worker, i, s.to_dict(), db_url, group_id, progress)
                   for i, s in enumerate(scenarios)]
        while not all(f.done() for f in futures):
            try:
                on_progress(*progress.get(timeout=0.2))
            except queue_module.Empty:
                pass
        while not progress.empty():
            on_progress(*progress.get_nowait())
        return [f.result() for f in futures]
