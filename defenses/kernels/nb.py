"""Naive Bayes prediction kernel: the model's spam decision for many emails at once.

The model is given as in :mod:`defenses.kernels.roni` (counts restricted to a
vocabulary that covers the emails, CSR rows over it), plus ``present[f]``: whether the
model has a non-empty count table for word ``f`` (words it has not, count as unseen).
"""

import math

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _nb_is_spam(ptr: np.ndarray, idx: np.ndarray, cnt: np.ndarray, present: np.ndarray,
                counts: np.ndarray, class_docs: np.ndarray, class_words: np.ndarray,
                n_terms: float, alpha: float):
    """``SpamModel.is_spam`` per email, bit for bit: the same floating-point operations
    in the same order as ``WeightedMultinomialNB.joint_log_likelihood`` (terms summed
    in the row's order, unseen words at ``log alpha``) then ``predict_proba_one``
    (``p_spam = e_spam / (e_ham + e_spam)`` after subtracting the larger score), and
    ``p_spam > 0.5``. Class 0 is not spam, 1 spam; both must have documents."""
    n = ptr.shape[0] - 1
    out = np.empty(n, dtype=np.bool_)
    total_docs = class_docs[0] + class_docs[1]
    log_alpha = math.log(alpha)
    prior0 = math.log(class_docs[0] / total_docs)
    prior1 = math.log(class_docs[1] / total_docs)
    norm0 = math.log(class_words[0] + alpha * n_terms)
    norm1 = math.log(class_words[1] + alpha * n_terms)
    # One logarithm per word and class, not per occurrence (the same values).
    log0 = np.empty(counts.shape[0], dtype=np.float64)
    log1 = np.empty(counts.shape[0], dtype=np.float64)
    for f in range(counts.shape[0]):
        log0[f] = math.log(counts[f, 0] + alpha)
        log1[f] = math.log(counts[f, 1] + alpha)
    for v in range(n):
        s0 = 0.0
        s1 = 0.0
        length = 0.0
        unseen = 0.0
        for k in range(ptr[v], ptr[v + 1]):
            f = idx[k]
            frequency = cnt[k]
            length += frequency
            if not present[f]:
                unseen += frequency
                continue
            s0 += frequency * log0[f]
            s1 += frequency * log1[f]
        jll0 = s0 + unseen * log_alpha + prior0 - length * norm0
        jll1 = s1 + unseen * log_alpha + prior1 - length * norm1
        top = max(jll0, jll1)
        e0 = math.exp(jll0 - top)
        e1 = math.exp(jll1 - top)
        out[v] = e1 / (e0 + e1) > 0.5
    return out
