"""``poisonlab export``: runs and per-tick metrics as CSV and Parquet, equal to what is stored."""

from __future__ import annotations

import csv
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from simulator.export import export
from stream.storage import Repository
from tests.test_report import SEEDS, fill


@pytest.fixture
def repo(tmp_path):
    with Repository(f"sqlite:///{tmp_path / 'e.db'}") as repository:
        fill(repository)
        repository.save_result({"run_id": "lonely", "scenario": {"name": "solo", "attack": {"strategy": "none"},
                                                                 "defense": {"chain": ["none"]}},
                                "defense": "none", "seed": 1, "metrics": {"votes": 3, "clean_fpr": None},
                                "timeline": [{"tick": 0, "votes": 3, "queue": 2}]})
        yield repository


def test_parquet_of_a_sweep_matches_the_database(repo, tmp_path):
    written = export(repo, "feedbeef", "parquet", tmp_path / "pq")
    assert [(p.name, n) for p, n in written] == [("runs.parquet", 18), ("ticks.parquet", 18 * 12)]
    runs = pq.read_table(tmp_path / "pq" / "runs.parquet").to_pylist()
    stored = {r["run_id"]: r for r in repo.sweep_runs("feedbeef00000001")}
    assert {r["run_id"] for r in runs} == set(stored)
    for row in runs:
        assert row["metrics.attack_success_rate"] == stored[row["run_id"]]["metrics"]["attack_success_rate"]
        assert row["scenario.population.bot_fraction"] == stored[row["run_id"]]["params"]["population.bot_fraction"]
        assert row["sweep_id"] == "feedbeef00000001" and row["seed"] in SEEDS
    schema = pq.read_schema(tmp_path / "pq" / "runs.parquet")
    assert str(schema.field("seed").type) == "int64"
    assert str(schema.field("metrics.attack_success_rate").type) == "double"
    ticks = pq.read_table(tmp_path / "pq" / "ticks.parquet").to_pylist()
    first = [t for t in ticks if t["run_id"] == runs[0]["run_id"]]
    assert [t["tick"] for t in first] == list(range(12))
    assert first == [{"run_id": runs[0]["run_id"], **t} for t in
                     [{k: v for k, v in e.items()} for e in repo.timeline(runs[0]["run_id"])]]


def test_csv_of_everything(repo, tmp_path):
    written = export(repo, None, "csv", tmp_path / "csv")
    assert [(p.name, n) for p, n in written] == [("runs.csv", 19), ("ticks.csv", 18 * 12 + 1)]
    with (tmp_path / "csv" / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    lonely = next(r for r in rows if r["run_id"] == "lonely")
    assert lonely["scenario.defense.chain"] == '["none"]' and lonely["metrics.clean_fpr"] == ""
    assert lonely["sweep_id"] == "" and lonely["attack_strategy"] == "none"
    swept = next(r for r in rows if r["run_id"] == "run05non")
    stored = repo.get_run("run05non")
    assert float(swept["metrics.attack_success_rate"]) == stored["metrics"]["attack_success_rate"]   # exact
    with (tmp_path / "csv" / "ticks.csv").open() as handle:
        ticks = list(csv.DictReader(handle))
    assert next(t for t in ticks if t["run_id"] == "lonely")["queue"] == "2"


def test_export_command(repo, tmp_path):
    db = repo.url
    ok = subprocess.run([sys.executable, "-m", "simulator.cli", "export", "lonely", "--format", "parquet",
                         "--out", "x", "--db", db], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert pq.read_table(tmp_path / "x" / "runs.parquet").num_rows == 1
    bad = subprocess.run([sys.executable, "-m", "simulator.cli", "export", "zzz", "--out", "x", "--db", db],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"poisonlab: error: no run or sweep with id 'zzz' in {db}"]
