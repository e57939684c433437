"""Skill-weighted majority vote (Wawa), streaming."""

from __future__ import annotations

import numpy as np

from defenses._skill_vote import SkillWeightedVote
from defenses.base import Decision, VoteBatch


class Wawa(SkillWeightedVote):
    """Worker-agreement-with-aggregate: votes weighted by each account's skill.

    Crowd-Kit's ``Wawa`` scores every worker by its agreement with the majority vote
    and re-votes with those skills. Streaming, an account's skill is its agreement
    with the labels this defense settled in earlier windows, plus its accuracy on gold
    (honeypot) emails and on provider-reviewed emails, which count ``truth_weight``
    times as much. The vote weight is the skill above chance, ``max(0, 2 skill - 1)``,
    so a coin-flipping or adversarial account weighs nothing. A ring that is always in
    the majority gains skill; only gold and reviews bring it down — that is Wawa's
    known weakness against coordinated accounts.

    Parameters
    ----------
    prior
        ``(a, b)`` prior of every account's skill (mean ``a / (a + b)``).
    quorum
        Weight an email's winning side needs before a label is emitted.
    margin
        Minimum ``|spam - not_spam| / total`` of the weight.
    truth_weight
        Evidence one gold or reviewed answer adds (agreement with the aggregate adds 1).
    memory_ticks
        How long votes are remembered for late reviews.
    flag_below, flag_min_evidence
        Accounts whose skill is below ``flag_below`` after at least
        ``flag_min_evidence`` units of evidence are flagged.

    >>> wawa = Wawa()
    >>> wawa.observe_gold(np.array([1]), np.array([1]), now=0.0)
    >>> votes = VoteBatch.of([0, 1, 2, 3], [1, 1, 1, 2], [1, 1, 0, 1])
    >>> decision = wawa.decide(votes, wawa.weigh(votes))
    >>> wawa.observe(votes, decision, now=1.0)
    >>> wawa.weigh(votes).round(2).tolist()      # account 2 missed the gold email
    [0.78, 0.78, 0.0, 0.67]
    """

    name = "wawa"

    def __init__(self, prior: tuple[float, float] = (4.0, 1.0), quorum: float = 0.5, margin: float = 0.2,
                 truth_weight: float = 3.0, memory_ticks: float = 48.0, flag_below: float = 0.3,
                 flag_min_evidence: float = 3.0):
        self.truth_weight = truth_weight
        super().__init__(prior, quorum, margin, memory_ticks, flag_below, flag_min_evidence)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes) == 0:
            return
        if decision.agreement.shape[0] == len(votes):
            self.ledger_.score(votes.account, decision.agreement, 1.0)
        self._score_gold(votes, self.truth_weight)
        self.ledger_.remember(votes, now)

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        self.ledger_.truths(email, label, self.truth_weight)
