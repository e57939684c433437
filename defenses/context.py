"""What a defense may know beyond the votes: the model, email features, trusted data.

The defense stage builds one :class:`DefenseContext` and hands it to every member
of the chain through :meth:`defenses.base.Defense.bind`. Defenses that only look
at votes ignore it; RONI and rollback need the model and trusted labelled mail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    >>> with context.window():                  # what a chain does while it decides a window
    ...     context.model_counts() is context.model_counts()
    True
    >>> context.model_counts() is context.model_counts()
    False
    """

    model: SpamModel
    features: Callable[[np.ndarray], list[dict | None]]
    validation: list[tuple[dict, bool]] = field(default_factory=list)
    _trusted: TrustedSet | None = field(default=None, init=False, repr=False, compare=False)
    _window: dict | None = field(default=None, init=False, repr=False, compare=False)
    _reader: CountsReader | None = field(default=None, init=False, repr=False, compare=False)

    def trusted(self) -> TrustedSet:
        """The validation set as arrays (:class:`~defenses._trusted.TrustedSet`), rebuilt
        when the set changes size."""
        self._trusted = trusted_set(self.validation, self._trusted)
        return self._trusted

    def model_counts(self) -> ModelCounts:
        """The model's counts over the validation vocabulary.

        Inside :meth:`window` they are read once and shared by the members (RONI and
        rollback both need them): nothing trains the model while a chain decides a
        window, and a rollback replaces ``model.nb``, which is part of the key. Between
        reads only the words the model learned since are read again
        (:class:`~defenses._trusted.CountsReader`).
        """
        trusted, nb = self.trusted(), self.model.nb
        memo = self._window
        if memo is not None:
            hit = memo.get("model_counts")
            if hit is not None and hit[0] is trusted and hit[1] is nb:
                return hit[2]
        reader = self._reader
        if reader is None or reader.trusted is not trusted or reader.model is not self.model:
            reader = self._reader = CountsReader(trusted, self.model)
        counts = reader.read()
        if memo is not None:
            memo["model_counts"] = (trusted, nb, counts)
        return counts

    @contextmanager
    def window(self) -> Iterator[None]:
        """Scope of one window's decision (:meth:`defenses.chain.Chain.process`)."""
        outer, self._window = self._window, {}
        try:
            yield
        finally:
            self._window = outer
