
from defenses.chain import Chain
from defenses.majority import MajorityVote
from defenses.none import NoDefense
from simulator.email import Email
from stream import topics
from stream.classifier import FeatureCache, SpamModel
from stream.events import feedback_event, review_event
from stream.memory import MemoryTransport
from stream.stages import DefenseStage, FilterStage, LearnerStage


def _transport():
    t = MemoryTransport()
    for name in topics.ALL:
        t.create_topic(name)
    return t


def _drain(consumer):
    out = []
    while batch := consumer.poll(max_records=1000):
        out.extend(r.value for r in batch)
    return out


def test_defense_stage_windows_labels_and_deadletters():
    t = _transport()
    seen = []
    stage = DefenseStage(t, Chain([MajorityVote(margin=0.0, min_votes=2)]), window=1.0,
                         observers=[lambda v, d, now: seen.append((len(v), now))])
    good = [feedback_event(f"e{i}", 0.5, f"a{i}", "m1", "spam") for i in range(3)]
    late = feedback_event("late", 1.5, "a9", "m2", "not_spam")
    bad = [{"v": 1, "event_id": "x"}, "not a dict", dict(good[0], verdict="maybe"), dict(good[0], ts="soon")]
    t.send_many(topics.FEEDBACK, [(None, e) for e in good + [late] + bad])
    labels_consumer = t.consumer([topics.LABELS], "test")
    dead_consumer = t.consumer([topics.DEADLETTER], "test")

    assert stage.advance(watermark=1.0) == 1            # window [0, 1) closes; [1, 2) stays open
    labels = _drain(labels_consumer)
    assert [(l["email_id"], l["label"], l["votes"]) for l in labels] == [("m1", "spam", 3)]
    assert labels[0]["defense"] == "majority" and labels[0]["v"] == 1
    reasons = [d["reason"] for d in _drain(dead_consumer)]
    assert len(reasons) == 4
    assert any("missing field 'ts'" in r for r in reasons)
    assert any("unknown verdict 'maybe'" in r for r in reasons)
    assert any("must be a number" in r for r in reasons)
    assert any("JSON object" in r for r in reasons)
    assert seen == [(3, 1.0)]
    assert stage.advance(watermark=2.0) == 0            # a single vote: below min_votes
    assert seen[-1] == (1, 2.0) and stage.stats.votes == 4 and stage.stats.deadletters == 4


def test_defense_stage_passes_reviews_to_the_chain():
    t = _transport()
    received = []

    class Recorder(NoDefense):
        def observe_reviews(self, email, label, now):
            received.append((email.tolist(), label.tolist()))

    stage = DefenseStage(t, Chain([Recorder()]))
    t.send(topics.FEEDBACK, feedback_event("e", 0.5, "a", "m1", "spam"))
    stage.advance(1.0)
    t.send(topics.REVIEWS, review_event("m1", 0, 1.5))
    t.send(topics.REVIEWS, review_event("unknown-email", 1, 1.5))
    stage.advance(2.0)
    assert received == [([0], [0])]


def test_filter_and_learner_stages_close_the_loop():
    t = _transport()
    model = SpamModel()
    cache = FeatureCache(model)
    model.learn(model.features("invoice meeting lunch"), False)
    model.learn(model.features("crypto bonus winner"), True)
    spam = Email("m1", "x@coin.example", "crypto bonus", "winner crypto", "campaign")
    t.send(topics.MAIL, spam, key="m1")
    FilterStage(t, model, cache).run_once()
    delivery = _drain(t.consumer([topics.DELIVERIES], "test"))
    assert delivery[0]["email_id"] == "m1" and delivery[0]["junk"] is True
    p_before = model.p_spam(cache.get("m1"))
    t.send(topics.LABELS, {"email_id": "m1", "label": "not_spam", "weight": 20.0})
    t.send(topics.LABELS, {"email_id": "never-filtered", "label": "spam", "weight": 1.0})
    learner = LearnerStage(t, model, cache)
    assert learner.run_once() == 2
    assert learner.learned == 1 and learner.unknown == 1
    assert model.p_spam(cache.get("m1")) < p_before


def test_gold_labels_reach_the_chain_before_the_votes_and_context_is_bound():
    t = _transport()
    gold, bound = [], []

    class Recorder(NoDefense):
        def observe_gold(self, email, label, now):
            gold.append((email.tolist(), label.tolist()))

        def bind(self, context):
            bound.append(context)

    stage = DefenseStage(t, Chain([Recorder()]), context="ctx")
    t.send(topics.GOLD, review_event("honeypot-1", 1, 0.1))
    t.send(topics.FEEDBACK, feedback_event("e", 0.5, "a", "honeypot-1", "not_spam"))
    stage.advance(1.0)
    assert gold == [([0], [1])] and bound == ["ctx"]
    assert stage.emails.name(0) == "honeypot-1"
