"""Run experiments and store them as they go: one or several, in worker processes.

Worker processes are plain ``multiprocessing`` processes fed one run at a time,
so that stopping is prompt and clean:

* Ctrl-C (or SIGINT/SIGTERM to the coordinating process) stops dispatching,
  sends SIGTERM to the workers, which mark their current run ``failed`` and
  exit; the coordinator then re-raises :class:`KeyboardInterrupt`;
* if the coordinating process is killed outright (SIGKILL), its workers die
  with it (Linux ``PR_SET_PDEATHSIG``), so no orphan keeps writing to the
  database; their runs stay ``running`` and a sweep resuming later deletes
  and redoes them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from simulator.config import Scenario
from stream.storage import Repository
from stream.transport import Transport

Progress = Callable[[int, int], None]          # (run index, ticks done)
Done = Callable[[int, dict], None]             # (run index, result document)
Cell = tuple[str, str]                         # (sweep_id, cell_key)
FLUSH_EVERY = 10
#: Seconds workers get to mark their runs failed after being told to stop.
STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1


class RunFailed(RuntimeError):
    """A run raised in a worker process; the message carries the worker's traceback."""


def execute(scenario: Scenario, repo: Repository, on_tick: Callable[[int], None] | None = None,
            group_id: str | None = None, *, cell: Cell | None = None, save_model: bool = False,
            broker: str = "memory") -> dict:
    """Run one experiment, writing its ticks to ``repo`` as it goes (a live dashboard can
    follow it) and marking it failed if it stops early.

    With ``cell=(sweep_id, cell_key)`` the run is stored as that sweep cell (a cell holds
    one run: a second start raises :class:`~stream.storage.StorageError`). A finished run
    is stored with its per-account outcomes and, with ``save_model``, a snapshot of the
    final model.
    """
    from simulator.engine import Simulation

    run_id = uuid.uuid4().hex
    pending: list[dict] = []
    timing: dict[str, float | None] = {}

    def tick_done(tick: int, entry: dict) -> None:
        if not timing:
            timing["first_tick_s"] = seconds_since_process_start()
        pending.append(entry)
        if len(pending) >= FLUSH_EVERY:
            repo.add_ticks(run_id, pending)
            pending.clear()
        if on_tick is not None:
            on_tick(tick + 1)

    transport = run_transport(broker, run_id)
    try:
        doc = _execute(scenario, repo, Simulation(scenario, on_tick=tick_done, run_id=run_id, transport=transport),
                       pending, group_id, cell, save_model)
        return {**doc, "timing": timing}
    finally:
        if transport is not None:
            transport.close()


def _execute(scenario: Scenario, repo: Repository, sim, pending: list[dict], group_id: str | None,
             cell: Cell | None, save_model: bool) -> dict:
    run_id = sim.run_id
    sweep_id, cell_key = cell if cell is not None else (None, None)
    repo.start_run(run_id, scenario.to_dict(), sim.chain.name, scenario.seed, group_id=group_id,
                   sweep_id=sweep_id, cell_key=cell_key)
    try:
        doc = sim.run()
        outcomes = sim.account_outcomes()
    except BaseException:
        repo.finish_run(run_id, {}, status="failed", ticks=pending)
        raise
    if save_model:
        repo.save_model_snapshot(run_id, scenario.ticks, sim.model.snapshot())
    repo.finish_run(run_id, doc["metrics"], ticks=pending, outcomes=outcomes)
    return doc


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started (Linux ``/proc``, 10 ms resolution);
    None elsewhere. A run's ``timing.first_tick_s`` is this at the end of its first
    tick: interpreter start, imports, set-up and warm-up training included."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime", encoding="ascii") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            now = float(uptime.read().split()[0])
        return max(0.0, now - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def run_transport(broker: str, run_id: str) -> Transport | None:
    """The transport of one run: None for the in-memory broker, else Kafka topics
    prefixed with ``poisonlab.<run_id>.`` so that runs sharing a broker never collide."""
    if broker == "memory":
        return None
    from stream.kafka import KafkaTransport

    return KafkaTransport(broker, topic_prefix=f"poisonlab.{run_id}.")


# --------------------------------------------------------------------------- worker side


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit if it already has."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):  # not Linux: orphans finish their current run
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker_main(db_url: str, parent_pid: int, tasks, events, broker: str = "memory") -> None:
    """Take runs from ``tasks`` until ``None``; report ``(kind, index, payload)`` on ``events``."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the coordinator decides when to stop...
    signal.signal(signal.SIGTERM, _interrupt)      # ...and tells us with SIGTERM
    try:
        repo = Repository(db_url)
    except Exception:  # noqa: BLE001 - reported to the coordinator
        events.put(("error", -1, traceback.format_exc()))
        return
    try:
        while (task := tasks.get()) is not None:
            index, scenario, group_id, cell, save_model = task
            events.put(("start", index, os.getpid()))
            try:
                doc = execute(Scenario.model_validate(scenario), repo,
                              lambda done, i=index: events.put(("tick", i, done)), group_id,
                              cell=cell, save_model=save_model, broker=broker)
            except KeyboardInterrupt:
                events.put(("stopped", index, None))
                return
            except Exception:  # noqa: BLE001 - reported to the coordinator
                events.put(("error", index, traceback.format_exc()))
                continue
            events.put(("done", index, doc))
    except KeyboardInterrupt:
        pass
    finally:
        repo.close()


# --------------------------------------------------------------------------- coordinator side


class _Pool:
    """Worker processes fed one run each at a time (nothing queued ahead, so a stop is prompt)."""

    def __init__(self, db_url: str, workers: int, broker: str = "memory"):
        methods = multiprocessing.get_all_start_methods()
        # fork: workers inherit the imported simulator (numba kernels included) and start at once.
        self.ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.tasks = self.ctx.Queue()
        self.events = self.ctx.Queue()
        self.procs = [self.ctx.Process(target=_worker_main, args=(db_url, os.getpid(), self.tasks, self.events, broker),
                                       daemon=True, name=f"poisonlab-worker-{k}") for k in range(workers)]
        for proc in self.procs:
            proc.start()
        self.running: dict[int, int | None] = {}    # run index -> worker pid (None until it starts)

    def submit(self, index: int, task: tuple) -> None:
        self.running[index] = None
        self.tasks.put(task)

    def lost_runs(self) -> list[tuple[int, int | None]]:
        """Runs whose worker died without reporting: ``(index, exit code)``."""
        dead = {p.pid: p.exitcode for p in self.procs if not p.is_alive()}
        lost = [(i, dead[pid]) for i, pid in self.running.items() if pid in dead]
        if not lost and self.running and len(dead) == len(self.procs):
            lost = [(i, None) for i in self.running]
        return lost

    def stop(self) -> None:
        """Tell every worker to stop, give them time to mark their runs failed, then kill."""
        for proc in self.procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.join(STOP_GRACE_S)
            if proc.is_alive():
                proc.kill()
                proc.join()

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for proc in self.procs:
            proc.join(STOP_GRACE_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for q in (self.tasks, self.events):
            q.close()
            q.cancel_join_thread()


def _in_process(scenarios: list[Scenario], db_url: str, on_progress: Progress, on_done: Done | None,
                group_id: str | None, cells: list[Cell | None], save_model: bool,
                broker: str = "memory") -> list[dict]:
    docs = []
    with Repository(db_url) as repo:
        for i, scenario in enumerate(scenarios):
            doc = execute(scenario, repo, lambda done, i=i: on_progress(i, done), group_id, cell=cells[i],
                          save_model=save_model, broker=broker)
            if on_done is not None:
                on_done(i, doc)
            docs.append(doc)
    return docs


def execute_many(scenarios: list[Scenario], db_url: str, on_progress: Progress, workers: int | None = None,
                 group_id: str | None = None, *, cells: list[Cell | None] | None = None,
                 on_done: Done | None = None, save_model: bool = False, broker: str = "memory") -> list[dict]:
    """Run several experiments in up to ``workers`` processes; results in input order.

    Parameters
    ----------
    scenarios : list of Scenario
        One run each.
    db_url : str
        Results database; every worker opens its own repository.
    on_progress : callable
        ``on_progress(index, ticks_done)`` as runs advance.
    workers : int, optional
        Worker processes (default: one per core); 1 runs everything in this process.
    group_id : str, optional
        Stored with every run.
    cells : list of (sweep_id, cell_key) or None, optional
        The sweep cell of each run (see :func:`execute`).
    on_done : callable, optional
        ``on_done(index, doc)`` as each run finishes.
    save_model : bool, default False
        Store a snapshot of each run's final model.
    broker : str, default "memory"
        ``memory`` or ``kafka://HOST:PORT`` (each run gets its own topic prefix).

    Raises
    ------
    RunFailed
        If a run raised (after the runs in progress have finished; no new run is
        started once one has failed).
    KeyboardInterrupt
        When interrupted; runs in progress are marked failed first.
    """
    cells = list(cells) if cells is not None else [None] * len(scenarios)
    if len(cells) != len(scenarios):
        raise ValueError("cells must have one entry per scenario")
    if not scenarios:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(scenarios)))
    if workers == 1:
        return _in_process(scenarios, db_url, on_progress, on_done, group_id, cells, save_model, broker)
    import simulator.engine  # noqa: F401 - loaded once here, inherited by forked workers

    results: list[dict | None] = [None] * len(scenarios)
    failures: list[str] = []
    pool = _Pool(db_url, workers, broker)
    queued = iter(range(len(scenarios)))

    def submit_next() -> None:
        index = next(queued, None)
        if index is not None:
            pool.submit(index, (index, scenarios[index].to_dict(), group_id, cells[index], save_model))

    try:
        for _ in range(workers):
            submit_next()
        while pool.running:
            try:
                kind, index, payload = pool.events.get(timeout=0.5)
            except queue_module.Empty:
                for index, code in pool.lost_runs():
                    pool.running.pop(index, None)
                    failures.append(f"run #{index}: its worker process died (exit code {code})")
                continue
            if kind == "start":
                pool.running[index] = payload
            elif kind == "tick":
                on_progress(index, payload)
            elif kind == "done":
                pool.running.pop(index, None)
                results[index] = payload
                if on_done is not None:
                    on_done(index, payload)
                if not failures:
                    submit_next()
            elif kind == "error":
                if index < 0:      # a worker could not even open the database
                    raise RunFailed(payload.strip().splitlines()[-1])
                pool.running.pop(index, None)
                failures.append(f"run #{index} failed:\n{payload}")
            elif kind == "stopped":
                pool.running.pop(index, None)
                raise KeyboardInterrupt
    except BaseException:
        pool.stop()
        raise
    finally:
        pool.close()
    if failures:
        raise RunFailed("; ".join(failures))
    return results  # type: ignore[return-value]
