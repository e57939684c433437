"""Per-email majority vote with a margin."""

from __future__ import annotations

import numpy as np

from defenses.base import Decision, Defense, VoteBatch, weighted_vote


class MajorityVote(Defense):
    """One label per email per window, when the majority is clear enough.

    Parameters
    ----------
    margin
        Minimum ``|spam - not_spam| / votes`` for a label to be emitted.
    min_votes
        Minimum number of votes on the email within the window.

    >>> v = VoteBatch.of([0, 1, 2, 3], [7, 7, 7, 8], [1, 1, 0, 1])
    >>> MajorityVote(margin=0.2, min_votes=2).decide(v, np.ones(4)).labels.email.tolist()
    [7]
    """

    name = "majority"
    aggregates = True

    def __init__(self, margin: float = 0.2, min_votes: int = 2):
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        if min_votes < 1:
            raise ValueError(f"min_votes must be >= 1, got {min_votes}")
        self.margin = margin
        self.min_votes = min_votes

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        return weighted_vote(votes, weight, min_weight=0.0, margin=self.margin,
                             min_votes=self.min_votes)
