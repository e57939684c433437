"""Choosing a coherent subset of a corpus: the attacker's campaign, the targeted ham.

A rule is one of

- ``cluster``: cluster the messages by topic (scikit-learn TF-IDF + k-means, seeded)
  and take the cluster whose size is nearest the wanted share;
- ``sender:DOMAIN[,DOMAIN...]``: the messages from those sender domains (or their
  subdomains);
- ``list:LIST-ID[,LIST-ID...]``: the messages that came through those mailing lists
  (``List-Id`` header; a part of the id is enough).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simulator.sources.corpus import CorpusMessage

RULE_KINDS = ("cluster", "sender", "list")
_WORDS = r"(?u)\b[^\W\d_][^\W\d_]+\b"          # words of two letters or more, no digits
_CLUSTER_CHARS = 3000                            # a message's topic shows in its first lines


class SelectionError(ValueError):
    """A rule that selects nothing usable."""


def check_rule(rule: str) -> str:
    """Validate a rule's syntax; returns it unchanged.

    >>> check_rule("sender:insiq.us,example.com")
    'sender:insiq.us,example.com'
    >>> check_rule("topic:money")
    Traceback (most recent call last):
    ...
    ValueError: expected 'cluster', 'sender:DOMAIN[,DOMAIN...]' or 'list:LIST-ID[,LIST-ID...]', got 'topic:money'
    """
    kind, sep, values = rule.partition(":")
    ok = (kind == "cluster" and not sep) or (kind in ("sender", "list") and any(v.strip() for v in values.split(",")))
    if not ok:
        raise ValueError("expected 'cluster', 'sender:DOMAIN[,DOMAIN...]' or 'list:LIST-ID[,LIST-ID...]', "
                         f"got {rule!r}")
    return rule


@dataclass(frozen=True)
class Subset:
    """Positions (into the messages given) of the chosen subset, and how it was chosen."""

    positions: np.ndarray
    description: dict = field(default_factory=dict)


def _top(values: list[str], n: int = 3) -> list[str]:
    return [f"{v} ({c})" for v, c in Counter(v for v in values if v).most_common(n)]


def _describe(rule: str, messages: Sequence[CorpusMessage], positions: np.ndarray, **extra) -> dict:
    chosen = [messages[i] for i in positions.tolist()]
    return {"rule": rule, "messages": len(chosen), **extra,
            "top_senders": _top([m.domain for m in chosen]),
            "top_lists": _top([m.list_id for m in chosen]),
            "example_subjects": [m.subject for m in chosen[:3] if m.subject]}


def _by_header(rule: str, messages: Sequence[CorpusMessage]) -> np.ndarray:
    kind, _, values = rule.partition(":")
    wanted = [v.strip().lower() for v in values.split(",") if v.strip()]
    if kind == "sender":
        hit = [any(m.domain == w or m.domain.endswith("." + w) for w in wanted) for m in messages]
    else:
        hit = [any(w in m.list_id for w in wanted) for m in messages]
    return np.flatnonzero(np.array(hit, dtype=bool))


def _by_cluster(messages: Sequence[CorpusMessage], share: float, seed: int) -> tuple[np.ndarray, dict]:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(messages)
    wanted = max(1, round(share * n))
    k = int(np.clip(round(n / wanted), 2, min(40, n)))
    texts = [m.text[:_CLUSTER_CHARS] for m in messages]
    try:
        vectorizer = TfidfVectorizer(token_pattern=_WORDS, stop_words="english", sublinear_tf=True,
                                     min_df=2 if n >= 20 else 1, max_df=0.5 if n >= 20 else 1.0,
                                     max_features=5_000, dtype=np.float32)
        matrix = vectorizer.fit_transform(texts)
    except ValueError:
        raise SelectionError("the messages have no words to cluster on") from None
    model = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(matrix)
    sizes = np.bincount(model.labels_, minlength=k)
    # Nearest the wanted size; among equals, the tighter cluster (higher centroid norm).
    norms = np.linalg.norm(model.cluster_centers_, axis=1)
    best = min(range(k), key=lambda c: (abs(int(sizes[c]) - wanted), -norms[c]))
    terms = vectorizer.get_feature_names_out()
    top_terms = [str(terms[i]) for i in np.argsort(model.cluster_centers_[best])[::-1][:8]]
    return np.flatnonzero(model.labels_ == best), {"clusters": k, "wanted": wanted, "top_terms": top_terms}


def select_subset(messages: Sequence[CorpusMessage], rule: str, share: float, seed: int) -> Subset:
    """The subset of ``messages`` that ``rule`` picks (see the module docstring).

    ``share`` (of ``messages``) is the size a ``cluster`` rule aims for; ``seed``
    seeds the clustering, so the same seed picks the same subset.

    Raises
    ------
    SelectionError
        If the rule picks no message, or every message.

    >>> msgs = [CorpusMessage(f"m{i}", f"x@{d}", s, b, True)
    ...         for i, (d, s, b) in enumerate([("a.example", "Cheap pills", "pills pharmacy cheap"),
    ...                                        ("b.example", "Cheap meds", "pharmacy pills discount"),
    ...                                        ("c.example", "Mortgage rates", "refinance mortgage rates low"),
    ...                                        ("d.example", "Low rates", "mortgage refinance today"),
    ...                                        ("e.example", "Your loan", "mortgage loan refinance")])]
    >>> select_subset(msgs, "sender:c.example,d.example", 0.5, seed=1).positions.tolist()
    [2, 3]
    >>> sorted(select_subset(msgs, "cluster", 0.4, seed=1).positions.tolist())
    [0, 1]
    """
    check_rule(rule)
    if rule == "cluster":
        positions, extra = _by_cluster(messages, share, seed)
    else:
        positions, extra = _by_header(rule, messages), {}
    if positions.size == 0:
        raise SelectionError(f"{rule!r} selects no message")
    if positions.size == len(messages):
        raise SelectionError(f"{rule!r} selects every message")
    return Subset(positions, _describe(rule, messages, positions, **extra))
