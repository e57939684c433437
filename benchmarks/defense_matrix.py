"""Every defense × every attack strategy on the default scenario, as a Markdown table.

Each cell is one run of the default scenario (5% bots, seed 7 unless ``--seed``) with
``attack.strategy`` set and the defense chain set; a no-attack, undefended run gives
the clean-accuracy baseline. Defenses that only weigh or screen votes (age_gate,
coordination, influence_cap, roni, rollback) run in front of plain ``majority`` so that
each row shows what the defense adds to it. Runs go to worker processes
(:func:`simulator.runner.execute_many`) and are stored in ``--db``. Prints one table per
metric (rows: defenses, columns: strategies) and the ``recommended`` chain's pass/fail
against the targets.

    python benchmarks/defense_matrix.py [--defenses a,b,...] [--strategies x,y,...]
        [--workers 2] [--db sqlite:///matrix.db] [--json matrix.json] [--set key=value ...]

The full matrix is ~120 runs; it can be run in parts (``--no-baseline`` skips the
no-attack run in all parts but one) and the parts' ``--json`` files printed as one
table with ``--tables part1.json part2.json ...`` (no runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from simulator.config import ATTACK_STRATEGIES, load_scenario
from simulator.runner import execute_many

METRICS = ("attack_success_rate", "collateral_rate", "clean_accuracy", "honest_vote_loss", "bot_recall",
           "backdoor_success_rate")
WEIGH_ONLY = {"age_gate", "coordination", "influence_cap", "roni", "rollback"}
TARGETS = {"attack_success_rate": 0.05, "collateral_rate": 0.02, "honest_vote_loss": 0.10}


def chain_of(defense: str) -> list[str]:
    """The chain a row runs: ``a+b`` rows as given, weigh/screen-only defenses in front
    of ``majority``."""
    if "+" in defense:
        return defense.split("+")
    return [defense, "majority"] if defense in WEIGH_ONLY else [defense]


def label_of(defense: str) -> str:
    return "+".join(chain_of(defense))


def fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(docs: dict, defenses: list[str], strategies: list[str], metric: str) -> str:
    lines = [f"**{metric}**", "", "| defense | " + " | ".join(strategies) + " |",
             "|---|" + "---:|" * len(strategies)]
    for d in defenses:
        cells = [fmt(docs[(d, s)]["metrics"].get(metric)) if (d, s) in docs else "n/a" for s in strategies]
        lines.append(f"| {label_of(d)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(docs: dict, defenses: list[str], strategies: list[str]) -> None:
    """Print the tables (and the recommended chain's verdicts) for finished cells."""
    baseline = docs[("none", "none")]["metrics"]["clean_accuracy"]
    print(f"Default scenario, 5% bots; no-attack clean_accuracy baseline {baseline:.3f}. "
          "Rates over the final quarter of the ticks; n/a: not run.\n")
    for metric in METRICS:
        print(table(docs, defenses, strategies, metric) + "\n")
    if "recommended" in defenses:
        print("**recommended vs the targets** (ASR ≤ 0.05, collateral ≤ 0.02, honest_vote_loss ≤ 0.10, "
              "clean_accuracy ≥ baseline − 0.01)\n")
        for s in strategies:
            if ("recommended", s) in docs:
                misses = verdict(docs[("recommended", s)], baseline)
                print(f"- {s}: " + ("meets all targets" if not misses else "misses: " + "; ".join(misses)))


def from_json(paths: list[str]) -> None:
    docs, defenses, strategies = {}, [], []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for cell in json.load(fh):
                key = (cell["name"], cell["strategy"])
                docs[key] = cell
                if key != ("none", "none"):
                    defenses += [cell["name"]] if cell["name"] not in defenses else []
                    strategies += [cell["strategy"]] if cell["strategy"] not in strategies else []
    report(docs, defenses, strategies)


def verdict(doc: dict, baseline: float) -> list[str]:
    m = doc["metrics"]
    misses = [f"{k} {fmt(m.get(k))} > {v}" for k, v in TARGETS.items() if m.get(k) is not None and m[k] > v]
    if m.get("clean_accuracy") is not None and m["clean_accuracy"] < baseline - 0.01:
        misses.append(f"clean_accuracy {fmt(m['clean_accuracy'])} < baseline {baseline:.3f} - 0.01")
    return misses


def _names() -> list[str]:
    from defenses.registry import DEFENSES, PRESETS

    return [d for d in DEFENSES if d != "none"] + list(PRESETS)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defenses", default=",".join(["none", *_names()]))
    parser.add_argument("--strategies", default=",".join(s for s in ATTACK_STRATEGIES if s != "none"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--db", default="sqlite:///defense-matrix.db")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-attack run")
    parser.add_argument("--tables", nargs="+", metavar="JSON", help="print the tables of earlier --json files")
    args = parser.parse_args(argv)
    if args.tables:
        from_json(args.tables)
        return 0
    defenses = [d.strip() for d in args.defenses.split(",") if d.strip()]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    base = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    cells = ([] if args.no_baseline else [("none", "none")]) + [(d, s) for d in defenses for s in strategies]
    scenarios = [load_scenario(None, base + [f"attack.strategy='{s}'", "defense.chain=" + json.dumps(chain_of(d))])
                 for d, s in cells]
    started = time.perf_counter()
    done = [0] * len(cells)

    def progress(i: int, ticks: int) -> None:
        done[i] = ticks
        finished = sum(t == scenarios[k].ticks for k, t in enumerate(done))
        print(f"\r{finished}/{len(cells)} runs done, {time.perf_counter() - started:.0f} s", end="", file=sys.stderr)

    results = execute_many(scenarios, args.db, progress, workers=args.workers)
    print(file=sys.stderr)
    docs = dict(zip(cells, results))
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump([{"name": d, "defense": label_of(d), "strategy": s, "seed": docs[(d, s)]["seed"],
                        "metrics": docs[(d, s)]["metrics"]} for d, s in cells], fh, indent=2)
    if ("none", "none") in docs:
        report(docs, defenses, strategies)
    return 0


if __name__ == "__main__":
    sys.exit(run())
