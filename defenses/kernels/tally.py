"""Per-email weighted vote tallies."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _tally(email: np.ndarray, verdict: np.ndarray, weight: np.ndarray, n_emails: int):
    """Sum vote weights per email and verdict; count votes per email.

    ``email`` holds local indices in ``[0, n_emails)``, ``verdict`` is 1 for spam and 0
    for not-spam. Returns ``(spam_weight, ham_weight, n_votes)``.
    """
    spam = np.zeros(n_emails, dtype=np.float64)
    ham = np.zeros(n_emails, dtype=np.float64)
    count = np.zeros(n_emails, dtype=np.int64)
    for i in range(email.shape[0]):
        e = email[i]
        count[e] += 1
        if verdict[i] == 1:
            spam[e] += weight[i]
        else:
            ham[e] += weight[i]
    return spam, ham, count


@njit(**NJIT_OPTIONS)
def _decide(spam: np.ndarray, ham: np.ndarray, count: np.ndarray, min_weight: float,
            margin: float, min_votes: int):
    """Pick a verdict per email from its tallies.

    An email is decided when its winning weight reaches ``min_weight``, it has at
    least ``min_votes`` votes and ``|spam - ham| / (spam + ham) >= margin``.
    Returns ``(decided, label, winner_weight, confidence)`` where ``label`` is 1 for
    spam and ``confidence`` is the winner's share of the weight.
    """
    n = spam.shape[0]
    decided = np.zeros(n, dtype=np.bool_)
    label = np.zeros(n, dtype=np.int8)
    winner = np.zeros(n, dtype=np.float64)
    confidence = np.zeros(n, dtype=np.float64)
    for e in range(n):
        total = spam[e] + ham[e]
        if total <= 0.0 or count[e] < min_votes:
            continue
        if spam[e] >= ham[e]:
            top = spam[e]
            label[e] = 1
        else:
            top = ham[e]
        if top < min_weight or abs(spam[e] - ham[e]) / total < margin:
            continue
        decided[e] = True
        winner[e] = top
        confidence[e] = top / total
    return decided, label, winner, confidence


@njit(**NJIT_OPTIONS)
def _agreement(email: np.ndarray, verdict: np.ndarray, decided: np.ndarray, label: np.ndarray):
    """Per vote: 1 if it agrees with its email's decided label, 0 if not, -1 if undecided."""
    out = np.empty(email.shape[0], dtype=np.int8)
    for i in range(email.shape[0]):
        e = email[i]
        if not decided[e]:
            out[i] = -1
        elif verdict[i] == label[e]:
            out[i] = 1
        else:
            out[i] = 0
    return out
