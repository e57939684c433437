"""Grouping kernels: dense ids to local group indices without a sort."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _dense_unique(ids: np.ndarray, n_max: int):
    """Sorted unique values of ``ids`` (all in ``[0, n_max)``) and each entry's index
    into them: ``np.unique(ids, return_inverse=True)`` in two linear passes over a
    table of ``n_max`` slots, for dense ids where a sort would be the bottleneck."""
    slot = np.full(n_max, -1, dtype=np.int64)
    for i in range(ids.shape[0]):
        slot[ids[i]] = 0
    n = 0
    for v in range(n_max):
        if slot[v] == 0:
            slot[v] = n
            n += 1
    unique = np.empty(n, dtype=np.int64)
    for v in range(n_max):
        if slot[v] >= 0:
            unique[slot[v]] = v
    inverse = np.empty(ids.shape[0], dtype=np.int64)
    for i in range(ids.shape[0]):
        inverse[i] = slot[ids[i]]
    return unique, inverse
