"""Per-tick counts and the run's result metrics.

Rates in the result are pooled over the final quarter of the ticks: the sum of
numerators over the sum of denominators, so a tick with few emails weighs less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TIMELINE_RATES = ("attack_success_rate", "collateral_rate", "clean_accuracy", "clean_fpr",
                  "clean_fnr", "label_precision", "honest_vote_loss", "backdoor_success_rate")


@dataclass
class TickCounts:
    tick: int
    campaign: int = 0
    campaign_inbox: int = 0
    targets: int = 0
    targets_junk: int = 0
    eval_ham: int = 0
    eval_spam: int = 0
    eval_false_pos: int = 0
    eval_false_neg: int = 0
    label_weight: float = 0.0
    label_weight_correct: float = 0.0
    label_weight_attacker: float = 0.0
    backdoor_tests: int = 0
    backdoor_inbox: int = 0
    labels: int = 0
    votes: int = 0
    honest_votes: int = 0
    honest_votes_lost: int = 0
    bot_votes: int = 0
    emails: int = 0


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def rates(c: TickCounts) -> dict[str, float | None]:
    """The DESIGN.md rates of a block of counts."""
    evaluated = c.eval_ham + c.eval_spam
    return {
        "attack_success_rate": _ratio(c.campaign_inbox, c.campaign),
        "collateral_rate": _ratio(c.targets_junk, c.targets),
        "clean_accuracy": _ratio(evaluated - c.eval_false_pos - c.eval_false_neg, evaluated),
        "clean_fpr": _ratio(c.eval_false_pos, c.eval_ham),
        "clean_fnr": _ratio(c.eval_false_neg, c.eval_spam),
        "label_precision": _ratio(c.label_weight_correct, c.label_weight),
        "honest_vote_loss": _ratio(c.honest_votes_lost, c.honest_votes),
        "backdoor_success_rate": _ratio(c.backdoor_inbox, c.backdoor_tests),
    }


def pooled(counts: list[TickCounts]) -> TickCounts:
    total = TickCounts(tick=-1)
    for c in counts:
        for name, value in vars(c).items():
            if name != "tick":
                setattr(total, name, getattr(total, name) + value)
    return total


@dataclass
class BotDetection:
    """When each bot first voted maliciously and when a defense first flagged it.

    Ground truth follows the attacker's hold on each account: a taken-over account is
    an honest user's until its takeover tick (``population.bot_since``), so a flag
    before then is a false positive, and only a flag while the attacker runs the
    account detects it. ``first_flag`` keeps every account's first flag,
    ``first_bot_flag`` the first flag while it was a bot.

    >>> from types import SimpleNamespace
    >>> pop = SimpleNamespace(is_bot=np.array([False, True, True]), bot_since=np.array([np.inf, 0.0, 10.0]))
    >>> d = BotDetection(pop)
    >>> d.malicious_votes(np.array([1, 2]), tick=12)
    >>> d.flags(np.array([0, 2]), tick=5)      # account 2 is still its owner's at tick 5
    >>> d.flags(np.array([1, 2]), tick=14)
    >>> s = d.summary()
    >>> s["bot_precision"], s["bot_recall"], s["detection_delay_ticks"]
    (0.6666666666666666, 1.0, 2.0)
    """

    population: object
    first_malicious: dict[int, int] = field(default_factory=dict)
    first_flag: dict[int, int] = field(default_factory=dict)
    first_bot_flag: dict[int, int] = field(default_factory=dict)

    def malicious_votes(self, bots: np.ndarray, tick: int) -> None:
        for b in np.unique(bots).tolist():
            self.first_malicious.setdefault(b, tick)

    def flags(self, accounts: np.ndarray, tick: int) -> None:
        bot_since = self.population.bot_since
        for a in accounts.tolist():
            self.first_flag.setdefault(a, tick)
            if bot_since[a] <= tick:
                self.first_bot_flag.setdefault(a, tick)

    def summary(self) -> dict[str, float | None]:
        is_bot = self.population.is_bot
        flagged = np.array(sorted(self.first_flag), dtype=np.int64)
        n_bots = int(is_bot.sum())
        true_pos = sum(1 for a in self.first_bot_flag if is_bot[a])
        delays = [self.first_bot_flag[b] - t for b, t in self.first_malicious.items()
                  if b in self.first_bot_flag and self.first_bot_flag[b] >= t]
        return {
            "bot_precision": _ratio(true_pos, flagged.size),
            "bot_recall": _ratio(true_pos, n_bots),
            "detection_delay_ticks": float(np.median(delays)) if delays else None,
            "accounts_flagged": int(flagged.size),
        }


def final_metrics(timeline: list[TickCounts], ticks: int, detection: BotDetection,
                  wall_s: float, warmup_emails: int = 0) -> dict[str, float | int | None]:
    """The result document's ``metrics``: rates over the final quarter, totals over the run."""
    last = [c for c in timeline if c.tick >= ticks - max(1, ticks // 4)]
    whole = pooled(timeline)
    metrics: dict[str, float | int | None] = dict(rates(pooled(last)))
    metrics.update(detection.summary())
    metrics.update({
        "votes": whole.votes,
        "emails": whole.emails,
        "labels": whole.labels,
        "attacker_training_share": _ratio(whole.label_weight_attacker, warmup_emails + whole.label_weight),
        "wall_s": wall_s,
        "votes_per_s": whole.votes / wall_s if wall_s > 0 else None,
        "emails_per_s": whole.emails / wall_s if wall_s > 0 else None,
    })
    return metrics


def timeline_entry(c: TickCounts) -> dict[str, float | int | None]:
    entry: dict[str, float | int | None] = {"tick": c.tick}
    entry.update(rates(c))
    entry.update({"votes": c.votes, "labels": c.labels, "bot_votes": c.bot_votes,
                  "honest_votes": c.honest_votes})
    return entry
