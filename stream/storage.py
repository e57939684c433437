"""Results storage: runs and per-tick metrics in SQLite or PostgreSQL.

A :class:`Repository` stores the result documents produced by a run::

    {"run_id": "...", "scenario": {...}, "defense": "reputation", "seed": 7,
     "metrics": {...}, "timeline": [{"tick": 0, ...}, ...]}

in two tables:

``runs``
    One row per run: ``run_id`` (primary key), ``created_at``, ``name`` (the
    scenario name), ``defense``, ``seed``, ``status`` (``running``,
    ``finished`` or ``failed``), ``attack_strategy``, ``group_id`` (ties the
    runs of one ``compare`` together), and the ``scenario`` and ``metrics``
    documents as JSON.
``tick_metrics``
    One row per ``(run_id, tick)`` with real columns for the well-known
    per-tick values (see :data:`TICK_COLUMNS`) and an ``extra`` JSON column
    holding any other per-tick keys.

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
>>> repo.finish_run("r1", {"attack_success_rate": float("nan"), "votes": 3})
>>> run = repo.get_run("r1")
>>> run["status"], run["metrics"], run["timeline"][0]["queue"]
('finished', {'attack_success_rate': None, 'votes': 3}, 2)
>>> repo.close()
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from numbers import Integral, Real
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.schema import CreateSchema

__all__ = [
    "DEFAULT_URL",
    "RUN_STATUSES",
    "TICK_COLUMNS",
    "Repository",
    "Run",
    "StorageError",
    "TickMetric",
    "mask_url",
    "sanitize_json",
]

#: The URL used when none is given.
DEFAULT_URL = "sqlite:///poisonlab.db"

#: Allowed values of ``runs.status``.
RUN_STATUSES = ("running", "finished", "failed")

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


class StorageError(Exception):
    """The results database cannot be opened, or a storage operation failed."""


# --------------------------------------------------------------------------- schema

_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of the results schema."""


class Run(Base):
    """One simulation run (table ``runs``)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_runs_status"),
    )

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    name: Mapped[str | None] = mapped_column(String)
    defense: Mapped[str] = mapped_column(String)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running")
    attack_strategy: Mapped[str | None] = mapped_column(String)
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    scenario: Mapped[dict[str, Any]] = mapped_column(_JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(_JSON)

    ticks: Mapped[list[TickMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="TickMetric.tick"
    )


class TickMetric(Base):
    """The metrics of one run at one tick (table ``tick_metrics``)."""

    __tablename__ = "tick_metrics"
    __table_args__ = (UniqueConstraint("run_id", "tick", name="uq_tick_metrics_run_tick"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    tick: Mapped[int] = mapped_column(Integer)
    attack_success_rate: Mapped[float | None] = mapped_column(Double)
    collateral_rate: Mapped[float | None] = mapped_column(Double)
    clean_accuracy: Mapped[float | None] = mapped_column(Double)
    clean_fpr: Mapped[float | None] = mapped_column(Double)
    clean_fnr: Mapped[float | None] = mapped_column(Double)
    label_precision: Mapped[float | None] = mapped_column(Double)
    votes: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any] | None] = mapped_column(_JSON)

    run: Mapped[Run] = relationship(back_populates="ticks")


# --------------------------------------------------------------------------- helpers

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by ``***``.

    Parameters
    ----------
    url : str
        A database URL, possibly malformed.

    Returns
    -------
    str
        The URL as SQLAlchemy renders it with the password hidden; for a URL
        SQLAlchemy cannot parse, the text between ``user:`` and ``@`` is masked.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # malformed: mask textually
        return _PASSWORD_IN_URL.sub(r"\1***@", str(url))


def sanitize_json(value: Any) -> Any:
    """Make `value` safe for a JSON column.

    Parameters
    ----------
    value : Any
        A JSON-like value (dicts, lists, tuples, str, numbers, bool, None);
        NumPy scalars are accepted too.

    Returns
    -------
    Any
        A copy where NaN and infinite floats are ``None``, tuples are lists,
        dict keys are strings and numeric scalars are plain ``int``/``float``.

    Raises
    ------
    TypeError
        For values that have no JSON representation.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): sanitize_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_json(v) for v in value]
    item = getattr(value, "item", None)  # NumPy scalars such as np.bool_
    if callable(item):
        converted = item()
        if converted is not value and not hasattr(converted, "item"):
            return sanitize_json(converted)
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


def _clean_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _clean_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, Real) and not isinstance(value, Integral) and not math.isfinite(float(value)):
        return None
    return int(value)


def _aware(moment: datetime) -> datetime:
    """`moment` in UTC; naive values (SQLite returns those) were written in UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _parse_created_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(str(value)))


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
        values[key] = _clean_int(raw) if key in _INT_TICK_COLUMNS else _clean_float(raw)
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
        "created_at": _aware(run.created_at).isoformat(),
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


class Repository:
    """Store and read back simulation results.

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
        If the URL is malformed, names an unknown driver, or the database
        cannot be reached or initialised. The message names the URL with any
        password masked.

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
            with self.engine.begin() as conn:
                if schema is not None:
                    conn.execute(CreateSchema(schema, if_not_exists=True))
                Base.metadata.create_all(conn)
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
    ) -> None:
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
        self, run_id: str, scenario: dict[str, Any], defense: str, seed: int, group_id: str | None = None
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

        Raises
        ------
        StorageError
            If the run id already exists or the database fails.
        """
        with self._transaction(f"start_run({run_id!r})") as session:
            self._add_run(session, run_id, scenario, defense, seed, group_id)

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

    def finish_run(self, run_id: str, metrics: dict[str, Any], status: str = "finished") -> None:
        """Store the final metrics of a run and set its status.

        Parameters
        ----------
        run_id : str
            An existing run.
        metrics : dict
            Final metrics (NaN and infinities are stored as ``None``).
        status : {"finished", "failed", "running"}, default "finished"
            The new status.

        Raises
        ------
        ValueError
            For an unknown status.
        StorageError
            If the run is unknown or the database fails.
        """
        with self._transaction(f"finish_run({run_id!r})") as session:
            self._finish(session, run_id, metrics, status)

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
                _parse_created_at(doc.get("created_at")),
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
            8601) and ``group_id``; ``None`` for an unknown run.
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
                "created_at": _aware(run.created_at).isoformat(),
                "group_id": run.group_id,
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
