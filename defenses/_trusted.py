"""The trusted validation set as arrays, and the model's counts over its words (private).

RONI and rollback both look at the model through the validation set of the
:class:`~defenses.context.DefenseContext`; both get it here as sparse rows over the
set's own vocabulary (built once per set) and read the model's counts for that
vocabulary once per call instead of once per word per email. The model snapshots the
context keeps for rollback are made here too (:func:`freeze`, :func:`thaw`).
"""

from __future__ import annotations

import math
import pickle
from collections import defaultdict
from dataclasses import dataclass
from itertools import repeat

import numpy as np

SPAM_CLASS, HAM_CLASS = True, False
_EMPTY: dict = {}   # read-only stand-in for a word the model lacks


def csr(rows: list[dict | None], vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse rows over ``vocabulary`` (other words dropped) and each row's full length.

    >>> ptr, idx, cnt, length = csr([{"a": 2, "zz": 1}, None], {"a": 0})
    >>> ptr.tolist(), idx.tolist(), cnt.tolist(), length.tolist()
    ([0, 1, 1], [0], [2.0], [3.0, 0.0])
    """
    ptr, idx, cnt, length = [0], [], [], []
    for features in rows:
        features = features or {}
        total = 0.0
        for word, n in features.items():
            total += n
            j = vocabulary.get(word)
            if j is not None:
                idx.append(j)
                cnt.append(float(n))
        ptr.append(len(idx))
        length.append(total)
    return (np.array(ptr, np.int64), np.array(idx, np.int64), np.array(cnt, np.float64),
            np.array(length, np.float64))


@dataclass(frozen=True)
class ModelCounts:
    """A multinomial naive Bayes model restricted to a vocabulary: ``counts[f, c]``
    (class 0 not spam, 1 spam), ``present[f]`` (the model has a non-empty count table
    for word ``f``), documents and words per class, and the model's vocabulary size."""

    counts: np.ndarray
    present: np.ndarray
    docs: np.ndarray
    words_per_class: np.ndarray
    n_terms: float


@dataclass(frozen=True)
class TrustedSet:
    """Validation rows ``(features, is_spam)`` as CSR arrays over their vocabulary.

    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> model.learn(model.features("win cash"), True)
    >>> model.learn(model.features("lunch at noon"), False)
    >>> trusted = TrustedSet.of([(model.features("win lunch"), True)])
    >>> trusted.words, trusted.y.tolist()
    (['win', 'lunch'], [1])
    >>> trusted.model_counts(model.nb).counts.tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """

    size: int
    vocabulary: dict[str, int]
    words: list[str]
    ptr: np.ndarray
    idx: np.ndarray
    cnt: np.ndarray
    length: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, rows: list[tuple[dict, bool]]) -> TrustedSet:
        vocabulary: dict[str, int] = {}
        for features, _ in rows:
            for word in features:
                vocabulary.setdefault(word, len(vocabulary))
        ptr, idx, cnt, length = csr([f for f, _ in rows], vocabulary)
        y = np.array([int(bool(s)) for _, s in rows], dtype=np.int64)
        return cls(len(rows), vocabulary, list(vocabulary), ptr, idx, cnt, length, y)

    def model_counts(self, nb) -> ModelCounts:
        """The counts of ``nb`` (a River ``MultinomialNB``) over this set's vocabulary."""
        counts, present = self.read_rows(nb)
        return model_counts_of(nb, counts, present)

    def read_rows(self, nb) -> tuple[np.ndarray, np.ndarray]:
        """``counts`` and ``present`` of :class:`ModelCounts`, every word read from ``nb``."""
        # C-level passes (map over dict.get) rather than a Python loop per word; a word
        # the model lacks reads as an empty table (dict.get never inserts into the
        # model's defaultdict).
        n = len(self.words)
        found = list(map(nb.feature_counts.get, self.words, repeat(_EMPTY, n)))
        counts = np.empty((n, 2))
        counts[:, 0] = np.fromiter(map(dict.get, found, repeat(HAM_CLASS, n), repeat(0.0, n)), np.float64, n)
        counts[:, 1] = np.fromiter(map(dict.get, found, repeat(SPAM_CLASS, n), repeat(0.0, n)), np.float64, n)
        present = np.fromiter(map(bool, found), np.bool_, n)
        return counts, present


def model_counts_of(nb, counts: np.ndarray, present: np.ndarray) -> ModelCounts:
    """:class:`ModelCounts` of the given rows and ``nb``'s class-level figures."""
    docs = np.array([nb.class_counts.get(HAM_CLASS, 0.0), nb.class_counts.get(SPAM_CLASS, 0.0)])
    words_per_class = np.array([nb.class_totals.get(HAM_CLASS, 0.0), nb.class_totals.get(SPAM_CLASS, 0.0)])
    return ModelCounts(counts, present, docs, words_per_class, float(len(nb.feature_counts)))


class CountsReader:
    """:meth:`TrustedSet.model_counts` of a :class:`~stream.classifier.SpamModel`, kept up
    to date instead of re-read: after the first read only the rows of the words the model
    changed since (:meth:`SpamModel.watch <stream.classifier.SpamModel.watch>`) are read
    again; a restored model (a new ``nb``) is read in full. Every call returns fresh
    arrays, equal to a full read.

    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> model.learn(model.features("win cash"), True)
    >>> model.learn(model.features("lunch at noon"), False)
    >>> trusted = TrustedSet.of([(model.features("win lunch soon"), True)])
    >>> reader = CountsReader(trusted, model)
    >>> reader.read().counts.tolist()
    [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    >>> model.learn(model.features("lunch soon"), True)
    >>> m = reader.read()
    >>> m.counts.tolist(), m.present.tolist(), m.docs.tolist()
    ([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0]], [True, True, True], [1.0, 2.0])
    """

    def __init__(self, trusted: TrustedSet, model):
        self.trusted = trusted
        self.model = model
        watch = getattr(model, "watch", None)         # a model without it is read in full
        self._changes = watch() if watch is not None else None
        self._nb = None
        self._counts = self._present = None

    def read(self) -> ModelCounts:
        nb = self.model.nb
        changed = self._changes.take() if self._changes is not None else None
        if changed is None or nb is not self._nb:
            self._counts, self._present = self.trusted.read_rows(nb)
            self._nb = nb
        elif changed:
            counts, present, vocabulary = self._counts, self._present, self.trusted.vocabulary
            feature_counts = nb.feature_counts
            for word in changed:
                j = vocabulary.get(word)
                if j is not None:
                    table = feature_counts.get(word, _EMPTY)
                    counts[j, 0] = table.get(HAM_CLASS, 0.0)
                    counts[j, 1] = table.get(SPAM_CLASS, 0.0)
                    present[j] = bool(table)
        return model_counts_of(nb, self._counts.copy(), self._present.copy())


def trusted_set(validation: list, cached: TrustedSet | None) -> TrustedSet:
    """``cached`` while the validation set keeps its size, else a new :class:`TrustedSet`."""
    if cached is None or cached.size != len(validation):
        return TrustedSet.of(validation)
    return cached


# -- model snapshots (kept by the DefenseContext for rollback) -----------------------------
_NB_STATE = {"alpha", "class_counts", "feature_counts", "class_totals"}
_FIRST_KEY = {False: 0, True: 1, None: 2}      # which class a word's count table holds first


def freeze(model) -> tuple | bytes:
    """A snapshot of the model's naive Bayes state as arrays, several times cheaper than
    :meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>` (pickling runs
    ``Counter.__reduce__`` in Python for every word) and keeping no per-word objects
    alive (thousands of dicts per snapshot set off full garbage collections of a large
    heap). :func:`thaw` turns it into the very bytes ``snapshot`` would have given,
    only when a rollback needs it. A model of another shape is snapshotted the usual way.

    >>> from stream.classifier import SpamModel
    >>> model = SpamModel()
    >>> model.learn(model.features("win cash now"), True, 0.5)
    >>> model.learn(model.features("cash at lunch"), False)
    >>> frozen, before = freeze(model), model.snapshot()
    >>> model.learn(model.features("lunch"), False)
    >>> thaw(frozen) == before
    True
    """
    nb = model.nb
    fc = nb.feature_counts
    if set(vars(nb)) != _NB_STATE or type(fc) is not defaultdict:
        return model.snapshot()
    tables = list(fc.values())
    n = len(tables)
    nan = float("nan")
    ham = np.fromiter(map(dict.get, tables, repeat(False, n), repeat(nan, n)), np.float64, n)
    spam = np.fromiter(map(dict.get, tables, repeat(True, n), repeat(nan, n)), np.float64, n)
    first = np.fromiter(map(_FIRST_KEY.get, map(next, map(iter, tables), repeat(None, n))), np.int8, n)
    held = np.fromiter(map(len, tables), np.int64, n)
    if (held != (~np.isnan(ham)).astype(np.int64) + (~np.isnan(spam)).astype(np.int64)).any():
        return model.snapshot()                 # keys other than the two classes: not ours to copy
    return (type(nb), nb.alpha, (type(nb.class_counts), dict(nb.class_counts)),
            (type(nb.class_totals), dict(nb.class_totals)), fc.default_factory, list(fc.keys()), ham, spam, first)


def thaw(frozen: tuple | bytes) -> bytes:
    """The :meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>` bytes of a
    :func:`freeze` d state (same classes, contents and insertion orders)."""
    if isinstance(frozen, bytes):
        return frozen
    cls, alpha, (counts_type, counts), (totals_type, totals), factory, words, ham, spam, first = frozen
    nb = cls.__new__(cls)
    nb.alpha = alpha
    nb.class_counts = counts_type(counts)
    feature_counts = defaultdict(factory)
    for word, h, s, f in zip(words, ham.tolist(), spam.tolist(), first.tolist()):
        table = feature_counts[word]
        for key, value in ((False, h), (True, s)) if f == 0 else ((True, s), (False, h)):
            if not math.isnan(value):           # NaN: the class is not in the table
                table[key] = value
    nb.feature_counts = feature_counts
    nb.class_totals = totals_type(totals)
    return pickle.dumps(nb, protocol=pickle.HIGHEST_PROTOCOL)
