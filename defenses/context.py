"""What a defense may know beyond the votes: the model, email features, trusted data.

The defense stage builds one :class:`DefenseContext` and hands it to every member
of the chain through :meth:`defenses.base.Defense.bind`. Defenses that only look
at votes ignore it; RONI and rollback need the model and trusted labelled mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stream.classifier import SpamModel


@dataclass
class DefenseContext:
    """The model being trained, features of voted emails, and trusted labelled mail.

    ``features(email)`` maps dense email ids (as in :class:`~defenses.base.VoteBatch`)
    to their cached feature dicts (``None`` when unknown). ``validation`` is a clean,
    trusted, labelled set never used for training: ``(features, is_spam)`` pairs.
    """

    model: SpamModel
    features: Callable[[np.ndarray], list[dict | None]]
    validation: list[tuple[dict, bool]] = field(default_factory=list)
