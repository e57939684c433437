"""Reject On Negative Impact (Nelson et al., LEET 2008)."""

from __future__ import annotations

import numpy as np

from defenses._trusted import csr as _csr
from defenses.base import Decision, Defense, VoteBatch, keep_labels
from defenses.kernels.roni import _label_impact, _nb_jll


class Roni(Defense):
    """Quarantines training labels that would make the model worse on trusted data.

    Before a window's labels are published, each candidate label (one email, its label
    and its weight) is scored by the exact change it would cause in the model's log
    loss on the trusted validation set (:attr:`DefenseContext.validation
    <defenses.context.DefenseContext>`), computed from the naive Bayes counts by a
    kernel instead of by retraining. Labels that raise the loss by more than
    ``tolerance`` (per validation email, in nats) are quarantined: not published, and
    their votes count as dropped. Nelson et al. retrain per candidate and count
    misclassifications; the log loss sees harm before it flips a prediction. A single
    correct label moves the loss by about 1e-4 either way (on the default scenario, 20%
    of correct labels raise it slightly, the 99th percentile by 4.5e-4), hence the
    default ``tolerance`` of 1e-3: only labels with a large harmful effect, such as
    Nelson's dictionary mail labelled spam, are held back.

    Without a bound context (no model, no validation set) every label passes.

    Parameters
    ----------
    tolerance
        Largest accepted increase of the mean validation log loss per label.

    >>> from defenses.context import DefenseContext
    >>> from defenses.base import weighted_vote
    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> for text, spam in [("win cash prize now", True), ("cheap pills win", True),
    ...                    ("meeting agenda attached", False), ("lunch on friday", False)]:
    ...     model.learn(model.features(text), spam)
    >>> texts = {0: "win cash now", 1: "win a prize"}
    >>> context = DefenseContext(model, lambda ids: [model.features(texts[i]) for i in ids.tolist()],
    ...                          [(model.features("claim your cash prize"), True),
    ...                           (model.features("agenda for the meeting"), False)])
    >>> roni = Roni()
    >>> roni.bind(context)
    >>> votes = VoteBatch.of([0, 1], [0, 1], [0, 1])      # "win cash now" is not spam?
    >>> decision = weighted_vote(votes, np.ones(2), min_weight=0.5, margin=0.0, min_votes=1)
    >>> roni.screen(votes, decision, now=1.0).labels.email.tolist()
    [1]
    """

    name = "roni"
    needs_model = True
    state_attributes = ("quarantined_", "scored_", "last_impact_")

    def __init__(self, tolerance: float = 1e-3):
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.tolerance = float(tolerance)
        self._context = None
        self.reset()

    def reset(self) -> None:
        self.quarantined_ = 0
        self.scored_ = 0
        self.last_impact_ = np.zeros(0)

    def bind(self, context) -> None:
        self._context = context

    def __deepcopy__(self, memo):
        fresh = type(self)(self.tolerance)
        fresh.quarantined_, fresh.scored_ = self.quarantined_, self.scored_
        return fresh

    def impact(self, email: np.ndarray, label: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Change of the validation log loss each label alone would cause (NaN: unknown email)."""
        trusted = self._context.trusted()
        nb = self._context.model.nb
        if len(nb.class_counts) < 2:
            return np.zeros(email.shape[0])
        model = self._context.model_counts()
        feature_counts = nb.feature_counts
        rows = self._context.features(email)
        known = np.array([r is not None for r in rows])
        c_ptr, c_idx, c_cnt, c_len = _csr(rows, trusted.vocabulary)
        c_new = np.array([sum(1 for w in (r or {}) if w not in feature_counts) for r in rows], dtype=np.float64)
        v = trusted
        jll = _nb_jll(v.ptr, v.idx, v.cnt, v.length, model.counts, model.docs, model.words_per_class,
                      model.n_terms, nb.alpha)
        out = _label_impact(v.ptr, v.idx, v.cnt, v.length, v.y, jll, model.counts, model.docs,
                            model.words_per_class, model.n_terms, nb.alpha, c_ptr, c_idx, c_cnt, c_len, c_new,
                            label.astype(np.int64), weight.astype(np.float64))
        return np.where(known, out, np.nan)

    def screen(self, votes: VoteBatch, decision: Decision, now: float) -> Decision:
        labels = decision.labels
        if self._context is None or not self._context.validation or len(labels) == 0:
            return decision
        impact = self.impact(labels.email, labels.label, labels.weight)
        self.last_impact_ = impact
        keep = ~(impact > self.tolerance)          # unknown emails (NaN) pass: the learner skips them
        self.scored_ += len(labels)
        self.quarantined_ += int((~keep).sum())
        return keep_labels(votes, decision, keep)
