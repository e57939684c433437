"""Sweeps in the results database: definitions, ownership, cells and their runs.

:class:`SweepRecords` is a part of :class:`stream.storage.Repository` (a mixin:
it uses the repository's sessions and error handling).

A sweep is one row of ``sweeps``; each of its cells is computed by one run
whose ``runs.sweep_id``/``runs.cell_key`` name the cell (unique together, so a
cell is never stored twice). A cell is *done* when its run is ``finished``;
:meth:`SweepRecords.reset_unfinished_cells` deletes the runs of cells that
were interrupted so that they can be run again. The process running a sweep
*owns* it (``owner``, refreshed by :meth:`SweepRecords.heartbeat_sweep`), so
that two processes never run the same sweep at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from stream.dbutil import StorageError, aware, sanitize_json
from stream.schema import SWEEP_STATUSES, Run, Sweep

__all__ = ["SweepRecords", "lookup"]


def lookup(document: Mapping[str, Any] | None, key: str) -> Any:
    """The value at a dotted `key` of a nested dict (``None`` when absent).

    Examples
    --------
    >>> lookup({"population": {"bot_fraction": 0.1}}, "population.bot_fraction")
    0.1
    >>> lookup({"a": 1}, "a.b") is None
    True
    """
    node: Any = document
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _sweep_summary(sweep: Sweep, cells_done: int) -> dict[str, Any]:
    return {
        "sweep_id": sweep.sweep_id,
        "created_at": aware(sweep.created_at).isoformat(),
        "name": sweep.name,
        "grid": sweep.grid,
        "defenses": sweep.defenses,
        "seeds": sweep.seeds,
        "status": sweep.status,
        "cells_total": sweep.cells_total,
        "cells_done": cells_done,
    }


def _cell_order(sweep: Sweep):
    """Sort key placing runs in the sweep's cell order: defense, grid values, seed."""
    defenses = {d: i for i, d in enumerate(sweep.defenses or [])}
    seeds = {s: i for i, s in enumerate(sweep.seeds or [])}
    grid = {key: [sanitize_json(v) for v in values] for key, values in (sweep.grid or {}).items()}

    def position(values: list, value: Any) -> int:
        return values.index(value) if value in values else len(values)

    def key(run_and_params: tuple[Run, dict[str, Any]]) -> tuple:
        run, params = run_and_params
        return (defenses.get(run.defense, len(defenses)),
                tuple(position(values, params.get(k)) for k, values in grid.items()),
                seeds.get(run.seed, len(seeds)), run.created_at, run.run_id)

    return key


class SweepRecords:
    """Sweep rows and the runs of their cells (mixed into the repository).

    Examples
    --------
    >>> from stream.storage import Repository
    >>> repo = Repository("sqlite://")
    >>> _ = repo.create_sweep("s1", {"grid": {"population.bot_fraction": [0.1]}}, name="demo",
    ...                       grid={"population.bot_fraction": [0.1]}, defenses=["none"], seeds=[7],
    ...                       cells_total=1)
    >>> repo.start_run("r1", {"population": {"bot_fraction": 0.1}}, "none", 7, sweep_id="s1", cell_key="k1")
    >>> repo.finish_run("r1", {"attack_success_rate": 0.5})
    >>> [(s["sweep_id"], s["cells_done"], s["cells_total"]) for s in repo.list_sweeps()]
    [('s1', 1, 1)]
    >>> [(r["run_id"], r["params"]) for r in repo.sweep_runs("s1")]
    [('r1', {'population.bot_fraction': 0.1})]
    >>> repo.close()
    """

    # -- the sweep row ------------------------------------------------------------------

    def create_sweep(self, sweep_id: str, definition: Mapping[str, Any], *, name: str | None,
                     grid: Mapping[str, Sequence[Any]], defenses: Sequence[str], seeds: Sequence[int],
                     cells_total: int) -> dict[str, Any]:
        """Record a sweep, or find the one already recorded under `sweep_id`.

        Parameters
        ----------
        sweep_id : str
            The sweep's id (a hash of `definition`).
        definition : dict
            Everything that determines the sweep's cells (JSON).
        name : str or None
            A label for people.
        grid : dict
            Swept scenario key → list of values, in order.
        defenses : list of str
            Defense chains (members joined by ``+``).
        seeds : list of int
            The seeds every grid point is run with.
        cells_total : int
            Number of cells (grid points × defenses × seeds).

        Returns
        -------
        dict
            The sweep as :meth:`get_sweep` returns it.

        Raises
        ------
        StorageError
            If a sweep with this id exists with another definition, or the
            database fails.
        """
        definition = sanitize_json(dict(definition))
        now = datetime.now(timezone.utc)
        try:
            with self._transaction(f"create_sweep({sweep_id!r})") as session:
                if session.get(Sweep, str(sweep_id)) is None:
                    session.add(Sweep(sweep_id=str(sweep_id), created_at=now, updated_at=now, name=name,
                                      definition=definition, grid=sanitize_json(dict(grid)),
                                      defenses=list(defenses), seeds=[int(s) for s in seeds], status="pending",
                                      cells_total=int(cells_total)))
        except StorageError as exc:
            if not isinstance(exc.__cause__, IntegrityError):  # a concurrent create is fine
                raise
        found = self.get_sweep(sweep_id)
        if found is None or found["definition"] != definition:
            raise StorageError(f"sweep {sweep_id!r} already exists with another definition")
        return found

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """One sweep: the :meth:`list_sweeps` keys plus ``definition``, ``owner``,
        ``heartbeat_at`` and ``updated_at`` (ISO 8601 or ``None``); ``None`` if unknown."""
        with self._reading(f"get_sweep({sweep_id!r})") as session:
            sweep = session.get(Sweep, str(sweep_id))
            if sweep is None:
                return None
            done = session.scalar(select(func.count()).select_from(Run).where(
                Run.sweep_id == sweep.sweep_id, Run.status == "finished"))
            out = _sweep_summary(sweep, int(done or 0))
            out.update({
                "definition": sweep.definition,
                "owner": sweep.owner,
                "heartbeat_at": None if sweep.heartbeat_at is None else aware(sweep.heartbeat_at).isoformat(),
                "updated_at": aware(sweep.updated_at).isoformat(),
            })
            return out

    def claim_sweep(self, sweep_id: str, owner: str, expected_owner: str | None) -> bool:
        """Make `owner` the process running the sweep, if the current owner is still `expected_owner`.

        An atomic compare-and-set: of two processes claiming the same sweep
        from the same state, exactly one succeeds. The status becomes
        ``running``.

        Returns
        -------
        bool
            Whether the claim succeeded.
        """
        now = datetime.now(timezone.utc)
        condition = Sweep.owner.is_(None) if expected_owner is None else Sweep.owner == expected_owner
        statement = (update(Sweep).where(Sweep.sweep_id == str(sweep_id), condition)
                     .values(owner=owner, status="running", heartbeat_at=now, updated_at=now))
        with self._transaction(f"claim_sweep({sweep_id!r})") as session:
            return session.execute(statement).rowcount == 1

    def heartbeat_sweep(self, sweep_id: str, owner: str) -> bool:
        """Refresh the owner's heartbeat; ``False`` if `owner` no longer owns the sweep."""
        now = datetime.now(timezone.utc)
        statement = (update(Sweep).where(Sweep.sweep_id == str(sweep_id), Sweep.owner == owner)
                     .values(heartbeat_at=now))
        with self._transaction(f"heartbeat_sweep({sweep_id!r})") as session:
            return session.execute(statement).rowcount == 1

    def release_sweep(self, sweep_id: str, owner: str, status: str) -> None:
        """Set the sweep's status and give up ownership (only if `owner` still owns it).

        Raises
        ------
        ValueError
            For a status not in :data:`~stream.schema.SWEEP_STATUSES`.
        """
        if status not in SWEEP_STATUSES:
            raise ValueError(f"unknown sweep status {status!r} (choose from {', '.join(SWEEP_STATUSES)})")
        now = datetime.now(timezone.utc)
        statement = (update(Sweep).where(Sweep.sweep_id == str(sweep_id), Sweep.owner == owner)
                     .values(owner=None, status=status, heartbeat_at=None, updated_at=now))
        with self._transaction(f"release_sweep({sweep_id!r})") as session:
            session.execute(statement)

    # -- cells --------------------------------------------------------------------------

    def finished_cells(self, sweep_id: str) -> dict[str, str]:
        """Cell key → run id of every finished cell of a sweep."""
        query = select(Run.cell_key, Run.run_id).where(Run.sweep_id == str(sweep_id), Run.status == "finished")
        with self._reading(f"finished_cells({sweep_id!r})") as session:
            return {key: run_id for key, run_id in session.execute(query)}

    def reset_unfinished_cells(self, sweep_id: str) -> int:
        """Delete the runs of a sweep that did not finish (with their ticks and outcomes).

        Call it only while owning the sweep: it removes the traces of cells
        that an interrupted process left ``running`` or ``failed``, so they
        can be run again without duplicates.

        Returns
        -------
        int
            Number of runs deleted.
        """
        statement = delete(Run).where(Run.sweep_id == str(sweep_id), Run.status != "finished")
        with self._transaction(f"reset_unfinished_cells({sweep_id!r})") as session:
            return int(session.execute(statement).rowcount or 0)

    # -- reading ------------------------------------------------------------------------

    def list_sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first.

        Returns
        -------
        list of dict
            ``sweep_id``, ``created_at`` (ISO 8601), ``name``, ``grid``
            (swept key → list of values), ``defenses`` (list of chains),
            ``seeds`` (list of seed values), ``status`` (one of
            :data:`~stream.schema.SWEEP_STATUSES`), ``cells_total`` and
            ``cells_done`` (cells whose run finished).
        """
        counts = (select(Run.sweep_id, func.count()).where(Run.sweep_id.is_not(None), Run.status == "finished")
                  .group_by(Run.sweep_id))
        with self._reading("list_sweeps") as session:
            done = dict(session.execute(counts).all())
            sweeps = session.scalars(select(Sweep).order_by(Sweep.created_at.desc(), Sweep.sweep_id)).all()
            return [_sweep_summary(s, int(done.get(s.sweep_id, 0))) for s in sweeps]

    def sweep_runs(self, sweep_id: str) -> list[dict[str, Any]]:
        """The runs of a sweep's cells, in cell order (defense, grid values, seed).

        Returns
        -------
        list of dict
            Each run as :meth:`list_runs` returns it, plus ``params``: swept
            key → this run's value. Empty for an unknown sweep. Runs of
            unfinished cells are included with their status.
        """
        with self._reading(f"sweep_runs({sweep_id!r})") as session:
            sweep = session.get(Sweep, str(sweep_id))
            if sweep is None:
                return []
            runs = session.scalars(select(Run).where(Run.sweep_id == sweep.sweep_id)).all()
            keys = list((sweep.grid or {}).keys())
            pairs = [(run, {key: lookup(run.scenario, key) for key in keys}) for run in runs]
            pairs.sort(key=_cell_order(sweep))
            out = []
            for run, params in pairs:
                summary = self._run_summary(run)
                summary["params"] = params
                out.append(summary)
            return out
