"""Majority vote weighted by accuracy on emails whose label is known (gold)."""

from __future__ import annotations

import numpy as np

from defenses._skill_vote import SkillWeightedVote
from defenses.base import Decision, VoteBatch


class GoldVote(SkillWeightedVote):
    """Votes weighted by each account's accuracy on known-label emails.

    Crowd-Kit's ``GoldMajorityVote`` measures every worker on golden tasks and
    re-votes with those skills. Here the known labels are the gold (honeypot) emails
    seeded into the stream (``mail.gold_emails_per_tick``; their labels arrive before
    the votes, :meth:`observe_gold`) and the provider's late reviews
    (:meth:`observe_reviews`). Unlike :class:`~defenses.wawa.Wawa`, agreeing with the
    crowd earns nothing, so a ring cannot vouch for itself. The vote weight is the
    skill above chance, ``max(0, 2 skill - 1)``.

    Parameters
    ----------
    prior
        ``(a, b)`` prior of every account's accuracy.
    quorum, margin
        As in :class:`~defenses.reputation.Reputation`: weight the winning side needs,
        and minimum ``|spam - not_spam| / total``.
    gold_weight, review_weight
        Evidence one gold or reviewed answer adds.
    memory_ticks
        How long votes are remembered for late reviews.
    flag_below, flag_min_evidence
        Accounts whose accuracy is below ``flag_below`` after at least
        ``flag_min_evidence`` units of evidence are flagged.

    >>> gold = GoldVote()
    >>> gold.observe_gold(np.array([1]), np.array([0]), now=0.0)
    >>> votes = VoteBatch.of([0, 1, 2], [1, 1, 1], [1, 1, 0])   # two wrong on a gold email
    >>> gold.observe(votes, gold.decide(votes, gold.weigh(votes)), now=1.0)
    >>> gold.weigh(votes).round(2).tolist()
    [0.0, 0.0, 0.75]
    """

    name = "gold"
    needs_gold = True

    def __init__(self, prior: tuple[float, float] = (4.0, 1.0), quorum: float = 0.5, margin: float = 0.2,
                 gold_weight: float = 3.0, review_weight: float = 3.0, memory_ticks: float = 48.0,
                 flag_below: float = 0.3, flag_min_evidence: float = 3.0):
        self.gold_weight = gold_weight
        self.review_weight = review_weight
        super().__init__(prior, quorum, margin, memory_ticks, flag_below, flag_min_evidence)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes) == 0:
            return
        self._score_gold(votes, self.gold_weight)
        self.ledger_.remember(votes, now)

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self.ledger_.truths(email, label, self.review_weight)
