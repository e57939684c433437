"""Young accounts carry no (or reduced) weight."""

from __future__ import annotations

import numpy as np

from defenses.base import Defense, VoteBatch
from defenses.kernels.age import _age_weight


class AgeGate(Defense):
    """Votes of accounts younger than ``min_age`` ticks weigh ``young_weight``.

    Bought or freshly registered accounts are the cheapest way to field a ring; an
    age gate makes the attacker wait (or pay for aged accounts) before its votes count.
    The weight rises linearly from ``young_weight`` to 1 over ``ramp`` ticks past
    ``min_age``. An account whose creation time is unknown (NaN) weighs
    ``unknown_weight``. Weighs only: chain it before an aggregator.

    Parameters
    ----------
    min_age
        Age in ticks (hours) below which a vote weighs ``young_weight``.
    ramp
        Ticks over which the weight then rises to 1 (0: at once).
    young_weight, unknown_weight
        Weights of young accounts and of accounts of unknown age, in [0, 1].

    >>> gate = AgeGate(min_age=24, ramp=24)
    >>> votes = VoteBatch.of([0, 1, 2, 3], [5, 5, 5, 5], [1, 1, 1, 1], ts=[100.0] * 4,
    ...                      created=[90.0, 64.0, 0.0, float("nan")])
    >>> gate.weigh(votes).tolist()
    [0.0, 0.5, 1.0, 0.0]
    """

    name = "age_gate"

    def __init__(self, min_age: float = 720.0, ramp: float = 0.0, young_weight: float = 0.0,
                 unknown_weight: float = 0.0):
        if min_age < 0 or ramp < 0:
            raise ValueError(f"min_age and ramp must be >= 0, got {min_age} and {ramp}")
        for name, value in (("young_weight", young_weight), ("unknown_weight", unknown_weight)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.min_age = float(min_age)
        self.ramp = float(ramp)
        self.young_weight = float(young_weight)
        self.unknown_weight = float(unknown_weight)

    def weigh(self, votes: VoteBatch) -> np.ndarray:
        return _age_weight(votes.ts, votes.created, self.min_age, self.ramp, self.young_weight,
                           self.unknown_weight)
