"""Results storage: runs, sweeps and what they produced, in SQLite or PostgreSQL.

A :class:`Repository` stores the result documents produced by a run::

    {"run_id": "...", "scenario": {...}, "defense": "reputation", "seed": 7,
     "metrics": {...}, "timeline": [{"tick": 0, ...}, ...]}

in these tables (models in :mod:`stream.schema`):

``runs``
    One row per run: ``run_id`` (primary key), ``created_at``, ``name`` (the
    scenario name), ``defense``, ``seed``, ``status`` (``running``,
    ``finished`` or ``failed``), ``attack_strategy``, ``group_id`` (ties the
    runs of one ``compare`` together), the ``scenario`` and ``metrics``
    documents as JSON, and for a run of a sweep its ``sweep_id`` and
    ``cell_key`` (unique together).
``tick_metrics``
    One row per ``(run_id, tick)`` with real columns for the well-known
    per-tick values (see :data:`TICK_COLUMNS`) and an ``extra`` JSON column
    holding any other per-tick keys.
``sweeps``
    One row per sweep (see :class:`stream.sweep_records.SweepRecords`).
``account_outcomes``, ``model_snapshots``
    Per-account results of a run, and serialized models checked by SHA-256
    (see :class:`stream.artifacts.ArtifactRecords`).
``schema_version``
    The schema versions applied; opening a repository creates or upgrades the
    schema in place (:mod:`stream.migrations`).

SQLite is the default (``sqlite:///poisonlab.db``); any SQLAlchemy URL works,
e.g. ``postgresql+psycopg://user@host/db``. File-backed SQLite databases are
switched to WAL journal mode with a busy timeout, so a dashboard can read
while a run writes.

JSON values are sanitised before they are written: NaN and infinities become
``None`` (they are not valid JSON), tuples become lists and NumPy scalars
become plain Python numbers. Finite floats round-trip exactly.

Examples
--------
>>> repo = Repository("sqlite://")
>>> repo.start_run("r1", {"name": "demo", "attack": {"strategy": "flip"}}, "reputation", 7)
>>> repo.add_ticks("r1", [{"tick": 0, "clean_accuracy": 0.9, "votes": 3, "labels": 1, "queue": 2}])
>>> repo.finish_run("r1", {"attack_success_rate": float("nan"), "votes": 3},
...                 outcomes=[{"account_id": "a", "is_bot": True, "trust": 0.2, "flagged_tick": 5}])
>>> run = repo.get_run("r1")
>>> run["status"], run["metrics"], run["timeline"][0]["queue"]
('finished', {'attack_success_rate': None, 'votes': 3}, 2)
>>> repo.account_outcomes("r1")[0]["flagged_tick"]
5
>>> repo.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from stream.artifacts import ArtifactRecords
from stream.dbutil import (
    StorageError,
    aware,
    clean_float,
    clean_int,
    mask_url,
    parse_created_at,
    sanitize_json,
)
from stream.migrations import SCHEMA_VERSION, SchemaTooNew, ensure_schema
from stream.schema import (
    RUN_STATUSES,
    SWEEP_STATUSES,
    AccountOutcome,
    ModelSnapshot,
    Run,
    SchemaVersion,
    Sweep,
    TickMetric,
)
from stream.sweep_records import SweepRecords

__all__ = [
    "DEFAULT_URL",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "SWEEP_STATUSES",
    "TICK_COLUMNS",
    "AccountOutcome",
    "ModelSnapshot",
    "Repository",
    "Run",
    "SchemaVersion",
    "StorageError",
    "Sweep",
    "TickMetric",
    "mask_url",
    "sanitize_json",
]

#: The URL used when none is given.
DEFAULT_URL = "sqlite:///poisonlab.db"

#: Per-tick keys stored in real columns of ``tick_metrics`` (all others go to ``extra``).
TICK_COLUMNS = (
    "attack_success_rate",
    "collateral_rate",
    "clean_accuracy",
    "clean_fpr",
    "clean_fnr",
    "label_precision",
    "votes",
    "labels",
)
_INT_TICK_COLUMNS = frozenset({"votes", "labels"})

#: Milliseconds an SQLite connection waits for a lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def _attack_strategy(scenario: Mapping[str, Any]) -> str | None:
    attack = scenario.get("attack")
    if isinstance(attack, Mapping):
        strategy = attack.get("strategy")
        return None if strategy is None else str(strategy)
    if isinstance(attack, str):
        return attack
    strategy = scenario.get("attack_strategy")
    return None if strategy is None else str(strategy)


def _tick_row(run_id: str, tick: Mapping[str, Any]) -> TickMetric:
    if "tick" not in tick or tick["tick"] is None:
        raise ValueError(f"tick entry without a 'tick' value: {dict(tick)!r}")
    values: dict[str, Any] = {}
    for key in TICK_COLUMNS:
        raw = tick.get(key)
        values[key] = clean_int(raw) if key in _INT_TICK_COLUMNS else clean_float(raw)
    extra = {k: v for k, v in tick.items() if k != "tick" and k not in TICK_COLUMNS}
    return TickMetric(run_id=run_id, tick=int(tick["tick"]), extra=sanitize_json(extra) or None, **values)


def _tick_dict(row: TickMetric) -> dict[str, Any]:
    out: dict[str, Any] = {"tick": row.tick}
    for key in TICK_COLUMNS:
        out[key] = getattr(row, key)
    if row.extra:
        out.update(row.extra)
    return out


def _run_summary(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "created_at": aware(run.created_at).isoformat(),
        "name": run.name,
        "defense": run.defense,
        "seed": run.seed,
        "status": run.status,
        "attack_strategy": run.attack_strategy,
        "group_id": run.group_id,
        "metrics": run.metrics,
    }


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # in-memory databases stay "memory"
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")  # module constant, not input
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


# --------------------------------------------------------------------------- repository


class Repository(SweepRecords, ArtifactRecords):
    """Store and read back simulation results.

    Opening a repository creates the schema, or upgrades an older one in place
    (:func:`stream.migrations.ensure_schema`). Sweeps come from
    :class:`~stream.sweep_records.SweepRecords`, per-account outcomes and
    model snapshots from :class:`~stream.artifacts.ArtifactRecords`.

    Parameters
    ----------
    url : str, default ``"sqlite:///poisonlab.db"``
        SQLAlchemy database URL. ``sqlite://`` is an in-memory database (one
        per thread); ``postgresql+psycopg://user:pw@host:5432/db`` uses
        PostgreSQL.
    schema : str or None, default None
        Put the tables in this database schema instead of the default one
        (PostgreSQL; created if missing). Implemented with SQLAlchemy's
        ``schema_translate_map``, so no ``search_path`` is needed. Not
        supported for SQLite.

    Raises
    ------
    StorageError
        If the URL is malformed, names an unknown driver, the database
        cannot be reached or initialised, or its schema is newer than this
        code. The message names the URL with any password masked.

    Examples
    --------
    >>> repo = Repository("sqlite://")
    >>> doc = {"run_id": "a1", "scenario": {"name": "s", "attack": {"strategy": "flip"}},
    ...        "defense": "reputation+rate_limit", "seed": 7, "metrics": {"clean_fpr": 0.01},
    ...        "timeline": [{"tick": 1, "votes": 2}, {"tick": 0, "votes": 1}]}
    >>> repo.save_result(doc, group_id="g1")
    >>> [t["tick"] for t in repo.get_run("a1")["timeline"]]
    [0, 1]
    >>> [(r["run_id"], r["attack_strategy"]) for r in repo.runs_in_group("g1")]
    [('a1', 'flip')]
    >>> repo.close()
    """

    def __init__(self, url: str = DEFAULT_URL, schema: str | None = None) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError, TypeError) as exc:
            raise StorageError(f"malformed database URL {self.masked_url!r}: {exc}") from None
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if schema is not None and is_sqlite:
            raise StorageError(f"schema={schema!r} is not supported for SQLite ({self.masked_url!r})")
        self.schema = schema
        try:
            engine = create_engine(parsed, pool_pre_ping=not is_sqlite)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise StorageError(f"cannot use database URL {self.masked_url!r}: {exc}") from None
        if is_sqlite:
            event.listen(engine, "connect", _set_sqlite_pragmas)
        self._base_engine: Engine = engine
        self.engine: Engine = (
            engine.execution_options(schema_translate_map={None: schema}) if schema is not None else engine
        )
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        try:
            ensure_schema(self.engine, schema)
        except SchemaTooNew as exc:
            engine.dispose()
            raise StorageError(f"cannot open results database {self.masked_url!r}: {exc}") from None
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StorageError(f"cannot open results database {self.masked_url!r}: {self._reason(exc)}") from None

    # ----------------------------------------------------------------- internals

    def _reason(self, exc: BaseException) -> str:
        """A one-line reason for `exc` that never contains the password."""
        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split()) or type(orig).__name__
        try:
            password = make_url(self.url).password
        except Exception:
            password = None
        if password:
            text = text.replace(str(password), "***")
        return text

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"{what} failed on {self.masked_url!r}: {self._reason(exc)}") from exc

    @contextmanager
    def _reading(self, what: str) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"{what} failed on {self.masked_url!r}: {self._reason(exc)}") from exc

    @staticmethod
    def _add_run(
        session: Session,
        run_id: str,
        scenario: Mapping[str, Any],
        defense: str,
        seed: int,
        group_id: str | None,
        created_at: datetime | None = None,
        sweep_id: str | None = None,
        cell_key: str | None = None,
    ) -> None:
        if (sweep_id is None) != (cell_key is None):
            raise ValueError("sweep_id and cell_key go together")
        scenario = dict(scenario or {})
        name = scenario.get("name")
        session.add(
            Run(
                run_id=str(run_id),
                created_at=created_at or datetime.now(timezone.utc),
                name=None if name is None else str(name),
                defense=str(defense),
                seed=int(seed),
                status="running",
                attack_strategy=_attack_strategy(scenario),
                group_id=group_id,
                scenario=sanitize_json(scenario),
                metrics=None,
                sweep_id=sweep_id,
                cell_key=cell_key,
            )
        )

    @staticmethod
    def _finish(session: Session, run_id: str, metrics: Mapping[str, Any] | None, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown status {status!r} (choose from {', '.join(RUN_STATUSES)})")
        run = session.get(Run, str(run_id))
        if run is None:
            raise StorageError(f"unknown run {run_id!r}")
        run.metrics = None if metrics is None else sanitize_json(dict(metrics))
        run.status = status

    # ----------------------------------------------------------------- writing

    def start_run(
        self,
        run_id: str,
        scenario: dict[str, Any],
        defense: str,
        seed: int,
        group_id: str | None = None,
        *,
        sweep_id: str | None = None,
        cell_key: str | None = None,
    ) -> None:
        """Record a new run with status ``running``.

        Parameters
        ----------
        run_id : str
            Unique id of the run (a uuid hex string).
        scenario : dict
            The scenario values; ``name`` and ``attack.strategy`` are also
            copied to their own columns.
        defense : str
            Defense chain names joined by ``"+"``.
        seed : int
            Random seed of the run.
        group_id : str or None, optional
            Ties the runs of one ``compare`` together.
        sweep_id, cell_key : str or None, optional
            The sweep cell this run computes (both or neither); a cell holds
            at most one run.

        Raises
        ------
        StorageError
            If the run id already exists, the sweep cell already has a run, or
            the database fails.
        """
        with self._transaction(f"start_run({run_id!r})") as session:
            self._add_run(session, run_id, scenario, defense, seed, group_id, sweep_id=sweep_id, cell_key=cell_key)

    def add_ticks(self, run_id: str, ticks: list[dict[str, Any]]) -> None:
        """Append per-tick metric rows to a run.

        Parameters
        ----------
        run_id : str
            An existing run.
        ticks : list of dict
            Each needs a ``tick``; keys in :data:`TICK_COLUMNS` go to their
            columns (NaN stored as NULL), all other keys to ``extra``.

        Raises
        ------
        ValueError
            If an entry has no ``tick``.
        StorageError
            If the run is unknown, a tick is already stored, or the database fails.
        """
        rows = [_tick_row(str(run_id), tick) for tick in ticks]
        if not rows:
            return
        with self._transaction(f"add_ticks({run_id!r})") as session:
            if session.get(Run, str(run_id)) is None:
                raise StorageError(f"unknown run {run_id!r}")
            session.add_all(rows)

    def finish_run(
        self,
        run_id: str,
        metrics: dict[str, Any],
        status: str = "finished",
        *,
        ticks: list[dict[str, Any]] | None = None,
        outcomes: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        """Store the final metrics of a run and set its status.

        Parameters
        ----------
        run_id : str
            An existing run.
        metrics : dict
            Final metrics (NaN and infinities are stored as ``None``).
        status : {"finished", "failed", "running"}, default "finished"
            The new status.
        ticks : list of dict, optional
            Last per-tick rows, stored in the same transaction (as
            :meth:`add_ticks`).
        outcomes : iterable of dict, optional
            Per-account outcomes, stored in the same transaction (as
            :meth:`add_account_outcomes`), so a finished run always has them.

        Raises
        ------
        ValueError
            For an unknown status.
        StorageError
            If the run is unknown or the database fails; nothing is stored then.
        """
        rows = [_tick_row(str(run_id), tick) for tick in ticks or []]
        outcome_rows = self._outcome_rows(str(run_id), outcomes or [])
        with self._transaction(f"finish_run({run_id!r})") as session:
            self._finish(session, run_id, metrics, status)
            session.add_all(rows)
            self._insert_outcomes(session, outcome_rows)

    def save_result(self, doc: dict[str, Any], group_id: str | None = None) -> None:
        """Store a complete result document in one transaction.

        Parameters
        ----------
        doc : dict
            ``run_id``, ``scenario``, ``defense``, ``seed``, ``metrics`` and
            ``timeline``; an optional ``created_at`` (ISO string or datetime)
            is kept, otherwise the current time is used. An optional
            ``status`` (default ``"finished"``) is kept too.
        group_id : str or None, optional
            Ties the runs of one ``compare`` together; defaults to
            ``doc.get("group_id")``.

        Raises
        ------
        StorageError
            If the run id already exists or the database fails; nothing is
            stored then.
        """
        run_id = str(doc["run_id"])
        rows = [_tick_row(run_id, tick) for tick in doc.get("timeline") or []]
        status = doc.get("status") or "finished"
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown status {status!r} (choose from {', '.join(RUN_STATUSES)})")
        group = group_id if group_id is not None else doc.get("group_id")
        with self._transaction(f"save_result({run_id!r})") as session:
            self._add_run(
                session,
                run_id,
                doc.get("scenario") or {},
                doc["defense"],
                doc["seed"],
                group,
                parse_created_at(doc.get("created_at")),
            )
            session.flush()
            session.add_all(rows)
            self._finish(session, run_id, doc.get("metrics"), status)

    # ----------------------------------------------------------------- reading

    def list_runs(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """Summaries of the most recent runs, newest first.

        Parameters
        ----------
        limit : int or None, default 100
            At most this many runs; ``None`` for all.

        Returns
        -------
        list of dict
            ``run_id``, ``created_at`` (ISO 8601), ``name``, ``defense``,
            ``seed``, ``status``, ``attack_strategy``, ``group_id`` and
            ``metrics`` (``None`` while running).
        """
        query = select(Run).order_by(Run.created_at.desc(), Run.run_id.desc())
        if limit is not None:
            query = query.limit(int(limit))
        with self._reading("list_runs") as session:
            return [_run_summary(run) for run in session.scalars(query)]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The full result document of a run.

        Parameters
        ----------
        run_id : str
            The run to fetch.

        Returns
        -------
        dict or None
            ``run_id``, ``scenario``, ``defense``, ``seed``, ``metrics``,
            ``timeline`` (ordered by tick), ``status``, ``created_at`` (ISO
            8601), ``group_id``, and ``sweep_id``/``cell_key`` (``None``
            unless the run is a sweep cell); ``None`` for an unknown run.
        """
        with self._reading(f"get_run({run_id!r})") as session:
            run = session.get(Run, str(run_id))
            if run is None:
                return None
            return {
                "run_id": run.run_id,
                "scenario": run.scenario,
                "defense": run.defense,
                "seed": run.seed,
                "metrics": run.metrics,
                "timeline": self._timeline(session, run.run_id),
                "status": run.status,
                "created_at": aware(run.created_at).isoformat(),
                "group_id": run.group_id,
                "sweep_id": run.sweep_id,
                "cell_key": run.cell_key,
            }

    @staticmethod
    def _timeline(session: Session, run_id: str) -> list[dict[str, Any]]:
        query = select(TickMetric).where(TickMetric.run_id == run_id).order_by(TickMetric.tick)
        return [_tick_dict(row) for row in session.scalars(query)]

    def timeline(self, run_id: str) -> list[dict[str, Any]]:
        """Per-tick metrics of a run ordered by tick.

        Parameters
        ----------
        run_id : str
            The run.

        Returns
        -------
        list of dict
            ``tick``, every key of :data:`TICK_COLUMNS` (``None`` when not
            recorded) and the keys stored in ``extra``. Empty for an unknown run.
        """
        with self._reading(f"timeline({run_id!r})") as session:
            return self._timeline(session, str(run_id))

    def runs_in_group(self, group_id: str) -> list[dict[str, Any]]:
        """Summaries (as in :meth:`list_runs`) of the runs of one group, oldest first.

        Parameters
        ----------
        group_id : str
            The group.

        Returns
        -------
        list of dict
            Empty for an unknown group.
        """
        query = select(Run).where(Run.group_id == group_id).order_by(Run.created_at, Run.run_id)
        with self._reading(f"runs_in_group({group_id!r})") as session:
            return [_run_summary(run) for run in session.scalars(query)]

    def resolve_id(self, ident: str) -> tuple[str, str]:
        """Find the run or sweep that `ident` names, in full or by a unique prefix.

        Parameters
        ----------
        ident : str
            A run id, a sweep id, or a prefix of exactly one of them.

        Returns
        -------
        tuple of str
            ``("run", run_id)`` or ``("sweep", sweep_id)``. An exact id wins
            over longer ids it is a prefix of.

        Raises
        ------
        LookupError
            If nothing matches, or the prefix matches several runs/sweeps
            (the message lists some of them).

        Examples
        --------
        >>> repo = Repository("sqlite://")
        >>> repo.start_run("abc123", {}, "none", 0)
        >>> repo.resolve_id("abc")
        ('run', 'abc123')
        >>> repo.close()
        """
        ident = str(ident).strip()
        if not ident:
            raise LookupError("empty run or sweep id")
        with self._reading(f"resolve_id({ident!r})") as session:
            if session.get(Run, ident) is not None:
                return "run", ident
            if session.get(Sweep, ident) is not None:
                return "sweep", ident
            runs = session.scalars(
                select(Run.run_id).where(Run.run_id.startswith(ident, autoescape=True)).limit(6)
            ).all()
            sweeps = session.scalars(
                select(Sweep.sweep_id).where(Sweep.sweep_id.startswith(ident, autoescape=True)).limit(6)
            ).all()
        matches = [("run", r) for r in runs] + [("sweep", s) for s in sweeps]
        if not matches:
            raise LookupError(f"no run or sweep with id {ident!r} in {self.masked_url}")
        if len(matches) > 1:
            shown = ", ".join(f"{kind} {value}" for kind, value in matches[:5])
            raise LookupError(f"id prefix {ident!r} is ambiguous: it matches {shown}{', ...' if len(matches) > 5 else ''}")
        return matches[0]

    @staticmethod
    def _run_summary(run: Run) -> dict[str, Any]:
        return _run_summary(run)

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Release all database connections."""
        self._base_engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Repository({self.masked_url!r})" if self.schema is None else (
            f"Repository({self.masked_url!r}, schema={self.schema!r})"
        )
