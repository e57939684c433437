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
partition.
"""

from __future__ import annotations

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
)
from stream.events import VERDICT_NAMES, VERDICTS, EventError, dead_letter, validate_feedback
from stream.service_state import Batch, Claim, FencedError, ServiceStore
from stream.transport import Record, TransportError

__all__ = ["DefenseService", "ServiceConfig", "ServiceStats", "votes_array"]

log = logging.getLogger(__name__)

VOTE_DTYPE_FIELDS = ("account", "email", "verdict", "ts", "created")
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
    """

    group: str = "poisonlab-defense"
    feedback_topic: str = topics.FEEDBACK
    labels_topic: str = topics.LABELS
    deadletter_topic: str = topics.DEADLETTER
    window: float = 1.0
    tick_seconds: float = 3600.0
    max_records: int = 500
    poll_timeout_s: float = 0.5
    idle_close_s: float = 5.0
    exit_when_idle: bool = False
    dedupe_horizon_ticks: float = 168.0
    partitions: int | None = None


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


def votes_array(account: list[bytes], email: list[bytes], verdict, ts, created) -> np.ndarray:
    """Votes as one structured array (the pending-vote blob layout).

    >>> votes_array([b"a"], [b"m"], [1], [0.5], [np.nan])["email"].tolist()
    [b'm']
    """
    n = len(account)
    aw = max([len(a) for a in account] + [1])
    ew = max([len(e) for e in email] + [1])
    out = np.empty(n, dtype=[("account", f"S{aw}"), ("email", f"S{ew}"), ("verdict", "i1"),
                             ("ts", "<f8"), ("created", "<f8")])
    out["account"] = account
    out["email"] = email
    out["verdict"] = verdict
    out["ts"] = ts
    out["created"] = created
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
        self.ensure_topics()
        self._open_consumer()
        self.publish()
        try:
            while not should_stop():
                if not self.step() and self.config.exit_when_idle and self._idle_done():
                    break
        finally:
            self.close()
        return self.stats

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
        for p, claim in claims.items():
            self._parts[p] = _Partition(claim)
            consumer.seek(self.config.feedback_topic, p, claim.offset)
        log.info("assigned partitions %s", parts)

    def _on_revoke(self, consumer, revoked: set[tuple[str, int]]) -> None:
        for _, p in revoked:
            self._parts.pop(p, None)

    # -- one poll ----------------------------------------------------------------------

    def step(self) -> int:
        """Poll once, process and commit; returns the number of records read."""
        try:
            records = self._consumer.poll(max_records=self.config.max_records,
                                          timeout_s=self.config.poll_timeout_s)
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
        return (time.monotonic() - self._last_record >= self.config.idle_close_s and bool(self._parts)
                and not self._has_pending() and self._caught_up() and not self.store.unpublished(1))

    def _process(self, records: list[Record], close_all: bool) -> None:
        batch = Batch(topic=self.config.feedback_topic)
        try:
            self._ingest(records, batch)
            self._close_windows(batch, close_all)
            for p, part in self._parts.items():
                if part.dirty or close_all or batch.pending_closed:
                    batch.offsets[p] = (part.offset, part.watermark, part.closed, part.epoch)
            self.store.commit(batch)
        except FencedError as exc:
            log.warning("%s; rejoining the group", exc)
            self.close()
            self._open_consumer()
            return
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

    def _ingest(self, records: list[Record], batch: Batch) -> None:
        ids: list[str] = []
        for r in records:
            v = r.value
            if isinstance(v, dict) and isinstance(v.get("event_id"), str):
                ids.append("e:" + v["event_id"])
            elif isinstance(v, np.ndarray):
                ids.append("b:" + hashlib.sha1(v.dtype.str.encode() + v.tobytes()).hexdigest())
        seen = self.store.seen(ids) if ids else set()
        chunk: dict[int, list] = {}   # partition -> [account, email, verdict, ts, created]
        for r in records:
            part = self._parts[r.partition]
            part.offset = max(part.offset, r.offset + 1)
            part.dirty = True
            self.stats.records += 1
            v = r.value
            cols = chunk.setdefault(r.partition, [[], [], [], [], []])
            if isinstance(v, np.ndarray):
                self._ingest_batch(r, v, cols, seen, batch)
            else:
                self._ingest_event(r, v, cols, seen, batch)
        for p, (account, email, verdict, ts, created) in chunk.items():
            if account:
                self._assign_windows(p, votes_array(account, email, verdict, ts, created), batch)
        self.stats.votes += sum(len(cols[0]) for cols in chunk.values())

    def _dead(self, r: Record, reason: str, batch: Batch, value: Any = None) -> None:
        shown = r.value.raw if isinstance(r.value, Undecodable) else (r.value if value is None else value)
        batch.outbox.append((self.config.deadletter_topic, r.key,
                             {**dead_letter(shown, reason, self.config.feedback_topic),
                              "partition": r.partition, "offset": r.offset}))
        self.stats.deadletters += 1

    def _ingest_event(self, r: Record, v: Any, cols: list, seen: set[str], batch: Batch) -> None:
        if isinstance(v, Undecodable):
            self._dead(r, v.reason, batch)
            return
        try:
            event = validate_feedback(v)
        except EventError as exc:
            self._dead(r, str(exc), batch)
            return
        rid = "e:" + event["event_id"]
        if rid in seen:
            self.stats.duplicates += 1
            return
        seen.add(rid)
        ts = float(event["ts"])
        batch.seen.append((rid, ts))
        created = event.get("account_created_ts")
        tick = self.config.tick_seconds
        cols[0].append(event["account_id"].encode("utf-8"))
        cols[1].append(event["email_id"].encode("utf-8"))
        cols[2].append(VERDICTS[event["verdict"]])
        cols[3].append(ts / tick)
        cols[4].append(math.nan if created is None else float(created) / tick)

    def _ingest_batch(self, r: Record, v: np.ndarray, cols: list, seen: set[str], batch: Batch) -> None:
        problem = check_feedback_batch(v)
        if problem is not None:
            self._dead(r, problem, batch, value=f"<array {v.dtype.str} shape {v.shape}>")
            return
        rid = "b:" + hashlib.sha1(v.dtype.str.encode() + v.tobytes()).hexdigest()
        if rid in seen:
            self.stats.duplicates += 1
            return
        seen.add(rid)
        bad, reasons = invalid_batch_rows(v)
        if bad.any():
            rows = np.flatnonzero(bad)
            for i, reason in zip(rows.tolist(), reasons):
                self._dead(r, f"row {i}: {reason}", batch, value=repr(v[i].tolist()))
            v = v[~bad]
        if not v.shape[0]:
            return
        batch.seen.append((rid, float(v["ts"].max())))
        tick = self.config.tick_seconds
        cols[0].extend(v["account_id"].tolist())
        cols[1].extend(v["email_id"].tolist())
        cols[2].extend(v["verdict"].tolist())
        cols[3].extend((v["ts"] / tick).tolist())
        cols[4].extend((v["created"] / tick).tolist())

    def _assign_windows(self, p: int, votes: np.ndarray, batch: Batch) -> None:
        part = self._parts[p]
        w = self.config.window
        start = -math.inf if part.watermark is None else part.watermark
        marks = np.maximum.accumulate(np.maximum(votes["ts"], start))
        window = np.maximum(np.floor(marks / w).astype(np.int64), part.closed + 1)
        part.watermark = float(marks[-1])
        bounds = np.flatnonzero(np.diff(window)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(window)]):
            piece = votes[lo:hi]
            part.pending.append((int(window[lo]), piece))
            batch.pending_add.append((p, int(window[lo]), _NPY.encode(piece)))

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
        cache: dict[bytes, dict[str, float]] = {}
        for win in closing:
            self._decide(win, cache, batch)
        last = closing[-1]
        for p, part in parts.items():
            part.pending = [(win, v) for win, v in part.pending if win > last]
            part.closed = max(part.closed, last)
            batch.pending_closed[p] = last
            part.dirty = True

    def _decide(self, win: int, cache: dict[bytes, dict[str, float]], batch: Batch) -> None:
        pieces, partition_of = [], []
        for p in sorted(self._parts):
            for pw, v in self._parts[p].pending:
                if pw == win:
                    pieces.append(v)
                    partition_of.append(np.full(len(v), p, dtype=np.int64))
        if not pieces:
            return
        account = np.concatenate([v["account"] for v in pieces])
        email = np.concatenate([v["email"] for v in pieces])
        part_of = np.concatenate(partition_of)
        accounts, acc_local = np.unique(account, return_inverse=True)
        emails, email_local = np.unique(email, return_inverse=True)
        verdict = np.concatenate([v["verdict"] for v in pieces])
        ts = np.concatenate([v["ts"] for v in pieces])
        created = np.concatenate([v["created"] for v in pieces])
        votes = VoteBatch.of(acc_local, email_local, verdict, ts, created)
        old = self._load_state(accounts, cache)
        self._set_chain_state(old)
        now = (win + 1) * self.config.window
        decision = self.chain.process(votes, now=now)
        new = self._get_chain_state(len(accounts))
        for name, before in old.items():
            delta = new[name] - before
            for i in np.flatnonzero(delta).tolist():
                key = accounts[i]
                state = cache[key]
                state[name] = before[i] + delta[i]
                d = batch.deltas.setdefault(key.decode("utf-8"), {})
                d[name] = d.get(name, 0.0) + float(delta[i])
        self._emit_labels(win, now, decision.labels, emails, email_local, part_of, batch)
        self.stats.windows += 1

    def _load_state(self, accounts: np.ndarray, cache: dict[bytes, dict[str, float]]) -> dict[str, np.ndarray]:
        names = [f for _, _, f in self._fields]
        if not names:
            return {}
        missing = [a for a in accounts.tolist() if a not in cache]
        if missing:
            loaded = self.store.account_state([a.decode("utf-8") for a in missing], names)
            for i, a in enumerate(missing):
                cache[a] = {f: float(loaded[f][i]) for f in names}
        keys = accounts.tolist()
        return {f: np.array([cache[a][f] for a in keys], dtype=np.float64) for f in names}

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

    def _emit_labels(self, win: int, now: float, labels, emails: np.ndarray, email_local: np.ndarray,
                     part_of: np.ndarray, batch: Batch) -> None:
        if not len(labels):
            return
        first_part = np.full(len(emails), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_part, email_local, part_of)
        defense = self.chain.name
        ts = now * self.config.tick_seconds
        for e, label, weight, confidence, votes in zip(labels.email.tolist(), labels.label.tolist(),
                                                       labels.weight.tolist(), labels.confidence.tolist(),
                                                       labels.votes.tolist()):
            email_id = emails[e].decode("utf-8")
            label_id = f"{email_id}@w{win}:p{int(first_part[e])}"
            row = {"label_id": label_id, "email_id": email_id, "window": win, "label": VERDICT_NAMES[label],
                   "weight": float(weight), "confidence": float(confidence), "votes": int(votes),
                   "defense": defense, "ts": ts}
            batch.labels.append(row)
            batch.outbox.append((self.config.labels_topic, email_id,
                                 {"v": 1, **{k: row[k] for k in ("label_id", "email_id", "label", "weight",
                                                                  "confidence", "votes", "defense", "ts")},
                                  "window": win}))
        self.stats.labels += len(labels)

    # -- outbox -----------------------------------------------------------------------

    def publish(self) -> int:
        """Send what the outbox holds, flush, mark it published; returns the count."""
        import json

        total = 0
        while rows := self.store.unpublished(10_000):
            for _, topic, key, value in rows:
                self.transport.send(topic, json.loads(value), key=key)
            self.transport.flush()
            self.store.mark_published([r[0] for r in rows])
            total += len(rows)
        self.stats.published += total
        return total
