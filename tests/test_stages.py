
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

    stage = DefenseStage(t, Chain([Recorder()]))
    stage.runtime.bind_model(SpamModel())
    t.send(topics.GOLD, review_event("honeypot-1", 1, 0.1))
    t.send(topics.FEEDBACK, feedback_event("e", 0.5, "a", "honeypot-1", "not_spam"))
    stage.advance(1.0)
    assert gold == [([0], [1])] and bound == [stage.runtime.context]
    assert stage.emails.name(0) == "honeypot-1"


def _stage_votes(records):
    """The windows a DefenseStage decides from these feedback records, as plain lists."""
    t = _transport()
    seen = []
    stage = DefenseStage(t, Chain([NoDefense()]), window=1.0,
                         observers=[lambda v, d, now: seen.append(
                             ([stage.accounts.name(a) for a in v.account.tolist()],
                              [stage.emails.name(e) for e in v.email.tolist()],
                              v.verdict.tolist(), v.ts.tolist(), [c if c == c else None for c in v.created.tolist()]))])
    t.send_many(topics.FEEDBACK, records)
    stage.advance(watermark=1.0)
    stage.advance(watermark=3.0)
    dead = _drain(t.consumer([topics.DEADLETTER], "test"))
    return seen, (stage.accounts._names, stage.emails._names), dead


def test_a_feedback_batch_gives_the_same_votes_as_its_events():
    import numpy as np

    from stream.codecs import check_feedback_batch
    from stream.events import feedback_columns

    rng = np.random.default_rng(3)
    n = 300
    account = np.array([f"acct-{i}" for i in rng.integers(0, 40, n)])
    email = np.array([f"m{i}" for i in rng.integers(0, 25, n)])
    verdict = rng.integers(0, 2, n)
    ts = np.where(rng.random(n) < 0.5, 0.5, 1.5)
    created = np.where(rng.random(n) < 0.2, np.nan, -rng.integers(0, 100, n).astype(float))
    events = [feedback_event(f"f{i}", float(ts[i]), str(account[i]), str(email[i]), ("not_spam", "spam")[verdict[i]],
                             None if np.isnan(created[i]) else float(created[i])) for i in range(n)]
    batch = feedback_columns(np.array([f"f{i}" for i in range(n)]), ts, account, email, verdict, created)
    assert check_feedback_batch(batch) is None
    one_by_one = _stage_votes([(e["email_id"], e) for e in events])
    batched = _stage_votes([("k", batch[:120]), ("k", batch[120:])])
    assert batched == one_by_one and len(one_by_one[0]) == 2 and not one_by_one[2]
    # Dicts and batches mixed, in record order.
    mixed = _stage_votes([(e["email_id"], e) for e in events[:50]] + [("k", batch[50:])])
    assert mixed == one_by_one


def test_invalid_batch_rows_are_deadlettered_and_the_rest_kept():
    import numpy as np

    from stream.events import feedback_columns

    batch = feedback_columns(np.array([b"f1", b"f2", b"f3"]), np.array([0.5, np.inf, 0.5]),
                             np.array([b"a", b"b", b""]), np.array([b"m", b"m", b"m"]), np.array([1, 0, 1]))
    seen, _, dead = _stage_votes([("k", batch), ("k", np.zeros(3))])
    assert seen[0][0] == ["a"]
    reasons = sorted(d["reason"] for d in dead)
    assert len(reasons) == 3
    assert reasons[0].startswith("a feedback batch needs the fields")
    assert "row 1: field 'ts' must be finite" in reasons and any(r.startswith("row 2: field 'account_id'") for r in reasons)


def test_numbered_ids_and_interned_columns_match_their_one_by_one_versions():
    import numpy as np

    from stream.events import numbered_ids
    from stream.interner import Interner

    for first, n in [(0, 0), (1, 1), (7, 200), (99_990, 30), (10**12 - 3, 5)]:
        assert numbered_ids(b"f", first, n).tolist() == [f"f{i}".encode() for i in range(first, first + n)]
    names = ["b", "a", "é-1", "b", "c", "a", "ü", "é-1"]
    one_by_one, by_column = Interner(), Interner()
    one_by_one.id("z"), by_column.id("z")
    expected = one_by_one.ids(names).tolist()
    encoded = np.char.encode(np.array(names), "utf-8")
    assert by_column.column(encoded[:3]).tolist() + by_column.column(encoded[3:]).tolist() == expected
    assert by_column._names == one_by_one._names and by_column.column(np.array(names)).tolist() == expected
