"""Defense names, as used in ``--defense`` and ``[defense] chain``, and preset chains."""

from __future__ import annotations

from typing import TYPE_CHECKING

from defenses.age_gate import AgeGate
from defenses.chain import Chain
from defenses.coordination import Coordination
from defenses.dawid_skene import DawidSkene
from defenses.gold import GoldVote
from defenses.influence_cap import InfluenceCap
from defenses.majority import MajorityVote
from defenses.none import NoDefense
from defenses.reputation import Reputation
from defenses.roni import Roni
from defenses.rollback import Rollback
from defenses.wawa import Wawa

if TYPE_CHECKING:
    from simulator.config import DefenseConfig

DEFENSES = {"none": NoDefense, "majority": MajorityVote, "reputation": Reputation,
            "dawid_skene": DawidSkene, "wawa": Wawa, "gold": GoldVote, "coordination": Coordination,
            "influence_cap": InfluenceCap, "age_gate": AgeGate, "roni": Roni, "rollback": Rollback}

# Named chains. ``recommended``: young accounts weigh nothing (age_gate); co-voting
# rings are found and capped whatever their age (coordination) and no account or ring
# owns more than 5% of a window's labels (influence_cap); the labels come from a vote
# weighted by accuracy on known-truth mail (gold: gold emails and provider reviews),
# which no ring can vouch for itself in; RONI quarantines labels that would hurt the
# trusted validation set (the dictionary attack's correctly labelled but poisonous
# mail); rollback undoes what got through once accuracy on trusted mail drops.
PRESETS = {"recommended": ["age_gate", "coordination", "influence_cap", "gold", "roni", "rollback"]}


def expand(chain: list[str]) -> list[str]:
    """Member names of a chain, with preset names replaced by their members.

    >>> expand(["recommended"])[:2]
    ['age_gate', 'coordination']
    """
    return [member for name in chain for member in PRESETS.get(name, [name])]


def build_chain(config: "DefenseConfig") -> Chain:
    """Instantiate the configured chain with each defense's own table of parameters."""
    members = []
    for name in expand(config.chain):
        params = getattr(config, name, None)
        kwargs = params.model_dump() if params is not None else {}
        members.append(DEFENSES[name](**kwargs))
    return Chain(members)
