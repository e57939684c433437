"""Skill kernels: per-account agreement with reference labels."""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _accuracy_counts(worker: np.ndarray, task: np.ndarray, label: np.ndarray, truth: np.ndarray,
                     n_workers: int):
    """Per worker: how many of its answers match ``truth[task]`` and how many were
    scored (``truth`` is -1 for tasks without a reference label). Returns
    ``(correct, scored)`` as float arrays of length ``n_workers``."""
    correct = np.zeros(n_workers, dtype=np.float64)
    scored = np.zeros(n_workers, dtype=np.float64)
    for i in range(worker.shape[0]):
        t = truth[task[i]]
        if t < 0:
            continue
        scored[worker[i]] += 1.0
        if label[i] == t:
            correct[worker[i]] += 1.0
    return correct, scored


@njit(**NJIT_OPTIONS)
def _argmax_labels(spam: np.ndarray, ham: np.ndarray, tie: int):
    """Label per task from its two scores, ties to ``tie`` (Crowd-Kit's ``idxmax``
    keeps the first of its label columns); tasks with no score get -1."""
    out = np.empty(spam.shape[0], dtype=np.int8)
    for e in range(spam.shape[0]):
        if spam[e] + ham[e] <= 0.0:
            out[e] = -1
        elif spam[e] > ham[e]:
            out[e] = 1
        elif spam[e] < ham[e]:
            out[e] = 0
        else:
            out[e] = tie
    return out


@njit(**NJIT_OPTIONS)
def _majority_labels(task: np.ndarray, label: np.ndarray, n_tasks: int, tie: int):
    """Unweighted majority label per task (-1 without votes, ``tie`` on a tie), in one
    pass: both counters of a task sit side by side (one cache line per vote)."""
    counts = np.zeros((n_tasks, 2), dtype=np.int32)
    for i in range(task.shape[0]):
        counts[task[i], label[i]] += 1
    out = np.empty(n_tasks, dtype=np.int8)
    for t in range(n_tasks):
        if counts[t, 0] + counts[t, 1] == 0:
            out[t] = -1
        elif counts[t, 1] > counts[t, 0]:
            out[t] = 1
        elif counts[t, 1] < counts[t, 0]:
            out[t] = 0
        else:
            out[t] = tie
    return out


@njit(**NJIT_OPTIONS)
def _skill_labels(task: np.ndarray, worker: np.ndarray, label: np.ndarray, skill: np.ndarray,
                  n_tasks: int, tie: int):
    """Majority label per task with each answer weighted by ``skill[worker]``, ties to
    ``tie``, -1 for tasks whose answers weigh nothing."""
    score = np.zeros((n_tasks, 2), dtype=np.float64)
    for i in range(task.shape[0]):
        score[task[i], label[i]] += skill[worker[i]]
    out = np.empty(n_tasks, dtype=np.int8)
    for t in range(n_tasks):
        if score[t, 0] + score[t, 1] <= 0.0:
            out[t] = -1
        elif score[t, 1] > score[t, 0]:
            out[t] = 1
        elif score[t, 1] < score[t, 0]:
            out[t] = 0
        else:
            out[t] = tie
    return out
