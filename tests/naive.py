"""Slow, obviously correct NumPy references for the Numba kernels."""

import numpy as np


def tally(email, verdict, weight, n_emails):
    spam = np.zeros(n_emails)
    ham = np.zeros(n_emails)
    for e in range(n_emails):
        mask = email == e
        spam[e] = weight[mask & (verdict == 1)].sum()
        ham[e] = weight[mask & (verdict == 0)].sum()
    count = np.array([(email == e).sum() for e in range(n_emails)], dtype=np.int64)
    return spam, ham, count


def decide(spam, ham, count, min_weight, margin, min_votes):
    total = spam + ham
    label = (spam >= ham).astype(np.int8)
    top = np.maximum(spam, ham)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_gap = np.abs(spam - ham) / total
        confidence = top / total
    decided = (total > 0) & (count >= min_votes) & (top >= min_weight) & (share_gap >= margin)
    label = np.where(total > 0, label, 0).astype(np.int8)
    label[(total <= 0) | (count < min_votes)] = 0
    return decided, label, np.where(decided, top, 0.0), np.where(decided, confidence, 0.0)


def agreement(email, verdict, decided, label):
    return np.where(decided[email], (verdict == label[email]).astype(np.int8), -1).astype(np.int8)


def trust_weight(alpha, beta, account, prior_alpha, prior_beta):
    a = alpha[account] + prior_alpha
    mean = a / (a + beta[account] + prior_beta)
    return np.clip(2 * mean - 1, 0, None)


def beta_update(alpha, beta, account, agree, amount):
    alpha, beta = alpha.copy(), beta.copy()
    np.add.at(alpha, account[agree == 1], amount)
    np.add.at(beta, account[agree == 0], amount)
    return alpha, beta
