"""Influence kernels: how much of a window's training signal each group of voters carries."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _contribution(group: np.ndarray, email: np.ndarray, weight: np.ndarray, agree: np.ndarray,
                  winner: np.ndarray, label_weight: np.ndarray, n_groups: int):
    """Label weight each group carries: every agreeing vote owns its share
    ``weight / winner[email]`` of its email's label weight."""
    out = np.zeros(n_groups, dtype=np.float64)
    for i in range(group.shape[0]):
        e = email[i]
        if agree[i] == 1 and winner[e] > 0.0:
            out[group[i]] += weight[i] / winner[e] * label_weight[e]
    return out


@njit(**NJIT_OPTIONS)
def _retained(group: np.ndarray, email: np.ndarray, weight: np.ndarray, agree: np.ndarray,
              winner: np.ndarray, factor: np.ndarray, n_emails: int):
    """Share of each email's label that survives when every group's part of it is
    scaled by ``factor[group]`` (1 for emails without a label)."""
    out = np.zeros(n_emails, dtype=np.float64)
    for i in range(group.shape[0]):
        e = email[i]
        if agree[i] == 1 and winner[e] > 0.0:
            out[e] += weight[i] / winner[e] * factor[group[i]]
    for e in range(n_emails):
        if winner[e] <= 0.0:
            out[e] = 1.0
        elif out[e] > 1.0:
            out[e] = 1.0
    return out
