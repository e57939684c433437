"""Sweeps: planning and validation, ownership, and kill-and-resume of the real command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from simulator.config import ScenarioError
from simulator.sweep import SweepBusy, _claim, _owner_alive, plan_sweep, run_sweep, split_values, summarize
from stream.storage import Repository
from tests.gated_sweep import add_tickets
from tests.test_storage import pg_schema  # noqa: F401 - PostgreSQL fixture (pg_url is in conftest.py)

THROUGHPUT = {"wall_s", "votes_per_s", "emails_per_s"}
TINY = ["ticks=16", "attack.start_tick=4", "population.users=300", "mail.emails_per_tick=40",
        "mail.eval_emails_per_tick=20", "attack.campaign_emails_per_tick=6", "model.warmup_emails=300"]
TINY_ARGS = [arg for item in TINY for arg in ("--set", item)]
WORKERS = 2
GRID = ["--grid", "population.bot_fraction=0.05,0.1"]
SWEEP_ARGS = [*TINY_ARGS, *GRID, "--defenses", "none,reputation", "--seeds", "2", "--workers", str(WORKERS), "--quiet"]
CELLS = 8
GATED_SWEEP = Path(__file__).with_name("gated_sweep.py")
#: Bound of every wait for the sweep to reach a state (generous: a loaded machine is slow, not wrong).
WAIT_S = 600.0


def poisonlab(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def start_gated(gate: Path, *args, cwd):
    """``poisonlab ARGS`` whose runs wait part-way for tickets from ``gate`` (see tests/gated_sweep.py)."""
    return subprocess.Popen([sys.executable, str(GATED_SWEEP), str(gate), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


# --------------------------------------------------------------------------- planning


def test_plan_lists_every_cell_once_and_its_id_is_stable():
    plan = plan_sweep(None, TINY, ["population.bot_fraction=0.05,0.1", "review.rate=0.0,0.1,0.2"],
                      [["none"], ["majority", "reputation"]], 3, first_seed=11)
    assert len(plan.cells) == 2 * 3 * 2 * 3
    assert len({c.key for c in plan.cells}) == len(plan.cells)
    assert plan.seeds == [11, 12, 13] and plan.defenses == ["none", "majority+reputation"]
    assert plan.grid == {"population.bot_fraction": [0.05, 0.1], "review.rate": [0.0, 0.1, 0.2]}
    cell = plan.cells[-1]
    assert cell.scenario.population.bot_fraction == 0.1 and cell.scenario.review.rate == 0.2
    assert cell.scenario.defense.chain == ["majority", "reputation"] and cell.scenario.seed == 13
    assert cell.params == {"population.bot_fraction": 0.1, "review.rate": 0.2}
    again = plan_sweep(None, TINY, ["population.bot_fraction=0.05,0.1", "review.rate=0,0.1,0.2"],
                       [["none"], ["majority", "reputation"]], 3, first_seed=11)
    assert again.sweep_id == plan.sweep_id          # 0 and 0.0 are the same validated value
    other = plan_sweep(None, TINY, ["population.bot_fraction=0.05,0.1", "review.rate=0.0,0.1,0.2"],
                       [["none"], ["majority", "reputation"]], 3, first_seed=12)
    assert other.sweep_id != plan.sweep_id
    assert plan_sweep(None, TINY + ["ticks=20"], [], [["none"]], 1).sweep_id != plan_sweep(
        None, TINY, [], [["none"]], 1).sweep_id


@pytest.mark.parametrize("grid,chains,seeds,message", [
    (["population.bot_fraction=0.1,abc"], [["none"]], 1,
     "--grid population.bot_fraction=abc: population.bot_fraction: expected a number, got 'abc'"),
    (["population.flavour=1"], [["none"]], 1, "population.flavour: unknown key"),
    (["population.bot_fraction=0.1,0.1"], [["none"]], 1, "value 0.1 given twice"),
    (["ticks=8", "ticks=9"], [["none"]], 1, "--grid ticks: given twice"),
    (["seed=1,2"], [["none"]], 1, "use --seeds"),
    (["defense.chain=['none']"], [["none"]], 1, "use --defenses"),
    (["population.bot_fraction"], [["none"]], 1, "expected key=value1,value2"),
    (["ticks=2"], [["none"]], 1, "attack.start_tick (4) must be below ticks (2)"),
    ([], [["none"], ["magic"]], 1, "--defenses magic: defense.chain: unknown defense 'magic'"),
    ([], [["none"], ["none"]], 1, "a chain is given twice"),
    ([], [["none"]], 0, "--seeds 0"),
])
def test_bad_sweeps_are_refused_with_one_line(grid, chains, seeds, message):
    with pytest.raises(ScenarioError) as info:
        plan_sweep(None, TINY, grid, chains, seeds)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_split_values_keeps_lists_and_strings_whole():
    assert split_values("['a','b'],['c']") == ["['a','b']", "['c']"]
    assert split_values("'x,y',z") == ["'x,y'", "z"]


def test_summarize_spreads_over_seeds_and_skips_unfinished():
    runs = [{"params": {"k": 1}, "defense": "none", "status": "finished", "metrics": {"m": 0.1}},
            {"params": {"k": 1}, "defense": "none", "status": "finished", "metrics": {"m": 0.5}},
            {"params": {"k": 1}, "defense": "none", "status": "running", "metrics": None},
            {"params": {"k": 2}, "defense": "none", "status": "finished", "metrics": {"m": None}}]
    first, second = summarize(runs, "m")
    assert (first["n"], first["min"], first["max"]) == (2, 0.1, 0.5)
    assert first["mean"] == pytest.approx(0.3)
    assert second["n"] == 0 and second["mean"] is None


# --------------------------------------------------------------------------- ownership


def test_owner_liveness():
    now = datetime.now(timezone.utc)
    host = socket.gethostname()
    fresh, stale = now.isoformat(), (now - timedelta(hours=1)).isoformat()
    assert _owner_alive(f"{host}:{os.getpid()}:x", fresh)
    assert not _owner_alive(f"{host}:{os.getpid()}:x", stale)           # silent for too long
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    assert not _owner_alive(f"{host}:{dead}:x", fresh)                   # process gone
    assert _owner_alive("elsewhere:1:x", fresh) and not _owner_alive("elsewhere:1:x", stale)


def test_a_live_owner_keeps_the_sweep(tmp_path):
    plan = plan_sweep(None, TINY, [], [["none"]], 1)
    with Repository(f"sqlite:///{tmp_path / 's.db'}") as repo:
        repo.create_sweep(plan.sweep_id, plan.definition, name=plan.name, grid=plan.grid,
                          defenses=plan.defenses, seeds=plan.seeds, cells_total=len(plan.cells))
        me = f"{socket.gethostname()}:{os.getpid()}:first"
        _claim(repo, plan.sweep_id, me)
        with pytest.raises(SweepBusy, match=f"being run by process {os.getpid()}"):
            _claim(repo, plan.sweep_id, f"{socket.gethostname()}:{os.getpid()}:second")
        repo.release_sweep(plan.sweep_id, me, "interrupted")
        _claim(repo, plan.sweep_id, "someone:1:else")
        assert repo.get_sweep(plan.sweep_id)["owner"] == "someone:1:else"


# --------------------------------------------------------------------------- the command


def _cells(db: str) -> dict[str, dict]:
    """Cell key -> (stable metrics, timeline, account outcomes) of every stored run."""
    with Repository(db) as repo:
        [sweep] = repo.list_sweeps()
        out = {}
        for run in repo.sweep_runs(sweep["sweep_id"]):
            assert run["status"] == "finished"
            doc = repo.get_run(run["run_id"])
            key = json.dumps([run["params"], run["defense"], run["seed"]])
            out[key] = ({k: v for k, v in doc["metrics"].items() if k not in THROUGHPUT}, doc["timeline"],
                        repo.account_outcomes(run["run_id"]))
        return sweep, out


def _count(db_path, query: str) -> int:
    """``SELECT count(*) ...`` on the sweep's database (0 while it has no tables yet)."""
    if not db_path.exists():
        return 0
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("runs"):
                return 0
            return int(conn.execute(text(query)).scalar() or 0)
    finally:
        engine.dispose()


def _wait_held(proc, db_path, finished: int, timeout=WAIT_S) -> None:
    """Wait until exactly `finished` cells are finished and every worker holds a run part-way
    (``running`` with ticks stored, waiting for a ticket): the state a gated sweep stops in."""
    what = f"{finished} finished cells and {WORKERS} runs waiting part-way"
    deadline = time.monotonic() + timeout
    while True:
        done = _count(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'")
        partial = _count(db_path, "SELECT count(*) FROM runs r WHERE r.status = 'running' AND EXISTS "
                                  "(SELECT 1 FROM tick_metrics t WHERE t.run_id = r.run_id)")
        if (done, partial) == (finished, WORKERS):
            return
        assert done <= finished, f"waiting for {what}: {done} cells finished (the gate let too many through)"
        assert proc.poll() is None, f"waiting for {what}: the sweep ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, \
            f"waiting for {what}: still {done} finished and {partial} part-way after {timeout:.0f} s"
        time.sleep(0.05)


def _wait_no_process(pattern: str, timeout=WAIT_S) -> None:
    """Wait until no process has `pattern` in its command line (workers die with a killed sweep)."""
    deadline = time.monotonic() + timeout
    while True:
        found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout.strip()
        if not found:
            return
        assert time.monotonic() < deadline, \
            f"waiting for the processes of {pattern} to end; still alive after {timeout:.0f} s:\n{found}"
        time.sleep(0.05)


def _no_duplicates(db: str) -> None:
    engine = create_engine(db)
    with engine.connect() as conn:
        rows, cells = conn.execute(text("SELECT count(*), count(DISTINCT cell_key) FROM runs")).one()
        ticks = conn.execute(text("SELECT count(*), count(DISTINCT run_id || ':' || tick) FROM tick_metrics")).one()
    engine.dispose()
    assert rows == cells == CELLS
    assert ticks[0] == ticks[1] == CELLS * 16


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweep, never interrupted."""
    cwd = tmp_path_factory.mktemp("reference")
    db = f"sqlite:///{cwd / 'ref.db'}"
    result = poisonlab("sweep", *SWEEP_ARGS, "--db", db, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return _cells(db)


def _resume_output(result) -> str:
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())


@pytest.mark.slow
def test_interrupted_and_killed_sweep_resumes_to_the_same_results(tmp_path, reference):
    """SIGINT midway, resume, SIGKILL later, resume: same cells, same results, no duplicates.

    "Midway" is a state the test controls, not a time: the sweep runs gated (tests/gated_sweep.py),
    so exactly the runs given a ticket finish and each worker then waits part-way until stopped."""
    db_path = tmp_path / "k.db"
    db = f"sqlite:///{db_path}"
    plan = plan_sweep(None, TINY, GRID[1:], [["none"], ["reputation"]], 2)
    gate = tmp_path / "gate"
    gate.mkdir()

    # 1. Ctrl-C midway: runs in progress are marked failed, the sweep 'interrupted'.
    add_tickets(gate, 2)
    proc = start_gated(gate, "sweep", *SWEEP_ARGS, "--db", db, cwd=tmp_path)
    _wait_held(proc, db_path, 2)
    with pytest.raises(SweepBusy, match="is being run by process"):     # a second process is refused
        run_sweep(plan, db, workers=1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    done = _count(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'")
    assert done == 2
    assert _count(db_path, "SELECT count(*) FROM runs WHERE status = 'running'") == 0
    failed = _count(db_path, "SELECT count(*) FROM runs WHERE status = 'failed'")   # the runs cut off
    assert failed == WORKERS
    with Repository(db) as repo:
        assert repo.list_sweeps()[0]["status"] == "interrupted"

    # 2. Resume, then SIGKILL midway: the workers die with the sweep, their runs stay 'running'.
    add_tickets(gate, 1)
    proc = start_gated(gate, "sweep", *SWEEP_ARGS, "--db", db, cwd=tmp_path)
    _wait_held(proc, db_path, done + 1)
    proc.kill()
    out, _ = proc.communicate(timeout=WAIT_S)
    out = " ".join(out.split())
    assert f"{CELLS} cells, {done} already done, {failed} unfinished run(s) discarded; running {CELLS - done}" in out
    _wait_no_process(str(db_path), timeout=120)         # forked workers share the command line
    done = _count(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'")
    leftover = _count(db_path, "SELECT count(*) FROM runs WHERE status = 'running'")
    assert (done, leftover) == (3, WORKERS)             # the runs cut off stay 'running'

    # 3. Resume to the end.
    out = _resume_output(poisonlab("sweep", *SWEEP_ARGS, "--db", db, cwd=tmp_path))
    assert f"{CELLS} cells, {done} already done, {leftover} unfinished run(s) discarded; running {CELLS - done}" in out
    _no_duplicates(db)
    sweep, cells = _cells(db)
    ref_sweep, ref_cells = reference
    assert sweep["sweep_id"] == ref_sweep["sweep_id"] == plan.sweep_id
    assert (sweep["status"], sweep["cells_done"], sweep["cells_total"]) == ("finished", CELLS, CELLS)
    assert cells.keys() == ref_cells.keys() and len(cells) == CELLS
    for key in cells:
        assert cells[key] == ref_cells[key], key
    assert all(len(outcomes) == 300 for _, _, outcomes in cells.values())

    # 4. Nothing left: everything is skipped.
    out = _resume_output(poisonlab("sweep", *SWEEP_ARGS, "--db", db, cwd=tmp_path))
    assert f"{CELLS} already done; running 0" in out
    _no_duplicates(db)


def test_bad_grid_exits_2_before_anything_runs(tmp_path):
    result = poisonlab("sweep", *TINY_ARGS, "--grid", "population.bot_fraction=0.1,lots", "--db",
                       f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    expected = ("poisonlab: error: --grid population.bot_fraction=lots: population.bot_fraction: "
                "expected a number, got 'lots'")
    assert lines == [expected]
    assert not (tmp_path / "x.db").exists()


def test_sweep_on_postgresql_in_worker_processes(pg_url, pg_schema):
    """Cells run in two forked workers write to PostgreSQL; a rerun skips them all."""
    _, schema = pg_schema
    db = f"{pg_url}?options=-csearch_path%3D{schema}"
    plan = plan_sweep(None, TINY, [], [["none"], ["reputation"]], 1)
    done = []
    start = run_sweep(plan, db, workers=2, on_cell_done=lambda i, doc: done.append(doc["run_id"]))
    assert (start.done, len(start.pending), len(done)) == (0, 2, 2)
    with Repository(db) as repo:
        runs = repo.sweep_runs(plan.sweep_id)
        assert [r["defense"] for r in runs] == ["none", "reputation"] and {r["run_id"] for r in runs} == set(done)
        assert repo.get_sweep(plan.sweep_id)["status"] == "finished"
        assert len(repo.account_outcomes(done[0])) == 300
    assert run_sweep(plan, db, workers=2).done == 2


def test_parameters_of_unused_defenses_do_not_change_the_id():
    chains = [["none"], ["reputation"]]
    plan = plan_sweep(None, TINY, [], chains, 1)
    assert plan_sweep(None, TINY + ["defense.majority.margin=0.5"], [], chains, 1).sweep_id == plan.sweep_id
    assert plan_sweep(None, TINY + ["defense.reputation.quorum=0.5"], [], chains, 1).sweep_id != plan.sweep_id
    assert plan_sweep(None, TINY + ["defense.window_ticks=2"], [], chains, 1).sweep_id != plan.sweep_id
