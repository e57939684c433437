"""Each new defense's own behaviour, presets and configuration."""

import numpy as np
import pytest

from defenses.age_gate import AgeGate
from defenses.base import VoteBatch, dense_unique, keep_labels, weighted_vote
from defenses.chain import Chain
from defenses.coordination import Coordination
from defenses.dawid_skene import DawidSkene
from defenses.gold import GoldVote
from defenses.influence_cap import InfluenceCap
from defenses.majority import MajorityVote
from defenses.registry import DEFENSES, PRESETS, build_chain, expand
from defenses.roni import Roni
from defenses.wawa import Wawa
from simulator.config import ScenarioError, load_scenario


def _ring_and_crowd(now, rng, ring=range(40), honest=range(1000, 3000), emails=30):
    """A ring voting as one on a few emails, and honest users each voting once or twice."""
    account, email, verdict = [], [], []
    for e in range(5):
        for a in ring:
            if rng.random() < 0.5:
                account.append(a); email.append(int(now) * 100 + e); verdict.append(0)
    for _ in range(200):
        account.append(int(rng.choice(list(honest)))); email.append(int(now) * 100 + 5 + int(rng.integers(emails)))
        verdict.append(int(rng.integers(2)))
    n = len(account)
    return VoteBatch.of(account, email, verdict, np.full(n, now), np.full(n, now - 1000.0))


def test_dense_unique_matches_numpy_for_dense_and_sparse_ids():
    for ids in (np.array([5, 3, 5, 9, 3]), np.array([10**12, 7, 10**12])):
        for got, want in zip(dense_unique(ids), np.unique(ids, return_inverse=True)):
            np.testing.assert_array_equal(got, want)


def test_keep_labels_zeroes_votes_of_dropped_labels():
    votes = VoteBatch.of([0, 1, 2], [4, 4, 5], [1, 1, 0])
    d = weighted_vote(votes, np.ones(3), min_weight=0.5, margin=0.0, min_votes=1)
    kept = keep_labels(votes, d, d.labels.email == 5)
    assert kept.labels.email.tolist() == [5] and kept.vote_weight.tolist() == [0.0, 0.0, 1.0]
    assert kept.agreement.tolist() == [-1, -1, 1]


def test_coordination_flags_the_ring_and_no_honest_user():
    rng = np.random.default_rng(0)
    coord = Coordination(every=1)
    chain = Chain([coord, MajorityVote()])
    for t in range(10):
        chain.process(_ring_and_crowd(t + 0.5, rng), now=t + 1.0)
    flagged = set(coord.flagged().tolist())
    assert set(range(40)) <= flagged
    assert not flagged & set(range(1000, 3000))
    votes = _ring_and_crowd(20.5, rng)
    weight = coord.weigh(votes)
    assert (weight[votes.account < 40] == 0).all() and (weight[votes.account >= 1000] == 1).all()


def test_coordination_bad_parameters():
    with pytest.raises(ValueError):
        Coordination(min_cluster=1)
    with pytest.raises(ValueError):
        Coordination(window_ticks=0)


def test_influence_cap_uses_the_coordination_clusters_of_its_chain():
    coord, cap = Coordination(), InfluenceCap()
    Chain([coord, cap, MajorityVote()])
    assert cap._rings is coord and cap._own is None
    alone = InfluenceCap()
    assert alone._rings is alone._own is not None
    assert InfluenceCap(detect=False)._rings is None


def test_age_gate_keeps_established_accounts_and_gates_young_and_unknown():
    gate = AgeGate(min_age=720)
    votes = VoteBatch.of([0, 1, 2], [1, 1, 1], [1, 1, 1], ts=[100.0] * 3, created=[-1000.0, 50.0, np.nan])
    assert gate.weigh(votes).tolist() == [1.0, 0.0, 0.0]
    assert AgeGate(min_age=720, unknown_weight=0.5).weigh(votes).tolist() == [1.0, 0.0, 0.5]
    with pytest.raises(ValueError):
        AgeGate(young_weight=2.0)


def test_dawid_skene_learns_an_adversarial_ring_from_reviews_and_flags_it():
    ds = DawidSkene(em_every=1)
    chain = Chain([ds])
    ring, honest = list(range(20)), list(range(100, 110))
    for t in range(8):
        # The ring calls spam not-spam; honest users agree on other spam; reviews tell.
        account = ring + honest
        email = [t * 10] * len(ring) + [t * 10 + 1] * len(honest)
        verdict = [0] * len(ring) + [1] * len(honest)
        chain.process(VoteBatch.of(account, email, verdict, np.full(len(account), t + 0.5)), now=t + 1.0)
        chain.observe_reviews(np.array([t * 10]), np.array([1]), now=t + 1.0)
    assert set(ring) <= set(ds.flagged().tolist())
    # Now an unopposed ring vote is read as evidence for the opposite.
    votes = VoteBatch.of(ring, [999] * len(ring), [0] * len(ring), np.full(len(ring), 9.5))
    labels = ds.decide(votes, np.ones(len(ring))).labels
    assert labels.label.tolist() in ([], [1])


def test_wawa_and_gold_sink_accounts_that_miss_gold_emails():
    for defense in (Wawa(), GoldVote()):
        chain = Chain([defense])
        chain.observe_gold(np.array([7]), np.array([1]), now=0.0)
        votes = VoteBatch.of([0, 1, 2, 3], [7, 7, 7, 7], [0, 0, 1, 1])
        chain.process(votes, now=1.0)
        w = defense.weigh(votes)
        assert w[0] == w[1] == 0.0 and w[2] > 0.6
    gold = GoldVote(flag_min_evidence=3.0)
    chain = Chain([gold])
    chain.observe_gold(np.array([1, 2, 3]), np.array([1, 1, 1]), now=0.0)
    chain.process(VoteBatch.of([5, 5, 5, 6], [1, 2, 3, 1], [0, 0, 0, 1]), now=1.0)
    assert gold.flagged().tolist() == [5]          # three gold emails missed: skill 4/14


def test_roni_passes_everything_without_context():
    votes = VoteBatch.of([0, 1], [3, 3], [1, 1])
    d = weighted_vote(votes, np.ones(2), min_weight=0.5, margin=0.0, min_votes=1)
    assert Roni().screen(votes, d, now=1.0) is d


def test_presets_expand_and_validate():
    assert expand(["recommended"]) == PRESETS["recommended"]
    assert all(name in DEFENSES for name in PRESETS["recommended"])
    scenario = load_scenario(None, ["defense.chain=['recommended']"])
    chain = build_chain(scenario.defense)
    assert [m.name for m in chain.members] == PRESETS["recommended"]
    with pytest.raises(ScenarioError, match="unknown defense 'nope'"):
        load_scenario(None, ["defense.chain=['nope']"])


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_defense_has_a_config_table_that_builds_it(name):
    scenario = load_scenario(None, [f"defense.chain=['{name}']"])
    assert build_chain(scenario.defense).members[0].name == name


TINY = ["ticks=8", "attack.start_tick=2", "population.users=300", "mail.emails_per_tick=30",
        "model.warmup_emails=200", "model.validation_emails=40", "mail.eval_emails_per_tick=20",
        "mail.gold_emails_per_tick=3", "review.delay_ticks=1", "review.rate=0.5"]


@pytest.mark.parametrize("name", sorted([*DEFENSES, *PRESETS]))
def test_every_defense_runs_in_the_simulation(name):
    """The real engine, stream stages, model and context: each defense end to end."""
    from simulator.engine import Simulation

    scenario = load_scenario(None, TINY + [f"defense.chain=['{name}']"])
    doc = Simulation(scenario).run()
    assert len(doc["timeline"]) == 8 and doc["metrics"]["votes"] > 0
    assert 0.0 <= doc["metrics"]["clean_accuracy"] <= 1.0


# -- the chain's fast paths give the same answers as the plain ones -----------------------
def test_ledger_truths_score_as_window_by_window():
    from defenses._ledger import SkillLedger, agreement_with

    rng = np.random.default_rng(3)
    fast, slow = SkillLedger((4.0, 1.0), memory=10.0), SkillLedger((4.0, 1.0), memory=10.0)
    windows = [VoteBatch.of(rng.integers(0, 50 + 400 * t, 300), rng.integers(0, 80, 300), rng.integers(0, 2, 300))
               for t in range(5)]
    for t, votes in enumerate(windows):
        fast.remember(votes, float(t))
        slow.remember(votes, float(t))
    for email in (np.array([70, 3, 41, 12]), np.array([5, 5, 9])):      # distinct, then repeated ids
        label = rng.integers(0, 2, email.size).astype(np.int8)
        fast.truths(email, label, 2.5)
        order = np.argsort(email)
        for votes in windows:
            slow.score(votes.account, agreement_with(votes, email[order], label[order]), 2.5)
        np.testing.assert_array_equal(fast.correct, slow.correct)
        np.testing.assert_array_equal(fast.wrong, slow.wrong)


def test_rollback_snapshots_thaw_to_the_models_own_bytes():
    from defenses._trusted import freeze as _freeze
    from defenses._trusted import thaw as _thaw
    from stream.classifier import SpamModel

    model = SpamModel()
    model.learn(model.features("cash cash prize"), True, 0.37)
    model.learn(model.features("prize at lunch"), False, 1.0)      # 'prize': spam first, then ham
    model.learn(model.features("lunch menu"), False, 2.0)
    frozen, want = _freeze(model), model.snapshot()
    model.learn(model.features("menu cash"), True)
    assert _thaw(frozen) == want
    model.restore(_thaw(frozen))
    assert model.snapshot() == want


def test_context_model_counts_follow_learns_and_restores():
    from defenses.context import DefenseContext
    from stream.classifier import SpamModel

    model = SpamModel()
    model.learn(model.features("win cash"), True)
    model.learn(model.features("see you"), False)
    context = DefenseContext(model, lambda ids: [], [(model.features("win see"), True)])
    first = context.model_counts()
    model.restore(model.snapshot())                 # a rollback replaces the model
    assert context.model_counts() is not first
    model.learn(model.features("win"), False)
    assert context.model_counts().counts.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_counts_reader_equals_a_full_read_through_learns_and_restores():
    from defenses._trusted import CountsReader, TrustedSet
    from stream.classifier import SpamModel

    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    model = SpamModel()
    trusted = TrustedSet.of([({w: 1 for w in rng.choice(words, 6)}, bool(i % 2)) for i in range(12)])
    reader = CountsReader(trusted, model)
    snapshots = [model.snapshot()]
    for step in range(300):
        if step % 37 == 36:                            # a rollback: a new nb altogether
            model.restore(snapshots[int(rng.integers(len(snapshots)))])
        else:
            features = {w: int(rng.integers(1, 3)) for w in rng.choice(words, 5)}
            model.learn(features, bool(rng.integers(2)), float(rng.choice([0.0, 0.5, 1.0])))
        if step % 25 == 0:
            snapshots.append(model.snapshot())
        if step % 3 == 0:
            got, want = reader.read(), trusted.model_counts(model.nb)
            assert np.array_equal(got.counts, want.counts) and np.array_equal(got.present, want.present)
            assert np.array_equal(got.docs, want.docs) and np.array_equal(got.words_per_class, want.words_per_class)
            assert got.n_terms == want.n_terms
