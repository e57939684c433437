"""The standalone defense service: feedback in, trusted labels out, state in a database.

:class:`DefenseService` reads feedback from a Kafka topic (JSON events, or
NumPy feedback batches, :func:`stream.codecs.feedback_batch`), groups votes in
tumbling event-time windows, runs the defense chain on each closed window and
publishes the labels.  Bad records go to the dead-letter topic with a reason.

Exactly-once effect, without Kafka transactions
------------------------------------------------
Everything a poll changes -- the next offset of each partition, the pending
votes, the per-account defense state, the labels and the messages to publish
(an *outbox*) -- is committed in **one database transaction**.  On start and
after every rebalance the service seeks to the offsets stored in the database,
so a crash at any point replays exactly the uncommitted records.  Labels are
published from the outbox after the commit and marked published after the
broker acknowledged them; a crash in between publishes them again *with the
same deterministic ``label_id``* (``EMAIL@wWINDOW:pPARTITION``), and the
``svc_labels`` table is the source of truth.  Readers of ``labels`` dedupe by
``label_id``.  (A transactional producer cannot make the database and Kafka
commit together, and tansu/kafka-python's transaction support is limited; the
outbox works with any broker.)

Determinism: a vote's window is ``floor(max(ts, partition watermark) / W)``
(late votes join their partition's current window); a window closes when every
assigned partition's watermark has passed its end, or, after ``idle_close_s``
without new records once the consumer has read everything, all pending
windows close.  Windows are decided in order, votes sorted by partition and
arrival, so a replay decides exactly the same windows.

Broker outage: when the broker comes back without its data (tansu memory
storage), the feedback topic has a new id; the service then reads it from the
start again, skips the records it already counted (``svc_seen``: event ids,
digests of batch records) and publishes its labels again.

Several instances in one consumer group split the partitions; they share the
per-account state through the database (deltas are added, so concurrent
updates are never lost) and partition epochs fence an instance that lost a
partition.  (Their decisions read the evidence the other instances committed
so far, so with accounts voting on several instances' partitions they depend
on timing; a single instance's do not.)

Labels of a window whose votes all came in feedback batches are published as
label batches (:func:`stream.codecs.label_batch`: one record for the window's
labels, :func:`stream.codecs.label_events` turns it back into label events);
otherwise one JSON label event per label.

Throughput: a poll is processed as arrays (window assignment, id
factorization, the chain's kernels, per-account state and deltas as NumPy
columns), everything it changes goes to the database with one multi-row
statement per table, votes decided in the same poll are never stored as
pending, and the outboxes hold values already encoded for the wire.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from defenses.base import VoteBatch
from defenses.chain import Chain
from stream import topics
from stream.codecs import (
    NpyCodec,
    Undecodable,
    check_feedback_batch,
    invalid_batch_rows,
    label_batch,
)
from stream.events import VERDICT_NAMES, VERDICTS, EventError, dead_letter, validate_feedback
from stream.service_state import Batch, Claim, FencedError, ServiceStore
from stream.transport import Record, TransportError

__all__ = ["DefenseService", "ServiceConfig", "ServiceStats", "votes_array"]

log = logging.getLogger(__name__)

VOTE_DTYPE_FIELDS = ("account", "email", "verdict", "ts", "created", "batched")
LABELS_PER_BATCH = 50_000   # labels per record of the batch form (records stay a few MB)
_NPY = NpyCodec()


@dataclass
class ServiceConfig:
    """Settings of the defense service.

    Parameters
    ----------
    group : str
        Consumer group, and namespace of the service's rows in the database.
    window : float
        Window width in ticks (``defense.window_ticks``).
    tick_seconds : float
        Event-time seconds per tick: ``ts`` and ``account_created_ts`` are divided
        by it (3600: ticks are hours, as in the simulator's defaults).
    max_records : int
        Most records per database transaction.
    linger_s : float
        After a poll that returned records, keep polling (each poll waiting at most
        this long) while records keep coming, up to ``max_records``: one larger
        transaction instead of several small ones, e.g. when the partitions' data
        arrive in separate fetches.  0 processes every poll on its own.
    freeze_gc : bool
        While running, keep the objects that exist after start-up (libraries,
        compiled kernels) out of the cyclic garbage collector's full passes
        (``gc.freeze``), which otherwise pause the service for a fraction of a
        second now and then.
    batch_labels : bool
        Publish the labels of a window whose votes all came in feedback batches
        as label batches (:func:`stream.codecs.label_batch`, one record for many
        labels) instead of one JSON event per label.
    """

    group: str = "poisonlab-defense"
    feedback_topic: str = topics.FEEDBACK
    labels_topic: str = topics.LABELS
    deadletter_topic: str = topics.DEADLETTER
    window: float = 1.0
    tick_seconds: float = 3600.0
    max_records: int = 500
    poll_timeout_s: float = 0.5
    linger_s: float = 0.02
    idle_close_s: float = 5.0
    exit_when_idle: bool = False
    dedupe_horizon_ticks: float = 168.0
    partitions: int | None = None
    batch_labels: bool = True
    freeze_gc: bool = True


@dataclass
class ServiceStats:
    records: int = 0
    votes: int = 0
    duplicates: int = 0
    deadletters: int = 0
    labels: int = 0
    windows: int = 0
    commits: int = 0
    published: int = 0
    started: float = field(default_factory=time.monotonic)


def votes_array(account, email, verdict, ts, created, batched=False) -> np.ndarray:
    """Votes as one structured array (the pending-vote blob layout).

    ``account`` and ``email`` are byte strings (lists or ``S`` arrays); ``batched``
    says whether each vote came in a feedback batch (one flag or one per vote).

    >>> v = votes_array([b"a"], [b"m"], [1], [0.5], [np.nan])
    >>> v["email"].tolist(), v.dtype.names[-1], v["batched"].tolist()
    ([b'm'], 'batched', [False])
    """
    account = np.asarray(account, dtype=np.bytes_)
    email = np.asarray(email, dtype=np.bytes_)
    out = np.empty(account.shape[0], dtype=[("account", account.dtype), ("email", email.dtype), ("verdict", "i1"),
                                            ("ts", "<f8"), ("created", "<f8"), ("batched", "?")])
    out["account"] = account
    out["email"] = email
    out["verdict"] = verdict
    out["ts"] = ts
    out["created"] = created
    out["batched"] = batched
    return out


_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)   # odd: a bijection of each word


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct byte strings of an ``S`` array: ``(uniques, first index, inverse)``.

    Like ``np.unique(values, return_index=True, return_inverse=True)``, but the
    strings are sorted as one 64-bit key each (the string itself up to 8 bytes,
    a polynomial hash of its 8-byte words beyond), which is several times
    faster than comparing strings.  ``uniques`` come in a deterministic order
    that is not the lexicographic one.  The result is checked
    (``uniques[inverse] == values``), so a hash collision, even a crafted one,
    only falls back to ``np.unique``.

    >>> ids = np.array([b"account-0000042", b"a", b"account-0000042", b"c"])
    >>> u, first, inv = factorize(ids)
    >>> sorted(u.tolist()), bool((u[inv] == ids).all()), first[inv].tolist()
    ([b'a', b'account-0000042', b'c'], True, [0, 1, 0, 3])
    """
    n = values.shape[0]
    words = -(-values.dtype.itemsize // 8)
    if n == 0:
        return values[:0], np.zeros(0, np.int64), np.zeros(0, np.int64)
    matrix = np.ascontiguousarray(values, dtype=f"S{words * 8}").view("<u8").reshape(n, words)
    key = matrix[:, 0]
    for j in range(1, words):
        key = key * _HASH_MULTIPLIER + matrix[:, j]   # wraps around modulo 2**64
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    uniques = values[first]
    inverse = inverse.reshape(n)
    if words > 1 and not (uniques[inverse] == values).all():   # two strings with one hash
        uniques, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        inverse = inverse.reshape(n)
    return uniques, first, inverse


class _Columns:
    """The votes of one partition in one poll, in arrival order.

    JSON events are gathered as Python rows and turned into arrays once per run
    of events; batch records stay arrays.
    """

    __slots__ = ("pieces", "events")

    def __init__(self):
        self.pieces: list[np.ndarray] = []
        self.events: list[tuple[bytes, bytes, int, float, float]] = []

    def add_batch(self, account, email, verdict, ts, created) -> None:
        self._flush()
        self.pieces.append(votes_array(account, email, verdict, ts, created, batched=True))

    def _flush(self) -> None:
        if self.events:
            account, email, verdict, ts, created = zip(*self.events)
            self.pieces.append(votes_array(account, email, verdict, ts, created))
            self.events = []

    def votes(self) -> np.ndarray | None:
        self._flush()
        if not self.pieces:
            return None
        if len(self.pieces) == 1:
            return self.pieces[0]
        return votes_array(*(np.concatenate([p[f] for p in self.pieces]) for f in VOTE_DTYPE_FIELDS))


class _AccountTable:
    """Per-account defense state of the accounts one poll touches, with the poll's deltas.

    Loaded from the store the first time an account shows up in the poll, then
    kept here across the windows the poll decides: state as arrays indexed by a
    row per account, deltas (what the poll adds) beside it.
    """

    def __init__(self, store: ServiceStore, names: list[str]):
        self.store = store
        self.names = names
        self.index: dict[bytes, int] = {}
        self.keys: list[bytes] = []
        self.value = {f: np.zeros(0) for f in names}
        self.delta = {f: np.zeros(0) for f in names}

    def rows(self, accounts: np.ndarray) -> np.ndarray:
        """Row of each account (unique byte strings), loading the unknown ones from the store."""
        keys = accounts.tolist()
        index = self.index
        missing = [a for a in keys if a not in index]
        if missing:
            loaded = self.store.account_state([a.decode("utf-8") for a in missing], self.names)
            start = len(self.keys)
            index.update(zip(missing, range(start, start + len(missing))))
            self.keys.extend(missing)
            for f in self.names:
                self.value[f] = np.concatenate([self.value[f], loaded[f]])
                self.delta[f] = np.concatenate([self.delta[f], np.zeros(len(missing))])
        return np.fromiter((index[a] for a in keys), dtype=np.int64, count=len(keys))

    def get(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {f: self.value[f][rows] for f in self.names}

    def update(self, rows: np.ndarray, before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
        for f in self.names:
            delta = after[f] - before[f]
            self.value[f][rows] = before[f] + delta
            self.delta[f][rows] += delta

    def delta_rows(self) -> list[tuple[str, str, float]]:
        """``(account, field, delta)`` of every non-zero delta."""
        out: list[tuple[str, str, float]] = []
        names: dict[int, str] = {}
        for f in self.names:
            delta = self.delta[f]
            nz = np.flatnonzero(delta)
            for i, d in zip(nz.tolist(), delta[nz].tolist()):
                name = names.get(i)
                if name is None:
                    name = names[i] = self.keys[i].decode("utf-8")
                out.append((name, f, d))
        return out


class _Partition:
    """What the service knows of one assigned partition."""

    __slots__ = ("offset", "watermark", "closed", "epoch", "pending", "dirty")

    def __init__(self, claim: Claim):
        self.offset = claim.offset
        self.watermark = claim.watermark
        self.closed = claim.closed
        self.epoch = claim.epoch
        self.pending: list[tuple[int, np.ndarray]] = [(w, _NPY.decode(blob)) for w, blob in claim.pending]
        self.dirty = False


class DefenseService:
    """Feedback topic → defense chain → labels topic, with durable state.

    Parameters
    ----------
    transport : stream.kafka.KafkaTransport
        Broker connection (its codecs must not trust pickle).
    store : ServiceStore
        The service database, namespace = ``config.group``.
    chain : Chain
        The defense chain (its per-account state lives in ``store``).
    config : ServiceConfig
    """

    def __init__(self, transport, store: ServiceStore, chain: Chain, config: ServiceConfig):
        if getattr(transport.codecs, "trust_pickle", False):
            raise ValueError("the service reads untrusted topics: its codecs must not trust pickle")
        self.transport = transport
        self.store = store
        self.chain = chain
        self.config = config
        self.stats = ServiceStats()
        self._fields = [(i, key, f"{i}.{m.name}.{key}") for i, m in enumerate(chain.members)
                        for key in m.account_state]
        self._parts: dict[int, _Partition] = {}
        self._consumer = None
        self._last_record = time.monotonic()
        self._since_prune = 0
        self._rebalances = 0   # assignments and revocations handled so far
        self._outbox_dirty = True   # the outboxes may hold something to publish
        self._added: list[tuple[int, int, np.ndarray]] = []   # pending pieces of the current poll

    # -- lifecycle ---------------------------------------------------------------

    def ensure_topics(self) -> None:
        c = self.config
        existing = self.transport.topic_partitions(c.feedback_topic)
        if existing is None:
            self.transport.create_topic(c.feedback_topic, c.partitions or 1)
        for name in (c.labels_topic, c.deadletter_topic):
            if self.transport.topic_partitions(name) is None:
                self.transport.create_topic(name, 1)

    def _open_consumer(self) -> None:
        self._parts.clear()
        self._consumer = self.transport.consumer([self.config.feedback_topic], self.config.group,
                                                 on_assign=self._on_assign, on_revoke=self._on_revoke)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> ServiceStats:
        """Process until ``should_stop()`` (or, with ``exit_when_idle``, until idle)."""
        self.warm_up()
        self.ensure_topics()
        self._open_consumer()
        self.publish()
        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            while not should_stop():
                if not self.step() and self.config.exit_when_idle and self._idle_done():
                    break
        finally:
            if self.config.freeze_gc:
                gc.unfreeze()
            self.close()
        return self.stats

    def warm_up(self) -> None:
        """Run a copy of the chain on a few votes, so that its Numba kernels are compiled
        (or loaded from Numba's cache) before the first record, not while deciding it."""
        try:
            chain = copy.deepcopy(self.chain)
        except Exception:  # noqa: BLE001 - a chain that cannot be copied is simply not warmed up
            log.debug("chain not warmed up: it cannot be copied", exc_info=True)
            return
        votes = VoteBatch.of([0, 1, 2], [0, 0, 1], [1, 1, 0], [1.0, 1.0, 1.0], [-1e9, -1e9, math.nan])
        chain.process(votes, now=2.0)

    # -- rebalances ------------------------------------------------------------------

    def _on_assign(self, consumer, assigned: set[tuple[str, int]]) -> None:
        parts = sorted(p for _, p in assigned)
        topic_id = self.transport.topic_id(self.config.feedback_topic)
        claims = self.store.claim(self.config.feedback_topic, parts, topic_id)
        if any(c.reset for c in claims.values()):
            log.warning("topic %r was re-created (broker lost its data): re-reading it and publishing "
                        "labels again", self.config.feedback_topic)
            self.transport.forget_topics()
            self.ensure_topics()
            self.store.republish([self.config.labels_topic, self.config.deadletter_topic])
            self._outbox_dirty = True
        for p, claim in claims.items():
            self._parts[p] = _Partition(claim)
            consumer.seek(self.config.feedback_topic, p, claim.offset)
        self._rebalances += 1
        log.info("assigned partitions %s", parts)

    def _on_revoke(self, consumer, revoked: set[tuple[str, int]]) -> None:
        for _, p in revoked:
            self._parts.pop(p, None)
        self._rebalances += 1

    # -- one poll ----------------------------------------------------------------------

    def step(self) -> int:
        """Poll (see ``linger_s``), process and commit; returns the number of records read."""
        try:
            records = self._poll()
        except TransportError as exc:
            log.warning("poll failed, retrying: %s", exc)
            time.sleep(0.5)
            return 0
        records = [r for r in records if r.partition in self._parts]
        now = time.monotonic()
        if records:
            self._last_record = now
            self._process(records, close_all=False)
        elif (self.config.idle_close_s > 0 and now - self._last_record >= self.config.idle_close_s
              and self._has_pending() and self._caught_up()):
            self._process([], close_all=True)
        try:
            self.publish()
        except TransportError as exc:   # broker away: the outbox keeps everything for later
            log.warning("publishing postponed: %s", exc)
        return len(records)

    def _poll(self) -> list[Record]:
        c = self.config
        records = self._consumer.poll(max_records=c.max_records, timeout_s=c.poll_timeout_s)
        rebalances = self._rebalances   # the records above were read after any rebalance it handled
        while records and len(records) < c.max_records and c.linger_s > 0:
            try:
                more = self._consumer.poll(max_records=c.max_records - len(records), timeout_s=c.linger_s)
            except TransportError as exc:   # keep what was read: its offsets are past already
                log.warning("poll failed, processing what was read: %s", exc)
                break
            if self._rebalances != rebalances:
                # Every partition was claimed again and its reading moved to the offset stored
                # in the database: what was read before is read again from there.
                return more
            if not more:
                break
            records.extend(more)
        return records

    def _has_pending(self) -> bool:
        return any(part.pending for part in self._parts.values())

    def _caught_up(self) -> bool:
        try:
            return self._caught_up_unsafe()
        except TransportError:
            return False

    def _caught_up_unsafe(self) -> bool:
        if not self._parts:
            return False
        import kafka

        physical = self.transport.physical(self.config.feedback_topic)
        ends = self.transport.true_end_offsets([kafka.TopicPartition(physical, p) for p in self._parts])
        return all(self._parts[tp.partition].offset >= end for tp, end in ends.items())

    def _unread_empty(self) -> bool:
        try:
            return self._unread_empty_unsafe()
        except TransportError:
            return False

    def _unread_empty_unsafe(self) -> bool:
        """True when every assigned partition without a watermark has nothing to read."""
        import kafka

        physical = self.transport.physical(self.config.feedback_topic)
        fresh = [p for p, part in self._parts.items() if part.watermark is None]
        ends = self.transport.true_end_offsets([kafka.TopicPartition(physical, p) for p in fresh])
        return all(self._parts[tp.partition].offset >= end for tp, end in ends.items())

    def _idle_done(self) -> bool:
        if not (time.monotonic() - self._last_record >= self.config.idle_close_s and bool(self._parts)
                and not self._has_pending() and self._caught_up()):
            return False
        if self.store.has_unpublished():   # e.g. left by another instance of the group
            self._outbox_dirty = True
            return False
        return True

    def _process(self, records: list[Record], close_all: bool) -> None:
        batch = Batch(topic=self.config.feedback_topic)
        self._added = []
        try:
            self._ingest(records, batch)
            self._close_windows(batch, close_all)
            # votes decided in this very poll never need to be stored as pending
            batch.pending_add = [(p, w, _NPY.encode(piece)) for p, w, piece in self._added
                                 if w > self._parts[p].closed]
            for p, part in self._parts.items():
                if part.dirty or close_all or batch.pending_closed:
                    batch.offsets[p] = (part.offset, part.watermark, part.closed, part.epoch)
            self.store.commit(batch)
            self._outbox_dirty = self._outbox_dirty or bool(batch.outbox or batch.outbox_batches)
        except FencedError as exc:
            log.warning("%s; rejoining the group", exc)
            self.close()
            self._open_consumer()
            return
        finally:
            self._added = []
        for part in self._parts.values():
            part.dirty = False
        self.stats.commits += 1
        self._since_prune += 1
        if self._since_prune >= 200:
            self._prune()

    def _prune(self) -> None:
        self._since_prune = 0
        marks = [p.watermark for p in self._parts.values() if p.watermark is not None]
        if marks:
            self.store.prune_seen((min(marks) - self.config.dedupe_horizon_ticks) * self.config.tick_seconds)

    # -- ingest: decode, validate, dedupe, assign windows -----------------------------------

    @staticmethod
    def _record_id(v: Any) -> str | None:
        if isinstance(v, dict) and isinstance(v.get("event_id"), str):
            return "e:" + v["event_id"]
        if isinstance(v, np.ndarray):
            return "b:" + hashlib.sha1(v.dtype.str.encode() + v.tobytes()).hexdigest()
        return None

    def _ingest(self, records: list[Record], batch: Batch) -> None:
        rids = [self._record_id(r.value) for r in records]
        wanted = [rid for rid in rids if rid is not None]
        seen = self.store.seen(wanted) if wanted else set()
        chunk: dict[int, _Columns] = {}
        parts = self._parts
        tick = self.config.tick_seconds
        counted = batch.seen
        for r, rid in zip(records, rids):
            p = r.partition
            part = parts[p]
            if r.offset >= part.offset:
                part.offset = r.offset + 1
            part.dirty = True
            cols = chunk.get(p)
            if cols is None:
                cols = chunk[p] = _Columns()
            v = r.value
            if isinstance(v, np.ndarray):
                self._ingest_batch(r, v, rid, cols, seen, batch)
                continue
            if isinstance(v, Undecodable):
                self._dead(r, v.reason, batch)
                continue
            try:
                validate_feedback(v)
            except EventError as exc:
                self._dead(r, str(exc), batch)
                continue
            if rid in seen:      # rid is "e:" + the (valid) event id
                self.stats.duplicates += 1
                continue
            seen.add(rid)
            ts = float(v["ts"])
            counted.append((rid, ts))
            created = v.get("account_created_ts")
            cols.events.append((v["account_id"].encode("utf-8"), v["email_id"].encode("utf-8"),
                                VERDICTS[v["verdict"]], ts / tick,
                                math.nan if created is None else float(created) / tick))
        self.stats.records += len(records)
        for p, cols in chunk.items():
            votes = cols.votes()
            if votes is not None and len(votes):
                self._assign_windows(p, votes)
                self.stats.votes += len(votes)

    def _dead(self, r: Record, reason: str, batch: Batch, value: Any = None) -> None:
        shown = r.value.raw if isinstance(r.value, Undecodable) else (r.value if value is None else value)
        batch.outbox.append((self.config.deadletter_topic, r.key,
                             {**dead_letter(shown, reason, self.config.feedback_topic),
                              "partition": r.partition, "offset": r.offset}))
        self.stats.deadletters += 1

    def _ingest_batch(self, r: Record, v: np.ndarray, rid: str | None, cols: _Columns, seen: set[str],
                      batch: Batch) -> None:
        problem = check_feedback_batch(v)
        if problem is not None:
            self._dead(r, problem, batch, value=f"<array {v.dtype.str} shape {v.shape}>")
            return
        if rid in seen:
            self.stats.duplicates += 1
            return
        seen.add(rid)
        bad, reasons = invalid_batch_rows(v)
        if reasons:
            rows = np.flatnonzero(bad)
            for i, reason in zip(rows.tolist(), reasons):
                self._dead(r, f"row {i}: {reason}", batch, value=repr(v[i].tolist()))
            v = v[~bad]
        if not v.shape[0]:
            return
        batch.seen.append((rid, float(v["ts"].max())))
        tick = self.config.tick_seconds
        cols.add_batch(v["account_id"], v["email_id"], v["verdict"], v["ts"] / tick, v["created"] / tick)

    def _assign_windows(self, p: int, votes: np.ndarray) -> None:
        part = self._parts[p]
        w = self.config.window
        start = -math.inf if part.watermark is None else part.watermark
        marks = np.maximum.accumulate(np.maximum(votes["ts"], start))
        window = np.maximum(np.floor(marks / w).astype(np.int64), part.closed + 1)
        part.watermark = float(marks[-1])
        bounds = np.flatnonzero(np.diff(window)) + 1
        for lo, hi in zip(np.r_[0, bounds].tolist(), np.r_[bounds, len(window)].tolist()):
            piece = votes[lo:hi]
            part.pending.append((int(window[lo]), piece))
            self._added.append((p, int(window[lo]), piece))

    # -- decide closed windows ------------------------------------------------------------

    def _close_windows(self, batch: Batch, close_all: bool) -> None:
        parts = self._parts
        marks = [part.watermark for part in parts.values() if part.watermark is not None]
        if not marks:
            return
        if not close_all and len(marks) < len(parts) and not self._unread_empty():
            return   # a partition with unread data and no watermark yet could hold older votes
        w = self.config.window
        pending = sorted({win for part in parts.values() for win, _ in part.pending})
        if close_all:
            limit = max(pending, default=None)
        else:
            limit = math.floor(min(marks) / w) - 1          # windows ending at or before the watermark
        closing = [win for win in pending if limit is not None and win <= limit]
        if not closing:
            return
        table = _AccountTable(self.store, [f for _, _, f in self._fields])
        for win in closing:
            self._decide(win, table, batch)
        batch.deltas = table.delta_rows()
        last = closing[-1]
        for p, part in parts.items():
            part.pending = [(win, v) for win, v in part.pending if win > last]
            part.closed = max(part.closed, last)
            batch.pending_closed[p] = last
            part.dirty = True

    def _decide(self, win: int, table: _AccountTable, batch: Batch) -> None:
        pieces = [(p, v) for p in sorted(self._parts) for pw, v in self._parts[p].pending if pw == win]
        if not pieces:
            return
        account = np.concatenate([v["account"] for _, v in pieces])
        email = np.concatenate([v["email"] for _, v in pieces])
        part_of = np.concatenate([np.full(len(v), p, dtype=np.int64) for p, v in pieces])
        batched = all("batched" in v.dtype.names and bool(v["batched"].all()) for _, v in pieces)
        accounts, _, acc_local = factorize(account)
        # pieces are in partition order: an email's first vote is in its lowest partition
        emails, first, email_local = factorize(email)
        verdict = np.concatenate([v["verdict"] for _, v in pieces])
        ts = np.concatenate([v["ts"] for _, v in pieces])
        created = np.concatenate([v["created"] for _, v in pieces])
        votes = VoteBatch.of(acc_local, email_local, verdict, ts, created)
        rows = table.rows(accounts) if self._fields else np.zeros(0, np.int64)
        old = table.get(rows)
        self._set_chain_state(old)
        now = (win + 1) * self.config.window
        decision = self.chain.process(votes, now=now)
        table.update(rows, old, self._get_chain_state(len(accounts)))
        self._emit_labels(win, now, decision.labels, emails, part_of[first], batched, batch)
        self.stats.windows += 1

    def _set_chain_state(self, state: dict[str, np.ndarray]) -> None:
        members: list[dict] = [{} for _ in self.chain.members]
        for i, key, name in self._fields:
            members[i][key] = state[name]
        self.chain.load_state_dict({"members": members})

    def _get_chain_state(self, n: int) -> dict[str, np.ndarray]:
        members = [m.state_dict() if m.account_state else {} for m in self.chain.members]
        out = {}
        for i, key, name in self._fields:
            arr = np.asarray(members[i][key], dtype=np.float64)[:n]
            out[name] = np.pad(arr, (0, n - arr.shape[0])) if arr.shape[0] < n else arr
        return out

    def _emit_labels(self, win: int, now: float, labels, emails: np.ndarray, email_part: np.ndarray,
                     batched: bool, batch: Batch) -> None:
        n = len(labels)
        if not n:
            return
        e = labels.email
        email_ids = [m.decode("utf-8") for m in emails[e].tolist()]
        label_ids = [f"{m}@w{win}:p{p}" for m, p in zip(email_ids, email_part[e].tolist())]
        label, weight = labels.label.tolist(), labels.weight.astype(np.float64).tolist()
        confidence, votes = labels.confidence.astype(np.float64).tolist(), labels.votes.astype(np.int64).tolist()
        defense = self.chain.name
        ts = now * self.config.tick_seconds
        rows = [(lid, m, win, VERDICT_NAMES[lab], w, c, k, defense, ts)   # LABEL_COLUMNS
                for lid, m, lab, w, c, k in zip(label_ids, email_ids, label, weight, confidence, votes)]
        batch.labels.extend(rows)
        topic = self.config.labels_topic
        if batched and self.config.batch_labels:
            for lo in range(0, n, LABELS_PER_BATCH):
                hi = lo + LABELS_PER_BATCH
                arr = label_batch(label_ids[lo:hi], email_ids[lo:hi], win, label[lo:hi], weight[lo:hi],
                                  confidence[lo:hi], votes[lo:hi], defense, ts)
                batch.outbox_batches.append((topic, f"w{win}", _NPY.encode(arr)))
        else:
            batch.outbox.extend(
                (topic, m, {"v": 1, "label_id": lid, "email_id": m, "label": lab, "weight": w, "confidence": c,
                            "votes": k, "defense": d, "ts": t, "window": win})
                for lid, m, _, lab, w, c, k, d, t in rows)
        self.stats.labels += n

    # -- outbox -----------------------------------------------------------------------

    def publish(self) -> int:
        """Send what the outboxes hold, flush, mark it published; returns the record count.

        The outboxes keep values encoded (JSON text, ``.npy`` bytes): they go on the
        wire as they are.  They are only read when something may be waiting there:
        at start, after this instance committed outbox rows or the broker lost its
        topics, and when the idle check finds rows (e.g. another instance's).
        """
        import json

        if not self._outbox_dirty:
            return 0
        send = getattr(self.transport, "send_encoded", None)
        total = 0
        while rows := self.store.unpublished(10_000):
            for _, topic, key, value in rows:
                if send is not None:
                    send(topic, value.encode("utf-8"), key=key)
                else:
                    self.transport.send(topic, json.loads(value), key=key)
            self.transport.flush()
            self.store.mark_published([r[0] for r in rows])
            total += len(rows)
        while rows := self.store.unpublished_batches(64):
            for _, topic, key, data in rows:
                if send is not None:
                    send(topic, data, key=key)
                else:
                    self.transport.send(topic, _NPY.decode(data), key=key)
            self.transport.flush()
            self.store.mark_published([r[0] for r in rows], batches=True)
            total += len(rows)
        self._outbox_dirty = False
        self.stats.published += total
        return total
