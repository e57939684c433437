"""Every attack strategy × defense chain on the default scenario, as a Markdown table.

    python benchmarks/strategy_matrix.py [--defenses none,majority,reputation]
        [--strategies flip,sleeper,...] [--set key=value ...] [--db URL] [--workers N]

Each cell is one real run (stored in ``--db``, default a file next to this script);
the table shows ``attack_success_rate``, ``collateral_rate`` and ``clean_accuracy``
over the final quarter, plus ``backdoor_success_rate`` for backdoor and the
attacker's share of the training mail for dictionary. A no-attack baseline row
comes first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.config import ATTACK_STRATEGIES, load_scenario
from simulator.runner import execute_many

DEFAULT_DB = f"sqlite:///{Path(__file__).with_name('matrix.db')}"


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def cell_text(strategy: str, metrics: dict) -> str:
    parts = [f"AS {_pct(metrics['attack_success_rate'])}", f"coll {_pct(metrics['collateral_rate'])}",
             f"acc {_pct(metrics['clean_accuracy'])}"]
    if strategy == "backdoor":
        parts.append(f"backdoor {_pct(metrics.get('backdoor_success_rate'))}")
    if strategy == "dictionary":
        parts.append(f"FNR {_pct(metrics['clean_fnr'])}, FPR {_pct(metrics['clean_fpr'])}, "
                     f"attacker share {_pct(metrics.get('attacker_training_share'))}")
    return "<br>".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defenses", default="none,majority,reputation")
    parser.add_argument("--strategies", default=",".join(s for s in ATTACK_STRATEGIES if s != "none"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    defenses = [d.strip() for d in args.defenses.split(",") if d.strip()]
    strategies = ["none"] + [s.strip() for s in args.strategies.split(",") if s.strip() and s.strip() != "none"]
    cells = [(s, d) for s in strategies for d in (defenses if s != "none" else ["none"])]
    scenarios = [load_scenario(None, args.overrides + [f"attack.strategy='{s}'", "defense.chain=" + repr(d.split("+"))])
                 for s, d in cells]
    started = time.perf_counter()
    done = set()

    def progress(index: int, ticks: int) -> None:
        if ticks == scenarios[index].ticks and index not in done:
            done.add(index)
            print(f"  [{len(done)}/{len(cells)}] {cells[index][0]} × {cells[index][1]} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    docs = execute_many(scenarios, args.db, progress, workers=args.workers)
    results = {cell: doc["metrics"] for cell, doc in zip(cells, docs)}
    print(f"| strategy | {' | '.join(defenses)} |")
    print("|---" * (len(defenses) + 1) + "|")
    baseline = results[("none", "none")]
    print(f"| no attack (baseline) | {cell_text('none', baseline)} |" + " |" * (len(defenses) - 1))
    for s in strategies[1:]:
        print(f"| {s} | " + " | ".join(cell_text(s, results[(s, d)]) for d in defenses) + " |")
    print(f"\n{len(cells)} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
