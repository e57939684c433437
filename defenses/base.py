"""The defense contract: votes in, weighted training labels out.

A defense sees votes as a :class:`VoteBatch` (parallel arrays, one row per vote,
accounts and emails as dense integer ids) and answers with a :class:`Decision`:
the training labels it lets through and the effective weight each vote got.
Defenses chain (:class:`defenses.chain.Chain`): every member may down-weight
votes, the last aggregating member turns the weighted votes into labels.
"""

from __future__ import annotations

import copy
from abc import ABC
from dataclasses import dataclass, field

import numpy as np

from defenses._state import decode, encode, get_path, set_path, state_key
from defenses.kernels.groups import _dense_unique
from defenses.kernels.tally import _agreement, _decide, _tally

SPAM, NOT_SPAM = 1, 0


@dataclass(frozen=True)
class VoteBatch:
    """One window of votes. ``verdict`` is 1 for spam, 0 for not spam; ``created`` is
    when the voting account was created (NaN when the event did not say)."""

    account: np.ndarray
    email: np.ndarray
    verdict: np.ndarray
    ts: np.ndarray
    created: np.ndarray

    @classmethod
    def empty(cls) -> "VoteBatch":
        return cls.of([], [], [])

    @classmethod
    def of(cls, account, email, verdict, ts=None, created=None) -> "VoteBatch":
        """Build a batch from sequences, casting to the canonical dtypes.

        >>> VoteBatch.of([0, 1], [5, 5], [1, 0]).email
        array([5, 5])
        """
        account = np.asarray(account, dtype=np.int64)
        ts = np.zeros(len(account)) if ts is None else np.asarray(ts, dtype=np.float64)
        created = np.full(len(account), np.nan) if created is None else np.asarray(created, dtype=np.float64)
        return cls(account, np.asarray(email, dtype=np.int64), np.asarray(verdict, dtype=np.int8), ts, created)

    def __len__(self) -> int:
        return int(self.account.shape[0])


@dataclass(frozen=True)
class LabelBatch:
    """Training labels: one row per (email, label) the defense lets through."""

    email: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    confidence: np.ndarray
    votes: np.ndarray

    @classmethod
    def empty(cls) -> "LabelBatch":
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), z, z, np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.email.shape[0])


@dataclass(frozen=True)
class Decision:
    """What a defense made of a window: labels, per-vote weights and outcomes."""

    labels: LabelBatch
    vote_weight: np.ndarray
    agreement: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))


def group_emails(votes: VoteBatch) -> tuple[np.ndarray, np.ndarray]:
    """Unique email ids of a batch and each vote's local index into them.

    Dense ids (the usual case: the defense stage interns them) are grouped by a
    linear kernel; sparse ones by a sort. Both give ``np.unique``'s answer.

    >>> group_emails(VoteBatch.of([0, 1, 2], [7, 3, 7], [1, 1, 0]))
    (array([3, 7]), array([1, 0, 1]))
    """
    return dense_unique(votes.email)


def dense_unique(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` for non-negative integer ids, linear in
    time when the ids are dense (their maximum is within a few times their count)."""
    if ids.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = int(ids.max()) + 1
    if ids.min() >= 0 and top <= 4 * ids.shape[0] + 1024:
        return _dense_unique(ids.astype(np.int64, copy=False), top)
    return np.unique(ids, return_inverse=True)


def keep_labels(votes: VoteBatch, decision: Decision, keep: np.ndarray) -> Decision:
    """The decision with only the labels where ``keep`` is true; the votes on the
    dropped emails lose their weight (they taught the model nothing).

    >>> v = VoteBatch.of([0, 1], [4, 5], [1, 0])
    >>> d = weighted_vote(v, np.ones(2), min_weight=0.5, margin=0.0, min_votes=1)
    >>> kept = keep_labels(v, d, np.array([False, True]))
    >>> kept.labels.email.tolist(), kept.vote_weight.tolist()
    ([5], [0.0, 1.0])
    """
    if keep.all():
        return decision
    labels = decision.labels
    dropped = labels.email[~keep]
    lost = np.isin(votes.email, dropped)
    kept = LabelBatch(labels.email[keep], labels.label[keep], labels.weight[keep], labels.confidence[keep],
                      labels.votes[keep])
    agreement = decision.agreement
    if agreement.shape[0] == len(votes):
        agreement = np.where(lost, -1, agreement).astype(np.int8)
    return Decision(kept, np.where(lost, 0.0, decision.vote_weight), agreement)


def weighted_vote(votes: VoteBatch, weight: np.ndarray, *, min_weight: float, margin: float,
                  min_votes: int) -> Decision:
    """One label per email from weighted votes: the aggregation both majority and
    reputation use.

    >>> v = VoteBatch.of([0, 1, 2], [9, 9, 9], [1, 1, 0])
    >>> d = weighted_vote(v, np.ones(3), min_weight=1.0, margin=0.2, min_votes=2)
    >>> d.labels.email.tolist(), d.labels.label.tolist(), d.vote_weight.tolist()
    ([9], [1], [1.0, 1.0, 0.0])
    """
    if len(votes) == 0:
        return Decision(LabelBatch.empty(), np.zeros(0), np.zeros(0, np.int8))
    emails, local = group_emails(votes)
    spam, ham, count = _tally(local, votes.verdict, weight, emails.shape[0])
    decided, label, winner, confidence = _decide(spam, ham, count, min_weight, margin, min_votes)
    agreement = _agreement(local, votes.verdict, decided, label)
    labels = LabelBatch(emails[decided], label[decided], np.minimum(winner[decided], 1.0),
                        confidence[decided], count[decided])
    return Decision(labels, np.where(agreement == 1, weight, 0.0), agreement)


class Defense(ABC):
    """Base class of every defense.

    Subclasses override :meth:`weigh` to down-weight votes, and aggregating defenses
    set ``aggregates = True`` and override :meth:`decide`. State lives in trailing
    underscore attributes; :meth:`reset` clears it and :meth:`clone` copies the
    unfitted defense with the same parameters.

    **State.** A defense that learns anything declares the attributes it learns, once,
    in ``state_attributes`` (dotted paths reach into a helper object, e.g.
    ``"ledger_.correct"``). :meth:`state_dict` gives them as plain data, each under its
    name without leading or trailing underscores, and :meth:`load_state_dict` puts them
    back (see :mod:`defenses._state` for the encodings): a fresh instance loaded with
    the state of another decides the rest of a stream exactly as the other would.
    Plain data is ``dict`` (str keys), ``list``, ``tuple``, ``str``, ``int``,
    ``float``, ``bool``, ``None`` and NumPy arrays (numbers or fixed-width bytes):
    never sets, deques, custom objects or pickles, so that a service can keep it in a
    database. A subclass that overrides :meth:`reset` (so keeps state) without declaring
    its state is refused when the class is created.

    **Capabilities**, declared as class attributes, say what a defense needs beyond
    the votes (:meth:`Chain.needs <defenses.chain.Chain.needs>` gathers them):

    ``needs_model``
        It needs a bound :class:`~defenses.context.DefenseContext` with the model and a
        trusted validation set (RONI, rollback); without one it does nothing.
    ``needs_reviews``
        It is useless without provider reviews (:meth:`observe_reviews`).
    ``needs_gold``
        It is useless without gold (honeypot) labels (:meth:`observe_gold`), e.g. gold.
    ``keeps_memory``
        It remembers recent votes so that late reviews still score their voters; its
        state then has a ``"memory"`` key: a list of ``{"now", "account", "email",
        "verdict", "ts", "created"}`` windows, oldest first.

    >>> class Counter(Defense):
    ...     state_attributes = ("seen_",)
    ...     def reset(self):
    ...         self.seen_ = 0
    ...     def observe(self, votes, decision, now):
    ...         self.seen_ += len(votes)
    >>> counter = Counter(); counter.reset()
    >>> counter.observe(VoteBatch.of([0, 1], [2, 2], [1, 1]), None, now=1.0)
    >>> counter.state_dict()
    {'seen': 2}
    >>> twin = Counter(); twin.load_state_dict({"seen": 2}); twin.seen_
    2
    """

    name: str = "base"
    aggregates: bool = False
    needs_model: bool = False
    needs_reviews: bool = False
    needs_gold: bool = False
    keeps_memory: bool = False
    #: The attributes this defense learns (see the class docstring); empty when stateless.
    state_attributes: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        keys = [state_key(a) for a in cls.state_attributes]
        if len(set(keys)) != len(keys):
            raise TypeError(f"{cls.__name__}: two state attributes share a state_dict key: {keys}")
        if "reset" in vars(cls) and not cls.state_attributes and "state_dict" not in vars(cls):
            raise TypeError(f"{cls.__name__} overrides reset() (it keeps state) but declares no "
                            "state_attributes: its state would be lost between windows")

    def weigh(self, votes: VoteBatch) -> np.ndarray:
        """Weight in [0, 1] per vote; 1 means the vote counts fully."""
        return np.ones(len(votes))

    def decide(self, votes: VoteBatch, weight: np.ndarray) -> Decision:
        """Turn weighted votes into labels: here, one label per vote group."""
        raise NotImplementedError(f"{self.name} does not aggregate votes")

    def screen(self, votes: VoteBatch, decision: Decision, now: float) -> Decision:
        """Inspect the chain's labels before they are published and hold back
        (quarantine) those that should not train the model; see :func:`keep_labels`."""
        return decision

    def observe(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        """Learn from the chain's decision on a window (settled outcomes)."""

    def observe_reviews(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        """Learn from ground truth confirmed for some emails (provider review)."""

    def observe_gold(self, email: np.ndarray, label: np.ndarray, now: float) -> None:
        """Learn the labels of gold (honeypot) emails, announced before their votes arrive."""

    def bind(self, context) -> None:
        """Receive the :class:`~defenses.context.DefenseContext` (model, features, trusted data)."""

    def peers(self, members: list["Defense"]) -> None:
        """See the other members of the chain (e.g. to use another member's clusters)."""

    def flagged(self) -> np.ndarray:
        """Accounts this defense believes are bots (dense ids)."""
        return np.zeros(0, np.int64)

    #: Keys of :meth:`state_dict` holding one float per account (indexed by dense account
    #: id) that evolve by adding evidence: a service can store them per account and merge
    #: concurrent updates by adding deltas.
    account_state: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """Learned state as plain data (copies), one key per declared attribute; empty
        when stateless.

        >>> Defense().state_dict()
        {}
        """
        return {state_key(a): encode(get_path(self, a)) for a in self.state_attributes}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned. The defense is reset first, so a
        missing key leaves that attribute fresh; an unknown key is an error.

        >>> Defense().load_state_dict({"alpha": [1.0]})
        Traceback (most recent call last):
        ...
        ValueError: Defense has no state 'alpha' (it keeps: none)
        """
        keys = {state_key(a): a for a in self.state_attributes}
        unknown = [k for k in state if k not in keys]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no state {unknown[0]!r} "
                             f"(it keeps: {', '.join(keys) or 'none'})")
        self.reset()
        for key, attribute in keys.items():
            if key in state:
                set_path(self, attribute, decode(state[key], get_path(self, attribute)))

    def reset(self) -> None:
        """Forget all learned state."""

    def clone(self) -> "Defense":
        fresh = copy.deepcopy(self)
        fresh.reset()
        return fresh
