"""Provider reviews reach the defense service's chain (real tansu broker, real SQLite).

``poisonlab serve --reviews-topic reviews`` decides the feedback windows and
remembers their votes; reviews produced afterwards must then move the
reputations exactly as an in-process chain's ``observe_reviews`` does on the
same windows, bad review records go to the dead-letter topic with a reason, and
the reviews' offsets are stored with the state.
"""

from __future__ import annotations

import numpy as np

from defenses.base import VoteBatch
from defenses.chain import Chain
from defenses.reputation import Reputation
from stream.events import review_event
from stream.interner import Interner
from stream.service_state import ServiceStore
from tests.test_service import (
    _Raw,
    _setup_topic,
    make_feedback,
    new_transport,
    prefix,  # noqa: F401 - fixture
    read_topic,
    run_service,
)


def reference_with_reviews(events: list[dict], reviews: list[dict], window: float = 1.0) -> dict:
    """Evidence of an in-process chain after every window, then the reviews."""
    chain = Chain([Reputation()])
    accounts, emails = Interner(), Interner()
    by_window: dict[int, list[dict]] = {}
    for ev in events:
        by_window.setdefault(int(ev["ts"] // window), []).append(ev)
    for w in sorted(by_window):
        evs = by_window[w]
        votes = VoteBatch.of(accounts.ids([e["account_id"] for e in evs]), emails.ids([e["email_id"] for e in evs]),
                             [1 if e["verdict"] == "spam" else 0 for e in evs], [e["ts"] for e in evs],
                             [e["account_created_ts"] for e in evs])
        chain.process(votes, now=(w + 1) * window)
    known = [r for r in reviews if emails.get(r["email_id"]) is not None]
    chain.observe_reviews(np.array([emails.get(r["email_id"]) for r in known], dtype=np.int64),
                          np.array([1 if r["label"] == "spam" else 0 for r in known], dtype=np.int8),
                          now=max(by_window) + 1.0)
    rep = chain.members[0]
    return {accounts.name(i): (rep.alpha_[i], rep.beta_[i]) for i in range(len(accounts))}


def _bot_ham_emails(events: list[dict]) -> list[str]:
    """Emails the bots voted spam on: all of them are ham (the bots flip ham to spam)."""
    return sorted({e["email_id"] for e in events if e["account_id"].startswith("b")})


def test_reviews_reach_the_chain(kafka_broker, prefix, tmp_path) -> None:  # noqa: F811 - fixture
    events = make_feedback(windows=6)
    _setup_topic(kafka_broker, prefix, events)
    t = new_transport(kafka_broker, prefix, codecs=_Raw())
    try:
        t.create_topic("reviews", 2)
    finally:
        t.close()
    db = f"sqlite:///{tmp_path / 'svc.db'}"
    run_service(kafka_broker, db, prefix, "svc", "--reviews-topic", "reviews")
    store = ServiceStore(db, "svc")
    try:
        before = store.reputations()
    finally:
        store.close()

    # the provider confirms that the emails the ring flagged are ham, plus a spam and two bad records
    ham = _bot_ham_emails(events)[:10]
    spam = sorted({e["email_id"] for e in events} - set(_bot_ham_emails(events)))[:3]
    reviews = [review_event(m, 0, 6.9) for m in ham] + [review_event(m, 1, 6.9) for m in spam]
    reviews.append(review_event("never-voted-on", 1, 6.9))
    bad = [b'{"v": 1, "email_id": ', {"v": 1, "email_id": ham[0], "label": "ham", "ts": 6.9},
           {"v": 1, "label": "spam", "ts": 6.9}]
    t = new_transport(kafka_broker, prefix, codecs=_Raw())
    try:
        t.send_many("reviews", ((r["email_id"], r) for r in reviews))
        for value in bad:
            t.send("reviews", value, key="bad")
        t.flush()
    finally:
        t.close()
    log = run_service(kafka_broker, db, prefix, "svc", "--reviews-topic", "reviews")
    assert "3 dead letters" in log, log[-2000:]

    store = ServiceStore(db, "svc")
    try:
        after = store.reputations()
        offsets = store.offsets("reviews")
    finally:
        store.close()
    assert sum(offsets.values()) == len(reviews) + len(bad)
    expected = reference_with_reviews(events, reviews)
    for account, (alpha, beta) in expected.items():
        assert after.get(account, {}).get("0.reputation.alpha", 0.0) == alpha, account
        assert after.get(account, {}).get("0.reputation.beta", 0.0) == beta, account
    # the reviews moved the bots' reputation: more evidence against them, so lower trust (weight 0 stays 0)
    bots = [a for a in after if a.startswith("b")]
    assert bots and all(after[a]["0.reputation.beta"] > before.get(a, {}).get("0.reputation.beta", 0.0)
                        for a in bots)
    # and the vote weights follow: honest voters confirmed right gain weight, bots never do
    names = sorted(after)
    weights = {}
    for name, state in (("before", before), ("after", after)):
        rep = Reputation()
        rep.load_state_dict({"alpha": [state.get(a, {}).get("0.reputation.alpha", 0.0) for a in names],
                             "beta": [state.get(a, {}).get("0.reputation.beta", 0.0) for a in names]})
        n = len(names)
        weights[name] = dict(zip(names, rep.weigh(VoteBatch.of(np.arange(n), np.zeros(n), np.ones(n),
                                                               np.full(n, 1e6), np.zeros(n))).tolist()))
    assert any(weights["after"][a] > weights["before"][a] for a in names if a.startswith("h"))
    assert all(weights["after"][a] <= weights["before"][a] for a in bots)

    dead = [r.value for r in read_topic(kafka_broker, prefix, "deadletter", timeout=10)]
    assert len(dead) == len(bad) and all(d["topic"] == "reviews" and d["reason"] for d in dead)
    assert any("unknown label 'ham'" in d["reason"] for d in dead)
    assert any("missing field 'email_id'" in d["reason"] for d in dead)
