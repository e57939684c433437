"""A chain of defenses applied in order."""

from __future__ import annotations

import numpy as np

from defenses.base import Decision, Defense, VoteBatch
from defenses.none import NoDefense


class Chain:
    """Apply several defenses as one.

    Every member's :meth:`~defenses.base.Defense.weigh` multiplies the vote weights;
    the last aggregating member decides the labels (the undefended one-label-per-vote
    rule when none aggregates); every member in turn may then hold labels back
    (:meth:`~defenses.base.Defense.screen`, e.g. RONI's quarantine); every member
    finally observes the decision.

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
        for member in self.members:
            member.peers(self.members)

    @property
    def name(self) -> str:
        return "+".join(m.name for m in self.members)

    def process(self, votes: VoteBatch, now: float) -> Decision:
        weight = np.ones(len(votes))
        for member in self.members:
            weight = weight * member.weigh(votes)
        decision = self._aggregator.decide(votes, weight)
        for member in self.members:
            decision = member.screen(votes, decision, now)
        for member in self.members:
            member.observe(votes, decision, now)
        return decision

    def needs(self) -> set[str]:
        """The inputs its members cannot do without: a subset of ``{"model", "reviews",
        "gold"}`` (from the members' declared capabilities, see
        :class:`~defenses.base.Defense`).

        >>> from defenses.registry import DEFENSES, expand
        >>> sorted(Chain([DEFENSES[n]() for n in expand(["recommended"])]).needs())
        ['gold', 'model']
        """
        out = set()
        for member in self.members:
            if member.needs_model:
                out.add("model")
            if member.needs_reviews:
                out.add("reviews")
            if member.needs_gold:
                out.add("gold")
        return out

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

    def state_dict(self) -> dict:
        """Every member's state, in chain order.

        >>> from defenses.reputation import Reputation
        >>> chain = Chain([Reputation()])
        >>> sorted(chain.state_dict()["members"][0])
        ['alpha', 'beta', 'memory']
        """
        return {"members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict) -> None:
        members = state.get("members", [])
        if len(members) != len(self.members):
            raise ValueError(f"state of {len(members)} defenses for a chain of {len(self.members)}")
        for member, member_state in zip(self.members, members):
            member.load_state_dict(member_state)
