"""Start ``poisonlab run`` / ``poisonlab compare`` in the background from the dashboard.

A :class:`Launcher` validates the form's input in-process (so a typo is
reported at once, in one line, and nothing starts), then spawns the real
command line as a subprocess writing to the dashboard's database. The runs it
produces are recognised in the database by scenario name, seed and start
time, and their progress is read from the ticks they store.
"""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

MODES = ("run", "compare")
#: Slack when matching a stored run's ``created_at`` to a launch time.
CLOCK_SLACK = timedelta(seconds=1)


class LaunchError(ValueError):
    """The form's input cannot start an experiment; the message is one line."""


def scenario_files(*roots: Path) -> list[Path]:
    """The ``scenarios/*.toml`` files found under `roots`, without duplicates, sorted by name.

    Examples
    --------
    >>> scenario_files(Path("/nonexistent"))
    []
    """
    seen: dict[Path, None] = {}
    for root in roots:
        for path in sorted((root / "scenarios").glob("*.toml")):
            seen.setdefault(path.resolve(), None)
    return sorted(seen, key=lambda p: p.name)


def parse_overrides(text: str) -> list[str]:
    """``key=value`` lines (blank lines and ``#`` comments skipped).

    Examples
    --------
    >>> parse_overrides("ticks=48\\n\\n# comment\\n population.users = 600 ")
    ['ticks=48', 'population.users = 600']
    """
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def chains_of(mode: str, defenses: str) -> list[list[str]]:
    """The defense chains of the form's defenses field.

    In ``run`` mode the field is one chain (members joined by ``+`` or ``,``);
    in ``compare`` mode chains are separated by ``,`` and members joined by ``+``.

    Examples
    --------
    >>> chains_of("run", "majority+reputation")
    [['majority', 'reputation']]
    >>> chains_of("compare", "none, majority+reputation")
    [['none'], ['majority', 'reputation']]
    """
    if mode not in MODES:
        raise LaunchError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    groups = [defenses] if mode == "run" else defenses.split(",")
    splitter = ("+", ",") if mode == "run" else ("+",)
    chains = []
    for text in groups:
        for sep in splitter[1:]:
            text = text.replace(sep, splitter[0])
        chain = [name.strip() for name in text.split(splitter[0]) if name.strip()]
        if chain:
            chains.append(chain)
    if not chains:
        raise LaunchError("name at least one defense (e.g. reputation)")
    return chains


def build_command(mode: str, scenario: str | None, chains: list[list[str]], seed: int | None,
                  overrides: list[str], db_url: str, workdir: Path) -> list[str]:
    """The ``poisonlab`` argument list (without the program) for a launch.

    Examples
    --------
    >>> build_command("compare", None, [["none"], ["reputation"]], 3, ["ticks=24"], "sqlite:///r.db",
    ...               Path("/tmp/w"))  # doctest: +NORMALIZE_WHITESPACE
    ['compare', '--db', 'sqlite:///r.db', '--quiet', '--seed', '3', '--set', 'ticks=24',
     '--defenses', 'none,reputation', '--chart', '/tmp/w/compare.png']
    """
    argv = [mode] + ([scenario] if scenario else []) + ["--db", db_url, "--quiet"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    for item in overrides:
        argv += ["--set", item]
    if mode == "run":
        argv += ["--defense", "+".join(chains[0])]
    else:
        argv += ["--defenses", ",".join("+".join(c) for c in chains), "--chart", str(workdir / "compare.png")]
    return argv


@dataclass
class Launch:
    """One background experiment started from the dashboard."""

    launch_id: int
    mode: str
    argv: list[str]
    scenario_name: str
    seed: int
    ticks: int
    expected_runs: int
    started_at: datetime
    process: subprocess.Popen
    log_path: Path
    labels: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command line as a user would type it."""
        return "poisonlab " + shlex.join(self.argv)

    @property
    def returncode(self) -> int | None:
        """The exit status, or ``None`` while it runs."""
        return self.process.poll()

    @property
    def status(self) -> str:
        """``running``, ``finished`` or ``failed``."""
        code = self.returncode
        return "running" if code is None else ("finished" if code == 0 else "failed")

    def error_line(self) -> str | None:
        """The last line the command wrote to stderr, if it failed."""
        if self.status != "failed":
            return None
        lines = [ln for ln in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {self.returncode}"

    def matches(self, run: dict[str, Any]) -> bool:
        """Whether a stored run summary (``name``, ``seed``, ``created_at``) belongs to this launch."""
        created = run["created_at"]
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        return (run.get("name") == self.scenario_name and int(run.get("seed")) == self.seed
                and created >= self.started_at - CLOCK_SLACK)


class Launcher:
    """Starts and remembers background experiments writing to one database.

    Parameters
    ----------
    db_url : str
        The database the experiments write to (the dashboard's).
    """

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.workdir = Path(tempfile.mkdtemp(prefix="poisonlab-dashboard-"))
        self._launches: list[Launch] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def launches(self) -> list[Launch]:
        """Launches, newest first."""
        with self._lock:
            return list(reversed(self._launches))

    def start(self, mode: str, scenario: str | None, defenses: str, seed: int | None,
              overrides_text: str) -> Launch:
        """Validate the input and start the experiment in the background.

        Raises
        ------
        LaunchError
            For input that cannot run (unknown key, bad value, unknown defense,
            missing scenario file); nothing is started then.
        """
        from simulator.commands.common import UsageError
        from simulator.config import ScenarioError, load_scenario

        chains = chains_of(mode, defenses)
        overrides = parse_overrides(overrides_text)
        extra = overrides + ([f"seed={seed}"] if seed is not None else [])
        try:
            scenarios = [load_scenario(scenario, extra + ["defense.chain=" + json.dumps(c)]) for c in chains]
        except (ScenarioError, UsageError) as exc:
            raise LaunchError(str(exc)) from None
        first = scenarios[0]
        launch_id = next(self._ids)
        workdir = self.workdir / f"launch-{launch_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = build_command(mode, scenario, chains, seed, overrides, self.db_url, workdir)
        log_path = workdir / "stderr.log"
        started_at = datetime.now(timezone.utc)
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "simulator.cli", *argv], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=log)
        labels = ["+".join(c) for c in chains]
        launch = Launch(launch_id, mode, argv, first.name, first.seed, first.ticks,
                        len(chains) + (1 if mode == "compare" else 0), started_at, process, log_path,
                        (["no attack"] if mode == "compare" else []) + labels)
        with self._lock:
            self._launches.append(launch)
        return launch
