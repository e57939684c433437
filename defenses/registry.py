"""Defense names, as used in ``--defense`` and ``[defense] chain``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from defenses.chain import Chain
from defenses.majority import MajorityVote
from defenses.none import NoDefense
from defenses.reputation import Reputation

if TYPE_CHECKING:
    from simulator.config import DefenseConfig

DEFENSES = {"none": NoDefense, "majority": MajorityVote, "reputation": Reputation}


def build_chain(config: "DefenseConfig") -> Chain:
    """Instantiate the configured chain with each defense's own table of parameters."""
    members = []
    for name in config.chain:
        params = getattr(config, name, None)
        kwargs = params.model_dump() if params is not None else {}
        members.append(DEFENSES[name](**kwargs))
    return Chain(members)
