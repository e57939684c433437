"""The online spam classifier: a River bag-of-words → Multinomial NB pipeline.

Features are extracted once per email (:class:`FeatureCache`) and reused for
filtering, learning and evaluation. Labels carry weights, so the naive Bayes
counts are updated by ``weight`` instead of 1; a weight of 1 is exactly River's
own ``learn_one``.
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict

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

    >>> m = SpamModel()
    >>> m.learn(m.features("win money now"), True)
    >>> m.learn(m.features("meeting notes attached"), False)
    >>> m.is_spam(m.features("win now"))
    True
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha
        self.vectorizer = BagOfWords(lowercase=True, strip_accents=False)
        self.nb = WeightedMultinomialNB(alpha=alpha)

    @property
    def pipeline(self) -> Pipeline:
        """The model as one River pipeline (text in, spam probability out)."""
        return Pipeline(self.vectorizer, self.nb)

    def features(self, text: str) -> dict[str, int]:
        return self.vectorizer.transform_one(text)

    def p_spam(self, features: dict[str, int]) -> float:
        if len(self.nb.class_counts) < 2:
            return 0.5 if not self.nb.class_counts else float(SPAM_LABEL in self.nb.class_counts)
        return self.nb.predict_proba_one(features).get(SPAM_LABEL, 0.0)

    def is_spam(self, features: dict[str, int]) -> bool:
        return self.p_spam(features) > 0.5

    def learn(self, features: dict[str, int], is_spam: bool, weight: float = 1.0) -> None:
        if weight > 0.0:
            self.nb.learn_one(features, bool(is_spam), w=float(weight))

    def snapshot(self) -> bytes:
        """Serialized model state, for rollback or storage."""
        return pickle.dumps(self.nb, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        """Load a snapshot made by :meth:`snapshot` of this same process (trusted bytes)."""
        self.nb = pickle.loads(snapshot)


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
