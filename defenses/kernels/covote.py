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

    The work is split by how often an account votes. *Heavy* accounts (in many groups:
    a ring's bots) get a bitset of their groups, and every pair of them is counted by
    ``popcount(bits_a & bits_b)``: a ring of ``m`` bots costs ``m² / 2`` word operations
    per 64 groups instead of one increment per co-occurrence (``m² / 2`` per group). The
    other accounts are counted account by account: each walks its groups and counts
    every later member in a dense scratch row. Bitsets are used only when they cost
    less than the increments they replace.
    """
    n_groups = group_start.shape[0] - 1
    member = _sorted_within_groups(group_start, member)
    heavy = _heavy_accounts(group_start, member, n_accounts)
    # Each group's members reordered: its light accounts, then its heavy ones (each ascending).
    part = np.empty(member.shape[0], dtype=np.int64)
    group_of = np.empty(member.shape[0], dtype=np.int64)
    for g in range(n_groups):
        w = group_start[g]
        for light_pass in (True, False):
            for i in range(group_start[g], group_start[g + 1]):
                if heavy[member[i]] != light_pass:
                    part[w] = member[i]
                    group_of[w] = g
                    w += 1
    light = _sorted_pairs(_light_pairs(group_start, part, group_of, heavy, n_accounts, _pair_buffer(1024)),
                          n_accounts)
    a, b, shared, used = _heavy_pairs(group_start, member, heavy, n_accounts, _pair_buffer(1024))
    return _merged(light, (a[:used], b[:used], shared[:used]))


@njit(**NJIT_OPTIONS)
def _linked_pairs(group_start: np.ndarray, member: np.ndarray, n_accounts: int, min_shared: int,
                  min_jaccard: float, min_lift: float):
    """The pairs of :func:`_pair_counts` that co-vote far more than chance: at least
    ``min_shared`` shared groups, a Jaccard similarity ``shared / (n_a + n_b - shared)``
    of at least ``min_jaccard`` (``n_a``: groups of ``a``) and ``shared`` at least
    ``min_lift`` times the chance level ``n_a n_b / groups``. Returns ``(a, b)``, sorted."""
    a, b, shared = _pair_counts(group_start, member, n_accounts)
    degree = np.zeros(n_accounts, dtype=np.float64)
    for i in range(member.shape[0]):
        degree[member[i]] += 1.0
    n_groups = float(group_start.shape[0] - 1)
    keep = np.zeros(a.shape[0], dtype=np.bool_)
    for k in range(a.shape[0]):
        s = float(shared[k])
        n_a = degree[a[k]]
        n_b = degree[b[k]]
        keep[k] = (shared[k] >= min_shared and s / (n_a + n_b - s) >= min_jaccard
                   and s >= min_lift * (n_a * n_b / n_groups))
    return a[keep], b[keep]


@njit(**NJIT_OPTIONS)
def _pair_buffer(capacity: int):
    """``(a, b, shared, used)``: growable output arrays of pairs."""
    return (np.empty(capacity, dtype=np.int64), np.empty(capacity, dtype=np.int64),
            np.empty(capacity, dtype=np.int64), 0)


@njit(**NJIT_OPTIONS)
def _reserve(pairs, extra: int):
    """``pairs`` with room for ``extra`` more entries."""
    a, b, shared, used = pairs
    if used + extra <= a.shape[0]:
        return pairs
    capacity = a.shape[0]
    while used + extra > capacity:
        capacity *= 2
    return _grown(a, used, capacity), _grown(b, used, capacity), _grown(shared, used, capacity), used


@njit(**NJIT_OPTIONS)
def _grown(values: np.ndarray, used: int, capacity: int):
    out = np.empty(capacity, dtype=values.dtype)
    out[:used] = values[:used]
    return out


@njit(**NJIT_OPTIONS)
def _sorted_within_groups(group_start: np.ndarray, member: np.ndarray):
    """``member`` with every group's accounts ascending (itself when they already are)."""
    for g in range(group_start.shape[0] - 1):
        for i in range(group_start[g] + 1, group_start[g + 1]):
            if member[i - 1] > member[i]:
                out = member.copy()
                for h in range(group_start.shape[0] - 1):
                    out[group_start[h]:group_start[h + 1]].sort()
                return out
    return member


@njit(**NJIT_OPTIONS)
def _heavy_accounts(group_start: np.ndarray, member: np.ndarray, n_accounts: int):
    """Accounts worth a bitset: in at least twice as many groups as a bitset has words,
    and only when all their pairs by bitset cost less than their co-occurrences."""
    n_groups = group_start.shape[0] - 1
    degree = np.zeros(n_accounts, dtype=np.int64)
    for i in range(member.shape[0]):
        degree[member[i]] += 1
    heavy = degree >= max(2 * ((n_groups + 63) // 64), 8)
    n_heavy = 0
    for x in range(n_accounts):
        if heavy[x]:
            n_heavy += 1
    co_occurrences = 0
    for g in range(n_groups):
        h = 0
        for i in range(group_start[g], group_start[g + 1]):
            if heavy[member[i]]:
                h += 1
        co_occurrences += h * (h - 1) // 2
    if n_heavy < 2 or n_heavy * (n_heavy - 1) // 2 * ((n_groups + 63) // 64) >= co_occurrences:
        heavy[:] = False
    return heavy


@njit(**NJIT_OPTIONS)
def _light_pairs(group_start: np.ndarray, part: np.ndarray, group_of: np.ndarray, heavy: np.ndarray,
                 n_accounts: int, pairs):
    """Pairs with at least one light account, counted from the light side: for each
    light ``x``, every later member of each of its groups (``part`` puts a group's light
    accounts first, ascending, then its heavy ones, so that is the later light accounts
    and all heavy ones)."""
    n = part.shape[0]
    first = np.zeros(n_accounts + 1, dtype=np.int64)
    for i in range(n):
        if not heavy[part[i]]:
            first[part[i] + 1] += 1
    for x in range(n_accounts):
        first[x + 1] += first[x]
    fill = first[:-1].copy()
    position = np.empty(first[n_accounts], dtype=np.int64)
    for i in range(n):
        x = part[i]
        if not heavy[x]:
            position[fill[x]] = i
            fill[x] += 1
    scratch = np.zeros(n_accounts, dtype=np.int64)
    touched = np.empty(n_accounts, dtype=np.int64)
    for x in range(n_accounts):
        n_touched = 0
        for p in range(first[x], first[x + 1]):
            i = position[p]
            for j in range(i + 1, group_start[group_of[i] + 1]):
                y = part[j]
                if scratch[y] == 0:
                    touched[n_touched] = y
                    n_touched += 1
                scratch[y] += 1
        pairs = _reserve(pairs, n_touched)
        a, b, shared, used = pairs
        for k in range(n_touched):
            y = touched[k]
            a[used] = min(x, y)
            b[used] = max(x, y)
            shared[used] = scratch[y]
            scratch[y] = 0
            used += 1
        pairs = (a, b, shared, used)
    return pairs


@njit(**NJIT_OPTIONS)
def _popcount(x):
    """Set bits of a uint64 (SWAR; LLVM turns it into one instruction where it can)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(**NJIT_OPTIONS)
def _heavy_pairs(group_start: np.ndarray, member: np.ndarray, heavy: np.ndarray, n_accounts: int, pairs):
    """Pairs of heavy accounts sharing at least one group, by bitset intersection over
    the groups that hold two heavy accounts or more."""
    n_groups = group_start.shape[0] - 1
    ids = np.full(n_accounts, -1, dtype=np.int64)
    n_heavy = 0
    for x in range(n_accounts):
        if heavy[x]:
            ids[x] = n_heavy
            n_heavy += 1
    if n_heavy < 2:
        return pairs
    accounts = np.flatnonzero(heavy)
    column = np.full(n_groups, -1, dtype=np.int64)
    n_columns = 0
    for g in range(n_groups):
        h = 0
        for i in range(group_start[g], group_start[g + 1]):
            if heavy[member[i]]:
                h += 1
        if h >= 2:
            column[g] = n_columns
            n_columns += 1
    n_words = (n_columns + 63) // 64
    bits = np.zeros((n_heavy, max(n_words, 1)), dtype=np.uint64)
    for g in range(n_groups):
        c = column[g]
        if c >= 0:
            for i in range(group_start[g], group_start[g + 1]):
                h = ids[member[i]]
                if h >= 0:
                    bits[h, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
    for h1 in range(n_heavy):
        pairs = _reserve(pairs, n_heavy - h1 - 1)
        a, b, shared, used = pairs
        for h2 in range(h1 + 1, n_heavy):
            count = np.uint64(0)
            for w in range(n_words):
                count += _popcount(bits[h1, w] & bits[h2, w])
            if count > 0:
                a[used] = accounts[h1]
                b[used] = accounts[h2]
                shared[used] = count
                used += 1
        pairs = (a, b, shared, used)
    return pairs


@njit(**NJIT_OPTIONS)
def _sorted_pairs(pairs, n_accounts: int):
    """The pairs of a buffer as ``(a, b, shared)`` sorted by ``(a, b)``."""
    a, b, shared, used = pairs
    order = np.argsort(a[:used] * n_accounts + b[:used])
    return a[:used][order], b[:used][order], shared[:used][order]


@njit(**NJIT_OPTIONS)
def _merged(x, y):
    """Two lists of distinct pairs, each sorted by ``(a, b)``, merged in that order."""
    xa, xb, xs = x
    ya, yb, ys = y
    n = xa.shape[0] + ya.shape[0]
    a = np.empty(n, dtype=np.int64)
    b = np.empty(n, dtype=np.int64)
    shared = np.empty(n, dtype=np.int64)
    i = 0
    j = 0
    for k in range(n):
        if j >= ya.shape[0] or (i < xa.shape[0] and (xa[i] < ya[j] or (xa[i] == ya[j] and xb[i] < yb[j]))):
            a[k], b[k], shared[k] = xa[i], xb[i], xs[i]
            i += 1
        else:
            a[k], b[k], shared[k] = ya[j], yb[j], ys[j]
            j += 1
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
