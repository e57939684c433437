"""``python tests/gated_sweep.py GATE_DIR ARGS...``: ``poisonlab ARGS...`` whose runs wait part-way.

A test hook that lets a test interrupt a sweep at a point it controls instead
of at a wall-clock time (a loaded machine may finish the whole sweep before a
"midway" sleep is over). Every run pauses between two ticks, at the end of the
first tick after which it has ticks stored (by
:meth:`~stream.storage.Repository.add_ticks`, so the database shows it
``running`` with tick rows), until it can take a *ticket*: a
file the test drops into ``GATE_DIR``, taken by deleting it (only one process
can). A run with a ticket goes on and finishes; the others wait until the
sweep is interrupted (the workers' SIGTERM ends the wait like any other) or
killed. So with ``k`` tickets and ``w`` workers, exactly ``k`` runs finish and
``w`` runs wait part-way, however slow the machine.

The patch is applied in this process before the command starts; the sweep's
worker processes are forked from it and inherit it. Results are unchanged:
the pause happens between two ticks and touches nothing the run computes.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

#: Seconds between two looks into the gate directory.
POLL_S = 0.02


def take_ticket(gate: Path) -> None:
    """Block until a ticket file in ``gate`` could be deleted by this process."""
    while True:
        for name in sorted(os.listdir(gate)):
            try:
                os.unlink(gate / name)
                return
            except FileNotFoundError:       # another run took it first
                continue
        time.sleep(POLL_S)


def add_tickets(gate: Path, count: int) -> None:
    """Let ``count`` more waiting runs go on (called by the test)."""
    for _ in range(count):
        fd, _ = tempfile.mkstemp(dir=gate, prefix="ticket-")
        os.close(fd)


def install(gate: Path) -> None:
    """Make every run wait for a ticket from ``gate`` at the end of the first tick after which
    it has ticks stored (between two ticks: an interrupt there is an ordinary one)."""
    from simulator.engine import Simulation
    from stream.storage import Repository

    original_add_ticks, original_init = Repository.add_ticks, Simulation.__init__
    stored: set[str] = set()
    held: set[str] = set()

    def add_ticks(self, run_id, ticks):
        original_add_ticks(self, run_id, ticks)
        if ticks:
            stored.add(str(run_id))

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        inner = self.on_tick
        if inner is None:
            return

        def on_tick(tick, entry):
            inner(tick, entry)
            if self.run_id in stored and self.run_id not in held:
                held.add(self.run_id)
                take_ticket(gate)

        self.on_tick = on_tick

    Repository.add_ticks = add_ticks
    Simulation.__init__ = __init__


def main(argv: list[str]) -> int:
    gate, args = Path(argv[0]), argv[1:]
    if not gate.is_dir():
        raise SystemExit(f"gated_sweep: {gate} is not a directory")
    install(gate)
    from simulator.cli import main as poisonlab

    return poisonlab(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
