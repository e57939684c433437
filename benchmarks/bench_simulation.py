"""Whole-run throughput of the simulator beside a bare River predict+learn loop.

Each case runs one scenario once, recording every email the run touched (stream and
evaluation mail), then runs a bare River ``BagOfWords | MultinomialNB`` pipeline over
the same emails: one ``predict_proba_one`` and one ``learn_one`` per email. Prints
votes per email, emails/s and votes/s and the ratio (simulator emails/s over bare
River emails/s), by wall-clock time and by process CPU time (the CPU ratio is the
steadier one on a shared machine), and merges the figures into
``benchmarks/results.json``.

Cases: ``default`` (the default scenario, reputation), ``heavy`` (the default scenario
with heavy feedback, ``scenarios/heavy_feedback.toml``: about 25 votes per email,
reputation) and ``heavy-recommended`` (the same under the ``recommended`` chain).

    python benchmarks/bench_simulation.py [--case all|default|heavy|heavy-recommended]
    python benchmarks/bench_simulation.py --scenario FILE --defense NAME [--set key=value ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from river import compose, feature_extraction, naive_bayes

from results import RESULTS, merge_results
from simulator.config import load_scenario
from simulator.engine import Simulation
from simulator.sources.base import MailSource
from simulator.sources.registry import build_source

HEAVY = Path(__file__).resolve().parent.parent / "scenarios" / "heavy_feedback.toml"
#: case name → (result name, scenario file or None for the default scenario, defense chain)
CASES = {
    "default": ("simulation_default_reputation", None, "reputation"),
    "heavy": ("simulation_heavy_feedback_reputation", HEAVY, "reputation"),
    "heavy-recommended": ("simulation_heavy_feedback_recommended", HEAVY, "recommended"),
}


class RecordingSource(MailSource):
    """Passes a source through, keeping every stream, campaign and evaluation email the
    run touched (a list append). Forged mail (``lookalike``, used by a few strategies) is
    passed through unrecorded, so it is not counted in the simulator's favour."""

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

    def lookalike(self, category, tick, n):
        return self.inner.lookalike(category, tick, n)

    def describe(self):
        return self.inner.describe()


def bare_river_loop(emails, warmup) -> tuple[float, float]:
    """Wall and CPU seconds for River's own pipeline to predict then learn each email once."""
    model = compose.Pipeline(feature_extraction.BagOfWords(lowercase=True), naive_bayes.MultinomialNB())
    for e in warmup:
        model.learn_one(e.text, e.is_spam)
    started, cpu = time.perf_counter(), time.process_time()
    for e in emails:
        model.predict_proba_one(e.text)
        model.learn_one(e.text, e.is_spam)
    return time.perf_counter() - started, time.process_time() - cpu


def run_case(name: str, scenario_file: Path | None, defense: str, overrides: list[str]) -> dict:
    scenario = load_scenario(scenario_file, overrides + [f"defense.chain=['{defense}']"])
    sim = Simulation(scenario)
    recorder = sim.source = RecordingSource(sim.source)
    started, cpu = time.perf_counter(), time.process_time()
    doc = sim.run()
    sim_s, sim_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    m = doc["metrics"]
    touched = len(recorder.seen)
    votes_per_email = m["votes"] / m["emails"]
    warmup = build_source(scenario.mail, sim.rng.mail_seed).warmup(scenario.model.warmup_emails)
    bare_s, bare_cpu_s = bare_river_loop(recorder.seen, warmup)
    ours, peer = touched / sim_s, touched / bare_s
    ratio, cpu_ratio = ours / peer, bare_cpu_s / sim_cpu_s
    print(f"{name}: scenario {scenario.name}, defense {defense}, {scenario.ticks} ticks")
    print(f"  simulator : {sim_s:.1f} s wall ({sim_cpu_s:.1f} s CPU), {m['emails']:,} stream emails + "
          f"{touched - m['emails']:,} evaluation emails, {m['votes']:,} votes "
          f"({votes_per_email:.1f} votes per stream email)")
    print(f"              {ours:,.0f} emails/s (all emails touched), "
          f"{m['votes'] / sim_s:,.0f} votes/s")
    print(f"  bare River: {bare_s:.1f} s wall ({bare_cpu_s:.1f} s CPU), {peer:,.0f} emails/s "
          f"(predict_proba_one + learn_one each)")
    print(f"  ratio simulator / bare River loop: {ratio:.2f} by wall time, {cpu_ratio:.2f} by CPU time")
    return {"name": name, "ours_per_s": ours, "peer": "river BagOfWords|MultinomialNB predict+learn loop",
            "peer_per_s": peer, "ratio": ratio, "same_result": None, "votes_per_s": m["votes"] / sim_s,
            "votes_per_email": votes_per_email, "cpu_ratio": cpu_ratio,
            "scenario": scenario_file.name if scenario_file else "default", "defense": defense}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["all", *CASES], default="all")
    parser.add_argument("--scenario", type=Path, help="run this scenario instead of the cases")
    parser.add_argument("--defense", default="reputation", help="with --scenario: the defense chain")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.scenario is not None:
        cases = [(f"simulation_{args.scenario.stem}_{args.defense}", args.scenario, args.defense)]
    else:
        cases = list(CASES.values()) if args.case == "all" else [CASES[args.case]]
    entries = [run_case(name, path, defense, args.overrides) for name, path, defense in cases]
    merge_results(entries)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
