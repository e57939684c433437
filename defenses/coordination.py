"""Sybil-ring detection from co-voting, with a weight cap per detected ring."""

from __future__ import annotations

from collections import deque

import numpy as np

from defenses.base import Decision, Defense, VoteBatch, dense_unique
from defenses.kernels.covote import _cluster_cap, _components, _linked_pairs


class Coordination(Defense):
    """Clusters accounts that cast the same votes far more often than chance.

    Over the last ``window_ticks`` of votes, two accounts *co-vote* when they gave the
    same verdict on the same email within the same ``bucket_ticks`` of time. Two
    independent accounts with ``n_a`` and ``n_b`` votes spread over ``G`` (email,
    verdict, time) groups share about ``n_a n_b / G`` of them, a vanishing share of
    their votes when ``G`` is large. A pair is *linked* when it shares at least
    ``min_shared`` votes and the Jaccard similarity of its two vote sets,
    ``shared / (n_a + n_b - shared)``, is at least ``min_jaccard`` (and at least
    ``min_lift`` times what independent accounts would reach). Linked accounts form
    clusters (connected components); clusters of at least ``min_cluster`` accounts are
    rings. Every ring's
    votes on an email weigh ``cluster_cap`` in total, however many accounts it has: by
    default 0 (a detected ring is ignored); a cap between 0 and 1 lets a ring count as a
    fraction of one voter, which an aggregator's quorum can still refuse alone. Ring
    members are flagged, and stay flagged and capped (a quiet member keeps its ring).
    The pair counts come from an exact kernel over the window (no sketch).

    Parameters
    ----------
    window_ticks
        How much recent voting is compared.
    bucket_ticks
        Width of the time buckets within which equal votes count as co-votes.
    min_shared, min_jaccard, min_lift
        A linked pair shares at least ``min_shared`` votes, with a Jaccard similarity of
        at least ``min_jaccard`` and at least ``min_lift`` times the chance level.
    min_cluster
        Smallest ring.
    cluster_cap
        Total weight of one ring's votes on one email.
    every
        Recompute the clusters every this many windows.

    >>> coord = Coordination(min_cluster=3, min_shared=2, min_lift=1.0, cluster_cap=0.25, every=1)
    >>> ring = VoteBatch.of([0, 1, 2, 0, 1, 2, 7], [1, 1, 1, 2, 2, 2, 3], [0, 0, 0, 1, 1, 1, 1])
    >>> coord.observe(ring, Decision.__new__(Decision), now=1.0)
    >>> coord.flagged().tolist()
    [0, 1, 2]
    >>> coord.weigh(ring).round(2).tolist()     # the ring weighs 0.25 per email in all
    [0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 1.0]
    """

    name = "coordination"
    state_attributes = ("cluster_", "flagged_", "_recent", "_windows")

    def __init__(self, window_ticks: float = 24.0, bucket_ticks: float = 1.0, min_shared: int = 3,
                 min_jaccard: float = 0.05, min_lift: float = 3.0, min_cluster: int = 5,
                 cluster_cap: float = 0.0, every: int = 3):
        if window_ticks <= 0 or bucket_ticks <= 0:
            raise ValueError("window_ticks and bucket_ticks must be positive")
        if min_shared < 1 or min_cluster < 2 or every < 1:
            raise ValueError("min_shared >= 1, min_cluster >= 2 and every >= 1 are required")
        if cluster_cap < 0:
            raise ValueError(f"cluster_cap must be >= 0, got {cluster_cap}")
        self.window_ticks = float(window_ticks)
        self.bucket_ticks = float(bucket_ticks)
        self.min_shared = int(min_shared)
        self.min_jaccard = float(min_jaccard)
        self.min_lift = float(min_lift)
        self.min_cluster = int(min_cluster)
        self.cluster_cap = float(cluster_cap)
        self.every = int(every)
        self.reset()

    def reset(self) -> None:
        self.cluster_ = np.zeros(0, np.int64)       # account -> ring id, -1 for none
        self.flagged_ = np.zeros(0, np.int64)
        self._recent: deque[tuple[float, VoteBatch]] = deque()
        self._windows = 0

    def clusters(self, account: np.ndarray) -> np.ndarray:
        """Ring id of each account (-1 when in no ring)."""
        out = np.full(account.shape[0], -1, np.int64)
        known = account < self.cluster_.shape[0]
        out[known] = self.cluster_[account[known]]
        return out

    def weigh(self, votes: VoteBatch) -> np.ndarray:
        if len(votes) == 0 or not (self.cluster_ >= 0).any():
            return np.ones(len(votes))
        _, local = dense_unique(votes.email)
        return _cluster_cap(self.clusters(votes.account), local, int(local.max()) + 1, self.cluster_cap)

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        if len(votes):
            self._recent.append((now, votes))
        while self._recent and self._recent[0][0] <= now - self.window_ticks:
            self._recent.popleft()
        self._windows += 1
        if self._windows % self.every == 0:
            self._recluster()

    def _recluster(self) -> None:
        if not self._recent:
            return
        account = np.concatenate([v.account for _, v in self._recent])
        email = np.concatenate([v.email for _, v in self._recent])
        verdict = np.concatenate([v.verdict for _, v in self._recent]).astype(np.int64)
        bucket = np.floor(np.concatenate([v.ts for _, v in self._recent]) / self.bucket_ticks).astype(np.int64)
        n_accounts = int(account.max()) + 1
        # One group per (email, verdict, bucket); each account counted once per group.
        _, email_local = dense_unique(email)
        _, bucket_local = dense_unique(bucket - bucket.min())
        group_key = (email_local * 2 + verdict) * (int(bucket_local.max()) + 1) + bucket_local
        pairs = _sorted_unique(group_key * n_accounts + account)
        group, member = pairs // n_accounts, pairs % n_accounts
        size = np.diff(np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1], [True]])))
        start = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
        a, b = _linked_pairs(start, member.astype(np.int64), n_accounts, self.min_shared, self.min_jaccard,
                             self.min_lift)
        component = _components(n_accounts, a, b)
        ring = np.bincount(component, minlength=n_accounts)[component] >= self.min_cluster
        cluster = np.where(ring, component, -1).astype(np.int64)
        # Once in a ring, always capped: an account that has gone quiet (or whose ring
        # now votes less in step) keeps its last ring id.
        known = min(self.cluster_.shape[0], n_accounts)
        old = self.cluster_[:known]
        cluster[:known] = np.where((cluster[:known] < 0) & (old >= 0), old, cluster[:known])
        if self.cluster_.shape[0] > n_accounts:
            cluster = np.concatenate([cluster, self.cluster_[n_accounts:]])
        self.cluster_ = cluster
        if ring.any():
            self.flagged_ = np.union1d(self.flagged_, np.flatnonzero(ring))

    def flagged(self) -> np.ndarray:
        return self.flagged_


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` by one sort (NumPy's hash-based unique is slower here)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.shape[0] else keys
