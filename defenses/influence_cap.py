"""No account and no ring carries more than a set share of a window's training labels."""

from __future__ import annotations

import numpy as np

from defenses.base import Decision, Defense, LabelBatch, VoteBatch, dense_unique
from defenses.kernels.influence import _contribution, _retained


class InfluenceCap(Defense):
    """Caps each voter group's share of the training signal per window.

    Every label's weight is owned by the votes that agreed with it, in proportion to
    their weights. A group is an account, or a whole ring when a
    :class:`~defenses.coordination.Coordination` member of the same chain has clustered
    it (without one, and with ``detect``, it runs its own co-voting detector only to
    find rings). When a group owns more than ``max(share * total, floor)`` of the window's
    label weight, its part of every label it backs is scaled down to that cap (and its
    votes' weights with it); labels left below ``min_label_weight`` are dropped. A ring
    that dominates the campaign thus teaches the model at most ``share`` of what the
    window teaches, whatever the ring's size; an honest account, which rarely backs
    more than a label or two, is untouched thanks to ``floor``.

    Parameters
    ----------
    share
        Largest share of a window's label weight one group may own.
    floor
        Label weight any group may always own (so a quiet window does not cap the one
        user who reported in it).
    min_label_weight
        Labels whose weight is scaled below this are dropped.
    detect
        Find rings itself when no Coordination member shares its clusters.

    >>> from defenses.base import weighted_vote
    >>> cap = InfluenceCap(share=0.25, floor=1.0)
    >>> votes = VoteBatch.of([0, 0, 0, 0, 1, 2], [1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 0, 0])
    >>> decision = weighted_vote(votes, np.ones(6), min_weight=0.5, margin=0.0, min_votes=1)
    >>> capped = cap.screen(votes, decision, now=1.0)   # account 0 backs 4 of 6 labels
    >>> capped.labels.weight.round(2).tolist()
    [0.25, 0.25, 0.25, 0.25, 1.0, 1.0]
    """

    name = "influence_cap"
    state_attributes = ("_own",)     # its own ring detector's state (None with a Coordination peer)

    def __init__(self, share: float = 0.05, floor: float = 1.0, min_label_weight: float = 0.01,
                 detect: bool = True):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if floor < 0 or min_label_weight < 0:
            raise ValueError("floor and min_label_weight must be >= 0")
        self.share = float(share)
        self.floor = float(floor)
        self.min_label_weight = float(min_label_weight)
        self.detect = bool(detect)
        self._peer = None
        self.reset()

    def reset(self) -> None:
        from defenses.coordination import Coordination

        # Its own ring detector (weighing nothing), used when the chain has no
        # Coordination member to share clusters with.
        self._own = Coordination(cluster_cap=1e9) if self.detect and self._peer is None else None

    def load_state_dict(self, state: dict) -> None:
        if self._own is None:                    # rings come from a Coordination peer (or none):
            state = {k: v for k, v in state.items() if k != "own"}   # an own detector's state is moot
        super().load_state_dict(state)

    @property
    def _rings(self):
        return self._peer if self._peer is not None else self._own

    def peers(self, members: list[Defense]) -> None:
        from defenses.coordination import Coordination

        rings = [m for m in members if isinstance(m, Coordination)]
        if rings:
            self._peer, self._own = rings[0], None

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if self._own is not None:
            self._own.observe(votes, decision, now)

    def groups(self, account: np.ndarray) -> np.ndarray:
        """Dense group id per vote: its ring when one is known, else its account."""
        if self._rings is None or account.shape[0] == 0:
            return dense_unique(account)[1]
        ring = self._rings.clusters(account)
        key = np.where(ring >= 0, ring, int(account.max()) + 1 + account)
        return dense_unique(key)[1]

    def screen(self, votes: VoteBatch, decision: Decision, now: float) -> Decision:
        labels = decision.labels
        if len(labels) == 0 or decision.agreement.shape[0] != len(votes):
            return decision
        emails, local = dense_unique(votes.email)
        n_emails = emails.shape[0]
        where = np.searchsorted(emails, labels.email)
        label_weight = np.zeros(n_emails)
        label_weight[where] = labels.weight
        weight = decision.vote_weight
        winner = np.bincount(local, weights=np.where(decision.agreement == 1, weight, 0.0), minlength=n_emails)
        winner = np.where(label_weight > 0, winner, 0.0)
        group = self.groups(votes.account)
        n_groups = int(group.max()) + 1
        factor = np.ones(n_groups)
        scaled = label_weight
        for _ in range(3):  # the cap is relative to the total, which shrinks as groups are capped
            owned = _contribution(group, local, weight, decision.agreement, winner, label_weight, n_groups) * factor
            cap = max(self.share * scaled.sum(), self.floor)
            factor = np.where(owned > cap, factor * cap / np.maximum(owned, 1e-300), factor)
            scaled = label_weight * _retained(group, local, weight, decision.agreement, winner, factor, n_emails)
        if (factor >= 1.0).all():
            return decision
        new_weight = scaled[where]
        keep = new_weight >= self.min_label_weight
        kept = LabelBatch(labels.email[keep], labels.label[keep], new_weight[keep], labels.confidence[keep],
                          labels.votes[keep])
        dropped = np.isin(votes.email, labels.email[~keep])
        vote_weight = np.where(dropped, 0.0, weight * factor[group])
        agreement = np.where(dropped, -1, decision.agreement).astype(np.int8)
        return Decision(kept, vote_weight, agreement)
