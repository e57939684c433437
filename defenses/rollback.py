"""Drift detection on trusted accuracy, with rollback to the last good model."""

from __future__ import annotations

from collections import deque

import numpy as np

from defenses.base import Decision, Defense, VoteBatch, keep_labels
from stream.river_parts import ADWIN


class Rollback(Defense):
    """Watches the model's accuracy on trusted labels and undoes poisoning.

    Every email whose true label the provider knows — gold (honeypot) emails as they
    are announced, reviewed emails when their review arrives, and (``use_validation``)
    the trusted validation set after every window — is scored with the *current*
    model, and the 0/1 outcome feeds an ADWIN detector (Bifet & Gavaldà, 2007; River's
    implementation). The possibly poisoned training labels are never used; the
    validation set matters when gold is not seeded (the default scenario reviews only a
    few emails per tick). Every ``snapshot_every`` ticks the model is snapshotted
    (:meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>`), and each
    snapshot is graded by the trusted outcomes scored after it, until the next one.
    Once ADWIN detects a change, the accuracy before it is kept; when the estimate
    falls ``min_drop`` below it (at detection or as the change goes on), the
    model is restored to the newest snapshot whose grade is within ``min_drop / 2`` of
    the accuracy before the change (ADWIN's own cut point lags a gradual poisoning), and
    every label published since that snapshot is counted as quarantined (its effect is
    gone with the restore). Labels of the next ``cooldown_ticks`` are held back too.

    Without a bound context (no model) it does nothing.

    Parameters
    ----------
    delta
        ADWIN's confidence parameter (smaller: fewer false alarms, later detection).
    min_drop
        Smallest fall of the accuracy estimate that triggers a rollback.
    snapshot_every
        Ticks between snapshots; ``keep`` snapshots are kept.
    use_reviews
        Also score the model on reviewed emails.
    use_validation
        Also score the model on the trusted validation set after every window.
    cooldown_ticks
        After a rollback, labels are held back for this long.
    min_samples
        Outcomes ADWIN's window must hold before a fall is judged (it restarts after
        every detection).

    >>> from defenses.context import DefenseContext
    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> model.learn(model.features("win cash"), True)
    >>> model.learn(model.features("see you at lunch"), False)
    >>> texts = {i: ("win cash" if i % 2 else "see you at lunch") for i in range(400)}
    >>> guard = Rollback(snapshot_every=1, delta=0.01, min_samples=20)
    >>> guard.bind(DefenseContext(model, lambda ids: [model.features(texts[i]) for i in ids.tolist()]))
    >>> for t in range(20):                       # a good model, tick after tick
    ...     guard.observe(VoteBatch.empty(), None, now=float(t))
    ...     guard.observe_gold(np.arange(10 * t, 10 * t + 10), np.arange(10) % 2, now=float(t))
    >>> for _ in range(50):                       # then poisoned: "win cash" taught as ham
    ...     model.learn(model.features("win cash"), False)
    >>> for t in range(20, 30):
    ...     guard.observe(VoteBatch.empty(), None, now=float(t))
    ...     guard.observe_gold(np.arange(10 * t, 10 * t + 10), np.arange(10) % 2, now=float(t))
    >>> len(guard.rollbacks_) >= 1, model.is_spam(model.features("win cash"))
    (True, True)
    """

    name = "rollback"

    def __init__(self, delta: float = 0.002, min_drop: float = 0.02, snapshot_every: float = 6.0,
                 keep: int = 8, use_reviews: bool = True, cooldown_ticks: float = 0.0,
                 use_validation: bool = True, min_samples: int = 100):
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if snapshot_every <= 0 or keep < 1:
            raise ValueError("snapshot_every must be positive and keep >= 1")
        self.delta = float(delta)
        self.min_drop = float(min_drop)
        self.snapshot_every = float(snapshot_every)
        self.keep = int(keep)
        self.use_reviews = bool(use_reviews)
        self.cooldown_ticks = float(cooldown_ticks)
        self.use_validation = bool(use_validation)
        self.min_samples = int(min_samples)
        self._context = None
        self.reset()

    def reset(self) -> None:
        self.detector_ = ADWIN(delta=self.delta)
        self.rollbacks_: list[dict] = []
        self.quarantined_ = 0
        self._snapshots: deque[tuple[float, bytes, int]] = deque(maxlen=self.keep)
        self._published: deque[tuple[float, int]] = deque()
        self._outcomes: deque[float] = deque(maxlen=100_000)
        self._scored = 0
        self._reference: float | None = None
        self._hold_until = -np.inf

    def bind(self, context) -> None:
        self._context = context

    def __deepcopy__(self, memo):
        fresh = type(self)(self.delta, self.min_drop, self.snapshot_every, self.keep, self.use_reviews,
                           self.cooldown_ticks, self.use_validation, self.min_samples)
        return fresh

    def screen(self, votes: VoteBatch, decision: Decision, now: float) -> Decision:
        if now < self._hold_until and len(decision.labels):
            self.quarantined_ += len(decision.labels)
            return keep_labels(votes, decision, np.zeros(len(decision.labels), bool))
        return decision

    def observe(self, votes: VoteBatch, decision: Decision | None, now: float) -> None:
        if self._context is None:
            return
        if decision is not None and len(decision.labels):
            self._published.append((now, len(decision.labels)))
        last = self._snapshots[-1][0] if self._snapshots else -np.inf
        if now - last >= self.snapshot_every:
            self._snapshots.append((now, self._context.model.snapshot(), self._scored))
            while self._published and self._published[0][0] < self._snapshots[0][0]:
                self._published.popleft()
        if self.use_validation and self._context.validation:
            rows = self._context.validation
            self._feed([f for f, _ in rows], [bool(y) for _, y in rows], now)

    def _score(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        if self._context is None or email.shape[0] == 0:
            return
        self._feed(self._context.features(email), label.tolist(), now)

    def _feed(self, rows: list, truths: list, now: float) -> None:
        model = self._context.model
        for features, truth in zip(rows, truths):
            if features is None:
                continue
            before = self.detector_.estimation
            outcome = float(model.is_spam(features) == bool(truth))
            self.detector_.update(outcome)
            self._outcomes.append(outcome)
            self._scored += 1
            if self.detector_.drift_detected and self._reference is None:
                self._reference = before          # armed: the accuracy before the change
            # River's ADWIN starts afresh after a detection: judge only a settled window.
            if self._reference is not None and self.detector_.width >= self.min_samples:
                if self._reference - self.detector_.estimation >= self.min_drop:
                    self._roll_back(now, self._reference)
                    return
                if self.detector_.estimation >= self._reference:
                    self._reference = None        # it was a rise or a blip

    def grades(self) -> list[tuple[float, float | None]]:
        """Each kept snapshot's time and the mean trusted outcome scored after it."""
        out = []
        first = self._scored - len(self._outcomes)
        marks = [s[2] for s in self._snapshots] + [self._scored]
        outcomes = list(self._outcomes)
        for (taken, _, start), end in zip(self._snapshots, marks[1:]):
            part = outcomes[max(start - first, 0):max(end - first, 0)]
            out.append((taken, float(np.mean(part)) if part else None))
        return out

    def _roll_back(self, now: float, reference: float) -> None:
        good = [(taken, grade) for taken, grade in self.grades()
                if grade is not None and grade >= reference - self.min_drop / 2]
        if not good:
            return
        taken = good[-1][0]
        snapshot = next(s[1] for s in self._snapshots if s[0] == taken)
        self._context.model.restore(snapshot)
        undone = sum(n for t, n in self._published if t > taken)
        self.quarantined_ += undone
        self.rollbacks_.append({"at": now, "restored": taken, "accuracy_before": reference,
                                "labels_undone": undone})
        while self._snapshots and self._snapshots[-1][0] > taken:
            self._snapshots.pop()
        self._published.clear()
        self.detector_ = ADWIN(delta=self.delta)
        self._outcomes.clear()
        self._reference = None
        self._hold_until = now + self.cooldown_ticks

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self._score(email, label, now)

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        if self.use_reviews:
            self._score(email, label, now)
