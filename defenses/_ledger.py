"""Per-account answer ledgers shared by the skill-weighted defenses (private)."""

from __future__ import annotations

from collections import deque

import numpy as np

from defenses.base import VoteBatch
from defenses.kernels.beta import _beta_update, _score_known, _trust_weight


class SkillLedger:
    """Correct / wrong evidence per account, its skill and its vote weight.

    The skill is the posterior mean ``(correct + a) / (answered + a + b)`` under a
    ``(a, b)`` prior; the vote weight is the skill above chance, ``max(0, 2 skill - 1)``.
    Recent votes are remembered for ``memory`` time units so that truths arriving
    late (provider reviews) still score the accounts that voted.

    >>> ledger = SkillLedger((4.0, 1.0), memory=10.0)
    >>> votes = VoteBatch.of([0, 1], [7, 7], [1, 0])
    >>> ledger.remember(votes, now=0.0)
    >>> ledger.truths(np.array([7]), np.array([1]), 1.0)
    >>> ledger.weight(votes.account).round(2).tolist()
    [0.67, 0.33]
    """

    def __init__(self, prior: tuple[float, float], memory: float):
        if len(prior) != 2 or min(prior) <= 0:
            raise ValueError(f"a prior is two positive numbers (a, b), got {prior}")
        self.prior = (float(prior[0]), float(prior[1]))
        self.memory = float(memory)
        self.reset()

    def reset(self) -> None:
        self.correct = np.zeros(0)
        self.wrong = np.zeros(0)
        self._memory: deque[tuple[float, VoteBatch]] = deque()

    def grow(self, account: np.ndarray) -> None:
        needed = int(account.max()) + 1 if account.shape[0] else 0
        if needed > self.correct.shape[0]:
            extra = max(needed, 2 * self.correct.shape[0], 1024) - self.correct.shape[0]
            self.correct = np.concatenate([self.correct, np.zeros(extra)])
            self.wrong = np.concatenate([self.wrong, np.zeros(extra)])

    def weight(self, account: np.ndarray) -> np.ndarray:
        self.grow(account)
        n = account.shape[0]
        return _trust_weight(self.correct, self.wrong, account, np.full(n, self.prior[0]),
                             np.full(n, self.prior[1]))

    def skill(self) -> np.ndarray:
        return (self.correct + self.prior[0]) / (self.correct + self.wrong + self.prior[0] + self.prior[1])

    def score(self, account: np.ndarray, agree: np.ndarray, amount: float) -> None:
        """Add evidence: ``agree`` is 1 (right), 0 (wrong) or -1 (unscored) per vote."""
        self.grow(account)
        _beta_update(self.correct, self.wrong, account, agree.astype(np.int8), amount)

    def remember(self, votes: VoteBatch, now: float) -> None:
        if len(votes):
            self._memory.append((now, votes))
        while self._memory and self._memory[0][0] < now - self.memory:
            self._memory.popleft()

    def truths(self, email: np.ndarray, label: np.ndarray, amount: float) -> None:
        """Score every remembered vote on an email whose true label became known."""
        if email.shape[0] == 0 or not self._memory:
            return
        order = np.argsort(email)
        email, label = email[order], label[order]
        windows = [votes for _, votes in self._memory]
        if max(int(v.account.max()) for v in windows) >= self.correct.shape[0]:
            for votes in windows:            # grow as window-by-window scoring would have
                self.grow(votes.account)
        first, span = int(email[0]), int(email[-1]) - int(email[0]) + 1
        if (email[1:] > email[:-1]).all() and span <= 64 * email.shape[0] + 4096:
            # Distinct ids (the usual case): a lookup table over their range and one kernel
            # pass per window, oldest first, adding the evidence in the same order as
            # scoring window by window.
            known = np.zeros(span, np.bool_)
            known[email - first] = True
            truth = np.zeros(span, np.int8)
            truth[email - first] = label
            for votes in windows:
                _score_known(self.correct, self.wrong, votes.account, votes.email, votes.verdict, known, truth,
                             first, amount)
            return
        for votes in windows:
            self.score(votes.account, agreement_with(votes, email, label), amount)

    def flagged(self, below: float, min_evidence: float) -> np.ndarray:
        evidence = self.correct + self.wrong
        return np.flatnonzero((evidence >= min_evidence) & (self.skill() < below))


def agreement_with(votes: VoteBatch, email: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Per vote: 1 if it matches the known label of its email, 0 if not, -1 if the
    email has none. ``email`` must be sorted."""
    if email.shape[0] == 0:
        return np.full(len(votes), -1, np.int8)
    pos = np.minimum(np.searchsorted(email, votes.email), email.shape[0] - 1)
    known = email[pos] == votes.email
    return np.where(known, votes.verdict == label[pos], -1).astype(np.int8)
