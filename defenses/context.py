"""What a defense may know beyond the votes: the model, email features, trusted data.

The defense stage builds one :class:`DefenseContext` and hands it to every member
of the chain through :meth:`defenses.base.Defense.bind`. Defenses that only look
at votes ignore it; RONI and rollback need the model and trusted labelled mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from defenses._trusted import CountsReader, ModelCounts, TrustedSet, trusted_set
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
    """

    model: SpamModel
    features: Callable[[np.ndarray], list[dict | None]]
    validation: list[tuple[dict, bool]] = field(default_factory=list)
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
