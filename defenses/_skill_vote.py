"""The common core of the skill-weighted votes (private): :class:`~defenses.wawa.Wawa`
and :class:`~defenses.gold.GoldVote` differ only in what earns an account skill."""

from __future__ import annotations

import numpy as np

from defenses._ledger import SkillLedger, agreement_with
from defenses.base import Decision, Defense, VoteBatch, weighted_vote


class SkillWeightedVote(Defense):
    """Votes weighted by each account's skill above chance, ``max(0, 2 skill - 1)``,
    kept in a :class:`~defenses._ledger.SkillLedger`; gold (honeypot) labels are
    remembered for :meth:`_score_gold`. Subclasses set ``name`` and :meth:`observe`."""

    aggregates = True
    keeps_memory = True
    state_attributes = ("ledger_.correct", "ledger_.wrong", "ledger_._memory", "gold_email_", "gold_label_")

    def __init__(self, prior: tuple[float, float], quorum: float, margin: float, memory_ticks: float,
                 flag_below: float, flag_min_evidence: float):
        if quorum <= 0:
            raise ValueError(f"quorum must be positive, got {quorum}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        self.prior = tuple(prior)
        self.quorum = quorum
        self.margin = margin
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

    def _score_gold(self, votes: VoteBatch, amount: float) -> None:
        """Score the votes on gold emails against their known labels, ``amount`` each."""
        self.ledger_.score(votes.account, agreement_with(votes, self.gold_email_, self.gold_label_), amount)

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        email = np.concatenate([self.gold_email_, email])
        label = np.concatenate([self.gold_label_, label.astype(np.int8)])
        email, first = np.unique(email, return_index=True)
        self.gold_email_, self.gold_label_ = email, label[first]

    def flagged(self) -> np.ndarray:
        return self.ledger_.flagged(self.flag_below, self.flag_min_evidence)
