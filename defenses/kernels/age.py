"""Account-age kernel: vote weight from how old the voting account is."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _age_weight(ts: np.ndarray, created: np.ndarray, min_age: float, ramp: float,
                young: float, unknown: float):
    """Weight per vote: ``young`` below ``min_age`` ticks of age, rising linearly to 1
    over the next ``ramp`` ticks (at once when ``ramp`` is 0); ``unknown`` when the
    account's creation time is NaN."""
    out = np.empty(ts.shape[0], dtype=np.float64)
    for i in range(ts.shape[0]):
        c = created[i]
        if np.isnan(c):
            out[i] = unknown
            continue
        age = ts[i] - c
        if age < min_age:
            out[i] = young
        elif ramp <= 0.0 or age >= min_age + ramp:
            out[i] = 1.0
        else:
            out[i] = young + (1.0 - young) * (age - min_age) / ramp
    return out
