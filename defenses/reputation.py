"""Beta reputation per account, learned from settled outcomes."""

from __future__ import annotations

from collections import deque

import numpy as np

from defenses.base import Decision, Defense, VoteBatch, weighted_vote
from defenses.kernels.beta import _beta_update, _trust_weight


class Reputation(Defense):
    """Votes weighted by each account's Beta reputation.

    An account's trust is the mean of ``Beta(prior + evidence)``, its vote weight
    ``max(0, 2 * mean - 1)``. New accounts start untrusted: an account younger than
    ``min_age`` (or of unknown age) gets the ``new_prior``, whose mean 0.5 gives
    weight 0; an established account gets ``established_prior``. Evidence comes from
    settled outcomes: an email settles when trusted votes reach ``quorum`` weight
    with a clear ``margin`` (its voters gain alpha when they agreed, beta when not),
    and when the provider's review confirms an email's true label
    (:meth:`observe_reviews`, worth ``review_weight``). A ring of new accounts that
    only vote among themselves settles nothing, so it never gains weight, and
    reviews of its votes sink it.

    Parameters
    ----------
    new_prior, established_prior
        ``(alpha, beta)`` priors of new and established accounts.
    min_age
        Age (in ticks) from which an account counts as established.
    quorum
        Trusted weight an email needs before a label is emitted.
    margin
        Minimum ``|spam - not_spam| / total`` of the trusted weight.
    review_weight
        Evidence a reviewed vote adds.
    flag_below, flag_min_evidence
        An account is flagged as a bot when its mean trust (under the new prior) is
        below ``flag_below`` after at least ``flag_min_evidence`` units of evidence.
    memory_ticks
        How long votes are remembered for late reviews.

    >>> rep = Reputation(quorum=0.5)
    >>> votes = VoteBatch.of([0, 1], [3, 3], [1, 1], ts=[0.0, 0.0])   # unknown age: new
    >>> decision = rep.decide(votes, rep.weigh(votes))
    >>> len(decision.labels)                               # two new accounts: no label
    0
    >>> rep.observe(votes, decision, now=0.0)
    >>> rep.observe_reviews(np.array([3]), np.array([1]), now=1.0)
    >>> rep.weigh(votes).round(2).tolist()                 # confirmed right: some trust
    [0.33, 0.33]
    """

    name = "reputation"
    aggregates = True
    keeps_memory = True

    def __init__(self, new_prior: tuple[float, float] = (1.0, 1.0),
                 established_prior: tuple[float, float] = (3.0, 1.0), min_age: float = 720.0,
                 quorum: float = 0.9, margin: float = 0.2, review_weight: float = 1.0,
                 flag_below: float = 0.3, flag_min_evidence: float = 2.0, memory_ticks: float = 48.0):
        for prior in (new_prior, established_prior):
            if len(prior) != 2 or min(prior) <= 0:
                raise ValueError(f"a prior is two positive numbers (alpha, beta), got {prior}")
        if quorum <= 0:
            raise ValueError(f"quorum must be positive, got {quorum}")
        self.new_prior = tuple(new_prior)
        self.established_prior = tuple(established_prior)
        self.min_age = min_age
        self.quorum = quorum
        self.margin = margin
        self.review_weight = review_weight
        self.flag_below = flag_below
        self.flag_min_evidence = flag_min_evidence
        self.memory_ticks = memory_ticks
        self.reset()

    account_state = ("alpha", "beta")
    state_attributes = ("alpha_", "beta_", "_memory")

    def state_dict(self) -> dict:
        """Evidence per account (``alpha``, ``beta``) and the votes remembered for late
        reviews (``memory``).

        >>> rep = Reputation()
        >>> rep.observe(VoteBatch.of([0, 2], [5, 5], [1, 1]), Decision(*[None] * 2, np.array([1, 1], np.int8)), 0.0)
        >>> state = rep.state_dict()
        >>> state["alpha"][:3].tolist(), len(state["memory"])
        ([1.0, 0.0, 1.0], 1)
        >>> twin = Reputation(); twin.load_state_dict(state)
        >>> np.array_equal(twin.alpha_, rep.alpha_) and np.array_equal(twin.beta_, rep.beta_)
        True
        """
        return super().state_dict()

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.beta_.shape != self.alpha_.shape:
            raise ValueError("alpha and beta must have the same length")

    def reset(self) -> None:
        self.alpha_ = np.zeros(0)
        self.beta_ = np.zeros(0)
        self._memory: deque[tuple[float, VoteBatch]] = deque()

    def _grow(self, account: np.ndarray) -> None:
        needed = int(account.max()) + 1 if account.shape[0] else 0
        if needed > self.alpha_.shape[0]:
            extra = max(needed, 2 * self.alpha_.shape[0], 1024) - self.alpha_.shape[0]
            self.alpha_ = np.concatenate([self.alpha_, np.zeros(extra)])
            self.beta_ = np.concatenate([self.beta_, np.zeros(extra)])

    def priors(self, votes: VoteBatch) -> tuple[np.ndarray, np.ndarray]:
        """Per-vote prior: established when the account's age at the vote is known and old enough."""
        established = (votes.ts - votes.created) >= self.min_age  # NaN (unknown age) is False
        a = np.where(established, self.established_prior[0], self.new_prior[0])
        b = np.where(established, self.established_prior[1], self.new_prior[1])
        return a, b

    def weigh(self, votes: VoteBatch) -> np.ndarray:
        self._grow(votes.account)
        prior_a, prior_b = self.priors(votes)
        return _trust_weight(self.alpha_, self.beta_, votes.account, prior_a, prior_b)

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        return weighted_vote(votes, weight, min_weight=self.quorum, margin=self.margin, min_votes=1)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes) == 0:
            return
        self._grow(votes.account)
        _beta_update(self.alpha_, self.beta_, votes.account, decision.agreement, 1.0)
        self._memory.append((now, votes))
        while self._memory and self._memory[0][0] < now - self.memory_ticks:
            self._memory.popleft()

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        if email.shape[0] == 0 or not self._memory:
            return
        order = np.argsort(email)
        email, label = email[order], label[order]
        for _, votes in self._memory:
            pos = np.minimum(np.searchsorted(email, votes.email), email.shape[0] - 1)
            reviewed = email[pos] == votes.email
            if reviewed.any():
                agree = np.where(reviewed, votes.verdict == label[pos], -1).astype(np.int8)
                _beta_update(self.alpha_, self.beta_, votes.account, agree, self.review_weight)

    def flagged(self) -> np.ndarray:
        evidence = self.alpha_ + self.beta_
        a = self.alpha_ + self.new_prior[0]
        mean = a / (a + self.beta_ + self.new_prior[1])
        return np.flatnonzero((evidence >= self.flag_min_evidence) & (mean < self.flag_below))
