"""Streaming Dawid-Skene: per-account confusion matrices, online and by periodic EM."""

from __future__ import annotations

from collections import deque

import numpy as np

from defenses.base import Decision, Defense, LabelBatch, VoteBatch, dense_unique
from defenses.kernels.dawid_skene import _ds_e_step, _ds_em
from defenses.kernels.tally import _agreement


class DawidSkene(Defense):
    """Labels from a Dawid-Skene model of every account's 2×2 confusion matrix.

    Each account ``w`` has expected counts ``counts_[w, observed, true]`` on top of a
    symmetric Dirichlet prior (``prior_correct`` on the diagonal, ``prior_wrong`` off
    it). A window is decided by the E-step: the posterior of each email's true label
    from its votes (each vote's log likelihood scaled by its chain weight), the class
    prior and the confusion matrices; a label is emitted when the posterior reaches
    ``min_confidence``. The window's posteriors then update the voters' counts online.
    Every ``em_every`` windows, full EM runs over the last ``history_ticks`` of votes,
    with emails whose truth is known (gold, provider reviews) clamped to it, and the
    counts of the accounts seen there are replaced by EM's (semi-supervised DS). A
    ring that contradicts known truths acquires an inverted confusion matrix, and its
    votes then count as evidence *against* what it claims.

    Parameters
    ----------
    prior_correct, prior_wrong
        Dirichlet pseudo-counts per true class of a fresh account (accuracy
        ``prior_correct / (prior_correct + prior_wrong)``).
    min_confidence
        Posterior probability a label needs.
    history_ticks, em_every, em_iter
        Sliding window of the periodic EM, its period in windows and its rounds.
    flag_below, flag_min_evidence
        An account is flagged when, for some true class on which it gave at least
        ``flag_min_evidence`` (expected) answers, its probability of answering it
        correctly is below ``flag_below``.

    >>> ds = DawidSkene()
    >>> votes = VoteBatch.of([0, 1, 2, 3, 4], [5, 5, 5, 6, 6], [1, 1, 0, 0, 0])
    >>> d = ds.decide(votes, np.ones(5))
    >>> d.labels.email.tolist(), d.labels.label.tolist()    # 2 to 1 is not 90% sure at 80% accuracy
    ([6], [0])
    """

    name = "dawid_skene"
    aggregates = True
    state_attributes = ("counts_", "class_prior_", "truth_", "_history", "_windows")

    def __init__(self, prior_correct: float = 4.0, prior_wrong: float = 1.0, min_confidence: float = 0.9,
                 history_ticks: float = 48.0, em_every: int = 6, em_iter: int = 20,
                 flag_below: float = 0.4, flag_min_evidence: float = 3.0):
        if prior_correct <= 0 or prior_wrong <= 0:
            raise ValueError("prior_correct and prior_wrong must be positive")
        if not 0.5 <= min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in [0.5, 1), got {min_confidence}")
        if em_every < 1 or em_iter < 1:
            raise ValueError("em_every and em_iter must be >= 1")
        self.prior_correct = float(prior_correct)
        self.prior_wrong = float(prior_wrong)
        self.min_confidence = float(min_confidence)
        self.history_ticks = float(history_ticks)
        self.em_every = int(em_every)
        self.em_iter = int(em_iter)
        self.flag_below = float(flag_below)
        self.flag_min_evidence = float(flag_min_evidence)
        self.reset()

    def reset(self) -> None:
        self.counts_ = np.zeros((0, 2, 2))
        self.class_prior_ = np.array([0.5, 0.5])
        self.truth_: dict[int, int] = {}
        self._history: deque[tuple[float, VoteBatch, np.ndarray]] = deque()
        self._windows = 0

    def _grow(self, account: np.ndarray) -> None:
        needed = int(account.max()) + 1 if account.shape[0] else 0
        if needed > self.counts_.shape[0]:
            extra = max(needed, 2 * self.counts_.shape[0], 1024) - self.counts_.shape[0]
            self.counts_ = np.concatenate([self.counts_, np.zeros((extra, 2, 2))])

    def _prior(self, n: int) -> np.ndarray:
        prior = np.empty((n, 2, 2))
        prior[:, 0, 0] = prior[:, 1, 1] = self.prior_correct
        prior[:, 0, 1] = prior[:, 1, 0] = self.prior_wrong
        return prior

    def errors(self, account: np.ndarray) -> np.ndarray:
        """Confusion probabilities ``[observed, true]`` of the given accounts."""
        self._grow(account)
        counts = self.counts_[account] + self._prior(account.shape[0])
        return counts / counts.sum(axis=1, keepdims=True)

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        if len(votes) == 0:
            return Decision(LabelBatch.empty(), np.zeros(0), np.zeros(0, np.int8))
        emails, task = dense_unique(votes.email)
        accounts, worker = dense_unique(votes.account)
        label = votes.verdict.astype(np.int64)
        probas = _ds_e_step(task, worker, label, weight, self.errors(accounts), self.class_prior_, emails.shape[0])
        spam = probas[:, 1]
        top = np.maximum(spam, 1 - spam)
        voted = np.bincount(task, weights=weight, minlength=emails.shape[0]) > 0
        decided = voted & (top >= self.min_confidence)
        verdict = (spam >= 0.5).astype(np.int8)
        agreement = _agreement(task, votes.verdict, decided, verdict)
        agree_weight = np.bincount(task, weights=np.where(agreement == 1, weight, 0.0), minlength=emails.shape[0])
        decided &= agree_weight > 0
        agreement = _agreement(task, votes.verdict, decided, verdict)
        count = np.bincount(task, minlength=emails.shape[0])
        labels = LabelBatch(emails[decided], verdict[decided], np.minimum(agree_weight[decided], 1.0),
                            top[decided], count[decided])
        return Decision(labels, np.where(agreement == 1, weight, 0.0), agreement)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes):
            self._grow(votes.account)
            emails, task = dense_unique(votes.email)
            probas = _ds_e_step(task, dense_unique(votes.account)[1], votes.verdict.astype(np.int64),
                                np.ones(len(votes)), self.errors(np.unique(votes.account)), self.class_prior_,
                                emails.shape[0])
            self._clamp(emails, probas)
            # Online M-step: the window's posteriors become expected counts of its voters.
            np.add.at(self.counts_, (votes.account, votes.verdict.astype(np.int64), 0), probas[task, 0])
            np.add.at(self.counts_, (votes.account, votes.verdict.astype(np.int64), 1), probas[task, 1])
            self._history.append((now, votes, np.ones(len(votes))))
        while self._history and self._history[0][0] <= now - self.history_ticks:
            self._history.popleft()
        self._windows += 1
        if self._windows % self.em_every == 0 and self._history:
            self._em()

    def _clamp(self, emails: np.ndarray, probas: np.ndarray) -> None:
        for i, e in enumerate(emails.tolist()):
            t = self.truth_.get(e)
            if t is not None:
                probas[i] = (1.0 - t, float(t))

    def _em(self) -> None:
        account = np.concatenate([v.account for _, v, _ in self._history])
        email = np.concatenate([v.email for _, v, _ in self._history])
        label = np.concatenate([v.verdict for _, v, _ in self._history]).astype(np.int64)
        weight = np.concatenate([w for _, _, w in self._history])
        emails, task = dense_unique(email)
        accounts, worker = dense_unique(account)
        truth = np.array([self.truth_.get(e, -1) for e in emails.tolist()], dtype=np.int64)
        _, priors, counts, _, _ = _ds_em(task, worker, label, weight, truth, self._prior(accounts.shape[0]),
                                         emails.shape[0], self.em_iter, 1e-6)
        self.counts_[accounts] = counts - self._prior(accounts.shape[0])
        self.class_prior_ = np.clip(priors, 0.05, 0.95)

    def _learn_truths(self, email: np.ndarray, label: np.ndarray) -> None:
        for e, t in zip(email.tolist(), label.tolist()):
            self.truth_[e] = int(t)

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self._learn_truths(email, label)

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self._learn_truths(email, label)

    def flagged(self) -> np.ndarray:
        evidence = self.counts_.sum(axis=1)                       # [account, true class]
        total = self.counts_ + self._prior(self.counts_.shape[0])
        correct = np.stack([total[:, 0, 0], total[:, 1, 1]], axis=1) / total.sum(axis=1)
        bad = (evidence >= self.flag_min_evidence) & (correct < self.flag_below)
        return np.flatnonzero(bad.any(axis=1))
