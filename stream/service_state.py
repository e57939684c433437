"""Durable state of the defense service (SQLAlchemy 2; SQLite or PostgreSQL).

Separate from the results tables of :mod:`stream.storage`.  Every row belongs
to a *namespace* (the service's consumer group), so several services can share
one database.

``svc_offsets``
    Per feedback partition: the next offset to read, the partition's event-time
    watermark, the last window closed, the broker's topic id (it changes when a
    broker that lost its data re-creates the topic) and a fencing ``epoch``.
``svc_pending``
    Votes waiting for their window to close: one NumPy batch blob per
    (poll, partition, window).
``svc_seen``
    Ids of the records already counted (event ids, digests of batch records),
    so that records produced again after a broker outage count once.
``svc_account_state``
    Per account and state field (e.g. ``0.reputation.alpha``): the defense
    chain's per-account state, updated by adding deltas so that instances
    sharing a database never lose each other's updates.
``svc_memory``
    Only with a reviews input: the votes of each window decided in the last
    ``memory`` ticks (one NumPy blob per window), so that a provider review
    arriving later can still score the accounts that voted on its email.
``svc_checkpoint``
    The defense runtime's whole state (:class:`stream.runtime.DefenseRuntime`: names,
    the chain's learned state, the shadow learner), written in the transaction of every
    poll that changed it, with a version that fences an instance that was overtaken.
``svc_labels``
    Every label decided (the source of truth), with its deterministic id.
``svc_outbox``
    Labels and dead letters to publish as JSON events; marked once the broker
    acknowledged.
``svc_outbox_batch``
    Label batches to publish (:func:`stream.codecs.label_batch`, ``.npy`` bytes
    as they go on the wire): one row for many labels.

:meth:`ServiceStore.commit` writes one poll's worth of all of these in a single
transaction, fenced by the partition epochs, so a crash anywhere neither loses
nor double-counts a vote.

>>> store = ServiceStore("sqlite://", "demo")
>>> claim = store.claim("feedback", [0], topic_id="t1")
>>> claim[0].offset, claim[0].epoch
(0, 1)
>>> store.commit(Batch(offsets={0: (12, 3.5, -1, 1)}, seen=[("e:1", 3.5)],
...                    deltas=[("acc", "0.reputation.alpha", 1.0)]))
>>> store.claim("feedback", [0], topic_id="t1")[0].offset
12
>>> store.account_state(["acc", "nobody"])["0.reputation.alpha"].tolist()
[1.0, 0.0]
>>> store.close()
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["LABEL_COLUMNS", "Batch", "Claim", "FencedError", "ServiceStore", "StateError", "encode_json"]

_CHUNK = 500  # ids per IN (...) query
#: Key of the PostgreSQL advisory lock held while the service's tables are created.
PG_LOCK_KEY = 0x73766373  # "svcs"


class StateError(RuntimeError):
    """The service database cannot be used (bad URL, unreachable server...)."""


class StateConflict(RuntimeError):
    """Another instance of the group committed the defense state since this one read it."""


class FencedError(RuntimeError):
    """Another instance took over a partition: this instance's work was not committed."""


class _Base(DeclarativeBase):
    pass


class Offset(_Base):
    __tablename__ = "svc_offsets"
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(250), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    watermark: Mapped[float | None] = mapped_column(Double, nullable=True)
    closed: Mapped[int] = mapped_column(BigInteger, default=-(2**62))
    topic_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)


class Pending(_Base):
    __tablename__ = "svc_pending"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    window: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_svc_pending_part", "namespace", "partition", "window"),)


class Seen(_Base):
    __tablename__ = "svc_seen"
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    ts: Mapped[float] = mapped_column(Double)


class AccountState(_Base):
    __tablename__ = "svc_account_state"
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[float] = mapped_column(Double, default=0.0)


class Memory(_Base):
    __tablename__ = "svc_memory"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))
    now: Mapped[float] = mapped_column(Double)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_svc_memory_now", "namespace", "now"),)


class Checkpoint(_Base):
    __tablename__ = "svc_checkpoint"
    namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Label(_Base):
    __tablename__ = "svc_labels"
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    label_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    email_id: Mapped[str] = mapped_column(String(300))
    window: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(10))
    weight: Mapped[float] = mapped_column(Double)
    confidence: Mapped[float] = mapped_column(Double)
    votes: Mapped[int] = mapped_column(Integer)
    defense: Mapped[str] = mapped_column(String(200))
    ts: Mapped[float] = mapped_column(Double)


class Outbox(_Base):
    __tablename__ = "svc_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(250))
    key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    value: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_svc_outbox_pub", "namespace", "published", "id"),)


class OutboxBatch(_Base):
    __tablename__ = "svc_outbox_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(250))
    key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_svc_outbox_batch_pub", "namespace", "published", "id"),)


@dataclass
class Claim:
    """What a partition's new owner resumes from."""

    offset: int
    watermark: float | None
    closed: int
    epoch: int
    reset: bool                                   # the topic was re-created: offsets restart
    pending: list[tuple[int, bytes]] = field(default_factory=list)   # (window, blob)


@dataclass
class Batch:
    """Everything one poll changes, committed atomically by :meth:`ServiceStore.commit`.

    ``offsets`` maps partition to ``(next offset, watermark, closed window, epoch)``;
    ``other_offsets`` maps ``(topic, partition)`` of another input (reviews) to
    ``(next offset, epoch)``; ``memory_add`` holds the votes of decided windows
    ``(now, blob)`` and ``memory_before`` the age before which they are forgotten;
    ``deltas`` holds ``(account, field, delta)`` rows, at most one per account and
    field; ``labels`` tuples of the :data:`LABEL_COLUMNS` values (``label`` is
    ``"spam"`` or ``"not_spam"``); ``outbox`` JSON events and ``outbox_batches``
    encoded label batches to publish.
    """

    topic: str = "feedback"
    offsets: dict[int, tuple[int, float | None, int, int]] = field(default_factory=dict)
    seen: list[tuple[str, float]] = field(default_factory=list)
    pending_add: list[tuple[int, int, bytes]] = field(default_factory=list)   # (partition, window, blob)
    pending_closed: dict[int, int] = field(default_factory=dict)              # partition -> last closed
    deltas: list[tuple[str, str, float]] = field(default_factory=list)        # (account, field, delta)
    labels: list[tuple] = field(default_factory=list)                        # LABEL_COLUMNS values
    outbox: list[tuple[str, str | None, dict]] = field(default_factory=list)  # (topic, key, value)
    outbox_batches: list[tuple[str, str | None, bytes]] = field(default_factory=list)  # (topic, key, data)
    other_offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # (topic, p) -> (offset, epoch)
    memory_add: list[tuple[float, bytes]] = field(default_factory=list)       # (now, votes blob)
    memory_before: float | None = None                                        # forget memory older than this
    checkpoint: bytes | None = None        # the defense runtime's whole state (stream.statecodec)
    checkpoint_version: int = 0            # the version it was built on; the new one after commit


def encode_json(value: Any) -> str:
    """The outbox text of a JSON event: compact, as the pipeline's JSON codec writes it.

    >>> encode_json({"v": 1, "email_id": "é"})
    '{"v":1,"email_id":"é"}'
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: Values of a :attr:`Batch.labels` row, in order.
LABEL_COLUMNS = ("label_id", "email_id", "window", "label", "weight", "confidence", "votes", "defense", "ts")


def _bulk(conn: Connection, stmt: Any, columns: Sequence[str], rows: list[tuple]) -> None:
    """Execute the INSERT ``stmt`` once per row of ``rows`` (values of ``columns``), as one
    DBAPI ``executemany``.

    The SQL is SQLAlchemy's own rendering of ``stmt`` for the connection's
    dialect, compiled for exactly ``columns``; rows go to the driver as they are
    (plain str, int, float, bytes and bool values, which every driver takes
    without conversion), skipping SQLAlchemy's per-row parameter processing,
    which costs more than the insert itself for many rows.
    """
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup]
        params: list = rows if order == list(range(len(columns))) else [tuple(r[i] for i in order) for r in rows]
    else:
        params = [dict(zip(columns, r)) for r in rows]
    conn.exec_driver_sql(compiled.string, params)


def _chunks(items: Sequence, n: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class ServiceStore:
    """The service's tables in one database, for one namespace.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///service.db``, ``postgresql+psycopg://...``).
    namespace : str
        The service's consumer group; rows of other namespaces are never touched.
    """

    def __init__(self, url: str, namespace: str):
        self.namespace = namespace
        self._compiled: dict[tuple, Any] = {}
        try:
            self.engine: Engine = create_engine(url, future=True)
        except Exception as exc:  # noqa: BLE001 - bad URL or missing driver
            raise StateError(f"cannot open service database: {exc}") from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._create_tables()
        except SQLAlchemyError as exc:
            raise StateError(f"cannot open service database: {' '.join(str(exc.orig if hasattr(exc, 'orig') else exc).split())}") from None

    def _create_tables(self) -> None:
        """Create the missing tables, one process at a time (instances often start together):
        under ``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")   # we issue BEGIN ourselves
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    _Base.metadata.create_all(conn)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            return
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(PG_LOCK_KEY)))
            _Base.metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, model):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)

    # -- partitions -------------------------------------------------------------

    def claim(self, topic: str, partitions: Sequence[int], topic_id: str | None) -> dict[int, Claim]:
        """Take ownership of ``partitions`` (bump their epochs) and load where they stand.

        When the broker's ``topic_id`` differs from the one stored, the broker lost
        its log and re-created the topic: reading restarts at offset 0 (records
        counted before are recognised in ``svc_seen``).
        """
        ns = self.namespace
        out: dict[int, Claim] = {}
        with Session(self.engine) as s, s.begin():
            for p in sorted(partitions):
                stmt = select(Offset).where(Offset.namespace == ns, Offset.topic == topic, Offset.partition == p)
                if self.dialect == "postgresql":
                    stmt = stmt.with_for_update()
                row = s.scalars(stmt).first()
                if row is None:
                    row = Offset(namespace=ns, topic=topic, partition=p, offset=0, watermark=None,
                                 closed=-(2**62), topic_id=topic_id, epoch=0)
                    s.add(row)
                reset = topic_id is not None and row.topic_id is not None and row.topic_id != topic_id
                if reset:
                    row.offset = 0
                row.topic_id = topic_id if topic_id is not None else row.topic_id
                row.epoch = (row.epoch or 0) + 1
                s.flush()
                pending = s.execute(select(Pending.window, Pending.data).where(
                    Pending.namespace == ns, Pending.partition == p).order_by(Pending.id)).all()
                out[p] = Claim(row.offset, row.watermark, row.closed, row.epoch, reset,
                               [(int(w), bytes(d)) for w, d in pending])
        return out

    def commit(self, batch: Batch) -> None:
        """Write one poll's changes in one transaction; :class:`FencedError` if a partition moved.

        Rows go in with one multi-row statement per table (SQLAlchemy Core
        ``executemany``), account deltas as one ``insert ... on conflict do
        update`` adding to the stored value, in a fixed order so that instances
        sharing a PostgreSQL database lock rows in the same order.
        """
        ns = self.namespace
        try:
            with self.engine.begin() as conn:
                for p, (offset, watermark, closed, epoch) in sorted(batch.offsets.items()):
                    res = conn.execute(update(Offset).where(
                        Offset.namespace == ns, Offset.topic == batch.topic, Offset.partition == p,
                        Offset.epoch == epoch).values(offset=offset, watermark=watermark, closed=closed))
                    if res.rowcount != 1:
                        raise FencedError(f"partition {p} of {batch.topic!r} is owned by another instance")
                for (topic, p), (offset, epoch) in sorted(batch.other_offsets.items()):
                    res = conn.execute(update(Offset).where(
                        Offset.namespace == ns, Offset.topic == topic, Offset.partition == p,
                        Offset.epoch == epoch).values(offset=offset))
                    if res.rowcount != 1:
                        raise FencedError(f"partition {p} of {topic!r} is owned by another instance")
                if batch.seen:
                    _bulk(conn, self._insert(Seen), ("namespace", "record_id", "ts"),
                          [(ns, r, t) for r, t in batch.seen])
                if batch.pending_add:   # before the delete: votes of this poll may be decided already
                    _bulk(conn, self._insert(Pending), ("namespace", "partition", "window", "data"),
                          [(ns, p, w, d) for p, w, d in batch.pending_add])
                for p, w in sorted(batch.pending_closed.items()):
                    conn.execute(delete(Pending).where(Pending.namespace == ns, Pending.partition == p,
                                                       Pending.window <= w))
                if batch.memory_add:
                    _bulk(conn, self._insert(Memory), ("namespace", "now", "data"),
                          [(ns, now, d) for now, d in batch.memory_add])
                if batch.memory_before is not None:
                    conn.execute(delete(Memory).where(Memory.namespace == ns, Memory.now < batch.memory_before))
                rows = [(ns, a, f, v) for a, f, v in sorted(batch.deltas) if v != 0.0]
                if rows:
                    ins = self._insert(AccountState)
                    ins = ins.on_conflict_do_update(
                        index_elements=["namespace", "account_id", "field"],
                        set_={"value": AccountState.value + ins.excluded.value})
                    _bulk(conn, ins, ("namespace", "account_id", "field", "value"), rows)
                if batch.checkpoint is not None:
                    self._write_checkpoint(conn, batch)
                if batch.labels:
                    _bulk(conn, self._insert(Label), ("namespace", *LABEL_COLUMNS),
                          [(ns, *label) for label in batch.labels])
                if batch.outbox:
                    _bulk(conn, self._insert(Outbox), ("namespace", "topic", "key", "value", "published"),
                          [(ns, t, k, encode_json(v), False) for t, k, v in batch.outbox])
                if batch.outbox_batches:
                    _bulk(conn, self._insert(OutboxBatch), ("namespace", "topic", "key", "data", "published"),
                          [(ns, t, k, d, False) for t, k, d in batch.outbox_batches])
        except (FencedError, StateConflict):
            raise
        except SQLAlchemyError as exc:
            raise StateError(f"commit failed: {' '.join(str(getattr(exc, 'orig', exc)).split())}") from exc

    def _write_checkpoint(self, conn: Connection, batch: Batch) -> None:
        """Replace the checkpoint if it is still the version the batch was built on (an
        instance that read an older one was overtaken: :class:`FencedError`)."""
        ns, base = self.namespace, batch.checkpoint_version
        if base == 0:
            res = conn.execute(self._insert(Checkpoint).values(namespace=ns, version=1, data=batch.checkpoint)
                               .on_conflict_do_nothing(index_elements=["namespace"]).returning(Checkpoint.version))
            if res.first() is None:
                raise StateConflict("the defense state was written by another instance")
        else:
            res = conn.execute(update(Checkpoint).where(Checkpoint.namespace == ns, Checkpoint.version == base)
                               .values(version=base + 1, data=batch.checkpoint))
            if res.rowcount != 1:
                raise StateConflict("the defense state was written by another instance")
        batch.checkpoint_version = base + 1

    def checkpoint(self) -> tuple[int, bytes | None]:
        """``(version, data)`` of the defense runtime's state; ``(0, None)`` before the first."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Checkpoint.version, Checkpoint.data)
                               .where(Checkpoint.namespace == self.namespace)).first()
        return (0, None) if row is None else (int(row[0]), bytes(row[1]))

    # -- reads ------------------------------------------------------------------

    def _select_in(self, conn: Connection, columns: Sequence[Any], key: Any, keys: Sequence[str]) -> list[tuple]:
        """Rows of ``columns`` of this namespace whose ``key`` column is in ``keys``.

        One ``key IN (...)`` query per :data:`_CHUNK` keys, each with exactly
        :data:`_CHUNK` parameters (a short chunk repeats its first key), so the
        statement is rendered by SQLAlchemy once and then goes to the driver as it
        is. Rows may come more than once (repeated keys).
        """
        cache_key = (tuple(str(c) for c in columns), str(key), _CHUNK)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            table = key.class_
            stmt = select(*columns).where(table.namespace == bindparam("ns_", value=self.namespace),
                                          key.in_(bindparam("keys_", value=[""] * _CHUNK, expanding=True)))
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            names = [f"keys__{i + 1}" for i in range(_CHUNK)]
            if set(compiled.params) != {"ns_", *names}:   # not the rendering expected: no shortcut
                compiled = None
            self._compiled[cache_key] = compiled
        rows: list[tuple] = []
        for chunk in _chunks(list(keys), _CHUNK):
            if compiled is None:
                rows.extend(conn.execute(select(*columns).where(key.class_.namespace == self.namespace,
                                                                key.in_(chunk))).all())
                continue
            values = list(chunk) + [chunk[0]] * (_CHUNK - len(chunk))
            named = {"ns_": self.namespace, **{f"keys__{i + 1}": v for i, v in enumerate(values)}}
            params = tuple(named[n] for n in compiled.positiontup) if compiled.positional else named
            rows.extend(conn.exec_driver_sql(compiled.string, params).all())
        return rows

    def seen(self, record_ids: Sequence[str]) -> set[str]:
        """The ids among ``record_ids`` already counted."""
        with self.engine.connect() as conn:
            return {r for (r,) in self._select_in(conn, [Seen.record_id], Seen.record_id, record_ids)}

    def account_state(self, accounts: Sequence[str], fields: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Per-account state aligned with ``accounts`` (0.0 where nothing is stored)."""
        index = {a: i for i, a in enumerate(accounts)}
        out: dict[str, np.ndarray] = {f: np.zeros(len(accounts)) for f in fields}
        with self.engine.connect() as conn:
            rows = self._select_in(conn, [AccountState.account_id, AccountState.field, AccountState.value],
                                   AccountState.account_id, accounts)
        for a, f, v in rows:
            if f not in out:
                out[f] = np.zeros(len(accounts))
            out[f][index[a]] = v
        return out

    def memory(self, known: Mapping[int, Any] = {}) -> tuple[list[tuple[int, float]], dict[int, bytes]]:
        """Remembered windows: ``([(id, now)...] in id order, {id: blob})``, blobs only of the
        ids not in ``known`` (rows are never changed, only added and deleted)."""
        with self.engine.connect() as conn:
            index = [(int(i), float(t)) for i, t in conn.execute(
                select(Memory.id, Memory.now).where(Memory.namespace == self.namespace).order_by(Memory.id)).all()]
            missing = [i for i, _ in index if i not in known]
            blobs: dict[int, bytes] = {}
            for chunk in _chunks(missing):
                blobs.update((int(i), bytes(d)) for i, d in conn.execute(
                    select(Memory.id, Memory.data).where(Memory.namespace == self.namespace, Memory.id.in_(chunk))))
        return index, blobs

    def reputations(self) -> dict[str, dict[str, float]]:
        """Every account's per-account defense state in the checkpoint: ``{account: {field:
        value}}`` with fields named ``INDEX.MEMBER.KEY`` (e.g. ``0.reputation.alpha``), zeros left out."""
        from stream.statecodec import decode_state

        _, data = self.checkpoint()
        if data is None:
            return {}
        state = decode_state(data)
        names = state["accounts"]
        out: dict[str, dict[str, float]] = {}
        for field_name, column in state.get("account_columns", {}).items():
            for i in np.flatnonzero(np.asarray(column)[:len(names)]).tolist():
                out.setdefault(names[i], {})[field_name] = float(column[i])
        return out

    def labels(self) -> dict[str, dict[str, Any]]:
        """Every label decided: ``{label_id: {email_id, window, label, weight, ...}}``."""
        cols = [c for c in Label.__table__.columns if c.name not in ("namespace",)]
        with Session(self.engine) as s:
            rows = s.execute(select(*cols).where(Label.namespace == self.namespace)).mappings().all()
        return {r["label_id"]: {k: v for k, v in r.items() if k != "label_id"} for r in rows}

    def offsets(self, topic: str) -> dict[int, int]:
        with Session(self.engine) as s:
            return dict(s.execute(select(Offset.partition, Offset.offset).where(
                Offset.namespace == self.namespace, Offset.topic == topic)).all())

    # -- outbox -----------------------------------------------------------------

    def unpublished(self, limit: int = 10_000) -> list[tuple[int, str, str | None, str]]:
        """Up to ``limit`` JSON events still to publish: ``(id, topic, key, JSON text)``."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(Outbox.id, Outbox.topic, Outbox.key, Outbox.value)
                .where(Outbox.namespace == self.namespace, Outbox.published.is_(False))
                .order_by(Outbox.id).limit(limit)).all()]

    def unpublished_batches(self, limit: int = 100) -> list[tuple[int, str, str | None, bytes]]:
        """Up to ``limit`` encoded batches still to publish: ``(id, topic, key, bytes)``."""
        with self.engine.connect() as conn:
            return [(i, t, k, bytes(d)) for i, t, k, d in conn.execute(
                select(OutboxBatch.id, OutboxBatch.topic, OutboxBatch.key, OutboxBatch.data)
                .where(OutboxBatch.namespace == self.namespace, OutboxBatch.published.is_(False))
                .order_by(OutboxBatch.id).limit(limit)).all()]

    def has_unpublished(self) -> bool:
        """True while either outbox holds something not yet acknowledged by the broker."""
        with self.engine.connect() as conn:
            for model in (Outbox, OutboxBatch):
                if conn.execute(select(model.id).where(model.namespace == self.namespace,
                                                       model.published.is_(False)).limit(1)).first():
                    return True
        return False

    def mark_published(self, ids: Sequence[int], batches: bool = False) -> None:
        """Mark outbox rows (``batches``: rows of the batch outbox) as published."""
        model = OutboxBatch if batches else Outbox
        with self.engine.begin() as conn:
            for chunk in _chunks(list(ids)):
                conn.execute(update(model).where(model.namespace == self.namespace, model.id.in_(chunk))
                             .values(published=True))

    def republish(self, topics: Iterable[str]) -> int:
        """Publish again everything sent to ``topics`` (after a broker lost them)."""
        count = 0
        with self.engine.begin() as conn:
            for model in (Outbox, OutboxBatch):
                res = conn.execute(update(model).where(model.namespace == self.namespace,
                                                       model.topic.in_(list(topics)))
                                   .values(published=False))
                count += res.rowcount
        return count

    def prune_seen(self, before_ts: float) -> int:
        """Forget counted record ids older than ``before_ts`` (event time)."""
        with Session(self.engine) as s, s.begin():
            return s.execute(delete(Seen).where(Seen.namespace == self.namespace, Seen.ts < before_ts)).rowcount


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL with ``synchronous=NORMAL``: a commit is durable against a crash of the process
    (not of the machine: then the last commits may roll back, and their records are read
    again, as their offsets roll back with them)."""
    import sqlite3
    import time

    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        for attempt in range(200):   # switching to WAL does not wait for a busy database
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 199:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
