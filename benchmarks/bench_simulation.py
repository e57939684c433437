"""Whole-run throughput of the simulator beside a bare River predict+learn loop.

Runs the default scenario (or one given with ``--scenario``/``--set``) once,
recording every email the run touched (stream and evaluation mail), then runs a
bare River ``BagOfWords | MultinomialNB`` pipeline over the same emails: one
``predict_proba_one`` and one ``learn_one`` per email. Prints emails/s and votes/s
and the ratio, and merges the figures into ``benchmarks/results.json``.

    python benchmarks/bench_simulation.py [--defense reputation] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import time

from river import compose, feature_extraction, naive_bayes

from results import RESULTS, merge_results
from simulator.config import load_scenario
from simulator.engine import Simulation
from simulator.sources.base import MailSource
from simulator.sources.registry import build_source



class RecordingSource(MailSource):
    """Passes a source through, keeping every email the run touched (a list append)."""

    def __init__(self, inner: MailSource):
        self.inner = inner
        self.seen = []

    def _keep(self, emails):
        self.seen.extend(emails)
        return emails

    def warmup(self, n):
        return self.inner.warmup(n)

    def stream(self, tick, n):
        return self._keep(self.inner.stream(tick, n))

    def campaign(self, tick, n):
        return self._keep(self.inner.campaign(tick, n))

    def evaluation(self, tick, n):
        return self._keep(self.inner.evaluation(tick, n))


def bare_river_loop(emails, warmup) -> float:
    """Seconds for River's own pipeline to predict then learn each email once."""
    model = compose.Pipeline(feature_extraction.BagOfWords(lowercase=True), naive_bayes.MultinomialNB())
    for e in warmup:
        model.learn_one(e.text, e.is_spam)
    started = time.perf_counter()
    for e in emails:
        model.predict_proba_one(e.text)
        model.learn_one(e.text, e.is_spam)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defense", default="reputation")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    scenario = load_scenario(None, args.overrides + [f"defense.chain=['{args.defense}']"])
    sim = Simulation(scenario)
    recorder = sim.source = RecordingSource(sim.source)
    doc = sim.run()
    m = doc["metrics"]
    evaluated = len(recorder.seen)
    sim_emails_per_s = evaluated / m["wall_s"]
    warmup = build_source(scenario.mail, sim.rng.mail_seed).warmup(scenario.model.warmup_emails)
    bare_s = bare_river_loop(recorder.seen, warmup)
    bare_per_s = evaluated / bare_s
    ratio = sim_emails_per_s / bare_per_s
    print(f"scenario {scenario.name}, defense {doc['defense']}, {scenario.ticks} ticks")
    print(f"  simulator : {m['wall_s']:.1f} s, {m['emails']:,} stream emails + "
          f"{evaluated - m['emails']:,} evaluation emails, {m['votes']:,} votes")
    print(f"              {sim_emails_per_s:,.0f} emails/s (all emails touched), "
          f"{m['emails_per_s']:,.0f} stream emails/s, {m['votes_per_s']:,.0f} votes/s")
    print(f"  bare River: {bare_s:.1f} s, {bare_per_s:,.0f} emails/s (predict_proba_one + learn_one each)")
    print(f"  ratio simulator / bare River loop: {ratio:.2f}")
    merge_results([{"name": f"simulation_default_{doc['defense']}", "ours_per_s": sim_emails_per_s,
                    "peer": "river BagOfWords|MultinomialNB predict+learn loop", "peer_per_s": bare_per_s,
                    "ratio": ratio, "same_result": None, "votes_per_s": m["votes_per_s"]}])
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
