"""The undefended continuous learner."""

from __future__ import annotations

import numpy as np

from defenses.base import Decision, Defense, LabelBatch, VoteBatch


class NoDefense(Defense):
    """Every vote becomes a training label of weight 1.

    Votes on the same email with the same verdict are merged into one label whose
    weight is their count, which trains the model exactly as one label per vote.

    >>> d = NoDefense().decide(VoteBatch.of([0, 1, 2], [4, 4, 4], [0, 0, 1]), np.ones(3))
    >>> d.labels.label.tolist(), d.labels.weight.tolist()
    ([0, 1], [2.0, 1.0])
    """

    name = "none"
    aggregates = True

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        if len(votes) == 0:
            return Decision(LabelBatch.empty(), np.zeros(0), np.zeros(0, np.int8))
        keys = votes.email * 2 + votes.verdict
        groups, inverse = np.unique(keys, return_inverse=True)
        total = np.bincount(inverse, weights=weight, minlength=groups.shape[0])
        count = np.bincount(inverse, minlength=groups.shape[0])
        keep = total > 0
        labels = LabelBatch(groups[keep] // 2, (groups[keep] % 2).astype(np.int8), total[keep],
                            np.ones(int(keep.sum())), count[keep])
        return Decision(labels, weight.astype(np.float64), np.ones(len(votes), np.int8))
