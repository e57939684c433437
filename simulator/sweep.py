"""Sweeps: a grid of scenario values × defense chains × seeds, resumable, in the database.

A sweep is planned (:func:`plan_sweep`) from a base scenario, ``--grid``
items, defense chains and seeds. Every value is validated through
:mod:`simulator.config` before anything runs. The sweep's id is a hash of its
definition (the fully resolved base scenario, grid, chains, seeds), so the
same command names the same sweep and running it again resumes it. Because
the scenario is resolved, a PoisonLab whose scenario defaults changed (a new
key, another default) starts a new sweep instead of mixing results computed
under different settings; only the parameter tables of defenses that no chain
of the sweep uses are left out of the hash. :func:`run_sweep` claims
the sweep in the database (one process at a time), deletes the runs of cells
that an interrupted process left unfinished, skips finished cells and runs
the rest with :func:`simulator.runner.execute_many`. Each cell is one run,
stored with its ``(sweep_id, cell_key)``, which the database keeps unique.

>>> plan = plan_sweep(None, ["ticks=4", "attack.start_tick=1"], ["population.bot_fraction=0.01,0.1"],
...                   [["none"], ["reputation"]], 2)
>>> len(plan.cells), plan.seeds, plan.grid
(8, [7, 8], {'population.bot_fraction': [0.01, 0.1]})
>>> plan.cells[0].key
'{"defense":"none","params":{"population.bot_fraction":0.01},"seed":7}'
>>> plan.sweep_id == plan_sweep(None, ["ticks=4", "attack.start_tick=1"], ["population.bot_fraction=0.01,0.1"],
...                             [["none"], ["reputation"]], 2).sweep_id
True
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from simulator.config import Scenario, ScenarioError, load_scenario
from stream.sweep_records import lookup

__all__ = ["DEFINITION_VERSION", "SweepBusy", "SweepCell", "SweepPlan", "plan_sweep", "run_sweep",
           "split_values", "summarize"]

#: Bumped when the meaning of a definition changes, so old and new sweeps never share an id.
DEFINITION_VERSION = 1
#: Keys a grid may not sweep: they have their own options.
RESERVED_KEYS = {"seed": "--seeds N (and --seed for the first seed)", "defense.chain": "--defenses"}
#: Seconds between heartbeats of the process running a sweep, and after which a silent owner is presumed dead.
HEARTBEAT_S = 10.0
STALE_S = 120.0


class SweepBusy(Exception):
    """Another live process is running this sweep."""


@dataclass(frozen=True)
class SweepCell:
    """One run of a sweep: grid values, defense chain and seed."""

    key: str
    params: dict[str, Any]
    defense: str
    seed: int
    scenario: Scenario


@dataclass
class SweepPlan:
    """Everything needed to run (or resume) a sweep."""

    sweep_id: str
    name: str
    definition: dict[str, Any]
    grid: dict[str, list[Any]]
    defenses: list[str]
    seeds: list[int]
    cells: list[SweepCell] = field(repr=False)


# --------------------------------------------------------------------------- planning


def split_values(text: str) -> list[str]:
    """Split a ``--grid`` value list on commas outside brackets and quotes.

    >>> split_values("0.01, 0.1,0.2")
    ['0.01', '0.1', '0.2']
    >>> split_values('["bank_alert","personal"],["newsletter"]')
    ['["bank_alert","personal"]', '["newsletter"]']
    """
    parts, current, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_grid_item(item: str) -> tuple[str, list[str]]:
    key, sep, values = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(f"--grid {item!r}: expected key=value1,value2,...")
    if key in RESERVED_KEYS:
        raise ScenarioError(f"--grid {key}: not a grid key; use {RESERVED_KEYS[key]}")
    texts = split_values(values)
    if any(not t for t in texts):
        raise ScenarioError(f"--grid {item!r}: empty value in the list")
    return key, texts


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _base_definition(base: Scenario, swept: list[str], chains: list[list[str]]) -> dict[str, Any]:
    """The base scenario without what the sweep sets per cell (seed, chain, swept keys) and
    without the parameter tables of defenses no chain uses (they cannot change a result)."""
    data = copy.deepcopy(base.to_dict())
    used = {name for chain in chains for name in chain}
    defense = data.get("defense", {})
    for name in [k for k, v in defense.items() if isinstance(v, dict) and k not in used]:
        del defense[name]
    for key in ["seed", "defense.chain", *swept]:
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.get(part, {})
        if isinstance(node, dict):
            node.pop(last, None)
    return data


def plan_sweep(scenario_path: str | Path | None, overrides: list[str], grid_items: list[str],
               chains: list[list[str]], seeds: int, first_seed: int | None = None,
               name: str | None = None) -> SweepPlan:
    """Validate a sweep and list its cells.

    Parameters
    ----------
    scenario_path : str, Path or None
        Base scenario file (``None``: the defaults).
    overrides : list of str
        ``--set key=value`` items applied to the base.
    grid_items : list of str
        ``key=v1,v2,...`` items; values are TOML literals, as for ``--set``.
    chains : list of list of str
        Defense chains.
    seeds : int
        Seeds per grid point: ``first_seed, first_seed + 1, ...``.
    first_seed : int or None
        First seed (default: the base scenario's).
    name : str or None
        Label of the sweep (default: the scenario's name).

    Returns
    -------
    SweepPlan

    Raises
    ------
    ScenarioError
        For a bad base scenario, grid key or value, chain, or seed count; the
        message names the problem in one line.
    """
    if seeds < 1:
        raise ScenarioError(f"--seeds {seeds}: need at least one seed")
    if not chains:
        raise ScenarioError("--defenses: name at least one defense chain")
    base = load_scenario(scenario_path, overrides)
    start = base.seed if first_seed is None else first_seed
    seed_values = [start + k for k in range(seeds)]
    if start < 0:
        raise ScenarioError(f"--seed {start}: seeds are non-negative")

    grid: dict[str, list[Any]] = {}
    raw_grid: dict[str, list[str]] = {}
    for item in grid_items:
        key, texts = _parse_grid_item(item)
        if key in raw_grid:
            raise ScenarioError(f"--grid {key}: given twice")
        values = []
        for text in texts:
            try:
                scenario = base.with_overrides([f"{key}={text}"])
            except ScenarioError as exc:
                raise ScenarioError(f"--grid {key}={text}: {exc}") from None
            value = lookup(scenario.to_dict(), key)
            if value in values:
                raise ScenarioError(f"--grid {key}: value {text} given twice")
            values.append(value)
        raw_grid[key] = texts
        grid[key] = values

    defenses = ["+".join(chain) for chain in chains]
    if len(set(defenses)) != len(defenses):
        raise ScenarioError("--defenses: a chain is given twice")
    for chain, defense in zip(chains, defenses):
        try:
            base.with_overrides(["defense.chain=" + json.dumps(chain)])
        except ScenarioError as exc:
            raise ScenarioError(f"--defenses {defense}: {exc}") from None
    definition = {
        "version": DEFINITION_VERSION,
        "base": _base_definition(base, list(grid), chains),
        "grid": grid,
        "defenses": defenses,
        "seeds": seed_values,
    }
    sweep_id = hashlib.sha256(_canonical(definition).encode()).hexdigest()[:16]

    cells = []
    points = list(itertools.product(*(range(len(v)) for v in grid.values())))
    for chain, defense in zip(chains, defenses):
        for point in points:
            params = {key: grid[key][i] for key, i in zip(grid, point)}
            for seed in seed_values:
                sets = [f"{key}={raw_grid[key][i]}" for key, i in zip(grid, point)]
                sets += [f"seed={seed}", "defense.chain=" + json.dumps(chain)]
                try:
                    scenario = base.with_overrides(sets)
                except ScenarioError as exc:
                    where = ", ".join(f"{k}={v}" for k, v in params.items()) or "the base scenario"
                    raise ScenarioError(f"sweep cell {where} with {defense}: {exc}") from None
                key = _canonical({"defense": defense, "params": params, "seed": seed})
                cells.append(SweepCell(key, params, defense, seed, scenario))
    return SweepPlan(sweep_id, name or base.name, definition, grid, defenses, seed_values, cells)


# --------------------------------------------------------------------------- ownership


def _owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is dead
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _owner_alive(owner: str, heartbeat_at: str | None) -> bool:
    fresh = heartbeat_at is not None and (
        datetime.now(timezone.utc) - datetime.fromisoformat(heartbeat_at)).total_seconds() < STALE_S
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        return fresh and _pid_alive(int(pid))
    return fresh


def _claim(repo, sweep_id: str, owner: str) -> None:
    for _ in range(5):
        sweep = repo.get_sweep(sweep_id)
        current = sweep["owner"]
        if current is not None and _owner_alive(current, sweep["heartbeat_at"]):
            host, _, rest = current.partition(":")
            raise SweepBusy(f"sweep {sweep_id} is being run by process {rest.partition(':')[0]} on {host}; "
                            "wait for it to finish or stop it, then run this command again")
        if repo.claim_sweep(sweep_id, owner, current):
            return
    raise SweepBusy(f"sweep {sweep_id}: could not claim it (another process keeps claiming it)")


# --------------------------------------------------------------------------- running


@dataclass
class SweepStart:
    """What :func:`run_sweep` found before running: done cells, cells to run, runs reset."""

    plan: SweepPlan
    done: int
    pending: list[SweepCell]
    reset: int


def run_sweep(plan: SweepPlan, db_url: str, workers: int | None = None, *,
              on_start: Callable[[SweepStart], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              on_cell_done: Callable[[int, dict], None] | None = None,
              save_models: bool = False, broker: str = "memory") -> SweepStart:
    """Run the cells of `plan` that are not finished yet.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`plan_sweep`.
    db_url : str
        Results database.
    workers : int or None
        Worker processes.
    on_start : callable, optional
        Called with a :class:`SweepStart` once the sweep is claimed.
    on_progress : callable, optional
        ``(index into SweepStart.pending, ticks done)``.
    on_cell_done : callable, optional
        ``(index into SweepStart.pending, result document)``.
    save_models : bool, default False
        Store each run's final model.
    broker : str, default "memory"
        Transport of the runs (``memory`` or ``kafka://HOST:PORT``); it does
        not change the results, so it is not part of the sweep's definition.

    Returns
    -------
    SweepStart
        What was found at the start (the sweep is finished on return).

    Raises
    ------
    SweepBusy
        If another live process runs the sweep.
    simulator.runner.RunFailed, KeyboardInterrupt
        From the runs; the sweep is then marked ``failed`` or ``interrupted``
        and running the same command again resumes it.
    """
    from simulator.runner import execute_many
    from stream.storage import Repository

    owner = _owner_token()
    with Repository(db_url) as repo:
        repo.create_sweep(plan.sweep_id, plan.definition, name=plan.name, grid=plan.grid,
                          defenses=plan.defenses, seeds=plan.seeds, cells_total=len(plan.cells))
        _claim(repo, plan.sweep_id, owner)
        status = "failed"
        try:
            reset = repo.reset_unfinished_cells(plan.sweep_id)
            finished = repo.finished_cells(plan.sweep_id)
            pending = [cell for cell in plan.cells if cell.key not in finished]
            start = SweepStart(plan, len(plan.cells) - len(pending), pending, reset)
            if on_start is not None:
                on_start(start)
            last_beat = [time.monotonic()]

            def progress(index: int, ticks: int) -> None:
                if time.monotonic() - last_beat[0] > HEARTBEAT_S:
                    last_beat[0] = time.monotonic()
                    if not repo.heartbeat_sweep(plan.sweep_id, owner):
                        raise SweepBusy(f"sweep {plan.sweep_id} was taken over by another process")
                if on_progress is not None:
                    on_progress(index, ticks)

            repo.close()  # no pooled connection for the forked workers to inherit; reopened on demand
            execute_many([c.scenario for c in pending], db_url, progress, workers,
                         cells=[(plan.sweep_id, c.key) for c in pending], on_done=on_cell_done,
                         save_model=save_models, broker=broker)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            repo.release_sweep(plan.sweep_id, owner, status)
    return start


# --------------------------------------------------------------------------- summaries


def summarize(runs: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per (grid point, defense): mean, min and max of `metric` over the seeds.

    Parameters
    ----------
    runs : list of dict
        :meth:`stream.storage.Repository.sweep_runs` rows; unfinished runs and
        missing values are skipped.
    metric : str
        A key of the runs' ``metrics``.

    Returns
    -------
    list of dict
        ``params``, ``defense``, ``n`` (seeds with a value), ``mean``, ``min``,
        ``max`` (``None`` when ``n`` is 0), in the runs' order.

    Examples
    --------
    >>> rows = [{"params": {"x": 1}, "defense": "none", "status": "finished", "metrics": {"m": v}}
    ...         for v in (0.2, 0.4)]
    >>> summarize(rows, "m")
    [{'params': {'x': 1}, 'defense': 'none', 'n': 2, 'mean': 0.30000000000000004, 'min': 0.2, 'max': 0.4}]
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        if run.get("status") != "finished":
            continue
        key = (_canonical(run["params"]), run["defense"])
        group = groups.setdefault(key, {"params": run["params"], "defense": run["defense"], "values": []})
        value = (run.get("metrics") or {}).get(metric)
        if value is not None:
            group["values"].append(float(value))
    out = []
    for group in groups.values():
        values = group.pop("values")
        group.update({"n": len(values),
                      "mean": sum(values) / len(values) if values else None,
                      "min": min(values) if values else None,
                      "max": max(values) if values else None})
        out.append(group)
    return out
