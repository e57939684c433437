"""The online spam classifier: a River bag-of-words → Multinomial NB pipeline.

Features are extracted once per email (:class:`FeatureCache`) and reused for
filtering, learning and evaluation. Labels carry weights, so the naive Bayes
counts are updated by ``weight`` instead of 1; a weight of 1 is exactly River's
own ``learn_one``.
"""

from __future__ import annotations

import math
import pickle
import re
import weakref
from collections import Counter, OrderedDict

import numpy as np

from stream.river_parts import BagOfWords, MultinomialNB, Pipeline

SPAM_LABEL, HAM_LABEL = True, False


class WeightedMultinomialNB(MultinomialNB):
    """River's MultinomialNB whose ``learn_one`` accepts a sample weight ``w``.

    >>> nb = WeightedMultinomialNB()
    >>> nb.learn_one({"win": 2}, True, w=3.0)
    >>> nb.class_counts[True], nb.feature_counts["win"][True]
    (3.0, 6.0)
    """

    def learn_one(self, x, y, w: float = 1.0):
        self.class_counts[y] = self.class_counts.get(y, 0.0) + w
        feature_counts = self.feature_counts
        total = 0.0
        for f, frequency in x.items():
            counts = feature_counts[f]
            counts[y] = counts.get(y, 0.0) + w * frequency
            total += frequency
        self.class_totals[y] = self.class_totals.get(y, 0.0) + w * total

    def joint_log_likelihood(self, x):
        """Same value as River's, computed with one log per term and class and the
        per-class normalizers hoisted out of the loop (River recomputes them per term)."""
        alpha = self.alpha
        classes = list(self.class_counts)
        n_terms = len(self.feature_counts)
        total_docs = sum(self.class_counts.values())
        feature_counts = self.feature_counts
        log = math.log
        scores = [0.0] * len(classes)
        length = 0
        unseen = 0
        for f, frequency in x.items():
            length += frequency
            counts = feature_counts.get(f)
            if not counts:
                unseen += frequency
                continue
            for i, c in enumerate(classes):
                scores[i] += frequency * log(counts.get(c, 0.0) + alpha)
        log_alpha = log(alpha)
        return {
            c: scores[i] + unseen * log_alpha + log(self.class_counts[c] / total_docs)
            - length * log(self.class_totals.get(c, 0.0) + alpha * n_terms)
            for i, c in enumerate(classes)
        }

    def predict_proba_one(self, x):
        jll = self.joint_log_likelihood(x)
        if not jll:
            return {}
        top = max(jll.values())
        exp = {c: math.exp(v - top) for c, v in jll.items()}
        total = sum(exp.values())
        return {c: v / total for c, v in exp.items()}


class SpamModel:
    """Bag of words → weighted Multinomial NB, with snapshots.

    Scoring and feature extraction give exactly River's values, faster: features come
    from the vectorizer's own pattern in one ``findall`` (the same tokens, in the same
    order, as ``BagOfWords.transform_one``), and ``p_spam`` reuses each term's
    ``log(count + alpha)`` per class across emails, recomputing it only when a
    :meth:`learn` changes that term's counts (the sums run in River's order, so every
    probability is bit-identical). Change the model only through :meth:`learn` and
    :meth:`restore`: readers that keep their own copy of some counts follow the
    changes through :meth:`watch`.

    >>> m = SpamModel()
    >>> m.learn(m.features("win money now"), True)
    >>> m.learn(m.features("meeting notes attached"), False)
    >>> m.is_spam(m.features("win now"))
    True
    >>> m.p_spam(m.features("win notes")) == m.nb.predict_proba_one(m.features("win notes"))[True]
    True
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha
        self.vectorizer = BagOfWords(lowercase=True, strip_accents=False)
        self.nb = WeightedMultinomialNB(alpha=alpha)
        self._tokens = _plain_tokenizer(self.vectorizer)
        self._logs: dict[str, tuple[float, ...]] = {}      # term → log(count + alpha) per class
        self._logs_nb, self._logs_classes, self._logs_alpha = None, (), None   # what the logs are for
        self._watchers: list[weakref.ref] = []              # ChangedWords handed out by watch()

    @property
    def pipeline(self) -> Pipeline:
        """The model as one River pipeline (text in, spam probability out)."""
        return Pipeline(self.vectorizer, self.nb)

    def features(self, text: str) -> dict[str, int]:
        if self._tokens is None:
            return self.vectorizer.transform_one(text)
        return dict(Counter(self._tokens(text.lower())))

    def p_spam(self, features: dict[str, int]) -> float:
        if len(self.nb.class_counts) < 2:
            return 0.5 if not self.nb.class_counts else float(SPAM_LABEL in self.nb.class_counts)
        jll = self._joint_log_likelihood(features)
        # WeightedMultinomialNB.predict_proba_one, step by step.
        top = max(jll.values())
        exp = {c: math.exp(v - top) for c, v in jll.items()}
        total = sum(exp.values())
        return exp[SPAM_LABEL] / total if SPAM_LABEL in exp else 0.0

    def _joint_log_likelihood(self, x: dict[str, int]) -> dict:
        """:meth:`WeightedMultinomialNB.joint_log_likelihood` with the per-term logs cached,
        for a model that has seen both classes."""
        nb = self.nb
        alpha = nb.alpha
        classes = tuple(nb.class_counts)
        if nb is not self._logs_nb or classes != self._logs_classes or alpha != self._logs_alpha:
            self._logs, self._logs_nb, self._logs_classes, self._logs_alpha = {}, nb, classes, alpha
        logs = self._logs
        feature_counts = nb.feature_counts
        log = math.log
        length = 0
        unseen = 0
        s0 = s1 = 0.0
        c0, c1 = classes                     # p_spam calls this only once both classes exist
        for f, frequency in x.items():
            length += frequency
            term = logs.get(f)
            if term is None:
                counts = feature_counts.get(f)
                if not counts:
                    unseen += frequency
                    continue
                term = logs[f] = (log(counts.get(c0, 0.0) + alpha), log(counts.get(c1, 0.0) + alpha))
            s0 += frequency * term[0]
            s1 += frequency * term[1]
        scores = (s0, s1)
        n_terms = len(feature_counts)
        total_docs = sum(nb.class_counts.values())
        log_alpha = log(alpha)
        return {
            c: scores[i] + unseen * log_alpha + log(nb.class_counts[c] / total_docs)
            - length * log(nb.class_totals.get(c, 0.0) + alpha * n_terms)
            for i, c in enumerate(classes)
        }

    def is_spam(self, features: dict[str, int]) -> bool:
        return self.p_spam(features) > 0.5

    def learn(self, features: dict[str, int], is_spam: bool, weight: float = 1.0) -> None:
        if weight > 0.0:
            self.nb.learn_one(features, bool(is_spam), w=float(weight))
            logs = self._logs
            for f in features:
                logs.pop(f, None)
            for ref in self._watchers:
                changes = ref()
                if changes is not None and changes._words is not None:
                    changes._words.update(features)

    def watch(self) -> ChangedWords:
        """A new :class:`ChangedWords` that collects the words whose counts change from now on."""
        self._watchers = [ref for ref in self._watchers if ref() is not None]
        changes = ChangedWords()
        self._watchers.append(weakref.ref(changes))
        return changes

    def snapshot(self) -> bytes:
        """Serialized model state, for rollback or storage."""
        return pickle.dumps(self.nb, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        """Load a snapshot made by :meth:`snapshot` of this same process (trusted bytes)."""
        self.nb = pickle.loads(snapshot)
        self._changed_all()

    def state_dict(self) -> dict:
        """The learned counts as plain values and arrays (no pickle: safe to store where
        others can write, see :mod:`stream.statecodec`). :meth:`load_state_dict` rebuilds
        the same counts in the same insertion orders, so scores are bit-identical.

        >>> m = SpamModel()
        >>> m.learn(m.features("win cash"), True, 0.5)
        >>> m.learn(m.features("cash lunch"), False)
        >>> twin = SpamModel()
        >>> twin.load_state_dict(m.state_dict())
        >>> twin.p_spam(m.features("cash now")) == m.p_spam(m.features("cash now"))
        True
        """
        nb = self.nb
        tables = list(nb.feature_counts.values())
        nan = float("nan")
        return {
            "alpha": float(nb.alpha),
            "classes": [bool(c) for c in nb.class_counts],
            "class_counts": np.array([nb.class_counts[c] for c in nb.class_counts], dtype=np.float64),
            "totals_classes": [bool(c) for c in nb.class_totals],
            "class_totals": np.array([nb.class_totals[c] for c in nb.class_totals], dtype=np.float64),
            "words": np.array([w.encode("utf-8") for w in nb.feature_counts], dtype=np.bytes_)
            if tables else np.zeros(0, "S1"),
            "ham": np.array([t.get(False, nan) for t in tables], dtype=np.float64),
            "spam": np.array([t.get(True, nan) for t in tables], dtype=np.float64),
            "spam_first": np.array([bool(t) and next(iter(t)) is True for t in tables], dtype=bool),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        nb = WeightedMultinomialNB(alpha=float(state["alpha"]))
        for c, v in zip(state["classes"], np.asarray(state["class_counts"]).tolist()):
            nb.class_counts[bool(c)] = v
        for c, v in zip(state["totals_classes"], np.asarray(state["class_totals"]).tolist()):
            nb.class_totals[bool(c)] = v
        counts = nb.feature_counts
        for word, h, s, spam_first in zip(np.asarray(state["words"]).tolist(), np.asarray(state["ham"]).tolist(),
                                          np.asarray(state["spam"]).tolist(), np.asarray(state["spam_first"]).tolist()):
            table = counts[word.decode("utf-8")]
            for key, value in ((True, s), (False, h)) if spam_first else ((False, h), (True, s)):
                if not math.isnan(value):
                    table[key] = value
        self.nb = nb
        self.alpha = nb.alpha
        self._changed_all()

    def _changed_all(self) -> None:
        self._logs = {}
        self._logs_nb = None
        for ref in self._watchers:
            changes = ref()
            if changes is not None:
                changes._words = None               # every word may have changed


class ChangedWords:
    """The words whose count tables a :class:`SpamModel` changed since the last :meth:`take`.

    Made by :meth:`SpamModel.watch`; :meth:`SpamModel.learn` adds the words it counts,
    :meth:`SpamModel.restore` (a new ``nb`` altogether) makes the next :meth:`take` say
    "everything" (``None``), as does the first one (the watcher has seen nothing yet).
    The class counts and totals change with every ``learn``: read them afresh.

    >>> model = SpamModel()
    >>> changes = model.watch()
    >>> changes.take() is None                    # nothing read yet: everything is new
    True
    >>> model.learn({"win": 1, "cash": 2}, True)
    >>> sorted(changes.take()), changes.take()
    (['cash', 'win'], set())
    >>> model.restore(model.snapshot())
    >>> changes.take() is None
    True
    """

    __slots__ = ("_words", "__weakref__")

    def __init__(self):
        self._words: set[str] | None = None

    def take(self) -> set[str] | None:
        """The changed words since the last call (``None``: any word may have), and start afresh."""
        words, self._words = self._words, set()
        return words


def _plain_tokenizer(vectorizer: BagOfWords):
    """``findall`` of the vectorizer's token pattern when its processing is just
    lowercasing then that pattern (no groups, stop words, n-grams or accent stripping),
    else None (use ``transform_one``)."""
    v = vectorizer
    if (v.on is not None or v.preprocessor or v.strip_accents or not v.lowercase or v.tokenizer
            or v.stop_words or tuple(v.ngram_range) != (1, 1)):
        return None
    pattern = re.compile(v.tokenizer_pattern)
    return pattern.findall if pattern.groups == 0 else None


class FeatureCache:
    """Features per email id, computed once, evicted oldest-first past ``capacity``.

    >>> cache = FeatureCache(SpamModel(), capacity=2)
    >>> cache.put("a", "hello hello")["hello"]
    2
    >>> "a" in cache
    True
    """

    def __init__(self, model: SpamModel, capacity: int = 200_000):
        self.model = model
        self.capacity = capacity
        self._items: OrderedDict[str, dict[str, int]] = OrderedDict()

    def put(self, email_id: str, text: str) -> dict[str, int]:
        features = self._items.get(email_id)
        if features is None:
            features = self.model.features(text)
            self._items[email_id] = features
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return features

    def get(self, email_id: str) -> dict[str, int] | None:
        return self._items.get(email_id)

    def __contains__(self, email_id: str) -> bool:
        return email_id in self._items

    def __len__(self) -> int:
        return len(self._items)
