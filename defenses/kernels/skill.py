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
def _winning_labels(score: np.ndarray, tie: int):
    """Label per row of ``score[task, (not spam, spam)]``: the larger side, ``tie`` on a
    tie, -1 where both sides sum to nothing."""
    out = np.empty(score.shape[0], dtype=np.int8)
    for t in range(score.shape[0]):
        if score[t, 0] + score[t, 1] <= 0:
            out[t] = -1
        elif score[t, 1] > score[t, 0]:
            out[t] = 1
        elif score[t, 1] < score[t, 0]:
            out[t] = 0
        else:
            out[t] = tie
    return out


@njit(**NJIT_OPTIONS)
def _majority_labels(task: np.ndarray, label: np.ndarray, n_tasks: int, tie: int):
    """Unweighted majority label per task (-1 without votes, ``tie`` on a tie), in one
    pass: both counters of a task sit side by side (one cache line per vote)."""
    counts = np.zeros((n_tasks, 2), dtype=np.int32)
    for i in range(task.shape[0]):
        counts[task[i], label[i]] += 1
    return _winning_labels(counts, tie)


@njit(**NJIT_OPTIONS)
def _skill_labels(task: np.ndarray, worker: np.ndarray, label: np.ndarray, skill: np.ndarray,
                  n_tasks: int, tie: int):
    """Majority label per task with each answer weighted by ``skill[worker]``, ties to
    ``tie``, -1 for tasks whose answers weigh nothing."""
    score = np.zeros((n_tasks, 2), dtype=np.float64)
    for i in range(task.shape[0]):
        score[task[i], label[i]] += skill[worker[i]]
    return _winning_labels(score, tie)


@njit(**NJIT_OPTIONS)
def _wawa_labels(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_tasks: int, n_workers: int,
                 tie: int):
    """Crowd-Kit's Wawa in one call: the unweighted majority (ties to ``tie``), each
    worker's skill as its share of answers agreeing with it, then the skill-weighted
    vote (ties to 0) — :func:`_majority_labels`, :func:`_accuracy_counts` and
    :func:`_skill_labels` in turn, in the answers' order. The first pass also packs
    each answer into one int64 (``task << 32 | worker << 1 | label``), so the two later
    passes read 8 bytes an answer instead of 24: the passes are bound by memory."""
    n = task.shape[0]
    tally = np.zeros((n_tasks, 2), dtype=np.int32)
    packed = np.empty(n, dtype=np.int64)
    for i in range(n):
        tally[task[i], label[i]] += 1
        packed[i] = (task[i] << 32) | (worker[i] << 1) | label[i]
    majority = _winning_labels(tally, tie)                     # -1 only where no answer points
    counts = np.zeros((n_workers, 2), dtype=np.int64)          # [worker, (answers, agreeing)]
    for i in range(n):
        p = packed[i]
        w = (p & 0xFFFFFFFF) >> 1
        counts[w, 0] += 1
        counts[w, 1] += (p & 1) == majority[p >> 32]
    skill = np.zeros(n_workers, dtype=np.float64)
    for w in range(n_workers):
        if counts[w, 0] > 0:
            skill[w] = counts[w, 1] / counts[w, 0]
    score = np.zeros((n_tasks, 2), dtype=np.float64)
    for i in range(n):
        p = packed[i]
        score[p >> 32, p & 1] += skill[(p & 0xFFFFFFFF) >> 1]
    return _winning_labels(score, 0)
