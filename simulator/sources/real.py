"""Real mail as a :class:`MailSource`: categories, disjoint splits and cycling.

A corpus (SpamAssassin, CSV or JSON Lines) only says ham or spam. This module
gives every message a category and a split, reproducibly from the seed:

- the **campaign** is a coherent subset of the spam (``mail.campaign_from``: a
  topic cluster by default) and is sent only by the attacker, through
  :meth:`CorpusSource.campaign`;
- the **targets** are a coherent subset of the ham (``mail.targets_from``) and get
  the category ``attack.targets`` names (``bank_alert`` by default);
- other ham is ``newsletter`` when it came through a list or as bulk mail, else
  ``personal``; other spam is ``spam``;
- everything but the campaign is split, per category, into three disjoint parts:
  warm-up (``mail.warmup_share``), evaluation (``mail.eval_share``) and stream (the
  rest). Evaluation mail is never trained on and never appears in the stream.

A run usually needs more mail than a corpus holds. The stream, the evaluation
stream and the campaign therefore **cycle** through their own split: tick ``t``
takes items ``t*n .. t*n+n-1`` of an endless sequence made of successive passes
over the split, each pass in a fresh seeded order. A message sent again gets a new
email id. The warm-up does not cycle: it takes at most its split.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from simulator.config import MailConfig, ScenarioError, source_kind_path
from simulator.email import CATEGORIES, HAM_CATEGORIES, Email
from simulator.sources.base import MailSource
from simulator.sources.corpus import Corpus
from simulator.sources.loading import load_corpus
from simulator.sources.selection import SelectionError, select_subset

CYCLING = ("stream, evaluation and campaign mail cycle through their own split, in a fresh seeded "
           "order on every pass (a message sent again gets a new email id); the warm-up takes at most "
           "its split")


@dataclass(frozen=True)
class CorpusPlan:
    """Categories and splits of one corpus for one seed: positions into ``corpus.messages``."""

    corpus: Corpus
    categories: tuple[str, ...]
    warmup: np.ndarray
    stream: np.ndarray
    evaluation: np.ndarray
    campaign: np.ndarray
    campaign_info: dict
    targets_info: dict


def _ordinary_ham(bulk: bool, targeted: set[str]) -> str:
    preferred = ("newsletter", "personal") if bulk else ("personal", "newsletter")
    for name in preferred + HAM_CATEGORIES:
        if name not in targeted:
            return name
    return preferred[0]


def _choose(corpus: Corpus, spam: bool, rule: str, share: float, seed: int, what: str):
    positions = np.array([i for i, m in enumerate(corpus.messages) if m.is_spam == spam], dtype=np.int64)
    try:
        subset = select_subset([corpus.messages[i] for i in positions.tolist()], rule, share, seed)
    except SelectionError as exc:
        raise ScenarioError(f"mail.{what}_from: {exc} among the {positions.size} "
                            f"{'spam' if spam else 'ham'} messages of {corpus.origin}") from None
    return positions[subset.positions], subset.description


def _split(rng: np.random.Generator, positions: np.ndarray, warmup_share: float, eval_share: float):
    order = rng.permutation(positions)
    n_eval = round(eval_share * order.size)
    n_warm = round(warmup_share * order.size)
    return order[n_eval:n_eval + n_warm], order[n_eval + n_warm:], order[:n_eval]


def make_plan(corpus: Corpus, config: MailConfig, targets: tuple[str, ...], seed: int) -> CorpusPlan:
    """Give every message of ``corpus`` a category and a split (see the module docstring)."""
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3)]
    campaign, campaign_info = _choose(corpus, True, config.campaign_from, config.campaign_share, seeds[0],
                                      "campaign")
    target, targets_info = _choose(corpus, False, config.targets_from, config.targets_share, seeds[1], "targets")
    targeted = set(targets)
    categories = ["spam" if m.is_spam else _ordinary_ham(m.bulk, targeted) for m in corpus.messages]
    for i in campaign.tolist():
        categories[i] = "campaign"
    for i in target.tolist():
        categories[i] = targets[0]
    targets_info = {"category": targets[0], **targets_info}
    rng = np.random.default_rng(seeds[2])
    parts: list[list[np.ndarray]] = [[], [], []]
    for name in sorted(set(categories) - {"campaign"}):
        members = np.array([i for i, c in enumerate(categories) if c == name], dtype=np.int64)
        for part, piece in zip(parts, _split(rng, members, config.warmup_share, config.eval_share)):
            part.append(piece)
    warmup, stream, evaluation = (rng.permutation(np.concatenate(p)) for p in parts)
    for name, split in (("warm-up", warmup), ("stream", stream), ("evaluation", evaluation)):
        if split.size == 0:
            raise ScenarioError(f"mail.source: {corpus.origin} is too small: its {name} split is empty "
                                f"({len(corpus)} messages)")
    return CorpusPlan(corpus, tuple(categories), warmup, stream, evaluation, rng.permutation(campaign),
                      campaign_info, targets_info)


@functools.lru_cache(maxsize=8)
def _cached_plan(config_json: str, targets: tuple[str, ...], seed: int) -> CorpusPlan:
    config = MailConfig.model_validate_json(config_json)
    kind, path = source_kind_path(config.source)
    corpus = load_corpus(kind, path, config.text_column, config.label_column)
    return make_plan(corpus, config, targets, seed)


PLAN_KEYS = frozenset({"source", "text_column", "label_column", "campaign_from", "campaign_share",
                       "targets_from", "targets_share", "warmup_share", "eval_share"})


def plan_for(config: MailConfig, targets: tuple[str, ...], seed: int) -> CorpusPlan:
    """:func:`make_plan` for ``config.source``, cached per process: the runs of a compare or
    a sweep share it unless they change one of the keys it depends on (``PLAN_KEYS``)."""
    return _cached_plan(config.model_dump_json(include=PLAN_KEYS), tuple(targets), seed)


class _Cycle:
    """An endless sequence over a split: pass ``p`` is the split in a seeded order."""

    def __init__(self, positions: np.ndarray, seed: int, role: int):
        self.positions = positions
        self.seed = seed
        self.role = role
        self._passes: dict[int, np.ndarray] = {}

    def _pass(self, p: int) -> np.ndarray:
        order = self._passes.get(p)
        if order is None:
            order = np.random.default_rng([self.seed, self.role, p]).permutation(self.positions)
            self._passes[p] = order
        return order

    def take(self, start: int, n: int) -> list[int]:
        size = self.positions.size
        return [int(self._pass(k // size)[k % size]) for k in range(start, start + n)]


class CorpusSource(MailSource):
    """A real corpus as the mail of a run.

    Parameters
    ----------
    plan
        Categories and splits, from :func:`plan_for` or :func:`make_plan`.
    kind
        What the result document calls the source (``spamassassin``, ``csv``, ``jsonl``).
    seed
        Seeds the order of each pass of the cycling streams.
    """

    def __init__(self, plan: CorpusPlan, kind: str, seed: int):
        self.plan = plan
        self.kind = kind
        self._stream = _Cycle(plan.stream, seed, 1)
        self._evaluation = _Cycle(plan.evaluation, seed, 2)
        self._campaign = _Cycle(plan.campaign, seed, 3)
        self._warmup_served = 0
        self._seed = seed
        self._lookalikes: dict[str, _Cycle] = {}
        self._forged: dict[str, int] = {}

    def _emails(self, positions: list[int], ids: list[str]) -> list[Email]:
        messages, categories = self.plan.corpus.messages, self.plan.categories
        return [Email(email_id, messages[p].sender, messages[p].subject, messages[p].body, categories[p])
                for p, email_id in zip(positions, ids)]

    def warmup(self, n: int) -> list[Email]:
        positions = self.plan.warmup[:n].tolist()
        self._warmup_served = len(positions)
        return self._emails(positions, [f"warm-{i}" for i in range(len(positions))])

    def stream(self, tick: int, n: int) -> list[Email]:
        return self._emails(self._stream.take(tick * n, n), [f"m{tick}-{i}" for i in range(n)])

    def campaign(self, tick: int, n: int) -> list[Email]:
        return self._emails(self._campaign.take(tick * n, n), [f"m{tick}-c{i}" for i in range(n)])

    def evaluation(self, tick: int, n: int) -> list[Email]:
        return self._emails(self._evaluation.take(tick * n, n), [f"eval{tick}-{i}" for i in range(n)])

    def lookalike(self, category: str, tick: int, n: int) -> list[Email]:
        """Copies (new ids) of real mail of ``category`` the attacker could get hold of:
        warm-up mail of that category, or the campaign itself; never evaluation mail.
        Empty when the corpus has no such mail.

        Uses a running count, so successive calls give successive copies."""
        cycle = self._lookalikes.get(category)
        if cycle is None:
            pool = self.plan.campaign if category == "campaign" else np.array(
                [p for p in self.plan.warmup.tolist() if self.plan.categories[p] == category], dtype=np.int64)
            role = 4 + (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES))
            cycle = self._lookalikes[category] = _Cycle(pool, self._seed, role)
        if cycle.positions.size == 0:
            return []
        positions = cycle.take(self._forged.get(category, 0), n)
        self._forged[category] = self._forged.get(category, 0) + n
        return self._emails(positions, [f"x{tick}-{category}-{i}" for i in range(n)])

    def describe(self) -> dict:
        plan, corpus = self.plan, self.plan.corpus
        return {
            "kind": self.kind,
            "path": corpus.origin,
            "messages": len(corpus),
            "ham": len(corpus) - corpus.n_spam,
            "spam": corpus.n_spam,
            "folders": dict(corpus.sources),
            "charset_errors": corpus.charset_errors,
            "skipped_files": corpus.skipped,
            "categories": dict(sorted(Counter(plan.categories).items())),
            "splits": {"warmup": int(plan.warmup.size), "stream": int(plan.stream.size),
                       "evaluation": int(plan.evaluation.size), "campaign": int(plan.campaign.size)},
            "warmup_used": self._warmup_served,
            "cycling": CYCLING,
            "campaign": plan.campaign_info,
            "targets": plan.targets_info,
        }
