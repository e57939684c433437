"""Majority vote weighted by accuracy on emails whose label is known (gold)."""

from __future__ import annotations

import numpy as np

from defenses._ledger import SkillLedger, agreement_with
from defenses.base import Decision, Defense, VoteBatch, weighted_vote


class GoldVote(Defense):
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
    aggregates = True

    def __init__(self, prior: tuple[float, float] = (4.0, 1.0), quorum: float = 0.5, margin: float = 0.2,
                 gold_weight: float = 3.0, review_weight: float = 3.0, memory_ticks: float = 48.0,
                 flag_below: float = 0.3, flag_min_evidence: float = 3.0):
        if quorum <= 0:
            raise ValueError(f"quorum must be positive, got {quorum}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        self.prior = tuple(prior)
        self.quorum = quorum
        self.margin = margin
        self.gold_weight = gold_weight
        self.review_weight = review_weight
        self.memory_ticks = memory_ticks
        self.flag_below = flag_below
        self.flag_min_evidence = flag_min_evidence
        self.reset()

    def reset(self) -> None:
        self.ledger_ = SkillLedger(self.prior, self.memory_ticks)
        self.gold_email_ = np.zeros(0, np.int64)
        self.gold_label_ = np.zeros(0, np.int8)

    def weigh(self, votes: VoteBatch) -> np.ndarray:
        return self.ledger_.weight(votes.account)

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        return weighted_vote(votes, weight, min_weight=self.quorum, margin=self.margin, min_votes=1)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes) == 0:
            return
        self.ledger_.score(votes.account, agreement_with(votes, self.gold_email_, self.gold_label_),
                           self.gold_weight)
        self.ledger_.remember(votes, now)

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        email = np.concatenate([self.gold_email_, email])
        label = np.concatenate([self.gold_label_, label.astype(np.int8)])
        email, first = np.unique(email, return_index=True)
        self.gold_email_, self.gold_label_ = email, label[first]

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self.ledger_.truths(email, label, self.review_weight)

    def flagged(self) -> np.ndarray:
        return self.ledger_.flagged(self.flag_below, self.flag_min_evidence)
