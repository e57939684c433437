"""A chain of defenses applied in order."""

from __future__ import annotations

import numpy as np

from defenses.base import Decision, Defense, VoteBatch
from defenses.none import NoDefense


class Chain:
    """Apply several defenses as one.

    Every member's :meth:`~defenses.base.Defense.weigh` multiplies the vote weights;
    the last aggregating member decides the labels (the undefended one-label-per-vote
    rule when none aggregates); every member then observes the decision.

    >>> from defenses.majority import MajorityVote
    >>> chain = Chain([MajorityVote()])
    >>> chain.name
    'majority'
    >>> len(chain.process(VoteBatch.of([1, 2], [0, 0], [1, 1]), now=0.0).labels)
    1
    """

    def __init__(self, members: list[Defense]):
        if not members:
            raise ValueError("a chain needs at least one defense")
        self.members = list(members)
        aggregators = [m for m in self.members if m.aggregates]
        self._aggregator = aggregators[-1] if aggregators else NoDefense()

    @property
    def name(self) -> str:
        return "+".join(m.name for m in self.members)

    def process(self, votes: VoteBatch, now: float) -> Decision:
        weight = np.ones(len(votes))
        for member in self.members:
            weight = weight * member.weigh(votes)
        decision = self._aggregator.decide(votes, weight)
        for member in self.members:
            member.observe(votes, decision, now)
        return decision

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        for member in self.members:
            member.observe_reviews(email, label, now)

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        for member in self.members:
            member.observe_gold(email, label, now)

    def bind(self, context) -> None:
        for member in self.members:
            member.bind(context)

    def flagged(self) -> np.ndarray:
        parts = [m.flagged() for m in self.members]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def reset(self) -> None:
        for member in self.members:
            member.reset()
