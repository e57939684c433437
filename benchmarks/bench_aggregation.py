"""Batch vote aggregation: ours (Numba kernels) against Crowd-Kit on the same votes.

For each size, one synthetic crowd (tasks answered by ~10 distinct workers of mixed
quality, a tenth of them adversarial) is built once; our functions get it as three
integer arrays (the defense stage's dense ids), Crowd-Kit as a ``task, worker, label``
DataFrame of the same values (its data contract); building either input is not timed.
Two layouts of the same votes: ``shuffled`` (random order, the worst case for cache
locality) and ``grouped`` by task (a per-task export). Majority vote, Wawa and Dawid-Skene (10 EM rounds, Crowd-Kit's default tolerance) run
on both sides; the labels are asserted identical and votes/s and the ratio printed.
Ours is timed after a warm-up call (Numba compiles once per process; the compile is
cached on disk) as the best of ``--repeat`` runs; Crowd-Kit once per size. Crowd-Kit's
``Wawa.predict`` fails its scikit-learn ``check_is_fitted`` on scikit-learn >= 1.6, so
its Wawa is timed as what ``predict`` runs: ``Wawa().fit`` then
``MajorityVote().fit(data, skills_)``. Results are merged into
``benchmarks/results.json``.

    python benchmarks/bench_aggregation.py [--sizes 100000,1000000,5000000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene, MajorityVote, Wawa
from results import RESULTS, merge_results

from defenses import batch


def crowd(n_votes: int, seed: int = 0, grouped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(task, worker, label)`` with no worker answering a task twice; in random order,
    or ``grouped`` by task (each task's answers together, as a per-task export is)."""
    rng = np.random.default_rng(seed)
    n_tasks, n_workers = max(1, n_votes // 10), max(20, n_votes // 200)
    truth = rng.integers(0, 2, n_tasks)
    skill = np.where(rng.random(n_workers) < 0.1, rng.uniform(0.1, 0.35, n_workers), rng.uniform(0.6, 0.95, n_workers))
    task = rng.integers(0, n_tasks, int(n_votes * 1.02))
    worker = rng.integers(0, n_workers, task.size)
    _, first = np.unique(task * n_workers + worker, return_index=True)
    keep = np.sort(first)[:n_votes]
    task, worker = task[keep], worker[keep]
    # Dense ids in order of first appearance, as the stage's interner hands them out.
    task = np.unique(task, return_inverse=True)[1].astype(np.int64)
    worker = np.unique(worker, return_inverse=True)[1].astype(np.int64)
    truth = rng.integers(0, 2, int(task.max()) + 1)
    label = np.where(rng.random(task.size) < skill[worker], truth[task], 1 - truth[task]).astype(np.int64)
    if grouped:
        order = np.argsort(task, kind="stable")
        task, worker, label = task[order], worker[order], label[order]
    return task, worker, label


def best_of(fn, repeat: int) -> tuple[float, object]:
    fn()
    best, out = np.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def once(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def as_array(series: pd.Series, n: int) -> np.ndarray:
    return series.reindex(range(n)).to_numpy().astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000", help="vote counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours (best kept)")
    parser.add_argument("--layouts", default="shuffled,grouped",
                        help="vote orders to run: shuffled (random order) and/or grouped (by task)")
    args = parser.parse_args()
    for message in ("The inplace keyword", "The copy keyword"):   # Crowd-Kit on pandas >= 3
        warnings.filterwarnings("ignore", message=message)
    entries = []
    runs = [(n, layout) for layout in args.layouts.split(",") for n in [int(x) for x in args.sizes.split(",")]]
    for n, layout in runs:
        task, worker, label = crowd(n, grouped=layout == "grouped")
        n_tasks = int(task.max()) + 1
        frame = pd.DataFrame({"task": task, "worker": worker, "label": label})
        cases = [
            ("majority", "crowd-kit MajorityVote",
             lambda: batch.majority_vote(task, worker, label),
             lambda: as_array(MajorityVote().fit_predict(frame), n_tasks)),
            ("wawa", "crowd-kit Wawa",
             lambda: batch.wawa(task, worker, label),
             lambda: as_array(MajorityVote().fit(frame, skills=Wawa().fit(frame).skills_).labels_, n_tasks)),
            ("dawid_skene_10", "crowd-kit DawidSkene(n_iter=10)",
             lambda: batch.dawid_skene(task, worker, label, n_iter=10)[0],
             lambda: as_array(DawidSkene(n_iter=10).fit(frame).labels_, n_tasks)),
        ]
        print(f"{n:,} votes ({layout}), {n_tasks:,} tasks, {int(worker.max()) + 1:,} workers")
        for name, peer, ours_fn, theirs_fn in cases:
            ours_s, ours = best_of(ours_fn, args.repeat)
            theirs_s, theirs = once(theirs_fn)
            same = bool(np.array_equal(ours, theirs))
            assert same, f"{name} at {n} votes: labels differ on {int((ours != theirs).sum())} tasks"
            ours_per_s, peer_per_s = n / ours_s, n / theirs_s
            print(f"  {name:15s} ours {ours_s * 1e3:9.1f} ms {ours_per_s:14,.0f} votes/s | {peer:32s} "
                  f"{theirs_s:8.2f} s {peer_per_s:12,.0f} votes/s | ratio {ours_per_s / peer_per_s:7.1f}x | same labels")
            suffix = "" if layout == "shuffled" else f"_{layout}"
            entries.append({"name": f"aggregation_{name}_{n}{suffix}", "ours_per_s": ours_per_s, "peer": peer,
                            "peer_per_s": peer_per_s, "ratio": ours_per_s / peer_per_s, "same_result": same,
                            "votes": n, "layout": layout})
    merge_results(entries)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
