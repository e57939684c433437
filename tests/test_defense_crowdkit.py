"""Our batch aggregation against Crowd-Kit on shared synthetic crowds: same labels."""

import numpy as np
import pandas as pd
import pytest

from defenses import batch

crowdkit = pytest.importorskip("crowdkit.aggregation")
# Crowd-Kit calls pandas APIs that pandas >= 3 deprecates; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:The inplace keyword"), pytest.mark.filterwarnings("ignore:The copy keyword")]


def crowd(seed, tasks=400, workers=60, per_task=7):
    """Workers of mixed quality (some adversarial) answer distinct tasks, no repeats."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, tasks)
    skill = np.concatenate([rng.uniform(0.6, 0.95, workers - 8), rng.uniform(0.05, 0.3, 8)])
    task = np.repeat(np.arange(tasks), per_task)
    worker = np.concatenate([rng.choice(workers, per_task, replace=False) for _ in range(tasks)])
    label = np.where(rng.random(task.size) < skill[worker], truth[task], 1 - truth[task])
    frame = pd.DataFrame({"task": task, "worker": worker, "label": label})
    return task, worker, label.astype(np.int64), truth, frame


def skill_weighted(fitted, frame):
    """Crowd-Kit's ``predict`` of Wawa / GoldMajorityVote is ``MajorityVote().fit(data,
    skills_)``; called directly because its ``check_is_fitted`` breaks on scikit-learn >= 1.6."""
    return crowdkit.MajorityVote().fit(frame, skills=fitted.skills_).labels_


def as_array(series, n):
    return series.reindex(range(n)).to_numpy().astype(np.int64)


@pytest.mark.parametrize("seed", range(3))
def test_majority_vote_same_labels(seed):
    task, worker, label, truth, frame = crowd(seed, per_task=6)   # even: ties happen
    ours = batch.majority_vote(task, worker, label)
    np.testing.assert_array_equal(ours, as_array(crowdkit.MajorityVote().fit_predict(frame), truth.size))


@pytest.mark.parametrize("seed", range(3))
def test_wawa_same_labels(seed):
    task, worker, label, truth, frame = crowd(seed)
    ours = batch.wawa(task, worker, label)
    np.testing.assert_array_equal(ours, as_array(skill_weighted(crowdkit.Wawa().fit(frame), frame), truth.size))


@pytest.mark.parametrize("seed", range(3))
def test_gold_majority_vote_same_labels(seed):
    task, worker, label, truth, frame = crowd(seed)
    known = np.where(np.arange(truth.size) % 4 == 0, truth, -1)
    gold = pd.Series(truth[known >= 0], index=np.flatnonzero(known >= 0))
    theirs = skill_weighted(crowdkit.GoldMajorityVote().fit(frame, gold), frame)
    ours = batch.gold_majority_vote(task, worker, label, known)
    np.testing.assert_array_equal(ours, as_array(theirs, truth.size))


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("n_iter", [1, 10, 50])
def test_dawid_skene_same_labels_and_probabilities(seed, n_iter):
    task, worker, label, truth, frame = crowd(seed)
    ds = crowdkit.DawidSkene(n_iter=n_iter).fit(frame)
    labels, probas, errors = batch.dawid_skene(task, worker, label, n_iter=n_iter)
    np.testing.assert_array_equal(labels, as_array(ds.labels_, truth.size))
    np.testing.assert_allclose(probas, ds.probas_.reindex(range(truth.size))[[0, 1]].to_numpy(), atol=1e-9)
    their_errors = ds.errors_
    for (w, observed), row in their_errors.iterrows():
        np.testing.assert_allclose(errors[w, observed], row[[0, 1]].to_numpy(), atol=1e-9)
    assert (labels == truth).mean() > 0.9        # and it is right: adversaries are inverted


def test_dawid_skene_with_golden_labels():
    task, worker, label, truth, frame = crowd(7)
    known = np.where(np.arange(truth.size) % 5 == 0, truth, -1)
    gold = pd.Series(truth[known >= 0], index=np.flatnonzero(known >= 0))
    ds = crowdkit.DawidSkene(n_iter=30).fit(frame, true_labels=gold)
    labels, _, _ = batch.dawid_skene(task, worker, label, n_iter=30, truth=known)
    np.testing.assert_array_equal(labels, as_array(ds.labels_, truth.size))
