"""Tests for the synthetic mail factory (simulator/mailgen.py)."""

from __future__ import annotations

import math
import random
import statistics

import faker.generator
import numpy as np
import pytest

from simulator import mailgen
from simulator.email import CATEGORIES, HAM_CATEGORIES, SPAM_CATEGORIES, Email
from simulator.mailgen import (
    BANK_DOMAINS,
    CAMPAIGN_DOMAINS,
    SyntheticMailFactory,
    category_mix,
)


def _domain(email: Email) -> str:
    return email.sender.rsplit("@", 1)[-1]


def _sample(factory: SyntheticMailFactory, n: int, seed: int, prefix: str) -> list[Email]:
    """Draw ``n`` emails with categories from the default clean mix."""
    mix = category_mix(0.4, 0.05)
    rng = np.random.default_rng(seed)
    cats = rng.choice(list(mix), size=n, p=list(mix.values()))
    return [factory.make(str(c), f"{prefix}{i}") for i, c in enumerate(cats)]


@pytest.fixture(scope="module")
def factory() -> SyntheticMailFactory:
    return SyntheticMailFactory(seed=123)


# -- determinism ---------------------------------------------------------------


def test_same_seed_and_calls_give_identical_emails():
    calls = [CATEGORIES[i % len(CATEGORIES)] for i in range(300)]
    a, b = SyntheticMailFactory(42), SyntheticMailFactory(42)
    assert [a.make(c, str(i)) for i, c in enumerate(calls)] == [b.make(c, str(i)) for i, c in enumerate(calls)]


def test_different_seeds_give_different_emails():
    a, b = SyntheticMailFactory(1), SyntheticMailFactory(2)
    pairs = [(a.make(c, "x"), b.make(c, "x")) for c in CATEGORIES for _ in range(20)]
    assert sum(x != y for x, y in pairs) >= 0.9 * len(pairs)


def test_no_global_random_state_is_used():
    py_state, np_state = random.getstate(), np.random.get_state()
    faker_shared_state = faker.generator.random.getstate()
    f = SyntheticMailFactory(5)
    for i in range(500):
        f.make(CATEGORIES[i % len(CATEGORIES)], str(i))
    assert random.getstate() == py_state
    assert faker.generator.random.getstate() == faker_shared_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_global_seeding_does_not_change_output():
    random.seed(1)
    np.random.seed(1)
    first = [SyntheticMailFactory(9).make(c, "x") for c in CATEGORIES]
    random.seed(2)
    np.random.seed(2)
    second = [SyntheticMailFactory(9).make(c, "x") for c in CATEGORIES]
    assert first == second


# -- content -------------------------------------------------------------------------


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_produces_text_with_right_label(factory, category):
    emails = [factory.make(category, f"{category}-{i}") for i in range(60)]
    for i, e in enumerate(emails):
        assert isinstance(e, Email)
        assert e.email_id == f"{category}-{i}"
        assert e.category == category
        assert e.is_spam == (category in SPAM_CATEGORIES)
        assert e.subject.strip() and e.body.strip() and e.text.strip()
        local, _, domain = e.sender.partition("@")
        assert local and "." in domain and " " not in e.sender
        assert "{" not in e.subject + e.body, "unfilled template placeholder"
    # Several templates per category: the mail is not all alike.
    assert len({e.subject for e in emails}) >= 5
    assert len({e.body for e in emails}) == len(emails)


@pytest.mark.parametrize("category", CATEGORIES)
def test_body_lengths_are_varied(factory, category):
    lengths = [len(factory.make(category, "x").body.split()) for _ in range(200)]
    assert min(lengths) >= 8
    assert max(lengths) <= 200
    assert 30 <= statistics.median(lengths) <= 110
    assert max(lengths) - min(lengths) >= 40


@pytest.mark.parametrize("bad", ["newsletters", "", "SPAM", "ham", None])
def test_unknown_category_raises_value_error(factory, bad):
    with pytest.raises(ValueError, match="unknown email category"):
        factory.make(bad, "x")


def test_value_error_names_the_category(factory):
    with pytest.raises(ValueError, match="'bogus'"):
        factory.make("bogus", "x")


def test_bank_alert_senders_come_from_bank_domains(factory):
    domains = {_domain(factory.make("bank_alert", str(i))) for i in range(300)}
    assert domains <= set(BANK_DOMAINS)
    assert len(domains) == len(BANK_DOMAINS)


def test_phishing_imitates_banks_from_other_domains(factory):
    phish = [factory.make("phishing", str(i)) for i in range(300)]
    assert not {_domain(e) for e in phish} & set(BANK_DOMAINS)
    bank_names = [name for name, _ in mailgen.BANKS]
    assert sum(any(name in e.text for name in bank_names) for e in phish) >= 0.4 * len(phish)


def test_campaign_senders_and_vocabulary(factory):
    campaign = [factory.make("campaign", str(i)) for i in range(200)]
    assert {_domain(e) for e in campaign} <= set(CAMPAIGN_DOMAINS)
    assert all("zentra" in e.text.lower() for e in campaign)
    assert len({e.subject for e in campaign}) >= 5


# -- category_mix ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spam", "bank"), [(0.4, 0.05), (0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.25, 0.1), (0.3, 0.7)]
)
def test_category_mix_sums_to_one(spam, bank):
    mix = category_mix(spam, bank)
    assert set(mix) == set(CATEGORIES) - {"campaign"}
    assert math.isclose(sum(mix.values()), 1.0, abs_tol=1e-12)
    assert all(p >= 0 for p in mix.values())
    assert mix["bank_alert"] == pytest.approx(bank)
    assert mix["spam"] + mix["phishing"] == pytest.approx(spam)
    assert mix["spam"] == pytest.approx(3 * mix["phishing"])
    assert sum(mix[c] for c in HAM_CATEGORIES) == pytest.approx(1 - spam)


@pytest.mark.parametrize(
    ("spam", "bank"),
    [(-0.1, 0.05), (1.1, 0.0), (0.4, -0.01), (0.4, 1.5), (0.7, 0.4), (float("nan"), 0.05),
     (0.4, float("inf")), ("0.4", 0.05), (True, 0.05), (None, 0.05)],
)
def test_category_mix_validates(spam, bank):
    with pytest.raises(ValueError):
        category_mix(spam, bank)


# -- realism: a clean bag-of-words Naive Bayes is good but not perfect -------------------------


def test_clean_multinomial_nb_accuracy_is_realistic():
    from river import compose, feature_extraction, naive_bayes

    f = SyntheticMailFactory(seed=2024)
    model = compose.Pipeline(
        feature_extraction.BagOfWords(lowercase=True), naive_bayes.MultinomialNB(alpha=1)
    )
    for e in _sample(f, 3000, seed=1, prefix="warm"):
        model.learn_one(e.text, e.is_spam)

    held_out = _sample(f, 1500, seed=2, prefix="test")
    accuracy = sum(model.predict_one(e.text) == e.is_spam for e in held_out) / len(held_out)
    assert 0.90 <= accuracy <= 0.99, accuracy

    # No ham category is broken and the never-seen campaign already looks like spam.
    bank = [f.make("bank_alert", f"b{i}") for i in range(200)]
    assert sum(model.predict_one(e.text) is False for e in bank) / len(bank) >= 0.85
    campaign = [f.make("campaign", f"c{i}") for i in range(200)]
    assert sum(model.predict_one(e.text) is True for e in campaign) / len(campaign) >= 0.8
