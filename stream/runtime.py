"""The one defense runtime: votes, mail and truth in; windows decided; labels and controls out.

:class:`DefenseRuntime` is the core that the lab's defense stage
(:class:`stream.stages.DefenseStage`) and the defense service
(:class:`stream.service.DefenseService`) both run, so what the lab measures for a
chain is what the service does with it. It knows no transport and no database:
callers hand it validated inputs and publish what it returns.

What it does, per window (``window`` ticks wide, decided in order):

1. **Truth first.** Gold and review records whose ``ts`` falls before the window's
   end are applied in event-time order (gold registers its emails, reviews of emails
   never voted on are skipped), with ``now`` = the window's end.
2. **Decide.** Account and email names get dense ids (in order of first sight,
   identical in the lab and the service); the chain processes the window's votes.
3. **Learn the shadow.** With a model bound (:meth:`bind_model`: RONI and rollback
   need one), the runtime keeps a *shadow learner*: a copy of the model trained from
   exactly the labels it emits, with the features of the ``emails`` input, obeying the
   chain's control records (``snapshot``/``rollback``). Any learner downstream that
   reads the labels topic in order and obeys the same controls holds the same model.
4. **Emit.** Control records first (a learner must roll back before it learns the
   window's labels), then the labels, each with a deterministic ``label_id``
   (``EMAIL@wWINDOW``, ``#k`` appended for the k-th further label of one email in one
   window, as a chain without an aggregating member gives for opposite votes).

Window assignment (:func:`assign_windows`) is the service's rule for every caller: a
vote's window is that of ``max(ts, watermark)`` (late votes join the current window),
never one already closed.

>>> from defenses.chain import Chain
>>> from defenses.majority import MajorityVote
>>> rt = DefenseRuntime(Chain([MajorityVote(min_votes=1)]))
>>> out = rt.decide(0, ["a", "b"], ["m1", "m1"], [1, 1], [0.5, 0.6], [np.nan, np.nan])
>>> [(e.label_id, e.label, e.weight) for e in out.labels]
[('m1@w0', 1, 1.0)]
>>> twin = DefenseRuntime(Chain([MajorityVote(min_votes=1)]))
>>> twin.load_state_dict(rt.state_dict())
>>> twin.accounts.name(1), twin.emails.get("m1")
('b', 0)
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from defenses.base import Decision, VoteBatch
from defenses.chain import Chain
from defenses.context import DefenseContext
from stream.classifier import SpamModel
from stream.interner import Interner

__all__ = ["DefenseRuntime", "Emitted", "SnapshotShelf", "obey_control", "WindowResult", "assign_windows", "votes_array"]

log = logging.getLogger(__name__)

GOLD, REVIEW = 0, 1
VOTE_DTYPE_FIELDS = ("account", "email", "verdict", "ts", "created", "batched")


def votes_array(account, email, verdict, ts, created, batched=False) -> np.ndarray:
    """Votes as one structured array (the pending-vote blob layout).

    ``account`` and ``email`` are byte strings (lists or ``S`` arrays); ``batched``
    says whether each vote came in a feedback batch (one flag or one per vote).

    >>> v = votes_array([b"a"], [b"m"], [1], [0.5], [np.nan])
    >>> v["email"].tolist(), v.dtype.names[-1], v["batched"].tolist()
    ([b'm'], 'batched', [False])
    """
    account = np.asarray(account, dtype=np.bytes_)
    email = np.asarray(email, dtype=np.bytes_)
    out = np.empty(account.shape[0], dtype=[("account", account.dtype), ("email", email.dtype), ("verdict", "i1"),
                                            ("ts", "<f8"), ("created", "<f8"), ("batched", "?")])
    out["account"] = account
    out["email"] = email
    out["verdict"] = verdict
    out["ts"] = ts
    out["created"] = created
    out["batched"] = batched
    return out


def assign_windows(ts: np.ndarray, watermark: float | None, closed: int, width: float
                   ) -> tuple[np.ndarray, float | None]:
    """Window number of each vote (in arrival order) and the new watermark.

    >>> w, mark = assign_windows(np.array([0.5, 2.2, 1.1, 3.0]), None, -1, 1.0)
    >>> w.tolist(), mark
    ([0, 2, 2, 3], 3.0)
    >>> assign_windows(np.array([0.2]), 3.0, 3, 1.0)[0].tolist()    # late: never a closed window
    [4]
    """
    if ts.shape[0] == 0:
        return np.zeros(0, np.int64), watermark
    start = -math.inf if watermark is None else watermark
    marks = np.maximum.accumulate(np.maximum(ts, start))
    window = np.maximum(np.floor(marks / width).astype(np.int64), closed + 1)
    return window, float(marks[-1])


@dataclass(frozen=True)
class Emitted:
    """One training label the runtime lets through."""

    label_id: str
    email_id: str
    label: int
    weight: float
    confidence: float
    votes: int
    window: int


@dataclass
class WindowResult:
    """What deciding one window gave: the votes as the chain saw them, its decision,
    the control records and labels to publish (in that order)."""

    window: int
    now: float
    votes: VoteBatch
    decision: Decision
    controls: list[dict] = field(default_factory=list)
    labels: list[Emitted] = field(default_factory=list)


class DefenseRuntime:
    """Decide windows of votes through a chain, with state that round-trips.

    Parameters
    ----------
    chain
        The defense chain.
    window
        Window width in ticks.
    feature_capacity
        Most email feature sets kept for the shadow learner and RONI (oldest dropped).
    """

    def __init__(self, chain: Chain, window: float = 1.0, feature_capacity: int = 200_000):
        if not window > 0 or not math.isfinite(window):
            raise ValueError(f"window must be a positive number of ticks, got {window}")
        self.chain = chain
        self.window = float(window)
        self.accounts = Interner()
        self.emails = Interner()
        self.features: OrderedDict[str, dict] = OrderedDict()
        self.feature_capacity = int(feature_capacity)
        self.context: DefenseContext | None = None
        self.unknown_features = 0        # labels the shadow could not learn (no features of the email)
        self._truths: list[tuple[float, int, int, list[str], np.ndarray]] = []   # (ts, seq, kind, names, labels)
        self._truth_seq = 0

    # -- inputs -----------------------------------------------------------------------------

    def bind_model(self, model: SpamModel, validation: list[tuple[dict, bool]] | None = None) -> None:
        """Give the chain a model context: ``model`` becomes the shadow learner (the runtime
        trains it from its own labels), ``validation`` the trusted labelled set."""
        self.context = DefenseContext(model, self._features_of, list(validation or []))
        self.chain.bind(self.context)

    def add_email(self, email_id: str, features: dict) -> None:
        """Features of an email (the ``emails`` input), for the shadow learner and RONI."""
        store = self.features
        if email_id not in store:
            store[email_id] = features
            if len(store) > self.feature_capacity:
                store.popitem(last=False)

    def add_gold(self, names: list[str], labels, ts: float) -> None:
        """Labels of gold (honeypot) emails, applied before the first window ending after ``ts``."""
        self._add_truth(GOLD, names, labels, ts)

    def add_reviews(self, names: list[str], labels, ts: float) -> None:
        """Provider reviews (confirmed labels), applied like gold; unseen emails are skipped."""
        self._add_truth(REVIEW, names, labels, ts)

    def _add_truth(self, kind: int, names: list[str], labels, ts: float) -> None:
        if len(names):
            self._truths.append((float(ts), self._truth_seq, kind, list(names), np.asarray(labels, dtype=np.int8)))
            self._truth_seq += 1

    def _features_of(self, email: np.ndarray) -> list[dict | None]:
        name, get = self.emails.name, self.features.get
        return [get(name(e)) for e in email.tolist()]

    # -- deciding -----------------------------------------------------------------------------

    def has_pending_truth(self) -> bool:
        return bool(self._truths)

    def apply_truths(self, before: float, now: float) -> int:
        """Apply the gold and reviews with ``ts < before`` in event-time order; returns how many."""
        due = sorted(t for t in self._truths if t[0] < before)
        if not due:
            return 0
        self._truths = [t for t in self._truths if t[0] >= before]
        for _, _, kind, names, labels in due:
            if kind == GOLD:
                ids = np.array([self.emails.id(n) for n in names], dtype=np.int64)
                self.chain.observe_gold(ids, labels, now)
            else:
                found = [(self.emails.get(n), lab) for n, lab in zip(names, labels.tolist())]
                found = [(e, lab) for e, lab in found if e is not None]
                if found:
                    self.chain.observe_reviews(np.array([e for e, _ in found], dtype=np.int64),
                                               np.array([lab for _, lab in found], dtype=np.int8), now)
        return len(due)

    def decide(self, win: int, account, email, verdict, ts, created) -> WindowResult:
        """Decide window ``win`` from its votes (names as ``str`` lists or UTF-8 ``S`` arrays)."""
        now = (win + 1) * self.window
        self.apply_truths(now, now)
        votes = VoteBatch.of(self.accounts.column(np.asarray(account)), self.emails.column(np.asarray(email)),
                             verdict, ts, created)
        decision = self.chain.process(votes, now=now)
        result = WindowResult(win, now, votes, decision)
        if self.context is not None:
            result.controls = self.context.take_controls()
        result.labels = self._emitted(win, decision)
        if self.context is not None:
            self._learn(result.labels)
        return result

    def _emitted(self, win: int, decision: Decision) -> list[Emitted]:
        labels = decision.labels
        out, seen = [], {}
        for e, label, weight, confidence, votes in zip(labels.email.tolist(), labels.label.tolist(),
                                                       labels.weight.tolist(), labels.confidence.tolist(),
                                                       labels.votes.tolist()):
            name = self.emails.name(e)
            k = seen.get(e, 0)
            seen[e] = k + 1
            label_id = f"{name}@w{win}" if k == 0 else f"{name}@w{win}#{k}"
            out.append(Emitted(label_id, name, int(label), float(weight), float(confidence), int(votes), int(win)))
        return out

    def _learn(self, labels: list[Emitted]) -> None:
        model = self.context.model
        get = self.features.get
        for e in labels:
            features = get(e.email_id)
            if features is None:
                self.unknown_features += 1
                continue
            model.learn(features, e.label == 1, e.weight)

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything learned: names, pending truth, the chain, the shadow learner and its
        snapshots (plain values and arrays, :mod:`stream.statecodec`)."""
        state = {
            "accounts": [self.accounts.name(i) for i in range(len(self.accounts))],
            "emails": [self.emails.name(i) for i in range(len(self.emails))],
            "truths": [(ts, seq, kind, names, labels) for ts, seq, kind, names, labels in self._truths],
            "truth_seq": self._truth_seq,
            "unknown_features": self.unknown_features,
            "chain": self.chain.state_dict(),
        }
        # per-account columns under readable names, for people and dashboards (not loaded back)
        state["account_columns"] = {f"{i}.{m.name}.{key}": np.asarray(state["chain"]["members"][i][key])
                                    for i, m in enumerate(self.chain.members) for key in m.account_state
                                    if key in state["chain"]["members"][i]}
        if self.context is not None:
            state["model"] = self.context.model.state_dict()
            state["context"] = self.context.state_dict()
            state["snapshots"] = {sid: _model_state(self.context.snapshot_bytes(sid)) for sid in self.context.snapshots}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.accounts, self.emails = Interner(), Interner()
        for name in state["accounts"]:
            self.accounts.id(name)
        for name in state["emails"]:
            self.emails.id(name)
        self._truths = [(float(ts), int(seq), int(kind), list(names), np.asarray(labels, dtype=np.int8))
                        for ts, seq, kind, names, labels in state["truths"]]
        self._truth_seq = int(state["truth_seq"])
        self.unknown_features = int(state.get("unknown_features", 0))
        self.chain.load_state_dict(state["chain"])
        if self.context is not None and "model" in state:
            self.context.model.load_state_dict(state["model"])
            self.context.load_state_dict(state["context"])
            self.context.snapshots.clear()
            for sid, arrays in state["snapshots"].items():
                self.context.put_snapshot(sid, _snapshot_bytes(arrays))


def _model_state(snapshot: bytes) -> dict:
    """A model snapshot (this process's own bytes) as plain arrays, for storage."""
    model = SpamModel()
    model.restore(snapshot)
    return model.state_dict()


def _snapshot_bytes(state: dict) -> bytes:
    model = SpamModel()
    model.load_state_dict(state)
    return model.snapshot()


class SnapshotShelf:
    """The model snapshots a learner keeps for ``rollback`` controls: the ``keep`` newest.

    >>> shelf = SnapshotShelf(keep=2)
    >>> for i in range(3):
    ...     shelf.put(f"s{i}", {"n": i})
    >>> sorted(shelf.items)
    ['s1', 's2']
    """

    def __init__(self, keep: int = 64):
        self.keep = int(keep)
        self.items: OrderedDict[str, dict] = OrderedDict()

    def put(self, snapshot_id: str, state: dict) -> None:
        self.items[snapshot_id] = state
        while len(self.items) > self.keep:
            self.items.popitem(last=False)

    def get(self, snapshot_id: str) -> dict | None:
        return self.items.get(snapshot_id)


def obey_control(model, shelf: SnapshotShelf, control: dict) -> None:
    """What every learner reading ``labels`` does with a control record (DESIGN.md, events):
    ``{"control": "snapshot", "snapshot_id": ID}`` keeps the model's state under ``ID``;
    ``{"control": "rollback", "snapshot_id": ID}`` restores it. An unknown snapshot is a
    warning (the learner started after it was taken), never a crash.

    >>> m = SpamModel()
    >>> shelf = SnapshotShelf()
    >>> obey_control(m, shelf, {"v": 1, "control": "snapshot", "snapshot_id": "s1", "ts": 1.0})
    >>> m.learn(m.features("win"), True)
    >>> obey_control(m, shelf, {"v": 1, "control": "rollback", "snapshot_id": "s1", "ts": 2.0})
    >>> len(m.nb.class_counts)
    0
    """
    kind, snapshot_id = control.get("control"), control.get("snapshot_id")
    if kind == "snapshot":
        shelf.put(snapshot_id, model.state_dict())
    elif kind == "rollback":
        state = shelf.get(snapshot_id)
        if state is None:
            log.warning("rollback to unknown snapshot %r ignored", snapshot_id)
        else:
            model.load_state_dict(state)
    else:
        log.warning("unknown control record %r ignored", kind)
