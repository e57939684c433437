"""Attack strategies: what the bot ring does each tick."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from simulator.config import AttackConfig


@dataclass(frozen=True)
class BotView:
    """What the bots can see this tick: the mail they received and where it landed.

    ``row`` and ``bot`` are parallel: bot ``bot[i]`` received email ``row[i]`` of the
    tick. ``campaign``, ``target`` and ``junk`` are per email of the tick.
    """

    tick: int
    row: np.ndarray
    bot: np.ndarray
    campaign: np.ndarray
    target: np.ndarray
    junk: np.ndarray
    is_spam: np.ndarray


@dataclass(frozen=True)
class BotVotes:
    """Votes the bots cast: email row, bot, verdict (1 spam) and whether it is malicious."""

    row: np.ndarray
    bot: np.ndarray
    verdict: np.ndarray
    malicious: np.ndarray

    @classmethod
    def none(cls) -> "BotVotes":
        z = np.zeros(0, np.int64)
        return cls(z, z, np.zeros(0, np.int8), np.zeros(0, bool))


class Attack(ABC):
    """A strategy: given what the bots see, which votes they cast."""

    name: str
    sends_campaign: bool = True

    def __init__(self, config: AttackConfig):
        self.config = config

    @abstractmethod
    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes: ...


class NoAttack(Attack):
    """No campaign, no bot votes: the baseline."""

    name = "none"
    sends_campaign = False

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        return BotVotes.none()


class FlipAttack(Attack):
    """The reference attack, Google's "feedback weaponization".

    From ``start_tick`` every bot marks the campaign it finds in junk "not spam" and
    the target mail it finds in its inbox "spam" (the buttons a real mail client
    offers); before that the bots are silent.

    >>> from simulator.config import AttackConfig
    >>> view = BotView(tick=5, row=np.array([0, 1]), bot=np.array([9, 9]),
    ...                campaign=np.array([True, False]), target=np.array([False, True]),
    ...                junk=np.array([True, False]), is_spam=np.array([True, False]))
    >>> FlipAttack(AttackConfig(start_tick=0)).votes(view, np.random.default_rng(0)).verdict.tolist()
    [0, 1]
    """

    name = "flip"

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        if view.tick < self.config.start_tick:
            return BotVotes.none()
        row, bot = view.row, view.bot
        promote = view.campaign[row] & view.junk[row]
        demote = view.target[row] & ~view.junk[row]
        keep = promote | demote
        verdict = np.where(promote, 0, 1).astype(np.int8)[keep]
        return BotVotes(row[keep], bot[keep], verdict, np.ones(int(keep.sum()), bool))


ATTACKS = {"none": NoAttack, "flip": FlipAttack}


def build_attack(config: AttackConfig) -> Attack:
    return ATTACKS[config.strategy](config)
