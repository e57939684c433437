"""Slow, obviously correct NumPy references for the Numba kernels."""

import numpy as np


def tally(email, verdict, weight, n_emails):
    spam = np.zeros(n_emails)
    ham = np.zeros(n_emails)
    for e in range(n_emails):
        mask = email == e
        spam[e] = weight[mask & (verdict == 1)].sum()
        ham[e] = weight[mask & (verdict == 0)].sum()
    count = np.array([(email == e).sum() for e in range(n_emails)], dtype=np.int64)
    return spam, ham, count


def decide(spam, ham, count, min_weight, margin, min_votes):
    total = spam + ham
    label = (spam >= ham).astype(np.int8)
    top = np.maximum(spam, ham)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_gap = np.abs(spam - ham) / total
        confidence = top / total
    decided = (total > 0) & (count >= min_votes) & (top >= min_weight) & (share_gap >= margin)
    label = np.where(total > 0, label, 0).astype(np.int8)
    label[(total <= 0) | (count < min_votes)] = 0
    return decided, label, np.where(decided, top, 0.0), np.where(decided, confidence, 0.0)


def agreement(email, verdict, decided, label):
    return np.where(decided[email], (verdict == label[email]).astype(np.int8), -1).astype(np.int8)


def trust_weight(alpha, beta, account, prior_alpha, prior_beta):
    a = alpha[account] + prior_alpha
    mean = a / (a + beta[account] + prior_beta)
    return np.clip(2 * mean - 1, 0, None)


def beta_update(alpha, beta, account, agree, amount):
    alpha, beta = alpha.copy(), beta.copy()
    np.add.at(alpha, account[agree == 1], amount)
    np.add.at(beta, account[agree == 0], amount)
    return alpha, beta


def dense_unique(ids):
    return np.unique(ids, return_inverse=True)


def age_weight(ts, created, min_age, ramp, young, unknown):
    age = ts - created
    if ramp > 0:
        rising = young + (1 - young) * np.clip((age - min_age) / ramp, 0, 1)
    else:
        rising = np.ones_like(age)
    out = np.where(age < min_age, young, rising)
    return np.where(np.isnan(created), unknown, out)


def accuracy_counts(worker, task, label, truth, n_workers):
    correct = np.zeros(n_workers)
    scored = np.zeros(n_workers)
    for w, t, l in zip(worker, task, label):
        if truth[t] >= 0:
            scored[w] += 1
            correct[w] += l == truth[t]
    return correct, scored


def argmax_labels(spam, ham, tie):
    return np.where(spam + ham <= 0, -1, np.where(spam > ham, 1, np.where(spam < ham, 0, tie))).astype(np.int8)


DS_EPS = 1e-10


def vote_share(task, label, weight, n_tasks):
    probas = np.zeros((n_tasks, 2))
    np.add.at(probas, (task, label), weight)
    s = probas.sum(axis=1, keepdims=True)
    return np.divide(probas, s, out=probas.copy(), where=s > 0)


def ds_m_step(task, worker, label, weight, probas, prior_counts):
    counts = prior_counts.copy()
    for c in range(2):
        np.add.at(counts[:, :, c], (worker, label), weight * probas[task, c])
    present = prior_counts.sum(axis=2) > 0
    present[worker, label] = True
    errors = np.where(present[:, :, None], np.maximum(counts, DS_EPS), 0.0)
    sums = errors.sum(axis=1, keepdims=True)
    errors = np.divide(errors, sums, out=errors.copy(), where=sums > 0)
    return counts, errors


def ds_e_step(task, worker, label, weight, errors, priors, n_tasks):
    ll = np.tile(np.log2(np.maximum(priors, DS_EPS)), (n_tasks, 1))
    for c in range(2):
        np.add.at(ll[:, c], task, weight * np.log2(errors[worker, label, c]))
    ll -= ll.max(axis=1, keepdims=True)
    p = np.exp2(ll)
    return p / p.sum(axis=1, keepdims=True)


def ds_elbo(task, worker, label, weight, probas, priors, errors):
    lp = np.log(np.maximum(priors, DS_EPS))
    joint = (weight[:, None] * probas[task] * (np.log(errors[worker, label]) + lp)).sum()
    clipped = np.maximum(probas, DS_EPS)
    entropy = -(np.log(clipped) * clipped).sum()
    return (joint + entropy) / weight.sum()


def pair_counts(group_start, member, n_accounts):
    from collections import Counter

    counts = Counter()
    for g in range(len(group_start) - 1):
        m = sorted(member[group_start[g]:group_start[g + 1]].tolist())
        for i in range(len(m)):
            for j in range(i + 1, len(m)):
                counts[(m[i], m[j])] += 1
    keys = sorted(counts)
    return (np.array([k[0] for k in keys], np.int64), np.array([k[1] for k in keys], np.int64),
            np.array([counts[k] for k in keys], np.int64))


def components(n, a, b):
    neighbours = [[] for _ in range(n)]
    for x, y in zip(a.tolist(), b.tolist()):
        neighbours[x].append(y)
        neighbours[y].append(x)
    out = np.full(n, -1, np.int64)
    for start in range(n):
        if out[start] >= 0:
            continue
        stack, seen = [start], {start}
        while stack:
            v = stack.pop()
            for u in neighbours[v]:
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        out[list(seen)] = min(seen)
    return out


def cluster_cap(cluster, email, cap):
    out = np.ones(len(cluster))
    for i in range(len(cluster)):
        if cluster[i] >= 0:
            same = ((cluster == cluster[i]) & (email == email[i])).sum()
            out[i] = min(1.0, cap / same)
    return out


def contribution(group, email, weight, agree, winner, label_weight, n_groups):
    out = np.zeros(n_groups)
    for g, e, w, a in zip(group, email, weight, agree):
        if a == 1 and winner[e] > 0:
            out[g] += w / winner[e] * label_weight[e]
    return out


def retained(group, email, weight, agree, winner, factor, n_emails):
    out = np.zeros(n_emails)
    for g, e, w, a in zip(group, email, weight, agree):
        if a == 1 and winner[e] > 0:
            out[e] += w / winner[e] * factor[g]
    return np.where(winner <= 0, 1.0, np.minimum(out, 1.0))


def nb_log_loss(model, validation):
    """Mean negative log probability of the true class, from River's own NB."""
    import math

    total = 0.0
    for features, is_spam in validation:
        jll = model.nb.joint_log_likelihood(features)
        top = max(jll.values())
        lse = top + math.log(sum(math.exp(v - top) for v in jll.values()))
        total += lse - jll[bool(is_spam)]
    return total / len(validation)


def label_impact(model, validation, candidates):
    """Retrain a copy of the model on each candidate ``(features, is_spam, weight)``."""
    import copy

    base = nb_log_loss(model, validation)
    out = []
    for features, is_spam, weight in candidates:
        trial = copy.deepcopy(model)
        trial.learn(features, is_spam, weight)
        out.append(nb_log_loss(trial, validation) - base)
    return np.array(out)


def majority_labels(task, label, n_tasks, tie):
    spam = np.bincount(task, weights=label == 1, minlength=n_tasks)
    ham = np.bincount(task, weights=label == 0, minlength=n_tasks)
    return argmax_labels(spam, ham, tie)


def skill_labels(task, worker, label, skill, n_tasks, tie):
    spam = np.bincount(task, weights=np.where(label == 1, skill[worker], 0.0), minlength=n_tasks)
    ham = np.bincount(task, weights=np.where(label == 0, skill[worker], 0.0), minlength=n_tasks)
    return argmax_labels(spam, ham, tie)


def linked_pairs(group_start, member, n_accounts, min_shared, min_jaccard, min_lift):
    """The co-voting link rule of ``Coordination`` on the reference pair counts."""
    a, b, shared = pair_counts(group_start, member, n_accounts)
    per_account = np.bincount(member, minlength=n_accounts).astype(np.float64)
    n_a, n_b = per_account[a], per_account[b]
    jaccard = shared / (n_a + n_b - shared)
    chance = n_a * n_b / float(len(group_start) - 1)
    linked = (shared >= min_shared) & (jaccard >= min_jaccard) & (shared >= min_lift * chance)
    return a[linked], b[linked]


def score_known(alpha, beta, account, email, verdict, known_email, known_label, amount):
    """Evidence of votes against known labels, vote by vote (``known_email`` distinct)."""
    alpha, beta = alpha.copy(), beta.copy()
    truth = dict(zip(known_email.tolist(), known_label.tolist()))
    for a, e, v in zip(account.tolist(), email.tolist(), verdict.tolist()):
        if e in truth:
            if v == truth[e]:
                alpha[a] += amount
            else:
                beta[a] += amount
    return alpha, beta


def nb_is_spam(model, rows):
    """The model's own decision per email (``SpamModel.is_spam``)."""
    return np.array([model.is_spam(features) for features in rows], dtype=bool)


def wawa_labels(task, worker, label, n_tasks, n_workers, tie):
    """Wawa: majority, skill = share of a worker's answers agreeing with it, weighted re-vote."""
    majority = majority_labels(task, label, n_tasks, tie)
    answers = np.bincount(worker, minlength=n_workers)
    agreeing = np.bincount(worker, weights=label == majority[task], minlength=n_workers)
    skill = np.divide(agreeing, answers, out=np.zeros(n_workers), where=answers > 0)
    return skill_labels(task, worker, label, skill, n_tasks, 0)
