"""Drift detection on trusted accuracy, with rollback to the last good model."""

from __future__ import annotations

from collections import deque

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
    through the context (:meth:`DefenseContext.snapshot_model
    <defenses.context.DefenseContext.snapshot_model>`), and each snapshot is graded by the trusted outcomes scored after it, until the next one.
    Once ADWIN detects a change, the accuracy before it is kept; when the estimate
    falls ``min_drop`` below it (at detection or as the change goes on), the
    model is restored to the newest snapshot whose grade is within ``min_drop / 2`` of
    the accuracy before the change (ADWIN's own cut point lags a gradual poisoning), and
    every label published since that snapshot is counted as quarantined (its effect is
    gone with the restore). Labels of the next ``cooldown_ticks`` are held back too.
    The rollback itself is the context's
    (:meth:`DefenseContext.restore_model <defenses.context.DefenseContext.restore_model>`),
    which records it as a control record for the learners.

    Its state (:meth:`state_dict`) holds the ADWIN detector as the 0/1 outcomes fed to
    it since it last started afresh (replayed into a new detector on load), the kept
    snapshots as ``[time, snapshot id, outcomes scored before]`` (the snapshots stay in
    the context), the labels published since the oldest snapshot, the recent outcomes
    that grade the snapshots, and the rollbacks so far.

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
    >>> context = DefenseContext(model, lambda ids: [model.features(texts[i]) for i in ids.tolist()])
    >>> guard.bind(context)
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
    >>> rolled = [c for c in context.take_controls() if c["control"] == "rollback"]   # for the learners
    >>> rolled[0]["snapshot_id"] in context.snapshots, len(context.snapshots) <= guard.keep
    (True, True)
    """

    name = "rollback"
    needs_model = True
    state_attributes = ("detector_", "rollbacks_", "quarantined_", "_snapshots", "_published", "_outcomes",
                        "_scored", "_reference", "_hold_until")

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
        for _, snapshot_id, _ in getattr(self, "_snapshots", ()):
            self._release(snapshot_id)
        self.detector_ = ReplayableADWIN(delta=self.delta)
        self.rollbacks_: list[dict] = []
        self.quarantined_ = 0
        self._snapshots: deque[tuple[float, str, int]] = deque()     # (time, snapshot id, scored)
        self._published: deque[tuple[float, int]] = deque()
        self._outcomes: deque[float] = deque(maxlen=100_000)
        self._scored = 0
        self._reference: float | None = None
        self._hold_until = -np.inf

    def bind(self, context) -> None:
        self._context = context

    def _release(self, snapshot_id: str) -> None:
        if self._context is not None:
            self._context.release_snapshot(snapshot_id)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s state; the snapshots it names must be in the bound
        context (the runtime persists them); snapshots only the old state held are released."""
        context, self._context = self._context, None     # reset() releases nothing here
        old = {s[1] for s in self._snapshots}
        try:
            super().load_state_dict(state)
        finally:
            self._context = context
        for snapshot_id in old - {s[1] for s in self._snapshots}:
            self._release(snapshot_id)

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
            if len(self._snapshots) == self.keep:
                self._release(self._snapshots.popleft()[1])
            self._snapshots.append((now, self._context.snapshot_model(now), self._scored))
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
        snapshot_id = next(s[1] for s in self._snapshots if s[0] == taken)
        self._context.restore_model(snapshot_id, now)
        undone = sum(n for t, n in self._published if t > taken)
        self.quarantined_ += undone
        self.rollbacks_.append({"at": now, "restored": taken, "accuracy_before": reference,
                                "labels_undone": undone})
        while self._snapshots and self._snapshots[-1][0] > taken:
            self._release(self._snapshots.pop()[1])
        self._published.clear()
        self.detector_ = ReplayableADWIN(delta=self.delta)
        self._outcomes.clear()
        self._reference = None
        self._hold_until = now + self.cooldown_ticks

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self._score(email, label, now)

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        if self.use_reviews:
            self._score(email, label, now)


class ReplayableADWIN:
    """River's :class:`~river.drift.ADWIN` over 0/1 outcomes, with plain state.

    River's detector keeps its window in a native object that cannot be read out, so
    this one also keeps the outcomes fed since the detector last started afresh (River's
    ADWIN does at the update after a detection) and its state is those outcomes;
    loading replays them into a new detector, which then has the same window, estimate
    and detections. The cost is one byte per outcome since the last detection.

    >>> a, b = ReplayableADWIN(delta=0.01), ReplayableADWIN(delta=0.01)
    >>> for x in [1.0] * 200 + [0.0] * 60:
    ...     a.update(x)
    >>> b.load_state_dict(a.state_dict())
    >>> (b.estimation, b.width, b.drift_detected) == (a.estimation, a.width, a.drift_detected)
    True
    """

    def __init__(self, delta: float):
        self.delta = float(delta)
        self._adwin = ADWIN(delta=self.delta)
        self._fed = bytearray()

    def update(self, x: float) -> None:
        if x != 0.0 and x != 1.0:
            raise ValueError(f"ReplayableADWIN takes 0/1 outcomes, got {x}")
        if self._adwin.drift_detected:
            self._fed.clear()                 # River's ADWIN starts afresh at this update
        self._adwin.update(x)
        self._fed.append(int(x))

    @property
    def estimation(self) -> float:
        return self._adwin.estimation

    @property
    def width(self) -> int:
        return self._adwin.width

    @property
    def drift_detected(self) -> bool:
        return self._adwin.drift_detected

    def state_dict(self) -> dict:
        return {"fed": np.frombuffer(bytes(self._fed), dtype=np.uint8).copy()}

    def load_state_dict(self, state: dict) -> None:
        fed = np.asarray(state.get("fed", ()), dtype=np.uint8)
        self._adwin = ADWIN(delta=self.delta)
        for x in fed.astype(np.float64).tolist():
            self._adwin.update(x)
        self._fed = bytearray(fed.tobytes())
