"""Synthetic mail from :class:`simulator.mailgen.SyntheticMailFactory`."""

from __future__ import annotations

import numpy as np

from simulator.email import Email
from simulator.mailgen import SyntheticMailFactory, category_mix
from simulator.sources.base import MailSource


class SyntheticSource(MailSource):
    """Faker-based mail in the DESIGN.md categories, one seeded factory per stream.

    Each stream has its own factory and random generator, so the ordinary mail of a
    tick is the same whether or not an attacker sends a campaign.

    >>> src = SyntheticSource(seed=1, spam_fraction=0.4, bank_alert_fraction=0.05)
    >>> [e.email_id for e in src.stream(3, 2)], src.campaign(3, 1)[0].category
    (['m3-0', 'm3-1'], 'campaign')
    """

    def __init__(self, seed: int, spam_fraction: float, bank_alert_fraction: float):
        children = np.random.SeedSequence(seed).spawn(5)
        seeds = [int(c.generate_state(1)[0]) for c in children]
        # Each factory is built on first use (drawing its pools costs ~0.4 s); it depends on
        # its own seed only, so when it is built does not change what it makes.
        self._factory_seeds = dict(zip(("stream", "campaign", "eval", "warm", "forge"), seeds))
        self._factories: dict[str, SyntheticMailFactory] = {}
        self._rngs = {name: np.random.default_rng(c) for name, c in zip(("stream", "eval", "warm"), children)}
        mix = category_mix(spam_fraction, bank_alert_fraction)
        self._categories = list(mix)
        self._probs = np.array(list(mix.values()))
        self.spam_fraction = spam_fraction
        self._forged = 0
        self.bank_alert_fraction = bank_alert_fraction

    def _factory(self, name: str) -> SyntheticMailFactory:
        if name not in self._factories:
            self._factories[name] = SyntheticMailFactory(self._factory_seeds[name])
        return self._factories[name]

    def _draw(self, name: str, n: int, prefix: str) -> list[Email]:
        picks = self._rngs[name].choice(len(self._categories), size=n, p=self._probs)
        factory = self._factory(name)
        return [factory.make(self._categories[c], f"{prefix}-{i}") for i, c in enumerate(picks.tolist())]

    def warmup(self, n: int) -> list[Email]:
        return self._draw("warm", n, "warm")

    def stream(self, tick: int, n: int) -> list[Email]:
        return self._draw("stream", n, f"m{tick}")

    def campaign(self, tick: int, n: int) -> list[Email]:
        factory = self._factory("campaign")
        return [factory.make("campaign", f"m{tick}-c{i}") for i in range(n)]

    def lookalike(self, category: str, tick: int, n: int) -> list[Email]:
        factory = self._factory("forge")
        start = self._forged
        self._forged += n
        return [factory.make(category, f"x{tick}-{i}") for i in range(start, start + n)]

    def evaluation(self, tick: int, n: int) -> list[Email]:
        return self._draw("eval", n, f"eval{tick}")

    def describe(self) -> dict:
        return {"kind": "synthetic", "spam_fraction": self.spam_fraction,
                "bank_alert_fraction": self.bank_alert_fraction,
                "campaign": "the attacker's crypto-investment campaign (own senders and vocabulary)",
                "targets": "category labels of the synthetic mail"}
