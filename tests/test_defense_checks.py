"""The check suite (defenses/checks.py) over every registered defense, with default and
with non-default parameters, and the state round trip of the preset chains."""

import functools

import numpy as np
import pytest

from defenses import checks
from defenses.chain import Chain
from defenses.registry import DEFENSES, PRESETS, expand

# A non-default parameter set per defense (every registered defense needs one).
NON_DEFAULT = {
    "none": {},
    "majority": {"margin": 0.4, "min_votes": 1},
    "reputation": {"quorum": 0.5, "min_age": 10.0, "memory_ticks": 3.0, "review_weight": 2.0,
                   "new_prior": (1.0, 2.0)},
    "dawid_skene": {"min_confidence": 0.7, "history_ticks": 6.0, "em_every": 2, "em_iter": 5,
                    "prior_correct": 3.0},
    "wawa": {"quorum": 0.3, "truth_weight": 1.0, "memory_ticks": 3.0, "prior": (3.0, 1.0)},
    "gold": {"prior": (2.0, 1.0), "gold_weight": 1.0, "review_weight": 2.0, "memory_ticks": 3.0},
    "coordination": {"every": 1, "min_cluster": 3, "cluster_cap": 0.5, "window_ticks": 6.0, "min_lift": 2.0},
    "influence_cap": {"share": 0.2, "floor": 0.5, "min_label_weight": 0.1},
    "age_gate": {"min_age": 5.0, "ramp": 3.0, "young_weight": 0.2, "unknown_weight": 0.5},
    "roni": {"tolerance": 2e-3},
    "rollback": {"snapshot_every": 2.0, "keep": 3, "delta": 0.01, "min_samples": 50, "cooldown_ticks": 2.0,
                 "use_reviews": False},
}

SPAM_WORDS = "win cash prize free offer claim money bonus".split()
HAM_WORDS = "meeting lunch agenda report family notes weekend project".split()
COMMON = "the you your today please new time update".split()


def _words(spam: bool, rng) -> str:
    return " ".join(rng.choice(SPAM_WORDS if spam else HAM_WORDS, 2).tolist() + rng.choice(COMMON, 6).tolist())


def make_context():
    """A small model warmed up on clean mail, a trusted validation set, and features of the
    check stream's emails (even ids are spam, as :func:`defenses.checks.is_spam` says)."""
    from defenses.context import DefenseContext
    from stream.classifier import SpamModel

    rng = np.random.default_rng(0)
    model = SpamModel()
    for i in range(40):
        model.learn(model.features(_words(bool(i % 2), rng)), bool(i % 2))
    validation = [(model.features(_words(bool(i % 2), rng)), bool(i % 2)) for i in range(100)]

    def features(ids):
        return [model.features(_words(bool(checks.is_spam(e)), np.random.default_rng(e))) for e in ids.tolist()]

    return DefenseContext(model, features, validation)


def test_every_defense_has_a_non_default_parameter_set():
    assert set(NON_DEFAULT) == set(DEFENSES)
    for name, params in NON_DEFAULT.items():
        DEFENSES[name](**params)


CASES = [(name, params) for name in sorted(DEFENSES) for params in ("default", "non-default")]


def _factory(name, params):
    kwargs = NON_DEFAULT[name] if params == "non-default" else {}
    return functools.partial(DEFENSES[name], **kwargs)


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name,params", CASES)
def test_check(name, params, check):
    make = _factory(name, params)
    if check not in list(checks.yield_checks(make())):
        pytest.skip(f"{check.__name__} does not apply to {name}")
    check(make, make_context if make().needs_model else None)


@pytest.mark.parametrize("params", ["default", "non-default"])
def test_rollback_round_trip_rolls_back_after_the_reload(params):
    """The round trip cannot pass vacuously: the stream makes rollback restore the model,
    after the save point, in both instances."""
    split = 13
    whole, resumed = checks.check_state_round_trip(_factory("rollback", params), make_context, split=split)
    assert any(r["at"] > split for r in whole.rollbacks_)
    assert resumed.rollbacks_ == whole.rollbacks_


@pytest.mark.parametrize("params", ["default", "non-default"])
def test_roni_round_trip_quarantines_after_the_reload(params):
    make = _factory("roni", params)
    split = 13
    whole, resumed = checks.check_state_round_trip(make, make_context, split=split)
    before = make()                                       # the same defense, only up to the save point
    checks.run(before, make_context(), checks.vote_stream(windows=split))
    assert whole.quarantined_ > before.quarantined_         # it quarantined after the reload
    assert resumed.quarantined_ == whole.quarantined_


def test_rollback_restores_through_the_context():
    """A rollback goes through the context: a snapshot and a rollback control record,
    and the model really is the snapshot's."""
    from defenses.rollback import Rollback

    context = make_context()
    guard = Rollback(**NON_DEFAULT["rollback"])
    checks.run(guard, context, checks.vote_stream())
    controls = context.take_controls()
    rolled = [c for c in controls if c["control"] == "rollback"]
    assert rolled and {c["snapshot_id"] for c in rolled} <= {c["snapshot_id"] for c in controls
                                                            if c["control"] == "snapshot"}
    assert set(context.snapshots) == {s[1] for s in guard._snapshots}      # released when dropped
    assert len(context.snapshots) <= guard.keep


def test_replayable_adwin_matches_river_through_a_reload():
    from defenses.rollback import ReplayableADWIN
    from stream.river_parts import ADWIN

    rng = np.random.default_rng(1)
    outcomes = np.concatenate([rng.random(600) < 0.95, rng.random(400) < 0.6, rng.random(500) < 0.9])
    river, ours = ADWIN(delta=0.01), ReplayableADWIN(delta=0.01)
    seen = []
    for i, x in enumerate(outcomes.astype(float).tolist()):
        river.update(x)
        ours.update(x)
        if i % 97 == 0:                                   # reload every so often
            twin = ReplayableADWIN(delta=0.01)
            twin.load_state_dict(ours.state_dict())
            ours = twin
        got = (ours.estimation, ours.width, ours.drift_detected)
        assert got == (river.estimation, river.width, river.drift_detected)
        seen.append(river.drift_detected)
    assert sum(seen) >= 1


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_chain_state_round_trip(preset):
    def make_chain():
        return Chain([DEFENSES[name]() for name in expand([preset])])

    whole, _ = checks.check_state_round_trip(make_chain, make_context)
    assert len(whole.state_dict()["members"]) == len(expand([preset]))


def test_chain_needs():
    assert Chain([DEFENSES["majority"]()]).needs() == set()
    assert Chain([DEFENSES["roni"](), DEFENSES["gold"]()]).needs() == {"model", "gold"}


def test_a_defense_that_keeps_undeclared_state_is_refused():
    from defenses.base import Defense

    with pytest.raises(TypeError, match="declares no state_attributes"):
        class Forgetful(Defense):
            def reset(self):
                self.seen_ = 0


def test_influence_cap_state_into_a_chain_with_coordination():
    """An own ring detector's state is ignored by a cap that uses a Coordination peer."""
    from defenses.coordination import Coordination
    from defenses.influence_cap import InfluenceCap

    alone = InfluenceCap()
    checks.run(alone, None, checks.vote_stream(windows=6))
    assert alone.state_dict()["own"]["recent"]
    cap = InfluenceCap()
    Chain([Coordination(), cap])
    cap.load_state_dict(alone.state_dict())
    assert cap._own is None and cap.state_dict() == {"own": None}


def test_state_codec_rejects_what_a_database_cannot_hold():
    from defenses.base import Defense

    class Bad(Defense):
        state_attributes = ("seen_",)

        def reset(self):
            self.seen_ = object()

    bad = Bad()
    bad.reset()
    with pytest.raises(TypeError, match="cannot be part of a defense's state"):
        bad.state_dict()
    with pytest.raises(ValueError, match="has no state 'nope'"):
        bad.load_state_dict({"nope": 1})
