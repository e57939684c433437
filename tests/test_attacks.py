"""Each strategy's mechanism, shown on hand-made views and on small real runs."""

import numpy as np
import pytest

from simulator.attacks import (ATTACKS, AdaptiveAttack, BackdoorAttack, BotView, BurstAttack, CamouflageAttack,
                               DictionaryAttack, InjectionAttack, SleeperAttack, SlowBurnAttack, SybilChurnAttack,
                               TickOutcome, build_rings)
from simulator.config import ATTACK_STRATEGIES, AttackConfig, PopulationConfig, RingConfig, load_scenario
from simulator.engine import Simulation
from simulator.population import Population
from simulator.sources.synthetic import SyntheticSource

RNG = np.random.default_rng(0)


def _view(tick, n_rows=8):
    """Rows: 0 campaign in junk, 1 campaign in inbox, 2 target in inbox, 3 target in junk,
    4 misfiled ham in junk, 5 misfiled spam in inbox, 6 ham in inbox, 7 spam in junk.
    Every one of 3 bots received every row."""
    campaign = np.array([1, 1, 0, 0, 0, 0, 0, 0], bool)
    target = np.array([0, 0, 1, 1, 0, 0, 0, 0], bool)
    junk = np.array([1, 0, 0, 1, 1, 0, 0, 1], bool)
    is_spam = np.array([1, 1, 0, 0, 0, 1, 0, 1], bool)
    row = np.tile(np.arange(n_rows), 3)
    bot = np.repeat([100, 101, 102], n_rows)
    return BotView(tick, row, bot, campaign, target, junk, is_spam, np.full(n_rows, -1))


def _attack(cls, **ring):
    return cls(AttackConfig(start_tick=10), RingConfig(strategy=cls.name, **ring))


def _pairs(votes):
    return sorted(set(zip(votes.row.tolist(), votes.verdict.tolist())))


def test_every_strategy_is_registered_and_documented():
    assert set(ATTACKS) == set(ATTACK_STRATEGIES)
    for cls in ATTACKS.values():
        assert cls.__doc__ and len(cls.__doc__) > 40


def test_sleeper_votes_honestly_before_the_switch_then_flips():
    attack = _attack(SleeperAttack, honest_rate=1.0, sleep_ticks=30)
    assert attack.join_tick() == 0                            # created 30 ticks before the start (clipped)
    before = attack.votes(_view(5), RNG)
    assert _pairs(before) == [(1, 1), (3, 0), (4, 0), (5, 1)]  # only misfiled mail, truthfully
    assert not before.malicious.any()
    after = attack.votes(_view(10), RNG)
    assert _pairs(after) == [(0, 0), (2, 1)] and after.malicious.all()


def test_camouflage_stays_honest_on_ordinary_mail_and_flips_only_campaign_and_targets():
    attack = _attack(CamouflageAttack, honest_rate=1.0)
    assert _pairs(attack.votes(_view(5), RNG)) == [(4, 0), (5, 1)]
    after = attack.votes(_view(10), RNG)
    assert _pairs(after) == [(0, 0), (2, 1), (4, 0), (5, 1)]
    assert set(after.row[after.malicious].tolist()) == {0, 2}


def test_slow_burn_takes_a_small_share_of_its_chances():
    attack = _attack(SlowBurnAttack, slow_rate=0.1)
    view = _view(10)
    big = BotView(10, np.tile(view.row, 500), np.arange(view.row.size * 500), view.campaign, view.target,
                  view.junk, view.is_spam, view.crafted_by)
    taken = attack.votes(big, np.random.default_rng(1)).row.size / (2 * 3 * 500)
    assert 0.07 < taken < 0.13
    assert attack.votes(_view(9), RNG).row.size == 0


def test_burst_floods_then_goes_quiet():
    attack = _attack(BurstAttack, burst_ticks=4, burst_factor=3.0, burst_period=10)
    assert [attack.campaign_volume(t) for t in (9, 10, 13, 14, 20)] == [0, 60, 60, 20, 60]
    assert attack.votes(_view(12), RNG).row.size > 0
    assert attack.votes(_view(14), RNG).row.size == 0


def test_sybil_churn_replaces_flagged_and_abandoned_accounts():
    population = Population.build(PopulationConfig(users=200, bot_fraction=0.1), np.random.default_rng(0))
    attack = _attack(SybilChurnAttack, churn_rate=0.0)
    attack.bots = population.ring_members(0)
    flagged = attack.bots[:5]
    attack.after_tick(TickOutcome(12, 0, 0, flagged), population, RNG)
    assert attack.bots.size == 20 and not np.isin(flagged, attack.bots).any()
    assert not population.active[flagged].any()
    fresh = attack.bots[-5:]
    assert (population.created_tick[fresh] == 13).all() and population.is_bot[fresh].all()
    churny = _attack(SybilChurnAttack, churn_rate=0.5)
    churny.bots = attack.bots.copy()
    churny.after_tick(TickOutcome(13, 0, 0, np.zeros(0, np.int64)), population, np.random.default_rng(3))
    assert np.isin(churny.bots, attack.bots).sum() < 16          # about half replaced


def test_backdoor_plants_the_trigger_and_teaches_it_as_ham():
    attack = _attack(BackdoorAttack, trigger="zqx7 verified", trigger_repeats=2)
    source = SyntheticSource(1, 0.4, 0.05)
    shaped = attack.shape_campaign(source.campaign(10, 3), source, RNG)
    assert all(e.body.endswith("zqx7 verified zqx7 verified") for e in shaped)
    carriers = attack.crafted_mail(10, source, RNG)
    assert carriers and all(e.crafted and e.is_spam and e.body.endswith("zqx7 verified") for e in carriers)
    assert len({e.body for e in carriers}) == len(carriers)     # ever-changing content
    assert _pairs(attack.votes(_view(10), RNG)) == [(0, 0)]      # campaign only, no targets
    view = _view(10)
    view = BotView(10, view.row, view.bot, view.campaign, view.target, view.junk, view.is_spam,
                   np.array([-1, -1, -1, -1, -1, -1, -1, 0]))
    assert _pairs(attack.votes(view, RNG)) == [(0, 0), (7, 0)]  # and its own carriers in junk


def test_dictionary_mail_is_ham_words_labelled_spam():
    attack = _attack(DictionaryAttack, dictionary_words=200, dictionary_emails_per_tick=2)
    source = SyntheticSource(1, 0.4, 0.05)
    mail = attack.crafted_mail(10, source, np.random.default_rng(0))
    assert len(mail) == 2 and all(e.crafted and e.is_spam for e in mail)
    assert len(set(mail[0].body.split())) == 200 and len(mail[0].body.split()) == 400
    assert "the" in mail[0].body.split() or "your" in mail[0].body.split()
    view = _view(10)
    view = BotView(10, view.row, view.bot, view.campaign, view.target, view.junk, view.is_spam,
                   np.array([-1, -1, -1, -1, -1, -1, 0, -1]))
    votes = attack.votes(view, RNG)
    assert _pairs(votes) == [(6, 1)]                            # only its own crafted mail, as spam


def test_injection_forges_targets_and_campaign_and_votes_on_them():
    attack = _attack(InjectionAttack, injection_emails_per_tick=4)
    mail = attack.crafted_mail(10, SyntheticSource(2, 0.4, 0.05), RNG)
    assert all(e.crafted for e in mail)
    assert sorted({e.category for e in mail}) == ["bank_alert", "campaign"]
    assert len({e.email_id for e in mail}) == len(mail)


def test_adaptive_raises_volume_and_varies_wording_when_junked_and_replaces_suspended_accounts():
    population = Population.build(PopulationConfig(users=200, bot_fraction=0.1), np.random.default_rng(0))
    attack = _attack(AdaptiveAttack)
    attack.bots = population.ring_members(0)
    source = SyntheticSource(3, 0.4, 0.05)
    attack.crafted_mail(10, source, RNG)
    attack.after_tick(TickOutcome(10, 30, 3, attack.bots[:2]), population, RNG)
    assert attack.campaign_volume(11) > 20 and attack.padding > 0
    shaped = attack.shape_campaign(source.campaign(11, 1), source, RNG)[0]
    assert len(shaped.body.split()) > len(source.campaign(11, 1)[0].body.split()) - 50
    assert attack.bots.size == 20 and population.is_bot.size == 202
    for _ in range(10):
        attack.after_tick(TickOutcome(12, 30, 29, np.zeros(0, np.int64)), population, RNG)
    assert attack.campaign_volume(13) < 20                    # it got through: lie low


def test_mixed_rings_split_the_bots_and_follow_their_own_strategies():
    s = load_scenario(None, ["ticks=20", "attack.start_tick=6", "population.users=600", "mail.emails_per_tick=60",
                             "mail.eval_emails_per_tick=20", "model.warmup_emails=400",
                             "attack.rings=[{strategy='camouflage', share=1}, {strategy='flip', share=2}]"])
    rings = build_rings(s.attack)
    assert [r.name for r in rings] == ["camouflage", "flip"]
    sim = Simulation(s)
    assert [r.bots.size for r in sim.rings] == [10, 20]
    doc = sim.run()
    assert [a["strategy"] for a in doc["attack"]] == ["camouflage", "flip"]
    # Only the camouflage ring votes before the start: its honest-looking votes.
    assert sum(e["bot_votes"] for e in doc["timeline"][:6]) > 0


@pytest.mark.parametrize("strategy", [s for s in ATTACK_STRATEGIES if s != "none"])
def test_every_strategy_runs_end_to_end(strategy):
    s = load_scenario(None, ["ticks=16", "attack.start_tick=4", "population.users=400", "mail.emails_per_tick=40",
                             "mail.eval_emails_per_tick=20", "model.warmup_emails=300",
                             f"attack.strategy='{strategy}'", "defense.chain=['none']"])
    doc = Simulation(s).run()
    assert sum(e["bot_votes"] for e in doc["timeline"]) > 0
    if strategy == "backdoor":
        assert doc["metrics"]["backdoor_success_rate"] is not None
