"""Seconds from ``poisonlab run`` to the first tick, cold and warm.

Runs ``poisonlab run --set ticks=1 --set attack.start_tick=0 --json ...`` as a fresh
process ``--repeats`` times with a throw-away database and reads the run's own
``timing.first_tick_s``: wall seconds from the process's start (Linux ``/proc``) to the
end of its first tick — interpreter start, imports, Numba's kernel loading, scenario
set-up, the warm-up training (2,000 emails by default) and one tick. The process's
whole lifetime (adding the final metrics, the database write and exit) is printed
beside it. The first run on a machine pays Numba's compilation (the kernels are
compiled with ``cache=True`` into ``__pycache__``); the later ones load the cache, and
their median is the warm figure. The peer is the same command's first tick with
River imported the ordinary way (``import river.feature_extraction, river.drift``
at start), which is what PoisonLab paid before it imported River's modules one by
one (:mod:`stream.river_parts`).

    python benchmarks/bench_startup.py [--repeats 4] [--clear-cache]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import RESULTS, merge_results

ROOT = Path(__file__).resolve().parent.parent
EAGER_RIVER = "import river.feature_extraction, river.drift, river.naive_bayes, river.compose; "


def clear_numba_cache() -> int:
    removed = 0
    for path in (ROOT / "defenses").rglob("__pycache__"):
        for f in list(path.glob("*.nbi")) + list(path.glob("*.nbc")):
            f.unlink()
            removed += 1
    return removed


def time_first_tick(tmp: Path, i: int, eager_river: bool = False) -> tuple[float, float]:
    """``(first_tick_s, process_s)`` of one fresh ``poisonlab run``."""
    out = tmp / f"run-{i}.json"
    argv = ["run", "--set", "ticks=1", "--set", "attack.start_tick=0", "--quiet",
            "--db", f"sqlite:///{tmp}/startup-{i}.db", "--json", str(out)]
    prelude = EAGER_RIVER if eager_river else ""
    code = f"{prelude}import sys; from simulator.cli import main; sys.exit(main({argv!r}))"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    process_s = time.perf_counter() - started
    first_tick_s = json.loads(out.read_text())["timing"]["first_tick_s"]
    return first_tick_s, process_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="fresh processes per variant (>= 2)")
    parser.add_argument("--clear-cache", action="store_true", help="delete Numba's cache first (a cold start)")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the first run may compile; the rest are warm)")
    tmp = Path(tempfile.mkdtemp())
    try:
        if args.clear_cache:
            print(f"cleared {clear_numba_cache()} Numba cache files", flush=True)
        ours = [time_first_tick(tmp, i) for i in range(args.repeats)]
        eager = [time_first_tick(tmp, args.repeats + i, eager_river=True) for i in range(args.repeats)]
    finally:
        shutil.rmtree(tmp)
    for label, runs in (("ours", ours), ("eager River imports", eager)):
        print(f"{label:20s} first tick at " + ", ".join(f"{t:.2f}" for t, _ in runs) + " s; process exit at "
              + ", ".join(f"{p:.2f}" for _, p in runs) + " s")
    warm = statistics.median(t for t, _ in ours[1:])
    warm_eager = statistics.median(t for t, _ in eager[1:])
    print(f"warm median to the first tick: {warm:.2f} s (eager River imports {warm_eager:.2f} s; "
          f"first run {ours[0][0]:.2f} s)")
    merge_results([{"name": "startup_first_tick", "ours_per_s": 1.0 / warm,
                    "peer": "the same run with River's packages imported eagerly", "peer_per_s": 1.0 / warm_eager,
                    "ratio": warm_eager / warm, "same_result": None, "seconds_warm_median": warm,
                    "seconds_runs": [round(t, 3) for t, _ in ours], "process_seconds_runs": [round(p, 3) for _, p in ours],
                    "peer_seconds_runs": [round(t, 3) for t, _ in eager], "cleared_cache": args.clear_cache}])
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
