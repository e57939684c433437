"""Drift detection on trusted accuracy, with rollback to the last good model."""

from __future__ import annotations

import math
import pickle
from collections import defaultdict, deque
from itertools import repeat

import numpy as np

from defenses.base import Decision, Defense, VoteBatch, keep_labels
from defenses.kernels.nb import _nb_is_spam
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
        self._snapshots: deque[tuple[float, tuple | bytes, int]] = deque(maxlen=self.keep)
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
            self._snapshots.append((now, _freeze(self._context.model), self._scored))
            while self._published and self._published[0][0] < self._snapshots[0][0]:
                self._published.popleft()
        if self.use_validation and self._context.validation:
            self._feed(self._validation_outcomes(), now)

    def _validation_outcomes(self) -> list[float]:
        """1.0 where the current model classifies a validation email right, else 0.0,
        in the set's order: one kernel call (:func:`~defenses.kernels.nb._nb_is_spam`,
        the same decisions as ``model.is_spam`` per email)."""
        rows = self._context.validation
        nb = self._context.model.nb
        if len(nb.class_counts) < 2:
            model = self._context.model
            return [float(model.is_spam(f) == bool(y)) for f, y in rows]
        trusted, m = self._context.trusted(), self._context.model_counts()
        spam = _nb_is_spam(trusted.ptr, trusted.idx, trusted.cnt, m.present, m.counts, m.docs,
                           m.words_per_class, m.n_terms, float(nb.alpha))
        return (spam == (trusted.y == 1)).astype(np.float64).tolist()

    def _score(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        if self._context is None or email.shape[0] == 0:
            return
        model = self._context.model
        rows = self._context.features(email)
        # Lazily: each email is scored with the model as it is when its turn comes.
        self._feed((None if f is None else float(model.is_spam(f) == bool(t))
                    for f, t in zip(rows, label.tolist())), now)

    def _feed(self, outcomes, now: float) -> None:
        """Feed 0/1 outcomes (``None``: skipped) to ADWIN; stops after a rollback."""
        for outcome in outcomes:
            if outcome is None:
                continue
            before = self.detector_.estimation
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
        self._context.model.restore(_thaw(snapshot))
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


_NB_STATE = {"alpha", "class_counts", "feature_counts", "class_totals"}
_FIRST_KEY = {False: 0, True: 1, None: 2}      # which class a word's count table holds first


def _freeze(model) -> tuple | bytes:
    """A snapshot of the model's naive Bayes state as arrays, several times cheaper than
    :meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>` (pickling runs
    ``Counter.__reduce__`` in Python for every word) and keeping no per-word objects
    alive (thousands of dicts per snapshot set off full garbage collections of a large
    heap). :func:`_thaw` turns it into the very bytes ``snapshot`` would have given,
    only when a rollback needs it. A model of another shape is snapshotted the usual way.

    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> model.learn(model.features("win cash now"), True, 0.5)
    >>> model.learn(model.features("cash at lunch"), False)
    >>> frozen, before = _freeze(model), model.snapshot()
    >>> model.learn(model.features("lunch"), False)
    >>> _thaw(frozen) == before
    True
    """
    nb = model.nb
    fc = nb.feature_counts
    if set(vars(nb)) != _NB_STATE or type(fc) is not defaultdict:
        return model.snapshot()
    tables = list(fc.values())
    n = len(tables)
    nan = float("nan")
    ham = np.fromiter(map(dict.get, tables, repeat(False, n), repeat(nan, n)), np.float64, n)
    spam = np.fromiter(map(dict.get, tables, repeat(True, n), repeat(nan, n)), np.float64, n)
    first = np.fromiter(map(_FIRST_KEY.get, map(next, map(iter, tables), repeat(None, n))), np.int8, n)
    held = np.fromiter(map(len, tables), np.int64, n)
    if (held != (~np.isnan(ham)).astype(np.int64) + (~np.isnan(spam)).astype(np.int64)).any():
        return model.snapshot()                 # keys other than the two classes: not ours to copy
    return (type(nb), nb.alpha, (type(nb.class_counts), dict(nb.class_counts)),
            (type(nb.class_totals), dict(nb.class_totals)), fc.default_factory, list(fc.keys()), ham, spam, first)


def _thaw(frozen: tuple | bytes) -> bytes:
    """The :meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>` bytes of a
    :func:`_freeze` d state (same classes, contents and insertion orders)."""
    if isinstance(frozen, bytes):
        return frozen
    cls, alpha, (counts_type, counts), (totals_type, totals), factory, words, ham, spam, first = frozen
    nb = cls.__new__(cls)
    nb.alpha = alpha
    nb.class_counts = counts_type(counts)
    feature_counts = defaultdict(factory)
    for word, h, s, f in zip(words, ham.tolist(), spam.tolist(), first.tolist()):
        table = feature_counts[word]
        for key, value in ((False, h), (True, s)) if f == 0 else ((True, s), (False, h)):
            if not math.isnan(value):           # NaN: the class is not in the table
                table[key] = value
    nb.feature_counts = feature_counts
    nb.class_totals = totals_type(totals)
    return pickle.dumps(nb, protocol=pickle.HIGHEST_PROTOCOL)
