"""The ``poisonlab`` command as a user runs it: a real subprocess, exit codes, files."""

import json
import subprocess
import sys

import pytest

from tests.test_engine import RESULT_KEYS, SMALL

SETS = [arg for item in SMALL for arg in ("--set", item)]


def poisonlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("args,message", [
    (["run", "--set", "population.bot_fraction=abc"], "population.bot_fraction: expected a number, got 'abc'"),
    (["run", "--set", "population.flavour=1"], "population.flavour: unknown key"),
    (["run", "missing-scenario.toml"], "scenario file not found: missing-scenario.toml"),
    (["run", "--defense", "magic"], "unknown defense 'magic'"),
    (["run", "--broker", "carrier-pigeon"], "expected 'memory' or kafka://HOST:PORT"),
    (["run", "--db", "nosuchdb://x"], "nosuchdb"),
    (["compare", "--set", "ticks=oops"], "ticks: expected an integer"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = poisonlab(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("poisonlab: error:")
    assert "Traceback" not in result.stderr + result.stdout


def test_run_writes_result_document_and_database(tmp_path):
    db = tmp_path / "r.db"
    result = poisonlab("run", *SETS, "--defense", "majority", "--db", f"sqlite:///{db}", "--json", "out.json",
                       "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert RESULT_KEYS <= set(doc["metrics"]) and doc["defense"] == "majority"
    assert "attack_success_rate" in result.stdout
    from stream.storage import Repository

    stored = Repository(f"sqlite:///{db}").get_run(doc["run_id"])
    assert stored["status"] == "finished" and len(stored["timeline"]) == 24
    assert stored["metrics"]["votes"] == doc["metrics"]["votes"]


def test_compare_writes_every_run_and_a_chart(tmp_path):
    result = poisonlab("compare", *SETS, "--defenses", "none,reputation", "--db", f"sqlite:///{tmp_path}/c.db",
                       "--json", "all.json", "--chart", "chart.png", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    docs = json.loads((tmp_path / "all.json").read_text())
    assert [d["defense"] for d in docs] == ["none", "none", "reputation"]
    assert docs[0]["scenario"]["attack"]["strategy"] == "none"          # the no-attack baseline
    assert all(RESULT_KEYS <= set(d["metrics"]) for d in docs)
    png = (tmp_path / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert "no attack" in result.stdout


def test_help_lists_commands(tmp_path):
    result = poisonlab("--help", cwd=tmp_path)
    assert result.returncode == 0 and "run" in result.stdout and "compare" in result.stdout
