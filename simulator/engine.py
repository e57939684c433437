"""The tick loop: mail → filter → users and bots → feedback → defense → learner → metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from defenses.base import Decision, VoteBatch
from defenses.chain import Chain
from defenses.registry import build_chain
from defenses.reputation import Reputation
from simulator.attacks import BotView, BotVotes, TickOutcome, build_rings
from simulator.config import Scenario
from simulator.email import Email
from simulator.metrics import BotDetection, TickCounts, final_metrics, timeline_entry
from simulator.population import Population
from simulator.sources.base import MailSource
from simulator.sources.registry import build_source
from stream import topics
from stream.classifier import FeatureCache, SpamModel
from stream.events import email_event, feedback_columns, numbered_ids, review_event
from stream.memory import MemoryTransport
from stream.stages import DefenseStage, FilterStage, LearnerStage
from stream.transport import Transport

TickCallback = Callable[[int, dict], None]
_FEEDBACK_BATCH_ROWS = 50_000       # votes per feedback record (a few MB on the wire)


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
    (['attack', 'defense', 'mail_source', 'metrics', 'run_id', 'scenario', 'seed', 'timeline'], 4)
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
        self.rings = build_rings(s.attack, s)
        self.population = Population.build(s.population, self.rng.population,
                                           bots_join_tick=[r.join_tick() for r in self.rings],
                                           ring_shares=[r.ring.share for r in self.rings],
                                           ring_accounts=[r.accounts for r in self.rings],
                                           min_ages=[r.min_account_age() for r in self.rings])
        for ring in self.rings:
            ring.bots = self.population.ring_members(ring.index)
        self.account_index = self.population.index
        self.trigger = next((r.trigger for r in self.rings if r.trigger), None)
        self.source = source or build_source(s.mail, self.rng.mail_seed)
        self.model = SpamModel(alpha=s.model.alpha)
        self.cache = FeatureCache(self.model)
        self.chain: Chain = build_chain(s.defense)
        for name in topics.ALL:
            self.transport.create_topic(name)
        self.filter = FilterStage(self.transport, self.model, self.cache)
        self.defense = DefenseStage(self.transport, self.chain, window=float(s.defense.window_ticks),
                                    observers=[self._observe_window])
        self.learner = LearnerStage(self.transport, self.model, self.cache)
        self._deliveries = self.transport.consumer([topics.DELIVERIES], "simulator")
        self.truth: dict[str, bool] = {}
        self.detection = BotDetection(self.population)
        self._voted: dict[int, list[str]] = {}
        self._counts: TickCounts | None = None
        self._event_seq = 0
        self._dense_to_population = np.zeros(0, np.int64)
        self._attacker_ids: set[str] = set()
        self._outcomes: list[TickOutcome] = []

    # -- mail ---------------------------------------------------------------------------
    def _tick_mail(self, tick: int) -> tuple[list[Email], np.ndarray]:
        """The tick's mail and, per email, the ring that crafted it (-1: real mail)."""
        mail = self.scenario.mail
        emails = self.source.stream(tick, mail.emails_per_tick + mail.gold_emails_per_tick)
        if mail.gold_emails_per_tick:
            gold = emails[mail.emails_per_tick:]
            self.transport.send_many(topics.GOLD, [(e.email_id, review_event(e.email_id, int(e.is_spam), tick))
                                                   for e in gold])
        volume = max((r.campaign_volume(tick) for r in self.rings), default=0)
        if volume:
            campaign = self.source.campaign(tick, volume)
            for ring in self.rings:
                campaign = ring.shape_campaign(campaign, self.source, self.rng.attack)
            emails += campaign
        crafted_by = [-1] * len(emails)
        for ring in self.rings:
            crafted = ring.crafted_mail(tick, self.source, self.rng.attack)
            emails += crafted
            crafted_by += [ring.index] * len(crafted)
        return emails, np.array(crafted_by, dtype=np.int64)

    def warm_up(self) -> None:
        """Train the filter on clean labelled mail before tick 0; hold out a trusted
        validation set (never trained on) for the defenses that need one."""
        config = self.scenario.model
        emails = self.source.warmup(config.warmup_emails + config.validation_emails)
        for email in emails[:config.warmup_emails]:
            self.model.learn(self.model.features(email.text), email.is_spam)
        self.validation = [(self.model.features(e.text), e.is_spam) for e in emails[config.warmup_emails:]]
        # The defense runtime's shadow learner starts from the warmed-up model and learns the
        # labels the chain emits, exactly as the learner stage does (stream/runtime.py).
        shadow = SpamModel(alpha=self.scenario.model.alpha)
        shadow.load_state_dict(self.model.state_dict())
        self.defense.runtime.bind_model(shadow, self.validation)

    # -- one tick -------------------------------------------------------------------------
    def _filter(self, emails: list[Email], tick: int) -> np.ndarray:
        self.transport.send_many(topics.MAIL, ((e.email_id, e) for e in emails))
        self.filter.run_once()
        cached = self.cache.get
        self.transport.send_many(topics.EMAILS, ((e.email_id, email_event(e.email_id, float(tick), cached(e.email_id)))
                                                 for e in emails))
        junk = {}
        while batch := self._deliveries.poll(max_records=100_000):
            for record in batch:
                junk[record.value["email_id"]] = record.value["junk"]
        self._deliveries.commit()
        return np.array([junk[e.email_id] for e in emails], dtype=bool)

    def _bot_recipients(self, tick: int, campaign: np.ndarray, target: np.ndarray,
                        crafted_by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which live bots received which email: ordinary mail at the same rate as anyone,
        the campaign (the attacker sends it to its bots), target mail they subscribe to,
        and the mail their own ring crafted."""
        bots = self.population.live_bots(tick)
        if bots.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a, p = self.scenario.attack, self.scenario.population
        ordinary = p.recipients_per_email / p.users
        share = np.where(campaign, a.campaign_bot_share, np.where(target, max(a.target_bot_share, ordinary), ordinary))
        share = np.where(crafted_by >= 0, a.campaign_bot_share, share)
        hits = self.rng.reactions.random((share.size, bots.size)) < share[:, None]
        if (crafted_by >= 0).any():
            hits &= (crafted_by[:, None] < 0) | (crafted_by[:, None] == self.population.ring[bots][None, :])
        r, b = np.nonzero(hits)
        return r, bots[b]

    def _bot_votes(self, view: BotView, emails: list[Email]) -> tuple[BotVotes, list[Email]]:
        """The rings' votes cast this tick: those decided now and not delayed, then
        those decided earlier and due now (their rows index ``emails`` followed by the
        returned late emails)."""
        ring_of = self.population.ring[view.bot]
        now, late, late_emails = [], [], []
        for ring in self.rings:
            votes = ring.act(view.only(ring_of == ring.index), self.rng.attack)
            now.append(ring.queue.hold(votes, emails, view.tick, self.rng.attack))
            mail, due = ring.queue.release(view.tick)
            if due.row.size:
                due = due.take(self.population.active[due.bot])       # abandoned accounts cast nothing
                late.append(replace(due, row=due.row + len(emails) + len(late_emails)))
                late_emails += mail
        return BotVotes.concat(now + late), late_emails

    def _feedback(self, tick: int, emails: list[Email], crafted_by: np.ndarray, junk: np.ndarray) -> None:
        s = self.scenario
        counts = self._counts
        self.population.advance(tick)          # accounts taken over from this tick are bots
        is_spam = np.array([e.is_spam for e in emails])
        categories = np.array([e.category for e in emails])
        organic = crafted_by < 0
        campaign = (categories == "campaign") & organic
        target = np.isin(categories, s.attack.targets) & organic
        # Honest users receive real mail only.
        n_organic = int(organic.sum())
        recipients = self.population.honest_recipients(self.rng.reactions, n_organic, s.population.recipients_per_email)
        h_row, h_user, h_verdict = self.population.honest_reports(
            self.rng.reactions, recipients, is_spam[:n_organic], junk[:n_organic], s.population.junk_check_rate)
        if self.population.is_bot[:self.population.n_honest].any():
            # A taken-over account no longer reports as its owner did: the ring votes for it.
            mine = ~self.population.is_bot[h_user]
            h_row, h_user, h_verdict = h_row[mine], h_user[mine], h_verdict[mine]
        b_row, b_bot = self._bot_recipients(tick, campaign, target, crafted_by)
        view = BotView(tick, b_row, b_bot, campaign, target, junk, is_spam, crafted_by)
        bot_votes, late_emails = self._bot_votes(view, emails)
        if bot_votes.malicious.any():
            self.detection.malicious_votes(bot_votes.bot[bot_votes.malicious], tick)
        self._outcomes = [TickOutcome(tick, int((in_ring := (self.population.ring[b_bot] == r.index) & campaign[b_row]).sum()),
                                      int((in_ring & ~junk[b_row]).sum()), np.zeros(0, np.int64))
                          for r in self.rings]
        self._publish_feedback(tick, emails + late_emails, np.concatenate([h_row, bot_votes.row]),
                               np.concatenate([h_user, bot_votes.bot]),
                               np.concatenate([h_verdict, bot_votes.verdict]))
        attacker = campaign | ~organic
        self._attacker_ids.update(e.email_id for e, a in zip(emails, attacker) if a)
        counts.campaign += int(campaign.sum())
        counts.campaign_inbox += int((campaign & ~junk).sum())
        counts.targets += int(target.sum())
        counts.targets_junk += int((target & junk).sum())
        counts.bot_votes += int(bot_votes.row.size)

    def _publish_feedback(self, tick: int, emails: list[Email], rows: np.ndarray, users: np.ndarray,
                          verdicts: np.ndarray) -> None:
        """Send the votes to ``feedback``, in a shuffled order, as one feedback batch of
        DESIGN.md events (:func:`stream.events.feedback_columns`): the votes are built as
        columns, never as one dict per vote."""
        order = self.rng.reactions.permutation(rows.size)
        n = int(rows.size)
        if n:
            rows, users = rows[order], users[order]
            email_ids = np.char.encode(np.array([e.email_id for e in emails], dtype=str), "utf-8")
            event_ids = numbered_ids(b"f", self._event_seq + 1, n)
            batch = feedback_columns(event_ids, np.full(n, tick + 0.5), self.population.account_id_bytes[users],
                                     email_ids[rows], verdicts[order],
                                     self.population.created_tick[users].astype(np.float64))
            key = emails[int(rows[0])].email_id         # one key: the chunks stay in order
            self.transport.send_many(topics.FEEDBACK, [(key, batch[i:i + _FEEDBACK_BATCH_ROWS])
                                                       for i in range(0, n, _FEEDBACK_BATCH_ROWS)])
        self._event_seq += n
        self._voted[tick] = sorted(emails[r].email_id for r in np.unique(rows).tolist())
        self._counts.votes += n

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
        index = self._population_index(votes.account)
        honest = ~self.population.is_bot[index]
        counts.honest_votes += int(honest.sum())
        counts.honest_votes_lost += int((honest & (decision.vote_weight < 0.5)).sum())
        labels = decision.labels
        emails = self.defense.emails
        truth = np.array([self.truth[emails.name(e)] for e in labels.email.tolist()], dtype=bool)
        correct = (labels.label == 1) == truth
        attacker = np.array([emails.name(e) in self._attacker_ids for e in labels.email.tolist()], dtype=bool)
        counts.labels += len(labels)
        counts.label_weight += float(labels.weight.sum())
        counts.label_weight_correct += float(labels.weight[correct].sum())
        counts.label_weight_attacker += float(labels.weight[attacker].sum()) if attacker.size else 0.0

    def _population_index(self, dense: np.ndarray) -> np.ndarray:
        """Population indices of the defense's dense account ids (one name lookup per
        account ever, then an array take)."""
        names = self.defense.accounts
        known = self._dense_to_population.size
        if len(names) > known:
            fresh = [self.account_index[names.name(a)] for a in range(known, len(names))]
            self._dense_to_population = np.concatenate([self._dense_to_population, np.array(fresh, np.int64)])
        return self._dense_to_population[dense]

    def _evaluate(self, tick: int) -> None:
        counts = self._counts
        for email in self.source.evaluation(tick, self.scenario.mail.eval_emails_per_tick):
            predicted = self.model.is_spam(self.model.features(email.text))
            if email.is_spam:
                counts.eval_spam += 1
                counts.eval_false_neg += int(not predicted)
                if self.trigger:
                    counts.backdoor_tests += 1
                    counts.backdoor_inbox += int(not self.model.is_spam(self.model.features(f"{email.text}\n{self.trigger}")))
            else:
                counts.eval_ham += 1
                counts.eval_false_pos += int(predicted)

    def _flags(self, tick: int) -> np.ndarray:
        """Accounts the defenses flag (population indices); the attacker sees them suspended."""
        flagged = self._population_index(np.asarray(self.chain.flagged(), dtype=np.int64))
        if flagged.size:
            self.detection.flags(flagged, tick)
        return flagged

    def _attacker_reacts(self, flagged: np.ndarray) -> None:
        for ring, outcome in zip(self.rings, self._outcomes):
            ring.after_tick(TickOutcome(outcome.tick, outcome.campaign_seen, outcome.campaign_seen_inbox, flagged),
                            self.population, self.rng.attack)

    def step(self, tick: int) -> TickCounts:
        self._counts = counts = TickCounts(tick=tick)
        emails, crafted_by = self._tick_mail(tick)
        for e in emails:
            self.truth[e.email_id] = e.is_spam
        counts.emails = len(emails)
        junk = self._filter(emails, tick)
        self._feedback(tick, emails, crafted_by, junk)
        self._reviews(tick)
        self.defense.advance(watermark=tick + 1.0)
        self.learner.run_once()
        self._evaluate(tick)
        self._attacker_reacts(self._flags(tick))
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
            "metrics": final_metrics(timeline, self.scenario.ticks, self.detection, wall_s,
                                     warmup_emails=self.scenario.model.warmup_emails),
            "attack": [ring.describe() for ring in self.rings],
            "timeline": [timeline_entry(c) for c in timeline],
        }

    def account_outcomes(self) -> list[dict]:
        """What became of every account: ``account_id``, ``is_bot``, ``trust``,
        ``flagged_tick`` and ``first_malicious_tick`` (``None`` when it never happened).

        ``trust`` is the mean of the account's Beta reputation under the chain's last
        reputation member (its evidence plus the prior its age gives it at the end of the
        run), or ``None`` when the chain has no reputation member.
        """
        pop, det = self.population, self.detection
        trust: list = [None] * len(pop.account_ids)
        rep = next((m for m in reversed(self.chain.members) if isinstance(m, Reputation)), None)
        if rep is not None:
            dense_of = self.defense.accounts.get
            dense = np.array([-1 if (d := dense_of(a)) is None else d for a in pop.account_ids], dtype=np.int64)
            known = (dense >= 0) & (dense < rep.alpha_.shape[0])
            alpha, beta = np.zeros(dense.size), np.zeros(dense.size)
            alpha[known], beta[known] = rep.alpha_[dense[known]], rep.beta_[dense[known]]
            established = (self.scenario.ticks - pop.created_tick) >= rep.min_age
            prior_a = np.where(established, rep.established_prior[0], rep.new_prior[0])
            prior_b = np.where(established, rep.established_prior[1], rep.new_prior[1])
            trust = ((alpha + prior_a) / (alpha + beta + prior_a + prior_b)).tolist()
        return [{"account_id": a, "is_bot": bool(pop.is_bot[i]), "trust": trust[i],
                 "flagged_tick": det.first_flag.get(i), "first_malicious_tick": det.first_malicious.get(i)}
                for i, a in enumerate(pop.account_ids)]
