"""Beta-reputation kernels: trust weights and evidence updates."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _trust_weight(alpha: np.ndarray, beta: np.ndarray, account: np.ndarray,
                  prior_alpha: np.ndarray, prior_beta: np.ndarray):
    """Vote weight per vote from its account's Beta reputation.

    ``alpha`` and ``beta`` hold each account's evidence; ``prior_alpha`` and
    ``prior_beta`` the prior of each vote (it depends on the account's age). The
    weight is ``max(0, 2 * mean - 1)``: an account whose mean trust is no better than
    a coin flip carries no weight.
    """
    out = np.empty(account.shape[0], dtype=np.float64)
    for i in range(account.shape[0]):
        a = alpha[account[i]] + prior_alpha[i]
        mean = a / (a + beta[account[i]] + prior_beta[i])
        w = 2.0 * mean - 1.0
        out[i] = w if w > 0.0 else 0.0
    return out


@njit(**NJIT_OPTIONS)
def _beta_update(alpha: np.ndarray, beta: np.ndarray, account: np.ndarray,
                 agree: np.ndarray, amount: float):
    """Add ``amount`` of evidence per vote, in place: to alpha when the vote agreed
    with the settled outcome (``agree == 1``), to beta when it did not (``0``);
    unsettled votes (``-1``) change nothing."""
    for i in range(account.shape[0]):
        if agree[i] == 1:
            alpha[account[i]] += amount
        elif agree[i] == 0:
            beta[account[i]] += amount


@njit(**NJIT_OPTIONS)
def _score_known(alpha: np.ndarray, beta: np.ndarray, account: np.ndarray, email: np.ndarray,
                 verdict: np.ndarray, known: np.ndarray, truth: np.ndarray, first: int, amount: float):
    """:func:`_beta_update` of votes against known labels, in place and in one pass: a
    vote on an email ``e`` with ``known[e - first]`` adds ``amount`` to alpha when its
    verdict is ``truth[e - first]``, to beta when not; votes on other emails change
    nothing."""
    n_known = known.shape[0]
    for i in range(account.shape[0]):
        e = email[i] - first
        if 0 <= e < n_known and known[e]:
            if verdict[i] == truth[e]:
                alpha[account[i]] += amount
            else:
                beta[account[i]] += amount
