"""The tick loop: mail → filter → users and bots → feedback → defense → learner → metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from defenses.base import Decision, VoteBatch
from defenses.chain import Chain
from defenses.context import DefenseContext
from defenses.registry import build_chain
from simulator.attacks import BotView, build_attack
from simulator.config import Scenario
from simulator.email import Email
from simulator.metrics import BotDetection, TickCounts, final_metrics, timeline_entry
from simulator.population import Population
from simulator.sources.base import MailSource
from simulator.sources.registry import build_source
from stream import topics
from stream.classifier import FeatureCache, SpamModel
from stream.events import VERDICT_NAMES, feedback_event, review_event
from stream.memory import MemoryTransport
from stream.stages import DefenseStage, FilterStage, LearnerStage
from stream.transport import Transport

TickCallback = Callable[[int, dict], None]


@dataclass
class _Streams:
    """Independent random streams, so that e.g. the mail is the same whatever the defense."""

    population: np.random.Generator
    reactions: np.random.Generator
    attack: np.random.Generator
    review: np.random.Generator
    mail_seed: int

    @classmethod
    def from_seed(cls, seed: int) -> "_Streams":
        children = np.random.SeedSequence(seed).spawn(5)
        return cls(*(np.random.default_rng(c) for c in children[:4]),
                   mail_seed=int(children[4].generate_state(1)[0]))


class Simulation:
    """One experiment: a scenario, a defense chain and a seed.

    >>> from simulator.config import load_scenario
    >>> s = load_scenario(None, ["ticks=4", "attack.start_tick=1", "population.users=200",
    ...                          "mail.emails_per_tick=20", "model.warmup_emails=50"])
    >>> doc = Simulation(s).run()
    >>> sorted(doc), len(doc["timeline"])
    (['defense', 'mail_source', 'metrics', 'run_id', 'scenario', 'seed', 'timeline'], 4)
    """

    def __init__(self, scenario: Scenario, transport: Transport | None = None,
                 on_tick: TickCallback | None = None, run_id: str | None = None,
                 source: MailSource | None = None):
        self.scenario = scenario
        self.run_id = run_id or uuid.uuid4().hex
        self.transport = transport or MemoryTransport()
        self.on_tick = on_tick
        self.rng = _Streams.from_seed(scenario.seed)
        s = scenario
        self.attack = build_attack(s.attack)
        join = s.attack.bots_join_tick if s.attack.bots_join_tick is not None else max(0, s.attack.start_tick - 24)
        self.population = Population.build(s.population, self.rng.population, bots_join_tick=join)
        self.account_index = {a: i for i, a in enumerate(self.population.account_ids)}
        self.source = source or build_source(s.mail, self.rng.mail_seed)
        self.model = SpamModel(alpha=s.model.alpha)
        self.cache = FeatureCache(self.model)
        self.chain: Chain = build_chain(s.defense)
        for name in topics.ALL:
            self.transport.create_topic(name)
        self.filter = FilterStage(self.transport, self.model, self.cache)
        self.context = DefenseContext(self.model, self._features_of)
        self.defense = DefenseStage(self.transport, self.chain, window=float(s.defense.window_ticks),
                                    observers=[self._observe_window], context=self.context)
        self.learner = LearnerStage(self.transport, self.model, self.cache)
        self._deliveries = self.transport.consumer([topics.DELIVERIES], "simulator")
        self.truth: dict[str, bool] = {}
        self.detection = BotDetection(self.population.is_bot)
        self._voted: dict[int, list[str]] = {}
        self._counts: TickCounts | None = None
        self._event_seq = 0

    # -- mail ---------------------------------------------------------------------------
    def _tick_mail(self, tick: int) -> list[Email]:
        mail = self.scenario.mail
        emails = self.source.stream(tick, mail.emails_per_tick + mail.gold_emails_per_tick)
        if mail.gold_emails_per_tick:
            gold = emails[mail.emails_per_tick:]
            self.transport.send_many(topics.GOLD, [(e.email_id, review_event(e.email_id, int(e.is_spam), tick))
                                                   for e in gold])
        if self.attack.sends_campaign and tick >= self.scenario.attack.start_tick:
            emails += self.source.campaign(tick, self.scenario.attack.campaign_emails_per_tick)
        return emails

    def warm_up(self) -> None:
        """Train the filter on clean labelled mail before tick 0; hold out a trusted
        validation set (never trained on) for the defenses that need one."""
        config = self.scenario.model
        emails = self.source.warmup(config.warmup_emails + config.validation_emails)
        for email in emails[:config.warmup_emails]:
            self.model.learn(self.model.features(email.text), email.is_spam)
        self.context.validation[:] = [(self.model.features(e.text), e.is_spam)
                                      for e in emails[config.warmup_emails:]]

    def _features_of(self, email: np.ndarray) -> list[dict | None]:
        names = self.defense.emails
        return [self.cache.get(names.name(e)) for e in email.tolist()]

    # -- one tick -------------------------------------------------------------------------
    def _filter(self, emails: list[Email]) -> np.ndarray:
        self.transport.send_many(topics.MAIL, ((e.email_id, e) for e in emails))
        self.filter.run_once()
        junk = {}
        while batch := self._deliveries.poll(max_records=100_000):
            for record in batch:
                junk[record.value["email_id"]] = record.value["junk"]
        self._deliveries.commit()
        return np.array([junk[e.email_id] for e in emails], dtype=bool)

    def _bot_recipients(self, campaign: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bots = self.population.bots
        if bots.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        share = np.where(campaign, self.scenario.attack.campaign_bot_share,
                         np.where(target, self.scenario.attack.target_bot_share, 0.0))
        rows = np.flatnonzero(share > 0)
        hits = self.rng.reactions.random((rows.size, bots.size)) < share[rows, None]
        r, b = np.nonzero(hits)
        return rows[r], bots[b]

    def _feedback(self, tick: int, emails: list[Email], junk: np.ndarray) -> None:
        s = self.scenario
        counts = self._counts
        is_spam = np.array([e.is_spam for e in emails])
        categories = np.array([e.category for e in emails])
        campaign = categories == "campaign"
        target = np.isin(categories, s.attack.targets)
        # Honest recipients of every email.
        recipients = self.population.honest_recipients(self.rng.reactions, len(emails),
                                                        s.population.recipients_per_email)
        h_row, h_user, h_verdict = self.population.honest_reports(
            self.rng.reactions, recipients, is_spam, junk, s.population.junk_check_rate)
        # Bots: the campaign is sent to them, and they subscribe to target mail.
        b_row, b_bot = self._bot_recipients(campaign, target)
        view = BotView(tick, b_row, b_bot, campaign, target, junk, is_spam)
        bot_votes = self.attack.votes(view, self.rng.attack)
        if bot_votes.malicious.any():
            self.detection.malicious_votes(bot_votes.bot[bot_votes.malicious], tick)
        rows = np.concatenate([h_row, bot_votes.row])
        users = np.concatenate([h_user, bot_votes.bot])
        verdicts = np.concatenate([h_verdict, bot_votes.verdict])
        order = self.rng.reactions.permutation(rows.size)
        ids = self.population.account_ids
        created = self.population.created_tick
        events = []
        ts = tick + 0.5
        for k in order.tolist():
            email_id = emails[rows[k]].email_id
            user = int(users[k])
            self._event_seq += 1
            events.append((email_id, feedback_event(f"f{self._event_seq}", ts, ids[user], email_id,
                                                     VERDICT_NAMES[verdicts[k]], float(created[user]))))
        self.transport.send_many(topics.FEEDBACK, events)
        self._voted[tick] = sorted({emails[r].email_id for r in rows.tolist()})
        counts.campaign += int(campaign.sum())
        counts.campaign_inbox += int((campaign & ~junk).sum())
        counts.targets += int(target.sum())
        counts.targets_junk += int((target & junk).sum())
        counts.votes += int(rows.size)
        counts.bot_votes += int(bot_votes.row.size)

    def _reviews(self, tick: int) -> None:
        """The provider's analysts confirm the truth of a sample of reported mail, late."""
        voted = self._voted.pop(tick - self.scenario.review.delay_ticks, [])
        if not voted:
            return
        picked = self.rng.review.random(len(voted)) < self.scenario.review.rate
        events = [(e, review_event(e, int(self.truth[e]), tick + 0.9)) for e, p in zip(voted, picked) if p]
        self.transport.send_many(topics.REVIEWS, events)

    def _observe_window(self, votes: VoteBatch, decision: Decision, now: float) -> None:
        counts = self._counts
        names = self.defense.accounts
        index = np.array([self.account_index[names.name(a)] for a in votes.account.tolist()])
        honest = ~self.population.is_bot[index]
        counts.honest_votes += int(honest.sum())
        counts.honest_votes_lost += int((honest & (decision.vote_weight < 0.5)).sum())
        labels = decision.labels
        emails = self.defense.emails
        truth = np.array([self.truth[emails.name(e)] for e in labels.email.tolist()], dtype=bool)
        correct = (labels.label == 1) == truth
        counts.labels += len(labels)
        counts.label_weight += float(labels.weight.sum())
        counts.label_weight_correct += float(labels.weight[correct].sum())

    def _evaluate(self, tick: int) -> None:
        counts = self._counts
        for email in self.source.evaluation(tick, self.scenario.mail.eval_emails_per_tick):
            predicted = self.model.is_spam(self.model.features(email.text))
            if email.is_spam:
                counts.eval_spam += 1
                counts.eval_false_neg += int(not predicted)
            else:
                counts.eval_ham += 1
                counts.eval_false_pos += int(predicted)

    def _flags(self, tick: int) -> None:
        flagged = self.chain.flagged()
        if flagged.size:
            names = self.defense.accounts
            self.detection.flags(np.array([self.account_index[names.name(a)] for a in flagged.tolist()]), tick)

    def step(self, tick: int) -> TickCounts:
        self._counts = counts = TickCounts(tick=tick)
        emails = self._tick_mail(tick)
        for e in emails:
            self.truth[e.email_id] = e.is_spam
        counts.emails = len(emails)
        junk = self._filter(emails)
        self._feedback(tick, emails, junk)
        self._reviews(tick)
        self.defense.advance(watermark=tick + 1.0)
        self.learner.run_once()
        self._evaluate(tick)
        self._flags(tick)
        return counts

    def run(self) -> dict:
        """Run every tick and return the result document."""
        started = time.perf_counter()
        self.warm_up()
        timeline = []
        for tick in range(self.scenario.ticks):
            counts = self.step(tick)
            timeline.append(counts)
            if self.on_tick is not None:
                self.on_tick(tick, timeline_entry(counts))
        wall_s = time.perf_counter() - started
        return {
            "run_id": self.run_id,
            "scenario": self.scenario.to_dict(),
            "defense": self.chain.name,
            "seed": self.scenario.seed,
            "mail_source": self.source.describe(),
            "metrics": final_metrics(timeline, self.scenario.ticks, self.detection, wall_s),
            "timeline": [timeline_entry(c) for c in timeline],
        }
