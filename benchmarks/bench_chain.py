"""The defense chain alone: votes/s on a recorded feedback stream.

A live run of the scenario (default: the default scenario, seed 7, flip attack at 5%
bots) under the ``recommended`` chain is *recorded*: every window of votes exactly as
the defense stage hands it to the chain (a :class:`~defenses.base.VoteBatch` of dense
ids), the gold and review truths passed to the chain's other hooks, where the learner
trained, the post-warm-up model, the trusted validation set and the features of every
interned email (what the :class:`~defenses.context.DefenseContext` serves). Recording
wraps the simulation's chain and learner instances; the engine is not changed.

The recording is then *replayed* through fresh chains alone:

- ``recommended`` (age_gate, coordination, influence_cap, gold, roni, rollback), bound
  to a fresh model restored from the post-warm-up snapshot. Between windows the replay
  trains that model on the chain's own labels, as the learner stage does, so RONI and
  rollback see the model the live run had; the replayed labels are checked equal to
  the live run's (``replay_matches_live``).
- ``majority`` and ``none`` on the same windows, to show how the cost grows.

Timed: only the chain's calls — ``process`` per window and ``observe_gold`` /
``observe_reviews`` — summed with ``perf_counter``. That *includes* the model work
inside the chain: RONI's exact log-loss impact of every candidate label on the
validation set, rollback's scoring of the validation set and of every gold/reviewed
email with the current model, and its snapshots. Not timed: building the
``VoteBatch`` windows (done once while recording), interning ids, publishing labels,
and the learner's training between windows (a different stage). Ours is the best of
``--repeat`` replays (each with a fresh chain and model).

Peer: Crowd-Kit's ``MajorityVote`` run per window on a ``task, worker, label`` frame of
the same votes (frames built before timing, timed once). ``same_result`` for
``majority`` compares every label our majority emits with Crowd-Kit's label for that
email in that window (ours emits fewer: it needs a margin and two votes); for
``recommended`` and ``none`` it is ``null`` (no peer computes the same thing).

A second, larger stream is recorded too (``--no-large`` skips it): the same scenario
with 4× the users and 4× the recipients per email (``LARGE_SET``). Most votes are the
rings' (honest users only report misfiled mail), so more recipients alone barely adds
votes; 4× the population (and so 4× the bots) gives about 1.27 million.

    python benchmarks/bench_chain.py [--set key=value ...] [--large-set key=value ...]
                                     [--no-large] [--repeat 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from crowdkit.aggregation import MajorityVote as CrowdKitMajority
from results import RESULTS, merge_results

from defenses.base import VoteBatch
from defenses.chain import Chain
from defenses.context import DefenseContext
from defenses.registry import build_chain, expand
from simulator.config import Scenario, load_scenario
from simulator.engine import Simulation
from stream.classifier import SpamModel

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "default.toml"
BASE_SET = ["defense.chain=['recommended']"]
LARGE_SET = ["population.users=20000", "population.recipients_per_email=80"]


@dataclass
class Recording:
    """What the chain of a live run received, in order.

    ``events`` holds ``("window", now, votes, live_labels)``, ``("gold", now, email,
    label)``, ``("reviews", now, email, label)`` and ``("learn",)`` (the learner stage
    ran: the model learns the labels published since the last one).
    """

    scenario: Scenario
    events: list = field(default_factory=list)
    warm_model: bytes = b""
    validation: list = field(default_factory=list)
    features: list = field(default_factory=list)
    live_seconds: float = 0.0

    @property
    def windows(self) -> list:
        return [e for e in self.events if e[0] == "window"]

    @property
    def votes(self) -> int:
        return sum(len(e[2]) for e in self.windows)


class RecordingChain:
    """Stands in for a live run's chain: passes every call through and records it."""

    def __init__(self, chain: Chain, events: list):
        self.chain = chain
        self.events = events

    def process(self, votes: VoteBatch, now: float):
        decision = self.chain.process(votes, now)
        self.events.append(("window", now, votes, decision.labels))
        return decision

    def observe_gold(self, email, label, now):
        self.events.append(("gold", now, email.copy(), label.copy()))
        self.chain.observe_gold(email, label, now)

    def observe_reviews(self, email, label, now):
        self.events.append(("reviews", now, email.copy(), label.copy()))
        self.chain.observe_reviews(email, label, now)

    def __getattr__(self, name):          # name, members, flagged, bind, state_dict, ...
        return getattr(self.chain, name)


def record(scenario: Scenario) -> Recording:
    """Run the scenario live under its chain and record what the chain received."""
    sim = Simulation(scenario)
    rec = Recording(scenario)
    sim.chain = sim.defense.chain = RecordingChain(sim.chain, rec.events)
    learn = sim.learner.run_once

    def learner_runs():
        rec.events.append(("learn",))
        return learn()

    sim.learner.run_once = learner_runs
    started = time.perf_counter()
    sim.warm_up()
    rec.warm_model = sim.model.snapshot()
    rec.validation = list(sim.validation)
    for tick in range(scenario.ticks):
        sim.step(tick)
    rec.live_seconds = time.perf_counter() - started
    assert len(sim.cache) < sim.cache.capacity, "the feature cache evicted: the recorded features would be incomplete"
    names = sim.defense.emails
    rec.features = [sim.cache.get(names.name(e)) for e in range(len(names))]
    return rec


def recorded(scenario: Scenario, cache: Path | None) -> Recording:
    """:func:`record`, or its pickle from ``cache`` (keyed by the scenario) when there."""
    if cache is None:
        return record(scenario)
    key = hashlib.sha1(repr(scenario.to_dict()).encode()).hexdigest()[:12]
    path = cache / f"chain_stream_{key}.pkl"
    if path.exists():
        return Recording(**pickle.loads(path.read_bytes()))
    rec = record(scenario)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(vars(rec), protocol=pickle.HIGHEST_PROTOCOL))   # plain fields: loads anywhere
    return rec


@dataclass
class Replay:
    seconds: float
    labels: list            # one LabelBatch per window


def replay(rec: Recording, chain_names: list[str]) -> Replay:
    """Feed the recording to a fresh chain; time the chain's calls only."""
    config = rec.scenario.defense.model_copy(update={"chain": chain_names})
    chain = build_chain(config)
    model = SpamModel(alpha=rec.scenario.model.alpha)
    model.restore(rec.warm_model)
    features = rec.features
    chain.bind(DefenseContext(model, lambda ids: [features[i] for i in ids.tolist()], list(rec.validation)))
    clock = time.perf_counter
    spent = 0.0
    out, unlearned = [], []
    for event in rec.events:
        kind = event[0]
        if kind == "window":
            _, now, votes, _ = event
            started = clock()
            decision = chain.process(votes, now)
            spent += clock() - started
            out.append(decision.labels)
            unlearned.append(decision.labels)
        elif kind == "gold":
            started = clock()
            chain.observe_gold(event[2], event[3], event[1])
            spent += clock() - started
        elif kind == "reviews":
            started = clock()
            chain.observe_reviews(event[2], event[3], event[1])
            spent += clock() - started
        else:                              # the learner stage, as stream.stages.LearnerStage
            for labels in unlearned:
                for e, label, weight in zip(labels.email.tolist(), labels.label.tolist(), labels.weight.tolist()):
                    f = features[e]
                    if f is not None:
                        model.learn(f, label == 1, float(weight))
            unlearned = []
    return Replay(spent, out)


def same_labels(a, b) -> bool:
    return all(np.array_equal(x.email, y.email) and np.array_equal(x.label, y.label)
               and np.array_equal(x.weight, y.weight) for x, y in zip(a, b, strict=True))


def crowdkit_windows(rec: Recording) -> tuple[float, list[pd.Series]]:
    """Crowd-Kit's MajorityVote on every window (frames built before timing)."""
    frames = [pd.DataFrame({"task": v.email, "worker": v.account, "label": v.verdict.astype(np.int64)})
              for _, _, v, _ in rec.windows if len(v)]
    started = time.perf_counter()
    labels = [CrowdKitMajority().fit_predict(frame) for frame in frames]
    return time.perf_counter() - started, labels


def best_replay(rec: Recording, chain_names: list[str], repeat: int) -> Replay:
    best = None
    for _ in range(repeat):
        run = replay(rec, chain_names)
        if best is None or run.seconds < best.seconds:
            best = run
    return best


def bench(rec: Recording, tag: str, repeat: int) -> list[dict]:
    windows = rec.windows
    n_votes = rec.votes
    emails = sum(len(np.unique(v.email)) for _, _, v, _ in windows)
    print(f"{tag}: {n_votes:,} votes in {len(windows)} windows ({n_votes / max(emails, 1):.2f} votes per voted "
          f"email per window; live run {rec.live_seconds:.1f} s)")
    ck_seconds, ck_labels = crowdkit_windows(rec)
    ck_per_s = n_votes / ck_seconds
    entries = []
    for names in (["none"], ["majority"], ["recommended"]):
        name = names[0]
        run = best_replay(rec, names, repeat)
        per_s = n_votes / run.seconds
        extra: dict = {}
        if name == "majority":
            same, checked = _compare_majority(windows, run.labels, ck_labels)
            extra["labels_compared"] = checked
        else:
            same = None
        if name == "recommended":
            extra["replay_matches_live"] = same_labels(run.labels, [w[3] for w in windows])
            extra["note"] = ("no peer computes the recommended chain; Crowd-Kit MajorityVote on the same windows "
                             "is the reference cost. Timing includes the model work inside roni and rollback.")
        print(f"  {name:12s} {run.seconds * 1e3:9.1f} ms {per_s:14,.0f} votes/s | crowd-kit MajorityVote "
              f"{ck_seconds:7.2f} s {ck_per_s:11,.0f} votes/s | ratio {per_s / ck_per_s:8.2f}x | "
              f"same_result {same}" + (f" | replay matches live: {extra['replay_matches_live']}"
                                       if name == "recommended" else ""))
        entries.append({"name": f"chain_{name}_{tag}", "ours_per_s": per_s, "peer": "crowd-kit MajorityVote per window",
                        "peer_per_s": ck_per_s, "ratio": per_s / ck_per_s, "same_result": same, "votes": n_votes,
                        "windows": len(windows), "chain": expand(names),
                        "seconds": run.seconds, "repeat": repeat, **extra})
    return entries


def _compare_majority(windows, ours: list, theirs: list[pd.Series]) -> tuple[bool, int]:
    """Every label our majority emitted equals Crowd-Kit's for that email and window."""
    checked = 0
    it = iter(theirs)
    for (_, _, votes, _), labels in zip(windows, ours, strict=True):
        if not len(votes):
            continue
        ck = next(it)
        if len(labels) == 0:
            continue
        if not np.array_equal(ck.reindex(labels.email).to_numpy().astype(np.int64), labels.label.astype(np.int64)):
            return False, checked
        checked += len(labels)
    return True, checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="scenario override key=value")
    parser.add_argument("--large-set", action="append", default=None,
                        help=f"overrides of the larger stream (default: {' '.join(LARGE_SET)})")
    parser.add_argument("--no-large", action="store_true", help="skip the larger stream")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays per chain (best kept)")
    parser.add_argument("--cache", type=Path, default=None, help="keep recordings here (pickles)")
    args = parser.parse_args()
    for message in ("The inplace keyword", "The copy keyword"):   # Crowd-Kit on pandas >= 3
        warnings.filterwarnings("ignore", message=message)
    streams = [("default", BASE_SET + args.overrides)]
    if not args.no_large:
        streams.append(("large", BASE_SET + args.overrides + (args.large_set or LARGE_SET)))
    entries = []
    for tag, overrides in streams:
        rec = recorded(load_scenario(args.scenario, overrides), args.cache)
        entries += bench(rec, tag, args.repeat)
    merge_results(entries)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
