"""Pipeline stages: filter, defense and learner.

Each stage consumes records from the transport, does its one job and produces
records; none imports kafka or streamlit, so the same code runs in-process over
:class:`stream.memory.MemoryTransport` and across machines over Kafka.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from defenses.base import Decision, VoteBatch
from defenses.chain import Chain
from stream import topics
from stream.classifier import FeatureCache, SpamModel
from stream.codecs import check_feedback_batch, invalid_batch_rows
from stream.events import (
    VERDICTS,
    EventError,
    dead_letter,
    label_event,
    validate_email_event,
    validate_feedback,
    validate_review,
)
from stream.runtime import DefenseRuntime, SnapshotShelf, WindowResult, assign_windows, obey_control, votes_array
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
    controls: int = 0


class DefenseStage:
    """Turns ``feedback`` into ``labels`` through a defense chain, in tumbling windows.

    The in-process face of :class:`stream.runtime.DefenseRuntime` (the service is the
    other one): votes are assigned to windows by the runtime's rule and buffered until
    :meth:`advance` moves the watermark past the end of their window (``window`` time
    units wide); the window is then decided as one batch. ``reviews`` (confirmed true
    labels, late) and ``gold`` (labels of honeypot emails, known before their votes) go
    to the runtime, which applies them in event-time order; ``emails`` (features of
    each email) feed the runtime's shadow learner and RONI. A ``feedback`` record is
    one event (a dict) or many in a feedback batch (a structured array,
    :func:`stream.codecs.feedback_batch`); both give the same votes. Invalid records
    (an event, a batch row, a review) go to ``deadletter`` with the reason. Control
    records (``snapshot``/``rollback``) go to ``labels`` before the labels of their
    window. Observers see every decided window (the simulator measures vote loss
    through this hook).
    """

    def __init__(self, transport: Transport, chain: Chain, window: float = 1.0,
                 group_id: str = "defense", observers: list[WindowObserver] | None = None):
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.transport = transport
        self.runtime = DefenseRuntime(chain, window)
        self.chain = chain
        self.window = window
        self.observers = list(observers or [])
        self.stats = DefenseStats()
        self._feedback = transport.consumer([topics.FEEDBACK], group_id)
        self._emails = transport.consumer([topics.EMAILS], group_id + "-emails")
        self._reviews = transport.consumer([topics.REVIEWS], group_id + "-reviews")
        self._gold = transport.consumer([topics.GOLD], group_id + "-gold")
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []   # (window per vote, votes_array)
        self._watermark: float | None = None
        self._closed = -1

    @property
    def accounts(self):
        return self.runtime.accounts

    @property
    def emails(self):
        return self.runtime.emails

    def _ingest(self) -> None:
        """Move valid feedback into the pending votes, in arrival order; a record is one
        event (a dict) or a feedback batch (a structured array) whose rows are taken in order."""
        deadletters = []
        rows: list[tuple[bytes, bytes, int, float, float]] = []
        for record in _drain(self._feedback):
            value = record.value
            if isinstance(value, np.ndarray):
                self._add_rows(rows)
                rows = []
                self._ingest_batch(record, value, deadletters)
                continue
            try:
                event = validate_feedback(value)
            except EventError as exc:
                deadletters.append((record.key, dead_letter(value, str(exc), topics.FEEDBACK)))
                continue
            created = event.get("account_created_ts")
            rows.append((event["account_id"].encode("utf-8"), event["email_id"].encode("utf-8"),
                         VERDICTS[event["verdict"]], float(event["ts"]), np.nan if created is None else float(created)))
        self._add_rows(rows)
        self._dead(deadletters)

    def _dead(self, deadletters: list) -> None:
        if deadletters:
            self.transport.send_many(topics.DEADLETTER, deadletters)
            self.stats.deadletters += len(deadletters)

    def _add_rows(self, rows: list) -> None:
        if rows:
            self._add(votes_array(*zip(*rows)))

    def _add(self, votes: np.ndarray) -> None:
        window, self._watermark = assign_windows(votes["ts"], self._watermark, self._closed, self.window)
        self._pending.append((window, votes))

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
        if batch.shape[0]:
            self._add(votes_array(batch["account_id"], batch["email_id"], batch["verdict"], batch["ts"],
                                  batch["created"], batched=True))

    def _ingest_side_inputs(self) -> None:
        """Email features, gold and reviews into the runtime (invalid ones dead-lettered)."""
        runtime, deadletters = self.runtime, []
        for record in _drain(self._emails):
            try:
                email_id, _, features = validate_email_event(record.value)
            except EventError as exc:
                deadletters.append((record.key, dead_letter(record.value, str(exc), topics.EMAILS)))
                continue
            runtime.add_email(email_id, features)
        for consumer, topic, add in ((self._gold, topics.GOLD, runtime.add_gold),
                                     (self._reviews, topics.REVIEWS, runtime.add_reviews)):
            for record in _drain(consumer):
                try:
                    email_id, label, ts = validate_review(record.value)
                except EventError as exc:
                    deadletters.append((record.key, dead_letter(record.value, str(exc), topic)))
                    continue
                add([email_id], [label], ts)
                self.stats.reviews += topic == topics.REVIEWS
        self._dead(deadletters)

    def advance(self, watermark: float) -> int:
        """Decide every window that ends at or before ``watermark``; returns labels sent."""
        self._ingest_side_inputs()
        self._ingest()
        sent = 0
        if self._pending:
            window = np.concatenate([w for w, _ in self._pending])
            votes = np.concatenate([v for _, v in self._pending]) if len(self._pending) > 1 else self._pending[0][1]
            closing = (window + 1) * self.window <= watermark
            self._pending = [(window[~closing], votes[~closing])] if not closing.all() else []
            for w in np.unique(window[closing]).tolist():
                part = votes[closing & (window == w)]
                result = self.runtime.decide(w, part["account"], part["email"], part["verdict"], part["ts"],
                                             part["created"])
                sent += self._publish(result)
                self._closed = max(self._closed, w)
                self.stats.votes += len(result.votes)
                for observer in self.observers:
                    observer(result.votes, result.decision, result.now)
        end = math.floor(watermark / self.window) * self.window    # every window up to here is closed
        self.runtime.apply_truths(end, end)
        self._commit()
        return sent

    def _publish(self, result: WindowResult) -> int:
        name = self.chain.name
        out = [(None, control) for control in result.controls]
        out += [(e.email_id, {**label_event(e.email_id, e.label, e.weight, e.confidence, e.votes, name, result.now),
                              "label_id": e.label_id, "window": e.window}) for e in result.labels]
        self.transport.send_many(topics.LABELS, out)
        self.stats.labels += len(result.labels)
        self.stats.controls += len(result.controls)
        return len(result.labels)

    def _commit(self) -> None:
        # In-process the pending votes share this process's fate, so committing what was
        # read is enough; the durable service (stream/service.py) commits offsets with
        # its state in one database transaction instead.
        for consumer in (self._feedback, self._emails, self._reviews, self._gold):
            consumer.commit()


class LearnerStage:
    """Trains the model from ``labels`` using the cached features of each email, and obeys
    the control records there (:func:`obey_control`): the same model as the defense
    runtime's shadow learner."""

    def __init__(self, transport: Transport, model: SpamModel, cache: FeatureCache,
                 group_id: str = "learner"):
        self.model = model
        self.cache = cache
        self.consumer = transport.consumer([topics.LABELS], group_id)
        self.snapshots = SnapshotShelf()
        self.learned = 0
        self.unknown = 0
        self.controls = 0

    def run_once(self) -> int:
        records = _drain(self.consumer)
        for record in records:
            label = record.value
            if "control" in label:
                obey_control(self.model, self.snapshots, label)
                self.controls += 1
                continue
            features = self.cache.get(label["email_id"])
            if features is None:
                self.unknown += 1
                continue
            self.model.learn(features, label["label"] == "spam", label["weight"])
            self.learned += 1
        self.consumer.commit()
        return len(records)
