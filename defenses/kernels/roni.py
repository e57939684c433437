"""RONI kernels: the exact effect of one weighted training label on a multinomial
naive Bayes model's log loss over a validation set, without retraining.

The model is described by its counts restricted to the validation vocabulary:
``counts[f, c]`` (word ``f``, class ``c``; 0 not spam, 1 spam), ``class_docs[c]``,
``class_words[c]``, ``n_terms`` (vocabulary size) and the smoothing ``alpha``. Sparse
emails are CSR triples ``(ptr, idx, cnt)`` over that vocabulary.
"""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _nb_jll(ptr: np.ndarray, idx: np.ndarray, cnt: np.ndarray, length: np.ndarray,
            counts: np.ndarray, class_docs: np.ndarray, class_words: np.ndarray,
            n_terms: float, alpha: float):
    """Joint log likelihood per email and class, as River's MultinomialNB computes it."""
    n = ptr.shape[0] - 1
    out = np.empty((n, 2), dtype=np.float64)
    docs = class_docs[0] + class_docs[1]
    logs = np.empty(counts.shape[0], dtype=np.float64)
    for c in range(2):
        base = np.log(class_docs[c] / docs)
        norm = np.log(class_words[c] + alpha * n_terms)
        for f in range(counts.shape[0]):       # one logarithm per word, not per occurrence
            logs[f] = np.log(counts[f, c] + alpha)
        for v in range(n):
            s = base - length[v] * norm
            for k in range(ptr[v], ptr[v + 1]):
                s += cnt[k] * logs[idx[k]]
            out[v, c] = s
    return out


@njit(**NJIT_OPTIONS)
def _log_loss(jll: np.ndarray, y: np.ndarray):
    """Mean negative log probability of the true class."""
    total = 0.0
    for v in range(jll.shape[0]):
        m = max(jll[v, 0], jll[v, 1])
        lse = m + np.log(np.exp(jll[v, 0] - m) + np.exp(jll[v, 1] - m))
        total += lse - jll[v, y[v]]
    return total / jll.shape[0] if jll.shape[0] else 0.0


@njit(**NJIT_OPTIONS)
def _label_impact(v_ptr: np.ndarray, v_idx: np.ndarray, v_cnt: np.ndarray, v_len: np.ndarray,
                  v_y: np.ndarray, jll: np.ndarray, counts: np.ndarray, class_docs: np.ndarray,
                  class_words: np.ndarray, n_terms: float, alpha: float,
                  c_ptr: np.ndarray, c_idx: np.ndarray, c_cnt: np.ndarray, c_len: np.ndarray,
                  c_new: np.ndarray, c_label: np.ndarray, c_weight: np.ndarray):
    """Change of the validation log loss if each candidate label alone were learned.

    Candidate ``j`` is an email (CSR row over the validation vocabulary; ``c_len`` its
    total word count, ``c_new`` how many of its words the model has never seen) with
    label ``c_label[j]`` and weight ``c_weight[j]``. ``jll`` is :func:`_nb_jll` of the
    validation set under the current counts. Positive means the label hurts.
    """
    n_val = v_ptr.shape[0] - 1
    n_cand = c_ptr.shape[0] - 1
    dense = np.zeros(counts.shape[0], dtype=np.float64)
    base = _log_loss(jll, v_y)
    out = np.zeros(n_cand, dtype=np.float64)
    docs = class_docs[0] + class_docs[1]
    after = np.empty((n_val, 2), dtype=np.float64)
    for j in range(n_cand):
        y = c_label[j]
        w = c_weight[j]
        for k in range(c_ptr[j], c_ptr[j + 1]):
            dense[c_idx[k]] += c_cnt[k]
        terms = n_terms + c_new[j]
        shift = np.zeros(2, dtype=np.float64)   # prior and normalizer change per class, per word of length
        for c in range(2):
            docs_c = class_docs[c] + (w if c == y else 0.0)
            words_c = class_words[c] + (w * c_len[j] if c == y else 0.0)
            shift[c] = (np.log(docs_c / (docs + w)) - np.log(class_docs[c] / docs))
            norm_old = np.log(class_words[c] + alpha * n_terms)
            norm_new = np.log(words_c + alpha * terms)
            for v in range(n_val):
                after[v, c] = jll[v, c] + shift[c] - v_len[v] * (norm_new - norm_old)
        for v in range(n_val):
            d = 0.0
            for k in range(v_ptr[v], v_ptr[v + 1]):
                x = dense[v_idx[k]]
                if x > 0.0:
                    f = v_idx[k]
                    d += v_cnt[k] * (np.log(counts[f, y] + w * x + alpha) - np.log(counts[f, y] + alpha))
            after[v, y] += d
        out[j] = _log_loss(after, v_y) - base
        for k in range(c_ptr[j], c_ptr[j + 1]):
            dense[c_idx[k]] = 0.0
    return out
