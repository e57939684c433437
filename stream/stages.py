"""Pipeline stages: filter, defense and learner.

Each stage consumes records from the transport, does its one job and produces
records; none imports kafka or streamlit, so the same code runs in-process over
:class:`stream.memory.MemoryTransport` and across machines over Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from defenses.base import Decision, VoteBatch
from defenses.chain import Chain
from stream import topics
from stream.classifier import FeatureCache, SpamModel
from stream.codecs import check_feedback_batch, invalid_batch_rows
from stream.events import VERDICTS, EventError, dead_letter, label_event, validate_feedback
from stream.interner import Interner
from stream.transport import Consumer, Transport

_POLL = 100_000


def _drain(consumer: Consumer) -> list:
    records = []
    while True:
        batch = consumer.poll(max_records=_POLL)
        if not batch:
            return records
        records.extend(batch)


class FilterStage:
    """Scores mail from ``mail`` and publishes where it goes to ``deliveries``.

    A record's value is an object with ``email_id`` and ``text`` (e.g.
    :class:`simulator.email.Email`); the delivery is ``{"email_id", "junk", "p_spam"}``.
    """

    def __init__(self, transport: Transport, model: SpamModel, cache: FeatureCache,
                 group_id: str = "filter"):
        self.transport = transport
        self.model = model
        self.cache = cache
        self.consumer = transport.consumer([topics.MAIL], group_id)

    def run_once(self) -> int:
        records = _drain(self.consumer)
        out = []
        for record in records:
            email = record.value
            p_spam = self.model.p_spam(self.cache.put(email.email_id, email.text))
            out.append((email.email_id, {"email_id": email.email_id, "junk": p_spam > 0.5,
                                         "p_spam": p_spam}))
        self.transport.send_many(topics.DELIVERIES, out)
        self.consumer.commit()
        return len(records)


WindowObserver = Callable[[VoteBatch, Decision, float], None]


@dataclass
class DefenseStats:
    votes: int = 0
    labels: int = 0
    deadletters: int = 0
    reviews: int = 0


class DefenseStage:
    """Turns ``feedback`` into ``labels`` through a defense chain, in tumbling windows.

    Votes are buffered until :meth:`advance` moves the watermark past the end of
    their window (``window`` time units wide); the window is then decided as one
    batch. ``reviews`` (confirmed true labels, late) and ``gold`` (labels of honeypot
    emails, known before their votes) are passed to the chain as they come.
    A ``feedback`` record is one event (a dict) or many in a feedback batch (a
    structured array, :func:`stream.codecs.feedback_batch`); both give the same votes.
    Invalid feedback (an event, or a batch row) goes to ``deadletter`` with the
    reason. Observers see every
    decided window (the simulator measures vote loss through this hook).
    """

    def __init__(self, transport: Transport, chain: Chain, window: float = 1.0,
                 group_id: str = "defense", observers: list[WindowObserver] | None = None,
                 context=None):
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.transport = transport
        self.chain = chain
        self.window = window
        self.accounts = Interner()
        self.emails = Interner()
        self.observers = list(observers or [])
        self.stats = DefenseStats()
        if context is not None:
            chain.bind(context)
        self._feedback = transport.consumer([topics.FEEDBACK], group_id)
        self._reviews = transport.consumer([topics.REVIEWS], group_id + "-reviews")
        self._gold = transport.consumer([topics.GOLD], group_id + "-gold")
        self._pending: list[np.ndarray] = []     # blocks of rows (account, email, verdict, ts, created)

    def _ingest(self) -> None:
        """Move valid feedback into the pending votes, as rows ``(account, email, verdict,
        ts, created)``; a record is one event (a dict) or a feedback batch (a structured
        array, :func:`stream.codecs.feedback_batch`) whose rows are taken in order."""
        deadletters = []
        rows: list[tuple[int, int, int, float, float]] = []
        for record in _drain(self._feedback):
            value = record.value
            if isinstance(value, np.ndarray):
                if rows:
                    self._pending.append(np.array(rows, dtype=np.float64))
                    rows = []
                self._ingest_batch(record, value, deadletters)
                continue
            try:
                event = validate_feedback(value)
            except EventError as exc:
                deadletters.append((record.key, dead_letter(value, str(exc), topics.FEEDBACK)))
                continue
            created = event.get("account_created_ts")
            rows.append((self.accounts.id(event["account_id"]), self.emails.id(event["email_id"]),
                         VERDICTS[event["verdict"]], float(event["ts"]),
                         np.nan if created is None else float(created)))
        if rows:
            self._pending.append(np.array(rows, dtype=np.float64))
        if deadletters:
            self.transport.send_many(topics.DEADLETTER, deadletters)
            self.stats.deadletters += len(deadletters)

    def _ingest_batch(self, record, batch: np.ndarray, deadletters: list) -> None:
        """Pending rows of a feedback batch; invalid rows (or a wrong layout) are dead-lettered."""
        problem = check_feedback_batch(batch)
        if problem is not None:
            deadletters.append((record.key, dead_letter(f"<array {batch.dtype.str} shape {batch.shape}>",
                                                        problem, topics.FEEDBACK)))
            return
        bad, reasons = invalid_batch_rows(batch)
        if reasons:
            for i, reason in zip(np.flatnonzero(bad).tolist(), reasons):
                deadletters.append((record.key, dead_letter(batch[i].tolist(), f"row {i}: {reason}",
                                                            topics.FEEDBACK)))
            batch = batch[~bad]
        if not batch.shape[0]:
            return
        part = np.empty((batch.shape[0], 5), dtype=np.float64)
        part[:, 0] = self.accounts.column(batch["account_id"])
        part[:, 1] = self.emails.column(batch["email_id"])
        part[:, 2] = batch["verdict"]
        part[:, 3] = batch["ts"]
        part[:, 4] = batch["created"]
        self._pending.append(part)

    def _truths(self, consumer: Consumer, register: bool) -> tuple[np.ndarray, np.ndarray, int]:
        """Email ids and labels of truth records (reviews or gold); ``register`` interns
        unseen emails (gold comes before its votes), otherwise they are skipped."""
        records = _drain(consumer)
        pairs = []
        for r in records:
            name = r.value["email_id"]
            e = self.emails.id(name) if register else self.emails.get(name)
            if e is not None:
                pairs.append((e, VERDICTS[r.value["label"]]))
        email = np.array([p[0] for p in pairs], dtype=np.int64)
        return email, np.array([p[1] for p in pairs], dtype=np.int8), len(records)

    def _apply_truths(self, now: float) -> None:
        email, label, n = self._truths(self._gold, register=True)
        if email.size:
            self.chain.observe_gold(email, label, now)
        email, label, n_reviews = self._truths(self._reviews, register=False)
        if email.size:
            self.chain.observe_reviews(email, label, now)
        self.stats.reviews += n_reviews

    def advance(self, watermark: float) -> int:
        """Decide every window that ends at or before ``watermark``; returns labels sent."""
        self._ingest()
        self._apply_truths(watermark)
        if not self._pending:
            self._commit()
            return 0
        rows = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        window_of = np.floor(rows[:, 3] / self.window)
        closed = (window_of + 1) * self.window <= watermark
        self._pending = [rows[~closed]] if not closed.all() else []
        sent = 0
        for w in np.unique(window_of[closed]):
            part = rows[closed & (window_of == w)]
            votes = VoteBatch.of(part[:, 0], part[:, 1], part[:, 2], part[:, 3], part[:, 4])
            decision = self.chain.process(votes, now=watermark)
            sent += self._publish(decision, watermark)
            self.stats.votes += len(votes)
            for observer in self.observers:
                observer(votes, decision, watermark)
        self._commit()
        return sent

    def _publish(self, decision: Decision, now: float) -> int:
        labels = decision.labels
        name = self.chain.name
        out = []
        for e, label, weight, confidence, votes in zip(labels.email.tolist(), labels.label.tolist(),
                                                       labels.weight.tolist(), labels.confidence.tolist(),
                                                       labels.votes.tolist()):
            email_id = self.emails.name(e)
            out.append((email_id, label_event(email_id, label, weight, confidence, votes, name, now)))
        self.transport.send_many(topics.LABELS, out)
        self.stats.labels += len(out)
        return len(out)

    def _commit(self) -> None:
        # In-process the pending votes share this process's fate, so committing what was
        # read is enough; the durable service (stream/service.py) commits offsets with
        # its state in one database transaction instead.
        self._feedback.commit()
        self._reviews.commit()
        self._gold.commit()


class LearnerStage:
    """Trains the model from ``labels`` using the cached features of each email."""

    def __init__(self, transport: Transport, model: SpamModel, cache: FeatureCache,
                 group_id: str = "learner"):
        self.model = model
        self.cache = cache
        self.consumer = transport.consumer([topics.LABELS], group_id)
        self.learned = 0
        self.unknown = 0

    def run_once(self) -> int:
        records = _drain(self.consumer)
        for record in records:
            label = record.value
            features = self.cache.get(label["email_id"])
            if features is None:
                self.unknown += 1
                continue
            self.model.learn(features, label["label"] == "spam", label["weight"])
            self.learned += 1
        self.consumer.commit()
        return len(records)
