"""Batch aggregation of a whole vote table, Crowd-Kit style, over the kernels.

The same algorithms as Crowd-Kit's ``MajorityVote``, ``Wawa``, ``GoldMajorityVote``
and ``DawidSkene`` on the long table ``(task, worker, label)`` given as three integer
arrays (dense ids, labels 0/1), with Crowd-Kit's tie rules: its unweighted majority
vote and Dawid-Skene keep their label columns in order of first appearance in the
table, so a tie goes to the label of the first row; its skill-weighted votes group
(and so sort) the labels, so a tie goes to 0. Used by the benchmarks and by the
cross-checks against Crowd-Kit.

>>> task, worker, label = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1]), np.array([1, 1, 0, 0, 1])
>>> majority_vote(task, worker, label).tolist()      # task 1 is a tie: the first row's label
[1, 1]
>>> wawa(task, worker, label).tolist()             # worker 1 agreed most: its 1 wins task 1
[1, 1]
"""

from __future__ import annotations

import numpy as np

from defenses.kernels.dawid_skene import _ds_em
from defenses.kernels.skill import _accuracy_counts, _argmax_labels, _majority_labels, _skill_labels, _wawa_labels


def _n(ids: np.ndarray) -> int:
    return int(ids.max()) + 1 if ids.shape[0] else 0


def majority_vote(task: np.ndarray, worker: np.ndarray, label: np.ndarray,
                  skill: np.ndarray | None = None) -> np.ndarray:
    """Label per task (-1 for a task without votes), optionally weighting each
    worker's votes by ``skill[worker]``."""
    if skill is None:
        return _majority_labels(task, label, _n(task), _first(label))
    return _skill_labels(task, worker, label, skill.astype(np.float64), _n(task), 0)


def _first(label: np.ndarray) -> int:
    return int(label[0]) if label.shape[0] else 0


def accuracy(task: np.ndarray, worker: np.ndarray, label: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each worker's share of answers matching ``truth[task]`` (NaN when none is known)."""
    correct, scored = _accuracy_counts(worker, task, label, truth, _n(worker))
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / scored


def wawa(task: np.ndarray, worker: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Crowd-Kit's Wawa: majority vote, skills as agreement with it, re-vote with skills."""
    return _wawa_labels(task, worker, label, _n(task), _n(worker), _first(label))


def gold_majority_vote(task: np.ndarray, worker: np.ndarray, label: np.ndarray, truth: np.ndarray,
                       default_skill: float = 0.0) -> np.ndarray:
    """Crowd-Kit's GoldMajorityVote: skills from gold tasks (``truth >= 0``), then a
    skill-weighted vote; workers without gold answers weigh ``default_skill``."""
    skill = accuracy(task, worker, label, truth)
    return majority_vote(task, worker, label, np.where(np.isnan(skill), default_skill, skill))


def dawid_skene(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_iter: int = 100, tol: float = 1e-5,
                truth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crowd-Kit's DawidSkene: ``(labels, probas, errors)`` with ``errors[w, observed, true]``."""
    n_tasks, n_workers = _n(task), _n(worker)
    truth = np.full(n_tasks, -1, np.int64) if truth is None else truth.astype(np.int64)
    as_ids = lambda ids: np.asarray(ids, dtype=np.int64)   # noqa: E731  (no copy when already int64)
    probas, _, _, errors, _ = _ds_em(as_ids(task), as_ids(worker), as_ids(label), np.ones(task.shape[0]), truth,
                                     np.zeros((n_workers, 2, 2)), n_tasks, n_iter, tol)
    return _argmax_labels(probas[:, 1], probas[:, 0], _first(label)), probas, errors
