"""Dawid-Skene kernels for two classes (0 not spam, 1 spam).

Confusion arrays are indexed ``[worker, observed, true]``: ``errors[w, o, c]`` is the
probability that worker ``w`` answers ``o`` when the truth is ``c``. The steps follow
Crowd-Kit's ``DawidSkene`` exactly (same clipping, base-2 E-step, evidence lower
bound as the stopping rule), with two additions for streaming use: per-answer
weights and Dirichlet prior counts added in every M-step (all ones and zeros give
Crowd-Kit's estimator).
"""

import numpy as np
from numba import njit

from defenses.kernels.config import NJIT_OPTIONS

EPS = 1e-10  # Crowd-Kit's _EPS


@njit(**NJIT_OPTIONS)
def _vote_share(task: np.ndarray, label: np.ndarray, weight: np.ndarray, n_tasks: int):
    """Each task's weighted share of answers per class (majority-vote probabilities)."""
    probas = np.zeros((n_tasks, 2), dtype=np.float64)
    for i in range(task.shape[0]):
        probas[task[i], label[i]] += weight[i]
    for t in range(n_tasks):
        s = probas[t, 0] + probas[t, 1]
        if s > 0.0:
            probas[t, 0] /= s
            probas[t, 1] /= s
    return probas


@njit(**NJIT_OPTIONS)
def _clamp(probas: np.ndarray, truth: np.ndarray):
    """Replace the probabilities of tasks with a known label (``truth >= 0``) in place."""
    for t in range(probas.shape[0]):
        if truth[t] >= 0:
            probas[t, 0] = 1.0 if truth[t] == 0 else 0.0
            probas[t, 1] = 1.0 - probas[t, 0]


@njit(**NJIT_OPTIONS)
def _class_priors(probas: np.ndarray):
    """Mean class probability over tasks."""
    priors = np.zeros(2, dtype=np.float64)
    n = probas.shape[0]
    for t in range(n):
        priors[0] += probas[t, 0]
        priors[1] += probas[t, 1]
    if n > 0:
        priors /= n
    return priors


@njit(**NJIT_OPTIONS)
def _ds_m_step(task: np.ndarray, worker: np.ndarray, label: np.ndarray, weight: np.ndarray,
               probas: np.ndarray, prior_counts: np.ndarray):
    """Expected answer counts per ``[worker, observed, true]`` plus the prior, and the
    confusion probabilities from them. Rows a worker never answered (and has no prior
    for) do not exist, as in Crowd-Kit's grouped frame. Returns ``(counts, errors)``."""
    n_workers = prior_counts.shape[0]
    counts = prior_counts.copy()
    present = np.zeros((n_workers, 2), dtype=np.bool_)
    for w in range(n_workers):
        for o in range(2):
            if prior_counts[w, o, 0] > 0.0 or prior_counts[w, o, 1] > 0.0:
                present[w, o] = True
    for i in range(task.shape[0]):
        w = worker[i]
        o = label[i]
        present[w, o] = True
        counts[w, o, 0] += weight[i] * probas[task[i], 0]
        counts[w, o, 1] += weight[i] * probas[task[i], 1]
    return counts, _normalize_errors(counts, present)


@njit(**NJIT_OPTIONS)
def _log_table(errors: np.ndarray, base2: bool):
    """Logarithms of the confusion probabilities (rows that do not exist, 0, stay 0:
    no answer reads them), computed once per step instead of once per answer."""
    out = np.zeros(errors.shape, dtype=np.float64)
    for w in range(errors.shape[0]):
        for o in range(2):
            for c in range(2):
                if errors[w, o, c] > 0.0:
                    out[w, o, c] = np.log2(errors[w, o, c]) if base2 else np.log(errors[w, o, c])
    return out


@njit(**NJIT_OPTIONS)
def _ds_e_step(task: np.ndarray, worker: np.ndarray, label: np.ndarray, weight: np.ndarray,
               errors: np.ndarray, priors: np.ndarray, n_tasks: int):
    """Posterior class probabilities per task from the answers, the confusion
    probabilities and the class priors (clipped at ``EPS``), in base 2."""
    ll = np.empty((n_tasks, 2), dtype=np.float64)
    log_errors = _log_table(errors, True)
    p0 = np.log2(max(priors[0], EPS))
    p1 = np.log2(max(priors[1], EPS))
    for t in range(n_tasks):
        ll[t, 0] = p0
        ll[t, 1] = p1
    for i in range(task.shape[0]):
        w = worker[i]
        o = label[i]
        ll[task[i], 0] += weight[i] * log_errors[w, o, 0]
        ll[task[i], 1] += weight[i] * log_errors[w, o, 1]
    probas = np.empty((n_tasks, 2), dtype=np.float64)
    for t in range(n_tasks):
        m = max(ll[t, 0], ll[t, 1])
        a = np.exp2(ll[t, 0] - m)
        b = np.exp2(ll[t, 1] - m)
        probas[t, 0] = a / (a + b)
        probas[t, 1] = b / (a + b)
    return probas


@njit(**NJIT_OPTIONS)
def _ds_elbo(task: np.ndarray, worker: np.ndarray, label: np.ndarray, weight: np.ndarray,
             probas: np.ndarray, priors: np.ndarray, errors: np.ndarray):
    """Evidence lower bound per unit of answer weight (natural log). Clips ``probas``
    at ``EPS`` in place, as Crowd-Kit does."""
    l0 = np.log(max(priors[0], EPS))
    l1 = np.log(max(priors[1], EPS))
    log_errors = _log_table(errors, False)
    joint = 0.0
    total = 0.0
    for i in range(task.shape[0]):
        w = worker[i]
        o = label[i]
        t = task[i]
        joint += weight[i] * (probas[t, 0] * (log_errors[w, o, 0] + l0)
                              + probas[t, 1] * (log_errors[w, o, 1] + l1))
        total += weight[i]
    entropy = 0.0
    for t in range(probas.shape[0]):
        for c in range(2):
            if probas[t, c] < EPS:
                probas[t, c] = EPS
            entropy -= np.log(probas[t, c]) * probas[t, c]
    return (joint + entropy) / total if total > 0.0 else 0.0


@njit(**NJIT_OPTIONS)
def _pack_by_task(task: np.ndarray, worker: np.ndarray, label: np.ndarray, weight: np.ndarray, n_tasks: int):
    """The answers in task order (stable: answers of one task keep their order, so every per-task sum adds the same numbers in the same order), packed for
    the EM passes: ``(start, answer, weight)`` where ``answer = 2 * worker + label`` (an
    int32 row of a ``[2 * worker + observed, true]`` table) so a pass reads 4 bytes of
    ids and, unless every weight is one (``weight`` then comes back empty), 8 of weight
    per answer, all sequentially."""
    start = np.zeros(n_tasks + 1, dtype=np.int64)
    for i in range(task.shape[0]):
        start[task[i] + 1] += 1
    for t in range(n_tasks):
        start[t + 1] += start[t]
    unit = True
    for i in range(weight.shape[0]):
        if weight[i] != 1.0:
            unit = False
            break
    fill = start[:-1].copy()
    answer = np.empty(task.shape[0], dtype=np.int32)
    packed_weight = np.empty(0 if unit else task.shape[0], dtype=np.float64)
    for i in range(task.shape[0]):
        j = fill[task[i]]
        answer[j] = 2 * worker[i] + label[i]
        if not unit:
            packed_weight[j] = weight[i]
        fill[task[i]] += 1
    return start, answer, packed_weight


@njit(**NJIT_OPTIONS)
def _ds_round(start: np.ndarray, answer: np.ndarray, weight: np.ndarray,
              errors: np.ndarray, priors: np.ndarray, truth: np.ndarray, prior_counts: np.ndarray):
    """One EM round in one pass over packed answers (:func:`_pack_by_task`; an empty
    ``weight`` means all ones): per task, the E-step posterior (as :func:`_ds_e_step`,
    clamped to ``truth``) and at once its answers' expected counts for the next M-step.
    Returns ``(probas, new_priors, counts)``."""
    n_tasks = start.shape[0] - 1
    n_rows = 2 * errors.shape[0]
    log_errors = _log_table(errors, True).reshape(n_rows, 2)
    unit = weight.shape[0] == 0
    p0 = np.log2(max(priors[0], EPS))
    p1 = np.log2(max(priors[1], EPS))
    probas = np.empty((n_tasks, 2), dtype=np.float64)
    counts = prior_counts.copy()
    flat_counts = counts.reshape(n_rows, 2)
    new_priors = np.zeros(2, dtype=np.float64)
    for t in range(n_tasks):
        a = p0
        b = p1
        if unit:
            for i in range(start[t], start[t + 1]):
                a += log_errors[answer[i], 0]
                b += log_errors[answer[i], 1]
        else:
            for i in range(start[t], start[t + 1]):
                a += weight[i] * log_errors[answer[i], 0]
                b += weight[i] * log_errors[answer[i], 1]
        if truth[t] >= 0:
            q0 = 1.0 if truth[t] == 0 else 0.0
            q1 = 1.0 - q0
        else:
            m = max(a, b)
            ea = np.exp2(a - m)
            eb = np.exp2(b - m)
            q0 = ea / (ea + eb)
            q1 = eb / (ea + eb)
        probas[t, 0] = q0
        probas[t, 1] = q1
        new_priors[0] += q0
        new_priors[1] += q1
        if unit:
            for i in range(start[t], start[t + 1]):
                flat_counts[answer[i], 0] += q0
                flat_counts[answer[i], 1] += q1
        else:
            for i in range(start[t], start[t + 1]):
                flat_counts[answer[i], 0] += weight[i] * q0
                flat_counts[answer[i], 1] += weight[i] * q1
    if n_tasks > 0:
        new_priors /= n_tasks
    return probas, new_priors, counts


@njit(**NJIT_OPTIONS)
def _normalize_errors(counts: np.ndarray, present: np.ndarray):
    """Confusion probabilities from expected counts, as in :func:`_ds_m_step`."""
    n_workers = counts.shape[0]
    errors = np.zeros((n_workers, 2, 2), dtype=np.float64)
    for w in range(n_workers):
        for c in range(2):
            s = 0.0
            for o in range(2):
                if present[w, o]:
                    v = counts[w, o, c]
                    if v < EPS:
                        v = EPS
                    errors[w, o, c] = v
                    s += v
            if s > 0.0:
                for o in range(2):
                    errors[w, o, c] /= s
    return errors


@njit(**NJIT_OPTIONS)
def _ds_elbo_from_counts(counts: np.ndarray, prior_counts: np.ndarray, errors: np.ndarray,
                         probas: np.ndarray, task_weight: np.ndarray, priors: np.ndarray):
    """:func:`_ds_elbo` without a pass over the answers: the expected joint term is
    ``Σ_{w,o,c} n[w,o,c] log errors[w,o,c] + Σ_c log prior_c Σ_t weight_t p[t,c]``, where
    ``n`` are the M-step's expected counts less the prior. Clips ``probas`` in place."""
    l0 = np.log(max(priors[0], EPS))
    l1 = np.log(max(priors[1], EPS))
    joint = 0.0
    for w in range(counts.shape[0]):
        for o in range(2):
            for c in range(2):
                n = counts[w, o, c] - prior_counts[w, o, c]
                if n != 0.0:
                    joint += n * np.log(errors[w, o, c])
    total = 0.0
    entropy = 0.0
    for t in range(probas.shape[0]):
        joint += task_weight[t] * (probas[t, 0] * l0 + probas[t, 1] * l1)
        total += task_weight[t]
        for c in range(2):
            if probas[t, c] < EPS:
                probas[t, c] = EPS
            entropy -= np.log(probas[t, c]) * probas[t, c]
    return (joint + entropy) / total if total > 0.0 else 0.0


@njit(**NJIT_OPTIONS)
def _ds_em(task: np.ndarray, worker: np.ndarray, label: np.ndarray, weight: np.ndarray,
           truth: np.ndarray, prior_counts: np.ndarray, n_tasks: int, n_iter: int, tol: float):
    """Dawid-Skene EM from majority-vote probabilities: at most ``n_iter`` rounds, stop
    when the evidence lower bound improves by less than ``tol``. Tasks with
    ``truth >= 0`` are clamped to it. Returns ``(probas, priors, counts, errors, rounds)``.

    The answers are first put in task order and packed (:func:`_pack_by_task`) so that
    every pass reads them sequentially; the lower bound comes from the count table
    (:func:`_ds_elbo_from_counts`), so a round makes two passes over the answers.
    """
    start, answer, packed_weight = _pack_by_task(task, worker, label, weight, n_tasks)
    unit = packed_weight.shape[0] == 0
    n_rows = 2 * prior_counts.shape[0]
    task_weight = np.zeros(n_tasks, dtype=np.float64)
    probas = np.zeros((n_tasks, 2), dtype=np.float64)
    for t in range(n_tasks):                      # majority-vote shares (_vote_share)
        for i in range(start[t], start[t + 1]):
            w = 1.0 if unit else packed_weight[i]
            probas[t, answer[i] & 1] += w
            task_weight[t] += w
        s = probas[t, 0] + probas[t, 1]
        if s > 0.0:
            probas[t, 0] /= s
            probas[t, 1] /= s
    _clamp(probas, truth)
    priors = _class_priors(probas)
    counts = prior_counts.copy()                  # the first M-step (_ds_m_step)
    flat_counts = counts.reshape(n_rows, 2)
    present = np.zeros((prior_counts.shape[0], 2), dtype=np.bool_)
    flat_present = present.reshape(n_rows)
    for w in range(prior_counts.shape[0]):
        for o in range(2):
            present[w, o] = prior_counts[w, o, 0] > 0.0 or prior_counts[w, o, 1] > 0.0
    for t in range(n_tasks):
        for i in range(start[t], start[t + 1]):
            w = 1.0 if unit else packed_weight[i]
            flat_present[answer[i]] = True
            flat_counts[answer[i], 0] += w * probas[t, 0]
            flat_counts[answer[i], 1] += w * probas[t, 1]
    errors = _normalize_errors(counts, present)
    loss = -np.inf
    rounds = 0
    for _ in range(n_iter):
        probas, priors, counts = _ds_round(start, answer, packed_weight, errors, priors, truth, prior_counts)
        errors = _normalize_errors(counts, present)
        new_loss = _ds_elbo_from_counts(counts, prior_counts, errors, probas, task_weight, priors)
        rounds += 1
        if new_loss - loss < tol:
            break
        loss = new_loss
    return probas, priors, counts, errors, rounds
