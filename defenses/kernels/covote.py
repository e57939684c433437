"""Co-voting kernels: how often pairs of accounts cast the same vote, and clusters."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _pair_counts(group_start: np.ndarray, member: np.ndarray, n_accounts: int):
    """Pairs of accounts found together in vote groups, and in how many groups.

    ``member[group_start[g]:group_start[g + 1]]`` are the distinct accounts of group
    ``g`` (one group per email, verdict and time bucket). Returns ``(a, b, shared)``
    with ``a < b``, sorted by ``(a, b)``.
    """
    total = 0
    for g in range(group_start.shape[0] - 1):
        m = group_start[g + 1] - group_start[g]
        total += m * (m - 1) // 2
    keys = np.empty(total, dtype=np.int64)
    k = 0
    for g in range(group_start.shape[0] - 1):
        lo = group_start[g]
        hi = group_start[g + 1]
        for i in range(lo, hi):
            for j in range(i + 1, hi):
                x = member[i]
                y = member[j]
                if x > y:
                    x, y = y, x
                keys[k] = x * n_accounts + y
                k += 1
    keys.sort()
    n_unique = 0
    for i in range(total):
        if i == 0 or keys[i] != keys[i - 1]:
            n_unique += 1
    a = np.empty(n_unique, dtype=np.int64)
    b = np.empty(n_unique, dtype=np.int64)
    shared = np.zeros(n_unique, dtype=np.int64)
    u = -1
    for i in range(total):
        if i == 0 or keys[i] != keys[i - 1]:
            u += 1
            a[u] = keys[i] // n_accounts
            b[u] = keys[i] % n_accounts
        shared[u] += 1
    return a, b, shared


@njit(**NJIT_OPTIONS)
def _components(n: int, a: np.ndarray, b: np.ndarray):
    """Connected components of the graph on ``n`` nodes with edges ``(a[i], b[i])``:
    each node's component, named by its smallest node."""
    parent = np.arange(n)
    for i in range(a.shape[0]):
        x = a[i]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        y = b[i]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y
    out = np.empty(n, dtype=np.int64)
    for v in range(n):
        x = v
        while parent[x] != x:
            x = parent[x]
        out[v] = x
    return out


@njit(**NJIT_OPTIONS)
def _cluster_cap(cluster: np.ndarray, email: np.ndarray, n_emails: int, cap: float):
    """Weight per vote so that each cluster's votes on an email weigh ``cap`` in
    total: ``min(1, cap / votes of the cluster on the email)``; votes outside any
    cluster (``cluster < 0``) keep weight 1."""
    n = cluster.shape[0]
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        keys[i] = cluster[i] * n_emails + email[i] if cluster[i] >= 0 else -1
    order = np.argsort(keys, kind="mergesort")
    out = np.ones(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j < n and keys[order[j]] == keys[order[i]]:
            j += 1
        if keys[order[i]] >= 0:
            w = cap / (j - i)
            if w > 1.0:
                w = 1.0
            for k in range(i, j):
                out[order[k]] = w
        i = j
    return out
