"""The standalone defense service: feedback in, trusted labels out, state in a database.

:class:`DefenseService` reads feedback from a Kafka topic (JSON events, or
NumPy feedback batches, :func:`stream.codecs.feedback_batch`), groups votes in
tumbling event-time windows, runs the defense chain on each closed window and
publishes the labels.  Bad records go to the dead-letter topic with a reason.

Exactly-once effect, without Kafka transactions
------------------------------------------------
Everything a poll changes -- the next offset of each partition, the pending
votes, the defense runtime's whole state (``svc_checkpoint``, see
:mod:`stream.runtime`), the labels and the messages to publish (an *outbox*) -- is committed in **one database transaction**.  On start and
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

Instances in one consumer group share one checkpoint: partition epochs fence an
instance that lost a partition, and the checkpoint's version refuses a commit
built on a state another instance has replaced (the instance reloads and reads
again from the stored offsets).  They are correct but contend: one group does
not yet scale out over several live instances.

Labels of a window whose votes all came in feedback batches are published as
label batches (:func:`stream.codecs.label_batch`: one record for the window's
labels, :func:`stream.codecs.label_events` turns it back into label events);
otherwise one JSON label event per label.

Reviews (optional, ``reviews_topic``): provider reviews (confirmed true labels)
are read by the same consumer, validated (bad ones are dead-lettered like bad
feedback), deduped like feedback and handed to the runtime, which applies them
in event time (before the first window ending after their ``ts``; when idle, as
of the last closed window); their offsets go into the same transaction as the
state.  Members that score late reviews keep the votes they need in their own
state (e.g. reputation's ``memory``).

Throughput: a poll is processed as arrays (window assignment, the chain's
kernels); everything the poll changes goes to the
database with one multi-row statement per table; votes decided in the same
poll are never stored as pending; label batches are built from the ids' bytes
without re-encoding; and the outboxes hold values already encoded for the wire.
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
from stream.events import VERDICT_NAMES, VERDICTS, EventError, dead_letter, validate_feedback, validate_review
from stream.runtime import VOTE_DTYPE_FIELDS, DefenseRuntime, votes_array
from stream.statecodec import decode_state, encode_state
from stream.service_state import Batch, Claim, FencedError, ServiceStore, StateConflict
from stream.transport import Record, TransportError

__all__ = ["DefenseService", "ServiceConfig", "ServiceStats", "votes_array"]

log = logging.getLogger(__name__)

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
        Most records per poll and database transaction (5000: fewer, larger
        transactions; each costs a commit and a few queries whatever its size).
    max_votes : int
        Stop gathering records for one transaction (see ``linger_s``) once they
        hold this many votes (batch records hold many), which bounds its memory.
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
    reviews_topic : str or None
        Also read provider reviews (confirmed true labels, :func:`stream.events.review_event`)
        from this topic and feed them to the chain's ``observe_reviews``, their offsets
        committed with the state.  None (default): reviews are not read.
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
    max_records: int = 5000
    max_votes: int = 1_000_000
    poll_timeout_s: float = 0.5
    linger_s: float = 0.02
    idle_close_s: float = 5.0
    exit_when_idle: bool = False
    dedupe_horizon_ticks: float = 168.0
    partitions: int | None = None
    batch_labels: bool = True
    freeze_gc: bool = True
    reviews_topic: str | None = None


@dataclass
class ServiceStats:
    records: int = 0
    votes: int = 0
    duplicates: int = 0
    deadletters: int = 0
    reviews: int = 0
    labels: int = 0
    windows: int = 0
    commits: int = 0
    published: int = 0
    started: float = field(default_factory=time.monotonic)


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


def _votes_in(records: list[Record]) -> int:
    """Votes held by ``records`` (a batch record holds one per row)."""
    return sum(r.value.shape[0] if isinstance(r.value, np.ndarray) and r.value.ndim == 1 else 1 for r in records)


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


class _Input:
    """Where the service stands on one assigned partition of the reviews topic."""

    __slots__ = ("offset", "epoch", "dirty")

    def __init__(self, claim: Claim):
        self.offset = claim.offset
        self.epoch = claim.epoch
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
        The defense chain (its state is checkpointed in ``store``).
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
        self.runtime = DefenseRuntime(chain, config.window)
        self._checkpoint_version = 0
        self._state_changed = False
        self._parts: dict[int, _Partition] = {}
        self._review_parts: dict[int, _Input] = {}
        needs_model = [m.name for m in chain.members if getattr(m, "needs_model", m.name in ("roni", "rollback"))]
        if needs_model and self.runtime.context is None:
            raise ValueError(f"{', '.join(needs_model)} in the chain {chain.name!r} needs the model: the service "
                             "must be given a warm-up model and a validation set")
        self._consumer = None
        self._caught_up_cache: tuple[tuple, float] | None = None   # (positions, when) of the last "caught up"
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
        for name in (c.labels_topic, c.deadletter_topic, *([c.reviews_topic] if c.reviews_topic else [])):
            if self.transport.topic_partitions(name) is None:
                self.transport.create_topic(name, 1)

    def _open_consumer(self) -> None:
        self._parts.clear()
        self._review_parts.clear()
        inputs = [self.config.feedback_topic, *([self.config.reviews_topic] if self.config.reviews_topic else [])]
        self._consumer = self.transport.consumer(inputs, self.config.group,
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
        reviews = self.config.reviews_topic
        if reviews is not None:
            mine = sorted(p for t, p in assigned if t == reviews)
            if mine:
                claims = self.store.claim(reviews, mine, self.transport.topic_id(reviews))
                for p, claim in claims.items():
                    if claim.reset:
                        log.warning("topic %r was re-created: reading it again (reviews counted before are "
                                    "skipped)", reviews)
                    self._review_parts[p] = _Input(claim)
                    consumer.seek(reviews, p, claim.offset)
        parts = sorted(p for t, p in assigned if t == self.config.feedback_topic)
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
        self._load_checkpoint()
        self._rebalances += 1
        log.info("assigned partitions %s", parts)

    def _load_checkpoint(self) -> None:
        """Start the runtime from the state committed with the offsets just claimed."""
        version, data = self.store.checkpoint()
        self.chain.reset()
        self.runtime = DefenseRuntime(self.chain, self.config.window)
        if data is not None:
            self.runtime.load_state_dict(decode_state(data))
        self._checkpoint_version = version

    def _on_revoke(self, consumer, revoked: set[tuple[str, int]]) -> None:
        for t, p in revoked:
            if t == self.config.feedback_topic:
                self._parts.pop(p, None)
            else:
                self._review_parts.pop(p, None)
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
        reviews = self.config.reviews_topic
        records = [r for r in records if (r.partition in self._review_parts if r.topic == reviews
                                          else r.partition in self._parts)]
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
        while records and len(records) < c.max_records and c.linger_s > 0 and _votes_in(records) < c.max_votes:
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
        return any(part.pending for part in self._parts.values()) or self.runtime.has_pending_truth()

    def _caught_up(self) -> bool:
        """True when every assigned partition was read to its end.  A positive answer is
        reused for up to a second while nothing was read (the idle close and the idle
        exit ask one after the other; each answer costs broker round trips)."""
        position = self._positions()
        cached = self._caught_up_cache
        if cached is not None and cached[0] == position and time.monotonic() - cached[1] < 1.0:
            return True
        try:
            done = self._caught_up_unsafe()
        except TransportError:
            return False
        self._caught_up_cache = (position, time.monotonic()) if done else None
        return done

    def _positions(self) -> tuple:
        return (tuple(sorted((p, part.offset) for p, part in self._parts.items())),
                tuple(sorted((p, inp.offset) for p, inp in self._review_parts.items())), self._rebalances)

    def _caught_up_unsafe(self) -> bool:
        if not self._parts:
            return False
        import kafka

        inputs = [(self.config.feedback_topic, self._parts)]
        if self.config.reviews_topic is not None:
            inputs.append((self.config.reviews_topic, self._review_parts))
        for topic, parts in inputs:
            physical = self.transport.physical(topic)
            ends = self.transport.true_end_offsets([kafka.TopicPartition(physical, p) for p in parts])
            if not all(parts[tp.partition].offset >= end for tp, end in ends.items()):
                return False
        return True

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
        reviews_topic = self.config.reviews_topic
        try:
            self._state_changed = False
            if reviews_topic is not None and any(r.topic == reviews_topic for r in records):
                self._ingest_reviews([r for r in records if r.topic == reviews_topic], batch)
                records = [r for r in records if r.topic != reviews_topic]
            self._ingest(records, batch)
            self._close_windows(batch, close_all)
            # votes decided in this very poll never need to be stored as pending
            batch.pending_add = [(p, w, _NPY.encode(piece)) for p, w, piece in self._added
                                 if w > self._parts[p].closed]
            for p, part in self._parts.items():
                if part.dirty or close_all or batch.pending_closed:
                    batch.offsets[p] = (part.offset, part.watermark, part.closed, part.epoch)
            for p, inp in self._review_parts.items():
                if inp.dirty:
                    batch.other_offsets[(reviews_topic, p)] = (inp.offset, inp.epoch)
            self.store.commit(batch)
            self._checkpoint_version = batch.checkpoint_version if batch.checkpoint is not None \
                else self._checkpoint_version
            self._outbox_dirty = self._outbox_dirty or bool(batch.outbox or batch.outbox_batches)
        except FencedError as exc:
            log.warning("%s; rejoining the group", exc)
            self.close()
            self._open_consumer()
            return
        except StateConflict as exc:
            # Another instance of the group decided windows first: start again from the state
            # and offsets now stored (optimistic concurrency; nothing of this poll was written).
            log.info("%s; reloading it", exc)
            held = [(self.config.feedback_topic, p) for p in self._parts] + \
                   [(self.config.reviews_topic, p) for p in self._review_parts]
            self._on_assign(self._consumer, set(held))
            return
        finally:
            self._added = []
        for part in self._parts.values():
            part.dirty = False
        for inp in self._review_parts.values():
            inp.dirty = False
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
                             {**dead_letter(shown, reason, r.topic),
                              "partition": r.partition, "offset": r.offset}))
        self.stats.deadletters += 1

    def _ingest_reviews(self, records: list[Record], batch: Batch) -> None:
        """Validate and dedupe review records; the new ones go to the runtime, which applies
        them when the closed windows pass their ``ts``."""
        valid = []
        for r in records:
            inp = self._review_parts[r.partition]
            if r.offset >= inp.offset:
                inp.offset = r.offset + 1
            inp.dirty = True
            if isinstance(r.value, Undecodable):
                self._dead(r, r.value.reason, batch)
                continue
            try:
                email, label, ts = validate_review(r.value)
            except EventError as exc:
                self._dead(r, str(exc), batch)
                continue
            rid = "r:" + hashlib.sha1(f"{email}\x00{label}\x00{ts!r}".encode()).hexdigest()
            valid.append((rid, email, label, ts))
        seen = self.store.seen([v[0] for v in valid]) if valid else set()
        emails = []
        for rid, email, label, ts in valid:
            if rid in seen:
                self.stats.duplicates += 1
                continue
            seen.add(rid)
            batch.seen.append((rid, ts))
            self.runtime.add_reviews([email], [label], ts / self.config.tick_seconds)
            self._state_changed = True
            emails.append(email)
        self.stats.records += len(records)
        self.stats.reviews += len(emails)

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

    def _closing(self, close_all: bool) -> list[int]:
        """The pending windows this poll may decide, in order."""
        parts = self._parts
        marks = [part.watermark for part in parts.values() if part.watermark is not None]
        if not marks:
            return []
        if not close_all and len(marks) < len(parts) and not self._unread_empty():
            return []   # a partition with unread data and no watermark yet could hold older votes
        pending = sorted({win for part in parts.values() for win, _ in part.pending})
        if close_all:
            return pending
        limit = math.floor(min(marks) / self.config.window) - 1   # windows ending at or before the watermark
        return [win for win in pending if win <= limit]

    def _close_windows(self, batch: Batch, close_all: bool) -> None:
        """Decide the windows that may close, in order, through the runtime; then apply the
        truth (reviews, gold) that the closed windows' end has passed."""
        parts = self._parts
        closing = self._closing(close_all)
        for win in closing:
            pieces = [(p, v) for p in sorted(parts) for pw, v in parts[p].pending if pw == win]
            if pieces:
                self._decide(win, pieces, batch)
        if closing:
            last = closing[-1]
            for p, part in parts.items():
                part.pending = [(win, v) for win, v in part.pending if win > last]
                part.closed = max(part.closed, last)
                batch.pending_closed[p] = last
                part.dirty = True
        closed = [part.closed for part in parts.values() if part.closed > -(2**61)]
        if closed:
            # idle (everything read): truth later than the last window is due too, as of its end
            end = (min(closed) + 1) * self.config.window
            if self.runtime.apply_truths(math.inf if close_all else end, end):
                self._state_changed = True
        if self._state_changed:
            batch.checkpoint = encode_state(self.runtime.state_dict())
            batch.checkpoint_version = self._checkpoint_version

    def _decide(self, win: int, pieces: list[tuple[int, np.ndarray]], batch: Batch) -> None:
        """Run the runtime on one window: ``pieces`` are its votes ``(partition, votes)`` in
        partition order."""
        email = np.concatenate([v["email"] for _, v in pieces])
        part_of = np.concatenate([np.full(len(v), p, dtype=np.int64) for p, v in pieces])
        batched = all("batched" in v.dtype.names and bool(v["batched"].all()) for _, v in pieces)
        result = self.runtime.decide(win, np.concatenate([v["account"] for _, v in pieces]), email,
                                     np.concatenate([v["verdict"] for _, v in pieces]),
                                     np.concatenate([v["ts"] for _, v in pieces]),
                                     np.concatenate([v["created"] for _, v in pieces]))
        self._state_changed = True
        # an email's partition: that of its first vote (pieces are in partition order)
        first_part = {}
        for m, p in zip(email.tolist(), part_of.tolist()):
            first_part.setdefault(m, p)
        self._emit(win, result, first_part, batched, batch)
        self.stats.windows += 1

    def _emit(self, win: int, result, first_part: dict[bytes, int], batched: bool, batch: Batch) -> None:
        topic, defense = self.config.labels_topic, self.chain.name
        ts = result.now * self.config.tick_seconds
        for control in result.controls:
            batch.outbox.append((topic, None, {**control, "ts": ts, "defense": defense, "window": win}))
        labels = result.labels
        if not labels:
            return
        base = [f"@w{win}:p{first_part[e.email_id.encode('utf-8')]}" for e in labels]
        label_ids = [e.email_id + b + e.label_id[len(e.email_id) + len(f"@w{win}"):] for e, b in zip(labels, base)]
        rows = [(lid, e.email_id, win, VERDICT_NAMES[e.label], e.weight, e.confidence, e.votes, defense, ts)
                for lid, e in zip(label_ids, labels)]   # LABEL_COLUMNS
        batch.labels.extend(rows)
        if batched and self.config.batch_labels:
            for lo in range(0, len(rows), LABELS_PER_BATCH):
                part = rows[lo:lo + LABELS_PER_BATCH]
                arr = label_batch([r[0] for r in part], [r[1] for r in part], win,
                                  [VERDICTS[r[3]] for r in part], [r[4] for r in part], [r[5] for r in part],
                                  [r[6] for r in part], defense, ts)
                batch.outbox_batches.append((topic, f"w{win}", _NPY.encode(arr)))
        else:
            batch.outbox.extend(
                (topic, m, {"v": 1, "label_id": lid, "email_id": m, "label": lab, "weight": w, "confidence": c,
                            "votes": k, "defense": d, "ts": t, "window": win})
                for lid, m, _, lab, w, c, k, d, t in rows)
        self.stats.labels += len(rows)

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
