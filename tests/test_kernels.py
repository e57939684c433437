"""Every Numba kernel against its slow NumPy reference in tests/naive.py."""

import numpy as np
import pytest

from defenses.kernels.beta import _beta_update, _trust_weight
from defenses.kernels.tally import _agreement, _decide, _tally
from tests import naive


def _votes(seed, n_votes=400, n_emails=30):
    rng = np.random.default_rng(seed)
    email = rng.integers(0, n_emails, n_votes).astype(np.int64)
    verdict = rng.integers(0, 2, n_votes).astype(np.int8)
    weight = rng.random(n_votes) * (rng.random(n_votes) < 0.8)
    return email, verdict, weight, n_emails


@pytest.mark.parametrize("seed", range(5))
def test_tally_matches_reference(seed):
    email, verdict, weight, n = _votes(seed)
    for got, want in zip(_tally(email, verdict, weight, n), naive.tally(email, verdict, weight, n)):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("min_weight,margin,min_votes", [(0.0, 0.0, 1), (1.0, 0.2, 2), (3.0, 0.5, 5)])
def test_decide_matches_reference(seed, min_weight, margin, min_votes):
    email, verdict, weight, n = _votes(seed)
    spam, ham, count = _tally(email, verdict, weight, n)
    got = _decide(spam, ham, count, min_weight, margin, min_votes)
    want = naive.decide(spam, ham, count, min_weight, margin, min_votes)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1][got[0]], want[1][want[0]])
    np.testing.assert_allclose(got[2], want[2])
    np.testing.assert_allclose(got[3], want[3])


@pytest.mark.parametrize("seed", range(5))
def test_agreement_matches_reference(seed):
    email, verdict, weight, n = _votes(seed)
    decided, label, _, _ = _decide(*_tally(email, verdict, weight, n), 0.5, 0.1, 1)
    np.testing.assert_array_equal(_agreement(email, verdict, decided, label),
                                  naive.agreement(email, verdict, decided, label))


def test_decide_edge_cases():
    spam = np.array([0.0, 2.0, 1.0])
    ham = np.array([0.0, 2.0, 0.0])
    count = np.array([0, 4, 1])
    decided, label, winner, confidence = _decide(spam, ham, count, 0.0, 0.0, 1)
    assert decided.tolist() == [False, True, True]     # a tie is decided only with margin 0
    assert _decide(spam, ham, count, 0.0, 0.1, 1)[0].tolist() == [False, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_trust_weight_matches_reference(seed):
    rng = np.random.default_rng(seed)
    alpha, beta = rng.random(50) * 5, rng.random(50) * 5
    account = rng.integers(0, 50, 300)
    prior_a, prior_b = 1 + rng.random(300) * 2, 1 + rng.random(300)
    got = _trust_weight(alpha, beta, account, prior_a, prior_b)
    np.testing.assert_allclose(got, naive.trust_weight(alpha, beta, account, prior_a, prior_b))
    assert ((got >= 0) & (got <= 1)).all()


@pytest.mark.parametrize("seed", range(5))
def test_beta_update_matches_reference(seed):
    rng = np.random.default_rng(seed)
    alpha, beta = rng.random(40), rng.random(40)
    account = rng.integers(0, 40, 200)
    agree = rng.integers(-1, 2, 200).astype(np.int8)
    want = naive.beta_update(alpha, beta, account, agree, 0.7)
    _beta_update(alpha, beta, account, agree, 0.7)
    np.testing.assert_allclose(alpha, want[0])
    np.testing.assert_allclose(beta, want[1])
