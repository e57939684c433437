"""What a defense may know beyond the votes: the model, email features, trusted data.

The defense stage builds one :class:`DefenseContext` and hands it to every member
of the chain through :meth:`defenses.base.Defense.bind`. Defenses that only look
at votes ignore it; RONI and rollback need the model and trusted labelled mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from defenses._trusted import CountsReader, ModelCounts, TrustedSet, freeze, thaw, trusted_set
from stream.classifier import SpamModel


@dataclass
class DefenseContext:
    """The model being trained, features of voted emails, and trusted labelled mail.

    ``features(email)`` maps dense email ids (as in :class:`~defenses.base.VoteBatch`)
    to their cached feature dicts (``None`` when unknown). ``validation`` is a clean,
    trusted, labelled set never used for training: ``(features, is_spam)`` pairs.

    >>> model = SpamModel()
    >>> model.learn(model.features("win cash"), True)
    >>> model.learn(model.features("see you"), False)
    >>> context = DefenseContext(model, lambda ids: [], [(model.features("win now"), True)])
    >>> context.trusted().words
    ['win', 'now']
    >>> context.model_counts().counts.tolist()   # [word, (not spam, spam)]
    [[0.0, 1.0], [0.0, 0.0]]

    Snapshots of the model, kept here under deterministic ids, and the control records
    that say what happened to the model:

    >>> sid = context.snapshot_model(now=3.0)
    >>> model.learn(model.features("win cash"), False)
    >>> context.restore_model(sid, now=5.0)
    >>> model.is_spam(model.features("win cash")), sid, list(context.snapshots)
    (True, 's1', ['s1'])
    >>> context.take_controls()
    [{'v': 1, 'control': 'snapshot', 'snapshot_id': 's1', 'ts': 3.0}, {'v': 1, 'control': 'rollback', 'snapshot_id': 's1', 'ts': 5.0}]
    >>> context.release_snapshot(sid); context.snapshots, context.take_controls(), context.state_dict()
    ({}, [], {'snapshot_counter': 1})
    """

    model: SpamModel
    features: Callable[[np.ndarray], list[dict | None]]
    validation: list[tuple[dict, bool]] = field(default_factory=list)
    #: Model snapshots by id (opaque values: :meth:`snapshot_bytes` gives a storable form
    #: and :meth:`put_snapshot` takes it back); the runtime persists them.
    snapshots: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    _snapshot_counter: int = field(default=0, init=False, repr=False, compare=False)
    _controls: list[dict] = field(default_factory=list, init=False, repr=False, compare=False)
    _trusted: TrustedSet | None = field(default=None, init=False, repr=False, compare=False)
    _reader: CountsReader | None = field(default=None, init=False, repr=False, compare=False)

    def trusted(self) -> TrustedSet:
        """The validation set as arrays (:class:`~defenses._trusted.TrustedSet`), rebuilt
        when the set changes size."""
        self._trusted = trusted_set(self.validation, self._trusted)
        return self._trusted

    def model_counts(self) -> ModelCounts:
        """The model's counts over the validation vocabulary (RONI and rollback need
        them). After the first read only the words the model learned since are read
        again (:class:`~defenses._trusted.CountsReader`); a rollback's new model is read
        in full."""
        trusted = self.trusted()
        reader = self._reader
        if reader is None or reader.trusted is not trusted or reader.model is not self.model:
            reader = self._reader = CountsReader(trusted, self.model)
        return reader.read()

    def snapshot_model(self, now: float) -> str:
        """Snapshot the model; returns the snapshot's id (``"s1"``, ``"s2"``, ... from a
        counter kept in :meth:`state_dict`) and records a ``snapshot`` control record."""
        self._snapshot_counter += 1
        snapshot_id = f"s{self._snapshot_counter}"
        self.snapshots[snapshot_id] = freeze(self.model)
        self._controls.append({"v": 1, "control": "snapshot", "snapshot_id": snapshot_id, "ts": float(now)})
        return snapshot_id

    def restore_model(self, snapshot_id: str, now: float) -> None:
        """Restore the model to a kept snapshot and record a ``rollback`` control record."""
        if snapshot_id not in self.snapshots:
            raise KeyError(f"no model snapshot {snapshot_id!r} (kept: {', '.join(self.snapshots) or 'none'})")
        self.model.restore(thaw(self.snapshots[snapshot_id]))
        self._controls.append({"v": 1, "control": "rollback", "snapshot_id": snapshot_id, "ts": float(now)})

    def release_snapshot(self, snapshot_id: str) -> None:
        """Forget a snapshot no defense needs any more (an unknown id is ignored)."""
        self.snapshots.pop(snapshot_id, None)

    def take_controls(self) -> list[dict]:
        """The control records made since the last call, oldest first (and forget them)."""
        controls, self._controls = self._controls, []
        return controls

    def snapshot_bytes(self, snapshot_id: str) -> bytes:
        """A kept snapshot as :meth:`SpamModel.snapshot <stream.classifier.SpamModel.snapshot>`
        bytes, for storage (trusted data of this service: they are a pickle)."""
        return thaw(self.snapshots[snapshot_id])

    def put_snapshot(self, snapshot_id: str, data: bytes) -> None:
        """Keep a snapshot stored from :meth:`snapshot_bytes` under its id again."""
        self.snapshots[snapshot_id] = bytes(data)

    def state_dict(self) -> dict:
        """The snapshot counter (the snapshots themselves are persisted by the runtime,
        see :attr:`snapshots`)."""
        return {"snapshot_counter": self._snapshot_counter}

    def load_state_dict(self, state: dict) -> None:
        self._snapshot_counter = int(state.get("snapshot_counter", 0))
