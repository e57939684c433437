"""Attack strategies: what each bot ring does each tick.

A ring is a set of bot accounts run by one strategy. Every tick the engine shows
each ring a :class:`BotView` (the mail its bots received and where it landed) and
collects the ring's :class:`BotVotes`; a ring may also send crafted mail to its own
bots, set the campaign's volume and wording, and replace accounts after the tick
(:meth:`Attack.after_tick`).

Whatever the strategy, a ring runs the accounts ``accounts`` says (``fresh``,
``aged`` or ``takeover``; see :class:`~simulator.population.Population`), and its bots
act like people when asked to: each bot takes an opportunity with its own
probability, drawn around ``participation`` (:meth:`Attack.act`), and a vote may come
``delay_ticks`` ticks (on average) after the mail arrived (:class:`VoteQueue`).
"""

from __future__ import annotations

from abc import ABC
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from simulator.config import AttackConfig, RingConfig, Scenario
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

    def take(self, keep: np.ndarray) -> "BotVotes":
        return BotVotes(self.row[keep], self.bot[keep], self.verdict[keep], self.malicious[keep])


class VoteQueue:
    """Votes a ring's bots decided on but cast later, like people reading mail late.

    :meth:`hold` draws a delay per vote (geometric, mean ``mean_delay`` ticks: a person
    who checks mail at random times) and keeps the delayed ones with their email;
    :meth:`release` gives back the votes due at a tick, their rows indexing the emails
    it returns. Votes still held when the run ends are never cast.

    >>> q = VoteQueue(mean_delay=2.0)
    >>> mail = [Email("e0", "a@x", "s", "b", "spam"), Email("e1", "a@x", "s", "b", "bank_alert")]
    >>> votes = BotVotes(np.array([0, 1]), np.array([7, 8]), np.array([0, 1], np.int8), np.ones(2, bool))
    >>> now = q.hold(votes, mail, tick=3, rng=np.random.default_rng(1))
    >>> later = [q.release(t) for t in range(4, 40)]
    >>> now.row.size + sum(v.row.size for _, v in later)
    2
    """

    def __init__(self, mean_delay: float):
        self.mean_delay = float(mean_delay)
        self._due: dict[int, list[tuple[list[Email], BotVotes]]] = {}

    def hold(self, votes: BotVotes, emails: list[Email], tick: int, rng: np.random.Generator) -> BotVotes:
        """Keep the votes drawn to come later; return the ones cast at ``tick``."""
        if self.mean_delay <= 0 or votes.row.size == 0:
            return votes
        delay = rng.geometric(1.0 / (1.0 + self.mean_delay), size=votes.row.size) - 1
        for d in np.unique(delay[delay > 0]).tolist():
            part = votes.take(delay == d)
            rows, local = np.unique(part.row, return_inverse=True)
            self._due.setdefault(tick + d, []).append(
                ([emails[r] for r in rows.tolist()], replace(part, row=local.astype(np.int64))))
        return votes.take(delay == 0)

    def release(self, tick: int) -> tuple[list[Email], BotVotes]:
        """The held votes due at ``tick`` and the emails their rows index."""
        emails: list[Email] = []
        parts = []
        for mail, votes in self._due.pop(tick, []):
            parts.append(replace(votes, row=votes.row + len(emails)))
            emails += mail
        return emails, BotVotes.concat(parts)

    def __len__(self) -> int:
        return sum(v.row.size for entries in self._due.values() for _, v in entries)


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

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0, scenario: Scenario | None = None):
        self.config = config
        self.ring = ring
        self.index = index          # this ring's number in the population
        self.scenario = scenario    # the whole scenario, for strategies that read more than [attack]
        self.bots = np.zeros(0, np.int64)
        self.queue = VoteQueue(ring.delay_ticks)
        self._participation = np.zeros(0)       # per account, NaN until drawn

    @property
    def start(self) -> int:
        return self.config.start_tick

    @property
    def accounts(self) -> str:
        """Which accounts the ring runs: ``fresh``, ``aged`` or ``takeover``."""
        return self.ring.accounts

    def min_account_age(self) -> float:
        """The least age (ticks) of the aged accounts it buys (0: ages as they come)."""
        return 0.0

    def act(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        """The strategy's :meth:`votes`, each taken with its bot's participation.

        >>> from simulator.config import AttackConfig, RingConfig
        >>> view = BotView(tick=5, row=np.zeros(1000, np.int64), bot=np.arange(1000),
        ...                campaign=np.array([True]), target=np.array([False]),
        ...                junk=np.array([True]), is_spam=np.array([True]))
        >>> lazy = FlipAttack(AttackConfig(start_tick=0), RingConfig(participation=0.3))
        >>> round(lazy.act(view, np.random.default_rng(0)).row.size / 1000, 1)
        0.3
        """
        votes = self.votes(view, rng)
        p = self.ring.participation
        if p >= 1.0 or votes.row.size == 0:
            return votes
        need = int(votes.bot.max()) + 1
        if need > self._participation.size:
            self._participation = np.concatenate([self._participation, np.full(need - self._participation.size, np.nan)])
        fresh = np.unique(votes.bot[np.isnan(self._participation[votes.bot])])
        if fresh.size:              # each bot's own habit, drawn once around the ring's mean
            self._participation[fresh] = rng.beta(p * 8.0, (1.0 - p) * 8.0, size=fresh.size)
        return votes.take(rng.random(votes.row.size) < self._participation[votes.bot])

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
        return {"strategy": self.name, "bots": int(self.bots.size), **self.ring.model_dump(exclude_none=True),
                "accounts": self.accounts}

    def _replace(self, retire: np.ndarray, population, tick: int, rng: np.random.Generator) -> None:
        """Abandon the accounts ``retire`` masks and bring as many new ones of the same kind."""
        population.retire(self.bots[retire])
        new = population.add_bots(int(retire.sum()), created_tick=tick, ring=self.index, accounts=self.accounts,
                                  rng=rng, min_age=self.min_account_age())
        self.bots = np.concatenate([self.bots[~retire], new])


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
            self._replace(retire, population, outcome.tick + 1, rng)


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

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0, scenario: Scenario | None = None):
        super().__init__(config, ring, index, scenario)
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

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0, scenario: Scenario | None = None):
        super().__init__(config, ring, index, scenario)
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
            self._replace(flagged, population, outcome.tick + 1, rng)


# Members that score accounts on known truths (reviews, gold): per member, from the
# [defense] config, (prior of an account it knows nothing of, evidence one checked vote
# adds, flag_below, the prior flag_below is judged under, the quorum its vote needs or
# None when it labels by posterior confidence instead).
_SKILL_MEMBERS = {
    "reputation": lambda d: (tuple(d.reputation.established_prior), d.reputation.review_weight,
                             d.reputation.flag_below, tuple(d.reputation.new_prior), d.reputation.quorum),
    "gold": lambda d: (tuple(d.gold.prior), d.gold.review_weight, d.gold.flag_below, tuple(d.gold.prior),
                       d.gold.quorum),
    "wawa": lambda d: (tuple(d.wawa.prior), d.wawa.truth_weight, d.wawa.flag_below, tuple(d.wawa.prior),
                       d.wawa.quorum),
    "dawid_skene": lambda d: ((d.dawid_skene.prior_correct, d.dawid_skene.prior_wrong), 1.0,
                              d.dawid_skene.flag_below, (d.dawid_skene.prior_correct, d.dawid_skene.prior_wrong),
                              None),
}


class InformedAttack(Attack):
    """A white-box attacker: it reads the scenario's defense chain and stays under
    every member's thresholds, then does as much damage as they leave room for.

    What it knows: the chain's members and their parameters (``[defense]``, presets
    expanded), the provider's review rate and the gold-mail rate (``[review]``,
    ``[mail]``), its own ring and the scenario's length — the standard white-box
    assumption for evaluating a defense. It does not see which emails are reviewed
    or gold, nor the defense's state beyond which of its accounts get suspended.

    How it uses it:

    - **Accounts** (unless the scenario sets ``accounts``): against an age rule
      (``age_gate``'s ``min_age + ramp``, ``reputation``'s ``min_age`` for its
      established prior) it does not create accounts: it takes over real ones when a
      member also scores history (``reputation``, ``gold``, ``wawa``), which
      taken-over accounts bring with them, and buys aged accounts, at least as old as
      the rule asks (plus a day), otherwise.
    - **Spread** (``coordination``, or ``influence_cap``'s own ring detector): each
      campaign or target email gets only the few voters it needs, picked among the
      bots that received it so that no two of its accounts co-vote ``min_shared``
      times within ``window_ticks`` — no pair is ever linked, so no ring forms.
    - **Voters per email**: just enough for the aggregator's ``quorum`` at the vote
      weight an unchecked account has (``2 mean - 1`` of its prior; ``dawid_skene``:
      enough agreeing votes at the prior accuracy to reach ``min_confidence``;
      ``majority``: ``min_votes``). With no aggregating member every vote is a label
      of its own, so every bot that received the email votes, as far as the spread
      allows.
    - **Pace** (skill members: ``reputation``, ``gold``, ``wawa``, ``dawid_skene``): a malicious vote
      is checked with the review rate plus the gold share of the mail; an account
      takes at most half the checked wrong votes that would push its skill to zero
      weight or under ``flag_below``. That budget per account, over the ticks the
      attack has, sets how many malicious votes the ring casts per tick; the least
      used accounts vote first. It also reports misfiled ordinary mail truthfully
      (camouflage) to earn the right answers that skill members reward.
    - ``influence_cap``: an account backs at most ``floor`` labels per defense window.
    - ``roni``, ``rollback``: the pace keeps each window's poisoned share small; it
      has no further lever on a validation set it cannot see.

    :meth:`describe` reports the choices (``plan``).

    >>> from simulator.config import load_scenario
    >>> s = load_scenario(None, ["attack.strategy='informed'", "defense.chain=['recommended']"])
    >>> attack = build_rings(s.attack, s)[0]
    >>> attack.accounts, attack.plan["pair_cap"], attack.plan["voters_per_email"]
    ('takeover', 2, 1)
    >>> build_rings(s.attack, s.with_overrides(["defense.chain=['age_gate']"]))[0].accounts
    'aged'
    """

    name = "informed"

    def __init__(self, config: AttackConfig, ring: RingConfig, index: int = 0, scenario: Scenario | None = None):
        super().__init__(config, ring, index, scenario)
        self.plan = self._plan()
        self._spent = np.zeros(0)           # malicious votes cast, per ring member
        self._pairs = np.zeros((0, 0), np.int32)
        self._recent: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._allowance = 0.0

    # -- reading the chain ------------------------------------------------------------------
    def _plan(self) -> dict:
        from defenses.registry import expand

        sc = self.scenario
        members = expand(sc.defense.chain) if sc is not None else ["none"]
        d = sc.defense if sc is not None else None
        plan: dict = {"members": members}
        min_age = 0.0
        if "age_gate" in members:
            min_age = max(min_age, d.age_gate.min_age + d.age_gate.ramp)
        if "reputation" in members:
            min_age = max(min_age, d.reputation.min_age)
        skill = [m for m in members if m in _SKILL_MEMBERS]
        if "accounts" in self.ring._explicit:
            plan["accounts"] = self.ring.accounts
        elif min_age > 0:
            plan["accounts"] = "takeover" if skill else "aged"
        else:
            plan["accounts"] = "fresh"
        # aged accounts: older than the age rule for the whole run
        plan["min_account_age"] = min_age + 24.0 if min_age > 0 else 0.0
        # spread: the co-vote count no pair may reach
        coord = None
        if "coordination" in members:
            coord = d.coordination
        elif "influence_cap" in members and d.influence_cap.detect:
            from simulator.config import CoordinationConfig
            coord = CoordinationConfig()
        plan["pair_cap"] = coord.min_shared - 1 if coord is not None else None
        plan["pair_window_ticks"] = coord.window_ticks if coord is not None else None
        # voters per email: enough for the aggregator's quorum at an unchecked account's weight
        voters = None
        for m in members:
            if m == "dawid_skene":      # agreeing votes at the prior accuracy q until the posterior is sure
                q = d.dawid_skene.prior_correct / (d.dawid_skene.prior_correct + d.dawid_skene.prior_wrong)
                c = d.dawid_skene.min_confidence
                need = np.log(c / (1 - c)) / max(np.log(q / (1 - q)), 1e-9)
                voters = max(voters or 1, int(np.ceil(need - 1e-9)))
            elif m in _SKILL_MEMBERS:
                prior, _, _, _, quorum = _SKILL_MEMBERS[m](d)
                w = max(1e-3, 2.0 * prior[0] / sum(prior) - 1.0)
                voters = max(voters or 1, int(np.ceil(quorum / w - 1e-9)))
            elif m == "majority":
                voters = max(voters or 1, d.majority.min_votes)
        plan["voters_per_email"] = voters        # None: every bot that received it (one label per vote)
        # pace: checked wrong votes an account can take
        checked = 0.0
        if sc is not None:
            checked = sc.review.rate + sc.mail.gold_emails_per_tick / (sc.mail.emails_per_tick + sc.mail.gold_emails_per_tick)
        tolerance = np.inf
        for m in skill:
            prior, amount, flag_below, flag_prior, _ = _SKILL_MEMBERS[m](d)
            a, b = prior
            zero_weight = (a / 0.5 - a - b) / max(amount, 1e-9)
            fa, fb = flag_prior
            flagged = (fa / flag_below - fa - fb) / max(amount, 1e-9)
            tolerance = min(tolerance, zero_weight, flagged)
        plan["checked_share"] = round(checked, 4)
        if np.isfinite(tolerance) and checked > 0:
            plan["votes_per_account"] = max(1.0, 0.5 * tolerance / checked)
        else:
            plan["votes_per_account"] = None      # no limit
        plan["camouflage"] = bool(skill)
        per_window = None
        if "influence_cap" in members:
            per_window = max(1, int(d.influence_cap.floor))
        plan["votes_per_account_per_tick"] = (per_window / d.window_ticks) if per_window else None
        return plan

    @property
    def accounts(self) -> str:
        return self.plan["accounts"]

    def min_account_age(self) -> float:
        return self.plan["min_account_age"]

    def _pace(self) -> float | None:
        """Malicious votes the ring may cast per tick (None: no limit)."""
        budget = self.plan["votes_per_account"]
        if budget is None or self.scenario is None:
            return None
        ticks = max(1, self.scenario.ticks - self.start)
        return budget * self.bots.size / ticks

    def describe(self) -> dict:
        pace = self._pace()
        return {**super().describe(), "plan": {**self.plan, "ring_votes_per_tick": None if pace is None else round(pace, 2)}}

    # -- voting ---------------------------------------------------------------------------------
    def _local(self, bots: np.ndarray) -> np.ndarray:
        n = self.bots.size
        if self._spent.size != n:
            self._spent = np.resize(self._spent, n)
            self._pairs = np.zeros((n, n), np.int32)
            self._order = np.argsort(self.bots)
        pos = np.searchsorted(self.bots[self._order], bots)
        return self._order[np.minimum(pos, n - 1)]

    def votes(self, view: BotView, rng: np.random.Generator) -> BotVotes:
        plan = self.plan
        attacked = view.campaign | view.target
        honest = (honest_votes(view, self.ring.honest_rate, rng, skip=attacked) if plan["camouflage"]
                  else BotVotes.none())
        if not self.active(view.tick):
            return honest
        chances = flip_votes(view)
        if all(plan[k] is None for k in ("voters_per_email", "votes_per_account", "pair_cap",
                                         "votes_per_account_per_tick")):
            return BotVotes.concat([honest, chances])       # nothing to stay under
        return BotVotes.concat([honest, self._spread(chances, view.tick, rng)])

    def _spread(self, chances: BotVotes, tick: int, rng: np.random.Generator) -> BotVotes:
        """Pick the voters: few per email, least used first, no pair at its co-vote cap."""
        plan = self.plan
        if chances.row.size == 0 or self.bots.size == 0:
            return chances
        local = self._local(chances.bot)
        window = plan["pair_window_ticks"]
        if window is not None:          # forget co-votes older than the detector's window
            while self._recent and self._recent[0][0] <= tick - window:
                _, a, b = self._recent.pop(0)
                np.subtract.at(self._pairs, (a, b), 1)
                np.subtract.at(self._pairs, (b, a), 1)
        pace = self._pace()
        if pace is not None:
            self._allowance = min(self._allowance + pace, 4 * pace + 1)
        budget = plan["votes_per_account"]
        per_tick = plan["votes_per_account_per_tick"]
        k = plan["voters_per_email"] or np.inf
        cap = plan["pair_cap"]
        used = np.zeros(self.bots.size)
        keep = np.zeros(chances.row.size, bool)
        pair_a, pair_b = [], []
        emails = rng.permutation(np.unique(chances.row))
        for row in emails.tolist():
            if pace is not None and self._allowance < 1:
                break
            idx = np.flatnonzero(chances.row == row)
            idx = idx[np.lexsort((rng.random(idx.size), self._spent[local[idx]]))]
            picked: list[int] = []
            for i in idx.tolist():
                b = int(local[i])
                if len(picked) >= k:
                    break
                if budget is not None and self._spent[b] + 1 > budget:
                    continue
                if per_tick is not None and used[b] + 1 > per_tick:
                    continue
                if cap is not None and picked and (self._pairs[b, [local[j] for j in picked]] >= cap).any():
                    continue
                picked.append(i)
                used[b] += 1
            if not picked:
                continue
            keep[picked] = True
            members = local[picked]
            self._spent[members] += 1
            if pace is not None:
                self._allowance -= len(picked)
            if len(picked) > 1 and cap is not None:
                i, j = np.triu_indices(len(picked), 1)
                a, b = members[i], members[j]
                self._pairs[a, b] += 1          # pairs are distinct within one email
                self._pairs[b, a] += 1
                pair_a.append(a)
                pair_b.append(b)
        if pair_a:
            self._recent.append((tick, np.concatenate(pair_a), np.concatenate(pair_b)))
        return chances.take(keep)

    def after_tick(self, outcome: TickOutcome, population, rng: np.random.Generator) -> None:
        """Suspended accounts are of no more use: they vote no more."""
        if outcome.flagged.size and self._spent.size:
            suspended = np.isin(self.bots, outcome.flagged)
            if self.plan["votes_per_account"] is not None:
                self._spent[suspended] = np.inf


ATTACKS = {cls.name: cls for cls in (NoAttack, FlipAttack, SleeperAttack, CamouflageAttack, SlowBurnAttack,
                                     BurstAttack, SybilChurnAttack, BackdoorAttack, DictionaryAttack,
                                     InjectionAttack, AdaptiveAttack, InformedAttack)}


def build_rings(config: AttackConfig, scenario: Scenario | None = None) -> list[Attack]:
    """One attack per ring: ``attack.rings`` when given, else one ring running
    ``attack.strategy`` with the ``[attack]`` table's own parameters; no ring when
    ``attack.strategy`` is ``"none"``. ``scenario`` (the whole scenario) is what a
    white-box strategy (``informed``) reads the defense from.

    >>> from simulator.config import RingConfig
    >>> build_rings(AttackConfig(strategy="none", rings=[RingConfig(strategy="flip")]))
    []
    """
    return [ATTACKS[ring.strategy](config, ring, index, scenario)
            for index, ring in enumerate(config.resolved_rings())]
