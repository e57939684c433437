import random

import pytest
from river import naive_bayes

from stream.classifier import FeatureCache, SpamModel, WeightedMultinomialNB


def _data(seed, n):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(60)]
    return [({w: rng.randint(1, 3) for w in rng.sample(words, 6)}, rng.random() < 0.4) for _ in range(n)]


def test_unit_weight_equals_river_and_fast_scoring_matches():
    ours, river = WeightedMultinomialNB(), naive_bayes.MultinomialNB()
    for x, y in _data(0, 400):
        ours.learn_one(x, y)
        river.learn_one(x, y)
    for x, _ in _data(1, 100) + [({"never-seen": 2}, True)]:
        assert ours.predict_proba_one(x)[True] == pytest.approx(river.predict_proba_one(x)[True], abs=1e-12)
        jll_o, jll_r = ours.joint_log_likelihood(x), river.joint_log_likelihood(x)
        assert jll_o == pytest.approx(jll_r, abs=1e-9)


def test_integer_weight_equals_repeated_learning():
    weighted, repeated = WeightedMultinomialNB(), WeightedMultinomialNB()
    for x, y in _data(2, 100):
        weighted.learn_one(x, y, w=3.0)
        for _ in range(3):
            repeated.learn_one(x, y)
    for x, _ in _data(3, 30):
        assert weighted.predict_proba_one(x)[True] == pytest.approx(repeated.predict_proba_one(x)[True])


def test_snapshot_restore_and_untrained_model():
    m = SpamModel()
    assert m.p_spam(m.features("anything")) == 0.5
    m.learn(m.features("cheap pills now"), True)
    m.learn(m.features("lunch tomorrow?"), False)
    snap = m.snapshot()
    p = m.p_spam(m.features("cheap lunch"))
    m.learn(m.features("cheap lunch"), False, weight=50)
    assert m.p_spam(m.features("cheap lunch")) < p
    m.restore(snap)
    assert m.p_spam(m.features("cheap lunch")) == pytest.approx(p)


def test_zero_weight_learns_nothing():
    m = SpamModel()
    m.learn(m.features("x"), True, weight=0.0)
    assert not m.nb.class_counts


def test_feature_cache_computes_once_and_evicts():
    m = SpamModel()
    cache = FeatureCache(m, capacity=2)
    first = cache.put("a", "one two")
    assert cache.put("a", "different text") is first
    cache.put("b", "x")
    cache.put("c", "yes")
    assert "a" not in cache and len(cache) == 2 and cache.get("c") == {"yes": 1}


def test_fast_features_are_river_transform_one():
    m = SpamModel()
    texts = ["Win CASH now!!! win-win, cash_2 -- x y-", "Ünïcödé straße café_1 İstanbul ΣΊΣΥΦΟΣ ﬁle", "", "a b",
             "Re: meeting at 10:30 -- see http://example.com/a-b?x=1 and a.b@c.org"]
    rng = random.Random(4)
    words = ["alpha", "Beta", "gamma-ray", "d", "e_f", "1234", "ÉTÉ", "x-", "-y", "über"]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randint(0, 40))) for _ in range(200)]
    for text in texts:
        ours, river = m.features(text), m.vectorizer.transform_one(text)
        assert ours == river and list(ours) == list(river)


def test_cached_scores_are_bit_identical_through_learning_and_restore():
    m = SpamModel(alpha=0.5)
    data = _data(5, 300)
    snap = None
    for i, (x, y) in enumerate(data):
        if i > 3:
            for probe, _ in data[i:i + 5]:
                assert m.p_spam(probe) == m.nb.predict_proba_one(probe).get(True, 0.0)
        m.learn(x, y, weight=(0.5, 1.0, 3.0)[i % 3])
        if i == 100:
            snap = m.snapshot()
        if i == 200:
            m.restore(snap)                      # a new nb: the cached logs must not leak over
    probe = {"w1": 2, "never-seen": 1}
    assert m.p_spam(probe) == m.nb.predict_proba_one(probe)[True]


def test_watch_collects_learned_words_until_restore_and_forgets_dropped_watchers():
    import gc

    model = SpamModel()
    changes = model.watch()
    assert changes.take() is None                       # nothing read yet
    model.learn({"win": 1}, True)
    model.learn({"cash": 1}, True, 0.0)                 # weight 0: nothing changes
    assert changes.take() == {"win"}
    model.restore(model.snapshot())
    model.learn({"lunch": 1}, False)
    assert changes.take() is None
    del changes
    gc.collect()
    model.watch()
    assert len(model._watchers) == 1
