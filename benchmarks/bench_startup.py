"""Seconds from ``poisonlab run`` to the first tick, cold and warm.

Runs ``poisonlab run --set ticks=1 --set attack.start_tick=0`` as a fresh process ``--repeats`` times with a
throw-away database. The first run on a machine pays Numba's compilation (the kernels
are compiled with ``cache=True`` into ``__pycache__``); the later ones load the cache.
The time includes interpreter start, imports, the warm-up training (2,000 emails by
default) and one tick.

    python benchmarks/bench_startup.py [--repeats 3] [--clear-cache]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clear_numba_cache() -> int:
    removed = 0
    for path in (ROOT / "defenses").rglob("__pycache__"):
        for f in list(path.glob("*.nbi")) + list(path.glob("*.nbc")):
            f.unlink()
            removed += 1
    return removed


def time_first_tick(db: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator.cli", "run", "--set", "ticks=1", "--set", "attack.start_tick=0", "--quiet", "--db", db],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clear-cache", action="store_true", help="delete Numba's cache first (a cold start)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        if args.clear_cache:
            print(f"cleared {clear_numba_cache()} Numba cache files", flush=True)
        times = [time_first_tick(f"sqlite:///{tmp}/startup-{i}.db") for i in range(args.repeats)]
    finally:
        shutil.rmtree(tmp)
    print("seconds to the first tick:", ", ".join(f"{t:.2f}" for t in times))
    if len(times) > 1:
        print(f"warm median {statistics.median(times[1:]):.2f} s (first run {times[0]:.2f} s)")


if __name__ == "__main__":
    main()
