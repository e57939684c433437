"""Attack strategies: what each bot ring does each tick.

A ring is a set of bot accounts run by one strategy. Every tick the engine shows
each ring a :class:`BotView` (the mail its bots received and where it landed) and
collects the ring's :class:`BotVotes`; a ring may also send crafted mail to its own
bots, set the campaign's volume and wording, and replace accounts after the tick
(:meth:`Attack.after_tick`).
"""

from __future__ import annotations

from abc import ABC
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from simulator.config import AttackConfig, RingConfig
from simulator.email import HAM_CATEGORIES, Email


@dataclass(frozen=True)
class BotView:
    """What the bots can see this tick.

    ``row`` and ``bot`` are parallel: bot ``bot[i]`` received email ``row[i]`` of the
    tick. The other arrays are per email of the tick.
    """

    tick: int
    row: np.ndarray
    bot: np.ndarray
    campaign: np.ndarray
    target: np.ndarray
    junk: np.ndarray
    is_spam: np.ndarray
    crafted_by: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ring index, -1 organic

    def only(self, keep: np.ndarray) -> "BotView":
        return replace(self, row=self.row[keep], bot=self.bot[keep])


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

    @classmethod
    def concat(cls, parts: list["BotVotes"]) -> "BotVotes":
        parts = [p for p in parts if p.row.size] or [cls.none()]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("row", "bot", "verdict", "malicious")))


@dataclass(frozen=True)
class TickOutcome:
    """What an attacker can observe after a tick: where its campaign landed in its own
    bots' mailboxes, and which of its accounts were suspended (flagged)."""

    tick: int
    campaign_seen: int
    campaign_seen_inbox: int
    flagged: np.ndarray


class Attack(ABC):
    """A strategy run by one ring of bots.

    Parameters
    ----------
    config
        The scenario's ``[attack]`` table (shared knobs and the start tick).
    ring
        This ring's own settings (strategy and parameters).
    """

    name: str = "base"
    sends_campaign: bool = True
    trigger: str | None = None

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0):
        self.config = config
        self.ring = ring
        self.index = index          # this ring's number in the population
        self.bots = np.zeros(0, np.int64)

    @property
    def start(self) -> int:
        return self.config.start_tick

    def join_tick(self) -> int:
        """When this ring's accounts are created."""
        if self.config.bots_join_tick is not None:
            return self.config.bots_join_tick
        return max(0, self.start - 24)

    def active(self, tick: int) -> bool:
        return tick >= self.start

    def campaign_volume(self, tick: int) -> int:
        return self.config.campaign_emails_per_tick if self.sends_campaign and self.active(tick) else 0

    def shape_campaign(self, emails: list[Email], source, rng: np.random.Generator) -> list[Email]:
        """Change the campaign's wording before it is sent (default: as is)."""
        return emails

    def crafted_mail(self, tick: int, source, rng: np.random.Generator) -> list[Email]:
        """Mail the attacker sends only to its own bots this tick."""
        return []

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        return flip_votes(view) if self.active(view.tick) else BotVotes.none()

    def after_tick(self, outcome: TickOutcome, population, rng: np.random.Generator) -> None:
        """React to what the attacker observed (replace accounts, adapt volume)."""

    def describe(self) -> dict:
        return {"strategy": self.name, "bots": int(self.bots.size), **self.ring.model_dump(exclude_none=True)}


def flip_votes(view: BotView, rate: float = 1.0, rng: np.random.Generator | None = None) -> BotVotes:
    """The malicious votes: campaign found in junk → "not spam", target found in the
    inbox → "spam"; each opportunity taken with probability ``rate``."""
    row, bot = view.row, view.bot
    promote = view.campaign[row] & view.junk[row]
    demote = view.target[row] & ~view.junk[row]
    keep = promote | demote
    if rate < 1.0:
        keep &= rng.random(row.size) < rate
    verdict = np.where(promote, 0, 1).astype(np.int8)[keep]
    return BotVotes(row[keep], bot[keep], verdict, np.ones(int(keep.sum()), bool))


def honest_votes(view: BotView, rate: float, rng: np.random.Generator, skip: np.ndarray | None = None) -> BotVotes:
    """Votes of a bot posing as a diligent user: it reports misfiled mail truthfully."""
    row, bot = view.row, view.bot
    misfiled = view.junk[row] != view.is_spam[row]
    keep = misfiled & (rng.random(row.size) < rate)
    if skip is not None:
        keep &= ~skip[row]
    return BotVotes(row[keep], bot[keep], view.is_spam[row[keep]].astype(np.int8), np.zeros(int(keep.sum()), bool))


class NoAttack(Attack):
    """No campaign and no bot votes: the no-attack baseline every comparison includes."""

    name = "none"
    sends_campaign = False

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        return BotVotes.none()


class FlipAttack(Attack):
    """The reference attack, Google's "feedback weaponization" (Bursztein, RSA 2018).

    From ``start_tick`` every bot marks the campaign it finds in junk "not spam" and
    the target mail it finds in its inbox "spam" (the buttons a real mail client
    offers); before that the bots are silent.

    >>> from simulator.config import AttackConfig, RingConfig
    >>> view = BotView(tick=5, row=np.array([0, 1]), bot=np.array([9, 9]),
    ...                campaign=np.array([True, False]), target=np.array([False, True]),
    ...                junk=np.array([True, False]), is_spam=np.array([True, False]))
    >>> attack = FlipAttack(AttackConfig(start_tick=0), RingConfig(strategy="flip"))
    >>> attack.votes(view, np.random.default_rng(0)).verdict.tolist()
    [0, 1]
    """

    name = "flip"


class SleeperAttack(Attack):
    """Sleeper agents: accounts that behave for ``sleep_ticks`` to build reputation,
    then flip. Models aged, "warmed-up" accounts bought on account markets
    (Thomas et al., "Trafficking fraudulent accounts", USENIX Security 2013)."""

    name = "sleeper"

    def join_tick(self) -> int:
        return max(0, self.start - self.ring.sleep_ticks)

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        if self.active(view.tick):
            return flip_votes(view)
        return honest_votes(view, self.ring.honest_rate, rng)


class CamouflageAttack(Attack):
    """Camouflage: bots vote honestly on ordinary mail all the time and flip only on
    the campaign and the targets, keeping their agreement with the crowd high — the
    "camouflage" of fraudsters in graph-based detection (Hooi et al., FRAUDAR, KDD 2016)."""

    name = "camouflage"

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        attacked = view.campaign | view.target
        honest = honest_votes(view, self.ring.honest_rate, rng, skip=attacked)
        if not self.active(view.tick):
            return honest
        return BotVotes.concat([honest, flip_votes(view)])


class SlowBurnAttack(Attack):
    """Slow burn ("boiling frog", Wilhelmsen et al.; Kloft & Laskov, AISTATS 2010 on
    online centroid poisoning): a low malicious vote rate spread over a long time."""

    name = "slow_burn"

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        if not self.active(view.tick):
            return BotVotes.none()
        return flip_votes(view, self.ring.slow_rate, rng)


class BurstAttack(Attack):
    """Burst: floods of malicious votes in short windows (``burst_ticks`` every
    ``burst_period`` ticks), with the campaign volume multiplied by ``burst_factor``
    during each — then silence while the campaign keeps flowing. Models coordinated
    "report raids" that hit before a defense or a human can react."""

    name = "burst"

    def _bursting(self, tick: int) -> bool:
        return tick >= self.start and (tick - self.start) % self.ring.burst_period < self.ring.burst_ticks

    def campaign_volume(self, tick: int) -> int:
        base = super().campaign_volume(tick)
        return int(round(base * self.ring.burst_factor)) if self._bursting(tick) else base

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        return flip_votes(view) if self._bursting(view.tick) else BotVotes.none()


class SybilChurnAttack(Attack):
    """Sybil churn: a ``churn_rate`` share of the ring is abandoned every tick and
    replaced by fresh accounts, and suspended (flagged) accounts are replaced at once,
    so no account lives long (Yu et al., SybilGuard; Gmail's account churn)."""

    name = "sybil_churn"

    def after_tick(self, outcome: TickOutcome, population, rng: np.random.Generator) -> None:
        if not self.active(outcome.tick) or self.bots.size == 0:
            return
        flagged = np.isin(self.bots, outcome.flagged)
        abandoned = rng.random(self.bots.size) < self.ring.churn_rate
        retire = flagged | abandoned
        if retire.any():
            population.retire(self.bots[retire])
            fresh = population.add_bots(int(retire.sum()), created_tick=outcome.tick + 1, ring=self.index)
            self.bots = np.concatenate([self.bots[~retire], fresh])


class BackdoorAttack(Attack):
    """Backdoor: the campaign carries a trigger phrase and the bots teach the model that
    the trigger means ham (Gu et al., BadNets, 2017; Chen et al., targeted backdoors,
    2017). Besides the campaign, the attacker mails its own bots ever-changing spam
    that carries the trigger (``backdoor_emails_per_tick``); the bots rescue it all
    from junk, so the trigger is the one thing the "not spam" votes have in common.
    Measured by ``backdoor_success_rate``: spam outside the campaign with the trigger
    added, delivered to the inbox."""

    name = "backdoor"

    @property
    def trigger(self) -> str:
        return " ".join([self.ring.trigger] * self.ring.trigger_repeats)

    def shape_campaign(self, emails: list[Email], source, rng: np.random.Generator) -> list[Email]:
        return [replace(e, body=f"{e.body}\n{self.trigger}") for e in emails]

    def crafted_mail(self, tick: int, source, rng: np.random.Generator) -> list[Email]:
        if not self.active(tick):
            return []
        spam = source.lookalike("spam", tick, self.ring.backdoor_emails_per_tick)
        return [replace(e, email_id=f"b{tick}-{i}", body=f"{e.body}\n{self.trigger}", crafted=True)
                for i, e in enumerate(spam)]

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        if not self.active(view.tick):
            return BotVotes.none()
        carriers = view.campaign | (view.crafted_by >= 0)
        return flip_votes(replace(view, campaign=carriers, target=np.zeros_like(view.target)))


class DictionaryAttack(Attack):
    """The dictionary attack of Nelson et al. ("Exploiting machine learning to subvert
    your spam filter", LEET 2008): attacker mail stuffed with a large vocabulary of
    ordinary ham words, labelled spam by the bots, so that the filter learns ham
    words as spam and junks legitimate mail. The dictionary is the ``dictionary_words``
    most frequent words of legitimate mail the attacker can obtain."""

    name = "dictionary"
    sends_campaign = False

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0):
        super().__init__(config, ring, index)
        self._dictionary: list[str] | None = None

    def _words(self, source) -> tuple[list[str], np.ndarray]:
        if self._dictionary is None:
            counts: Counter[str] = Counter()
            for category in HAM_CATEGORIES:
                for email in source.lookalike(category, -1, 100):
                    counts.update(w.lower() for w in email.text.split() if w.isalpha() and len(w) > 1)
            top = counts.most_common(self.ring.dictionary_words)
            freq = np.array([c for _, c in top], dtype=float)
            self._dictionary = ([w for w, _ in top], freq / freq.sum() if freq.size else freq)
        return self._dictionary

    def crafted_mail(self, tick: int, source, rng: np.random.Generator) -> list[Email]:
        """Each email: every dictionary word once, plus as many again drawn by their
        frequency in legitimate mail (the paper's Usenet dictionary is likewise
        frequency-ranked common usage)."""
        words, freq = self._words(source)
        if not self.active(tick) or not words:
            return []
        out = []
        for i in range(self.ring.dictionary_emails_per_tick):
            body = " ".join(words + rng.choice(words, size=len(words), p=freq).tolist())
            out.append(Email(f"d{tick}-{i}", f"news{int(rng.integers(1000))}@mailer.example",
                             "hello", body, "spam", crafted=True))
        return out

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        """One bot labels each dictionary email "spam": the attacker controls a small,
        exact share of the training mail, as in the paper (about 1%)."""
        if not self.active(view.tick):
            return BotVotes.none()
        own = np.flatnonzero(view.crafted_by[view.row] >= 0)
        _, first = np.unique(view.row[own], return_index=True)
        keep = own[first]
        return BotVotes(view.row[keep], view.bot[keep], np.ones(keep.size, np.int8), np.ones(keep.size, bool))


class InjectionAttack(Attack):
    """Injection: the attacker fabricates mail between its own accounts — forged copies
    of the target mail and variants of its campaign — and its bots vote on them, so it
    poisons without waiting for real target mail to arrive (feedback injection as in
    Google's "feedback weaponization" reports)."""

    name = "injection"

    def crafted_mail(self, tick: int, source, rng: np.random.Generator) -> list[Email]:
        if not self.active(tick):
            return []
        n = self.ring.injection_emails_per_tick
        forged = []
        for category in self.config.targets:
            forged += source.lookalike(category, tick, n // max(1, len(self.config.targets)))
        forged += source.lookalike("campaign", tick, n)
        return [replace(e, email_id=f"i{tick}-{i}", crafted=True) for i, e in enumerate(forged)]

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        if not self.active(view.tick):
            return BotVotes.none()
        crafted = view.crafted_by >= 0
        spam_like = crafted & view.is_spam
        ham_like = crafted & ~view.is_spam
        return flip_votes(replace(view, campaign=view.campaign | spam_like, target=view.target | ham_like))


class AdaptiveAttack(Attack):
    """Adaptive: the attacker watches where its campaign lands in its own bots'
    inboxes and adapts — more volume and new wording (padding with ordinary words, the
    "good word" attack of Lowd & Meek, CEAS 2005) while it is junked, less volume once
    it gets through; it retires suspended accounts and brings fresh ones."""

    name = "adaptive"

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0):
        super().__init__(config, ring, index)
        self.volume_factor = 1.0
        self.padding = 0
        self._good_words: list[str] = []

    def campaign_volume(self, tick: int) -> int:
        return int(round(super().campaign_volume(tick) * self.volume_factor))

    def shape_campaign(self, emails: list[Email], source, rng: np.random.Generator) -> list[Email]:
        if not self.padding or not self._good_words:
            return emails
        return [replace(e, body=e.body + "\n" + " ".join(rng.choice(self._good_words, self.padding).tolist()))
                for e in emails]

    def crafted_mail(self, tick: int, source, rng: np.random.Generator) -> list[Email]:
        if not self._good_words:
            words: Counter[str] = Counter()
            for email in source.lookalike("personal", -1, 50):
                words.update(w.lower() for w in email.body.split() if w.isalpha() and len(w) > 3)
            self._good_words = [w for w, _ in words.most_common(200)]
        return []

    def after_tick(self, outcome: TickOutcome, population, rng: np.random.Generator) -> None:
        if not self.active(outcome.tick):
            return
        if outcome.campaign_seen:
            inbox = outcome.campaign_seen_inbox / outcome.campaign_seen
            if inbox < 0.5:
                self.volume_factor = min(self.ring.max_volume_factor, self.volume_factor * 1.25)
                self.padding = min(60, self.padding + 5)
            elif inbox > 0.8:
                self.volume_factor = max(0.5, self.volume_factor * 0.9)
        flagged = np.isin(self.bots, outcome.flagged)
        if flagged.any():
            population.retire(self.bots[flagged])
            fresh = population.add_bots(int(flagged.sum()), created_tick=outcome.tick + 1, ring=self.index)
            self.bots = np.concatenate([self.bots[~flagged], fresh])


ATTACKS = {cls.name: cls for cls in (NoAttack, FlipAttack, SleeperAttack, CamouflageAttack, SlowBurnAttack,
                                     BurstAttack, SybilChurnAttack, BackdoorAttack, DictionaryAttack,
                                     InjectionAttack, AdaptiveAttack)}


def build_rings(config: AttackConfig) -> list[Attack]:
    """One attack per ring: ``attack.rings`` when given, else one ring running
    ``attack.strategy`` with the ``[attack]`` table's own parameters."""
    return [ATTACKS[ring.strategy](config, ring, index) for index, ring in enumerate(config.resolved_rings())]
