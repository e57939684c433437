"""The accounts a ring runs (fresh, aged, takeover), bots that act like people
(participation, delayed votes), the no-attack baseline and the informed attacker."""

import numpy as np
import pytest

from simulator.attacks import (
    BotView,
    BotVotes,
    FlipAttack,
    InformedAttack,
    VoteQueue,
    build_rings,
)
from simulator.cli import main
from simulator.config import AttackConfig, PopulationConfig, RingConfig, load_scenario
from simulator.email import Email
from simulator.engine import Simulation
from simulator.population import HONEST_AGES, Population

SMALL = ["ticks=16", "attack.start_tick=6", "population.users=400", "mail.emails_per_tick=40",
         "mail.eval_emails_per_tick=20", "model.warmup_emails=300"]


def _build(kinds, min_ages=None, join=30):
    return Population.build(PopulationConfig(users=2000, bot_fraction=0.1), np.random.default_rng(1),
                            bots_join_tick=[join] * len(kinds), ring_shares=[1.0] * len(kinds),
                            ring_accounts=kinds, min_ages=min_ages)


def test_aged_accounts_look_like_honest_ones_and_join_late():
    p = _build(["aged"], min_ages=[720.0])
    bots = p.ring_members(0)
    assert bots.size == 200 and (bots >= p.n_honest).all() and p.is_bot[bots].all()
    age_at_join = 30 - p.created_tick[bots]
    assert age_at_join.min() >= 720 and age_at_join.max() < HONEST_AGES[1]
    assert age_at_join.std() > 0.2 * HONEST_AGES[1]                   # spread like people's, not one batch
    assert (p.bot_since[bots] == 30).all()
    assert p.live_bots(29).size == 0 and p.live_bots(30).size == 200   # bought, but run from the join tick


def test_takeover_uses_honest_accounts_which_turn_at_the_takeover_tick():
    p = _build(["takeover", "fresh"])
    stolen, fresh = p.ring_members(0), p.ring_members(1)
    assert stolen.size == 100 and fresh.size == 100
    assert (stolen < p.n_honest).all() and (fresh >= p.n_honest).all() and p.n_honest == 1900
    assert (p.created_tick[stolen] < 0).all() and (p.report_rate[stolen] > 0).all()   # history kept
    assert not p.is_bot[stolen].any() and p.live_bots(29).size == 0
    assert p.was_bot(stolen, 29.0).sum() == 0 and p.was_bot(stolen, 30.0).all()
    assert p.advance(29).size == 0
    assert sorted(p.advance(30).tolist()) == sorted(stolen.tolist()) and p.is_bot[stolen].all()
    assert p.live_bots(30).size == 200


def test_no_ring_keeps_the_honest_users_and_has_no_bots():
    with_ring = _build(["fresh"])
    none = Population.build(PopulationConfig(users=2000, bot_fraction=0.1), np.random.default_rng(1),
                            bots_join_tick=[], ring_shares=[])
    assert none.n_bots == 0 and none.n_honest == with_ring.n_honest == 1800
    assert none.account_ids == with_ring.account_ids[:1800]
    assert np.array_equal(none.report_rate, with_ring.report_rate[:1800])


def test_no_attack_baseline_runs_no_ring_even_with_rings_configured():
    s = load_scenario(None, [*SMALL, "attack.strategy='none'",
                             "attack.rings=[{strategy='flip'}, {strategy='camouflage'}]"])
    sim = Simulation(s)
    doc = sim.run()
    assert sim.rings == [] and doc["attack"] == [] and sim.population.n_bots == 0
    assert sum(e["bot_votes"] for e in doc["timeline"]) == 0
    assert doc["metrics"]["attack_success_rate"] is None             # no campaign was sent


def test_takeover_ring_counts_as_honest_before_and_as_bots_after():
    s = load_scenario(None, [*SMALL, "attack.accounts='takeover'", "defense.chain=['none']"])
    sim = Simulation(s)
    stolen = sim.rings[0].bots
    assert (stolen < sim.population.n_honest).all()
    doc = sim.run()
    timeline = doc["timeline"]
    join = sim.rings[0].join_tick()
    assert sum(e["bot_votes"] for e in timeline[:join]) == 0
    assert sum(e["bot_votes"] for e in timeline[s.attack.start_tick:]) > 0
    assert sim.population.is_bot[stolen].all() and sim.population.is_bot.sum() == stolen.size
    assert all(sim.detection.first_malicious[b] >= join for b in sim.detection.first_malicious)
    assert doc["attack"][0]["accounts"] == "takeover"


def test_bad_accounts_value_is_one_line_and_exit_2(capsys):
    assert main(["run", "--set", "attack.accounts='borrowed'"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "attack.accounts: unknown accounts 'borrowed'" in err[0]


def test_participation_is_per_bot_around_the_mean():
    view = BotView(tick=5, row=np.zeros(40_000, np.int64), bot=np.repeat(np.arange(200), 200),
                   campaign=np.array([True]), target=np.array([False]), junk=np.array([True]),
                   is_spam=np.array([True]))
    attack = FlipAttack(AttackConfig(start_tick=0), RingConfig(participation=0.4))
    votes = attack.act(view, np.random.default_rng(0))
    per_bot = np.bincount(votes.bot, minlength=200) / 200
    assert abs(per_bot.mean() - 0.4) < 0.05 and per_bot.std() > 0.1   # bots differ
    again = attack.act(view, np.random.default_rng(1))                 # each keeps its own habit
    assert np.corrcoef(per_bot, np.bincount(again.bot, minlength=200) / 200)[0, 1] > 0.8


def test_vote_queue_releases_each_vote_once_with_its_email_later():
    q = VoteQueue(mean_delay=3.0)
    mail = [Email(f"e{i}", "a@x", "s", "b", "spam") for i in range(50)]
    votes = BotVotes(np.arange(50), np.arange(50) + 100, np.zeros(50, np.int8), np.ones(50, bool))
    now = q.hold(votes, mail, tick=10, rng=np.random.default_rng(0))
    seen = {mail[r].email_id: 10 for r in now.row.tolist()}
    for tick in range(11, 80):
        emails, due = q.release(tick)
        for r in due.row.tolist():
            assert emails[r].email_id not in seen
            seen[emails[r].email_id] = tick
    delays = np.array(list(seen.values())) - 10
    assert len(seen) == 50 and len(q) == 0 and 1.5 < delays.mean() < 5 and (delays > 0).any()


def test_delayed_votes_arrive_in_later_ticks_end_to_end():
    base = Simulation(load_scenario(None, [*SMALL, "defense.chain=['none']"])).run()
    late = Simulation(load_scenario(None, [*SMALL, "defense.chain=['none']", "attack.delay_ticks=3"])).run()
    start = 6
    assert base["timeline"][start]["bot_votes"] > 0
    assert late["timeline"][start]["bot_votes"] < base["timeline"][start]["bot_votes"]
    assert sum(e["bot_votes"] for e in late["timeline"][start:]) > 0


def test_defaults_change_nothing():
    plain = Simulation(load_scenario(None, SMALL)).run()
    spelled = Simulation(load_scenario(None, [*SMALL, "attack.accounts='fresh'", "attack.participation=1.0",
                                              "attack.delay_ticks=0"])).run()
    assert plain["timeline"] == spelled["timeline"]
    assert {k: v for k, v in plain["metrics"].items() if not k.endswith("_s") and k != "wall_s"} == \
           {k: v for k, v in spelled["metrics"].items() if not k.endswith("_s") and k != "wall_s"}


@pytest.mark.parametrize("chain,accounts,spread", [
    (["none"], "fresh", False),
    (["age_gate"], "aged", False),
    (["reputation"], "takeover", False),
    (["recommended"], "takeover", True),
    (["coordination", "majority"], "fresh", True),
    (["dawid_skene"], "fresh", False),
])
def test_informed_reads_the_chain(chain, accounts, spread):
    s = load_scenario(None, ["attack.strategy='informed'", f"defense.chain={chain!r}"])
    [attack] = build_rings(s.attack, s)
    assert isinstance(attack, InformedAttack) and attack.accounts == accounts
    assert (attack.plan["pair_cap"] is not None) == spread
    assert "plan" in attack.describe()


def test_informed_respects_the_accounts_the_scenario_sets():
    s = load_scenario(None, ["attack.strategy='informed'", "attack.accounts='aged'", "defense.chain=['recommended']"])
    assert build_rings(s.attack, s)[0].accounts == "aged"


def test_informed_never_lets_a_pair_reach_the_co_vote_threshold():
    s = load_scenario(None, ["ticks=30", "attack.start_tick=4", "population.users=800", "mail.emails_per_tick=80",
                             "mail.eval_emails_per_tick=20", "model.warmup_emails=300",
                             "attack.strategy='informed'", "defense.chain=['coordination', 'majority']",
                             "attack.campaign_bot_share=0.9"])
    sim = Simulation(s)
    doc = sim.run()
    ring = sim.rings[0]
    assert sum(e["bot_votes"] for e in doc["timeline"]) > 0
    assert ring._pairs.max() <= ring.plan["pair_cap"]
    assert not np.isin(ring.bots, sim.chain.flagged()).any() or len(sim.chain.flagged()) == 0


def test_informed_spread_caps_every_pair_even_when_every_recipient_may_vote():
    s = load_scenario(None, ["attack.strategy='informed'", "attack.start_tick=0", "defense.chain=['coordination']"])
    [attack] = build_rings(s.attack, s)
    assert attack.plan["voters_per_email"] is None and attack.plan["pair_cap"] == 2
    attack.bots = np.arange(100, 120)
    n_emails = 10
    view = BotView(tick=0, row=np.tile(np.arange(n_emails), 20), bot=np.repeat(attack.bots, n_emails),
                   campaign=np.ones(n_emails, bool), target=np.zeros(n_emails, bool),
                   junk=np.ones(n_emails, bool), is_spam=np.ones(n_emails, bool))
    together = {}
    for tick in range(10):
        votes = attack.votes(BotView(**{**view.__dict__, "tick": tick}), np.random.default_rng(tick))
        assert votes.row.size > 0
        for row in np.unique(votes.row).tolist():
            voters = sorted(votes.bot[votes.row == row].tolist())
            for i, a in enumerate(voters):
                for b in voters[i + 1:]:
                    together[(a, b)] = together.get((a, b), 0) + 1
    assert max(together.values()) <= 2            # within the 24-tick window no pair reaches min_shared
