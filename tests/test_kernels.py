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


@pytest.mark.parametrize("seed", range(5))
def test_score_known_matches_reference(seed):
    from defenses.kernels.beta import _score_known

    rng = np.random.default_rng(seed)
    account, email = rng.integers(0, 30, 300), rng.integers(100, 160, 300)
    verdict = rng.integers(0, 2, 300).astype(np.int8)
    known_email = np.sort(rng.choice(np.arange(90, 170), 25, replace=False))
    known_label = rng.integers(0, 2, 25).astype(np.int8)
    alpha, beta = rng.random(30), rng.random(30)
    first = int(known_email[0])
    known = np.zeros(int(known_email[-1]) - first + 1, np.bool_)
    known[known_email - first] = True
    truth = np.zeros(known.shape[0], np.int8)
    truth[known_email - first] = known_label
    want = naive.score_known(alpha, beta, account, email, verdict, known_email, known_label, 2.5)
    _score_known(alpha, beta, account, email, verdict, known, truth, first, 2.5)
    np.testing.assert_array_equal(alpha, want[0])
    np.testing.assert_array_equal(beta, want[1])


# -- grouping, age, skill ----------------------------------------------------------------
from defenses.kernels.age import _age_weight  # noqa: E402
from defenses.kernels.covote import _cluster_cap, _components, _pair_counts  # noqa: E402
from defenses.kernels.dawid_skene import _ds_e_step, _ds_elbo, _ds_em, _ds_m_step, _vote_share  # noqa: E402
from defenses.kernels.groups import _dense_unique  # noqa: E402
from defenses.kernels.influence import _contribution, _retained  # noqa: E402
from defenses.kernels.roni import _label_impact, _log_loss, _nb_jll  # noqa: E402
from defenses.kernels.skill import _accuracy_counts, _argmax_labels  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
def test_dense_unique_matches_reference(seed):
    ids = np.random.default_rng(seed).integers(0, 50, 300)
    got = _dense_unique(ids, int(ids.max()) + 1)
    for g, w in zip(got, naive.dense_unique(ids)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ramp,young,unknown", [(0.0, 0.0, 0.0), (24.0, 0.2, 0.5)])
def test_age_weight_matches_reference(seed, ramp, young, unknown):
    rng = np.random.default_rng(seed)
    ts = rng.random(200) * 500
    created = np.where(rng.random(200) < 0.1, np.nan, ts - rng.random(200) * 400)
    np.testing.assert_allclose(_age_weight(ts, created, 168.0, ramp, young, unknown),
                               naive.age_weight(ts, created, 168.0, ramp, young, unknown))


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_and_argmax_match_reference(seed):
    rng = np.random.default_rng(seed)
    worker, task = rng.integers(0, 20, 300), rng.integers(0, 40, 300)
    label, truth = rng.integers(0, 2, 300), rng.integers(-1, 2, 40)
    for g, w in zip(_accuracy_counts(worker, task, label, truth, 20), naive.accuracy_counts(worker, task, label, truth, 20)):
        np.testing.assert_allclose(g, w)
    spam, ham = rng.integers(0, 3, 40).astype(float), rng.integers(0, 3, 40).astype(float)
    for tie in (0, 1):
        np.testing.assert_array_equal(_argmax_labels(spam, ham, tie), naive.argmax_labels(spam, ham, tie))


# -- Dawid-Skene -------------------------------------------------------------------------
def _crowd(seed, n=600, tasks=60, workers=25):
    rng = np.random.default_rng(seed)
    task, worker = rng.integers(0, tasks, n), rng.integers(0, workers, n)
    truth = rng.integers(0, 2, tasks)
    good = rng.random(workers) < 0.8
    label = np.where(rng.random(n) < np.where(good[worker], 0.85, 0.3), truth[task], 1 - truth[task])
    weight = rng.random(n) + 0.5
    return task, worker, label.astype(np.int64), weight, tasks, workers


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_prior", [False, True])
def test_ds_steps_match_reference(seed, with_prior):
    task, worker, label, weight, n_tasks, n_workers = _crowd(seed)
    probas = _vote_share(task, label, weight, n_tasks)
    np.testing.assert_allclose(probas, naive.vote_share(task, label, weight, n_tasks))
    prior = np.random.default_rng(seed).random((n_workers, 2, 2)) * 3 if with_prior else np.zeros((n_workers, 2, 2))
    got = _ds_m_step(task, worker, label, weight, probas, prior)
    want = naive.ds_m_step(task, worker, label, weight, probas, prior)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
    priors = np.array([0.4, 0.6])
    errors = np.where(got[1] > 0, got[1], 1.0)       # rows a worker never used are never read
    e = _ds_e_step(task, worker, label, weight, errors, priors, n_tasks)
    np.testing.assert_allclose(e, naive.ds_e_step(task, worker, label, weight, errors, priors, n_tasks))
    np.testing.assert_allclose(_ds_elbo(task, worker, label, weight, e.copy(), priors, errors),
                               naive.ds_elbo(task, worker, label, weight, e, priors, errors))
    # The count-table form of the bound used inside EM gives the same value.
    from defenses.kernels.dawid_skene import _ds_elbo_from_counts

    counts, errors2 = _ds_m_step(task, worker, label, weight, e, prior)
    task_weight = np.bincount(task, weights=weight, minlength=n_tasks)
    np.testing.assert_allclose(_ds_elbo_from_counts(counts, prior, errors2, e.copy(), task_weight, priors),
                               naive.ds_elbo(task, worker, label, weight, e, priors, errors2), rtol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_ds_em_recovers_truth_and_clamps(seed):
    task, worker, label, _, n_tasks, n_workers = _crowd(seed, n=2000)
    rng = np.random.default_rng(seed)
    truth_all = np.array([np.bincount(label[(task == t)], minlength=2).argmax() for t in range(n_tasks)])
    truth = np.where(rng.random(n_tasks) < 0.2, 1 - truth_all, -1)
    probas, priors, counts, errors, rounds = _ds_em(task, worker, label, np.ones(task.shape[0]), truth,
                                                    np.zeros((n_workers, 2, 2)), n_tasks, 50, 1e-7)
    assert 1 <= rounds <= 50
    clamped = truth >= 0
    np.testing.assert_array_equal(probas[clamped].argmax(axis=1), truth[clamped])
    np.testing.assert_allclose(errors.sum(axis=1), 1.0)
    np.testing.assert_allclose(priors.sum(), 1.0)


# -- co-voting ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_pair_counts_and_components_match_reference(seed):
    rng = np.random.default_rng(seed)
    groups = [np.unique(rng.integers(0, 30, rng.integers(1, 8))) for _ in range(40)]
    start = np.concatenate([[0], np.cumsum([g.size for g in groups])]).astype(np.int64)
    member = np.concatenate(groups).astype(np.int64)
    got = _pair_counts(start, member, 30)
    for g, w in zip(got, naive.pair_counts(start, member, 30)):
        np.testing.assert_array_equal(g, w)
    a, b, shared = got
    keep = shared >= 2
    np.testing.assert_array_equal(_components(30, a[keep], b[keep]), naive.components(30, a[keep], b[keep]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shuffled", [False, True])
def test_pair_counts_with_a_ring_matches_reference(seed, shuffled):
    """A ring of accounts in most groups (counted by bitsets), light accounts beside it
    (counted one by one), groups possibly unsorted: the same pairs as the reference."""
    rng = np.random.default_rng(seed)
    n_accounts, ring = 120, np.arange(40, 70)
    groups = []
    for g in range(150):
        bots = ring[rng.random(ring.size) < (0.6 if g % 3 else 0.0)]
        others = rng.choice(np.setdiff1d(np.arange(n_accounts), ring), rng.integers(0, 4), replace=False)
        group = np.unique(np.concatenate([bots, others]))
        groups.append(rng.permutation(group) if shuffled else group)
    start = np.concatenate([[0], np.cumsum([g.size for g in groups])]).astype(np.int64)
    member = np.concatenate(groups).astype(np.int64)
    for got, want in zip(_pair_counts(start, member, n_accounts), naive.pair_counts(start, member, n_accounts)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rule", [(1, 0.0, 0.0), (3, 0.05, 3.0), (2, 0.3, 1.0)])
def test_linked_pairs_matches_reference(seed, rule):
    from defenses.kernels.covote import _linked_pairs

    rng = np.random.default_rng(seed)
    groups = [np.unique(np.concatenate([rng.integers(0, 60, rng.integers(1, 6)),
                                        np.arange(20, 35)[rng.random(15) < 0.5]])) for _ in range(120)]
    start = np.concatenate([[0], np.cumsum([g.size for g in groups])]).astype(np.int64)
    member = np.concatenate(groups).astype(np.int64)
    for got, want in zip(_linked_pairs(start, member, 60, *rule), naive.linked_pairs(start, member, 60, *rule)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_popcount_matches_reference(seed):
    from defenses.kernels.covote import _popcount

    words = np.random.default_rng(seed).integers(0, 2**63, 50, dtype=np.uint64) * np.uint64(2) + np.uint64(seed % 2)
    assert [int(_popcount(w)) for w in words] == [bin(int(w)).count("1") for w in words]


@pytest.mark.parametrize("seed", range(4))
def test_cluster_cap_matches_reference(seed):
    rng = np.random.default_rng(seed)
    cluster = np.where(rng.random(200) < 0.5, rng.integers(0, 4, 200), -1)
    email = rng.integers(0, 10, 200)
    np.testing.assert_allclose(_cluster_cap(cluster, email, 10, 0.5), naive.cluster_cap(cluster, email, 0.5))


@pytest.mark.parametrize("seed", range(4))
def test_influence_kernels_match_reference(seed):
    rng = np.random.default_rng(seed)
    n, n_emails, n_groups = 300, 25, 12
    group, email = rng.integers(0, n_groups, n), rng.integers(0, n_emails, n)
    weight, agree = rng.random(n), rng.integers(-1, 2, n).astype(np.int8)
    winner = np.bincount(email, weights=np.where(agree == 1, weight, 0), minlength=n_emails)
    winner[rng.random(n_emails) < 0.2] = 0.0
    label_weight = rng.random(n_emails)
    factor = rng.random(n_groups)
    np.testing.assert_allclose(_contribution(group, email, weight, agree, winner, label_weight, n_groups),
                               naive.contribution(group, email, weight, agree, winner, label_weight, n_groups))
    np.testing.assert_allclose(_retained(group, email, weight, agree, winner, factor, n_emails),
                               naive.retained(group, email, weight, agree, winner, factor, n_emails))


# -- RONI: the kernel's log-loss change equals retraining the real model -----------------
def _nb_setup(seed):
    from stream.classifier import SpamModel

    rng = np.random.default_rng(seed)
    spam_words, ham_words = [f"s{i}" for i in range(30)], [f"h{i}" for i in range(30)]
    shared = [f"x{i}" for i in range(20)]

    def text(is_spam, extra=()):
        pool = spam_words if is_spam else ham_words
        return " ".join(rng.choice(pool, 6).tolist() + rng.choice(shared, 3).tolist() + list(extra))

    model = SpamModel(alpha=0.7)
    for i in range(60):
        model.learn(model.features(text(i % 3 == 0)), i % 3 == 0)
    validation = [(model.features(text(i % 2 == 0)), i % 2 == 0) for i in range(40)]
    candidates = [(model.features(text(bool(i % 2), extra=[f"new{i}"] * (i % 3))), bool(rng.integers(0, 2)),
                   float(rng.random() + 0.1)) for i in range(12)]
    return model, validation, candidates


@pytest.mark.parametrize("seed", range(3))
def test_label_impact_matches_retraining(seed):
    from defenses.roni import _csr

    model, validation, candidates = _nb_setup(seed)
    nb = model.nb
    vocabulary = {}
    for f, _ in validation:
        for w in f:
            vocabulary.setdefault(w, len(vocabulary))
    words = list(vocabulary)
    counts = np.array([[nb.feature_counts.get(w, {}).get(False, 0.0), nb.feature_counts.get(w, {}).get(True, 0.0)]
                       for w in words])
    docs = np.array([nb.class_counts[False], nb.class_counts[True]])
    totals = np.array([nb.class_totals[False], nb.class_totals[True]])
    n_terms = float(len(nb.feature_counts))
    v_ptr, v_idx, v_cnt, v_len = _csr([f for f, _ in validation], vocabulary)
    v_y = np.array([int(s) for _, s in validation])
    jll = _nb_jll(v_ptr, v_idx, v_cnt, v_len, counts, docs, totals, n_terms, nb.alpha)
    assert _log_loss(jll, v_y) == pytest.approx(naive.nb_log_loss(model, validation), rel=1e-9)
    c_ptr, c_idx, c_cnt, c_len = _csr([f for f, _, _ in candidates], vocabulary)
    c_new = np.array([sum(w not in nb.feature_counts for w in f) for f, _, _ in candidates], dtype=float)
    got = _label_impact(v_ptr, v_idx, v_cnt, v_len, v_y, jll, counts, docs, totals, n_terms, nb.alpha,
                        c_ptr, c_idx, c_cnt, c_len, c_new, np.array([int(s) for _, s, _ in candidates]),
                        np.array([w for _, _, w in candidates]))
    np.testing.assert_allclose(got, naive.label_impact(model, validation, candidates), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("unit_weight", [False, True])
def test_ds_fused_round_matches_e_step_then_m_step(seed, unit_weight):
    from defenses.kernels.dawid_skene import _ds_round, _normalize_errors, _pack_by_task

    task, worker, label, weight, n_tasks, n_workers = _crowd(seed)
    if unit_weight:                       # all-ones weights are packed as an empty array
        weight = np.ones_like(weight)
    truth = np.where(np.random.default_rng(seed).random(n_tasks) < 0.2, 1, -1)
    prior = np.zeros((n_workers, 2, 2))
    counts, errors = naive.ds_m_step(task, worker, label, weight, naive.vote_share(task, label, weight, n_tasks), prior)
    errors = np.where(errors > 0, errors, 1.0)
    priors = np.array([0.3, 0.7])
    want = naive.ds_e_step(task, worker, label, weight, errors, priors, n_tasks)
    want[truth >= 0] = [0.0, 1.0]
    want_counts, want_errors = naive.ds_m_step(task, worker, label, weight, want, prior)
    start, answer, packed_weight = _pack_by_task(task, worker, label, weight, n_tasks)
    order = np.argsort(task, kind="stable")
    np.testing.assert_array_equal(start, np.searchsorted(task[order], np.arange(n_tasks + 1)))
    np.testing.assert_array_equal(answer, 2 * worker[order] + label[order])
    np.testing.assert_array_equal(packed_weight, np.empty(0) if unit_weight else weight[order])
    probas, new_priors, got_counts = _ds_round(start, answer, packed_weight, errors, priors, truth, prior)
    np.testing.assert_allclose(probas, want)
    np.testing.assert_allclose(new_priors, want.mean(axis=0))
    np.testing.assert_allclose(got_counts, want_counts)
    present = np.zeros((n_workers, 2), bool)
    present[worker, label] = True
    np.testing.assert_allclose(_normalize_errors(got_counts, present), want_errors)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tie", [0, 1])
def test_majority_and_skill_labels_match_reference(seed, tie):
    from defenses.kernels.skill import _majority_labels, _skill_labels

    rng = np.random.default_rng(seed)
    task, worker, label = rng.integers(0, 50, 300), rng.integers(0, 20, 300), rng.integers(0, 2, 300)
    skill = np.where(rng.random(20) < 0.2, 0.0, rng.integers(1, 4, 20) / 4)   # exact ties happen
    np.testing.assert_array_equal(_majority_labels(task, label, 60, tie), naive.majority_labels(task, label, 60, tie))
    np.testing.assert_array_equal(_skill_labels(task, worker, label, skill, 60, tie),
                                  naive.skill_labels(task, worker, label, skill, 60, tie))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tie", [0, 1])
def test_wawa_labels_match_reference(seed, tie):
    from defenses.kernels.skill import _wawa_labels

    rng = np.random.default_rng(seed)
    n_tasks, n_workers = 40, [3, 25, 200][seed % 3]          # few workers: exact skill ties happen
    task, worker, label = rng.integers(0, n_tasks, 400), rng.integers(0, n_workers, 400), rng.integers(0, 2, 400)
    np.testing.assert_array_equal(_wawa_labels(task, worker, label, n_tasks + 5, n_workers, tie),
                                  naive.wawa_labels(task, worker, label, n_tasks + 5, n_workers, tie))


# -- naive Bayes decisions: the kernel equals SpamModel.is_spam bit for bit ---------------
@pytest.mark.parametrize("seed", range(4))
def test_nb_is_spam_matches_the_model(seed):
    from defenses._trusted import TrustedSet
    from defenses.kernels.nb import _nb_is_spam

    model, validation, candidates = _nb_setup(seed)
    rng = np.random.default_rng(seed)
    for features, is_spam, weight in candidates[:6]:       # odd weights, new words
        model.learn(features, is_spam, weight)
    # Rows with unseen words, repeated words, and near-ties.
    rows = [f for f, _ in validation] + [f for f, _, _ in candidates] + [{"zzz": 3}, {}]
    rows += [{w: int(rng.integers(1, 4)) for w in rng.choice(list(model.nb.feature_counts), 5)} for _ in range(30)]
    trusted = TrustedSet.of([(f, False) for f in rows])
    m = trusted.model_counts(model.nb)
    got = _nb_is_spam(trusted.ptr, trusted.idx, trusted.cnt, m.present, m.counts, m.docs, m.words_per_class,
                      m.n_terms, float(model.nb.alpha))
    np.testing.assert_array_equal(got, naive.nb_is_spam(model, rows))
