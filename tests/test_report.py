"""``poisonlab report``: Markdown + PNG charts of a sweep or a run, read back from the database."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from simulator.report import write_report
from stream.storage import Repository

FRACTIONS = (0.01, 0.05, 0.2)
DEFENSES = ("none", "reputation")
SEEDS = (7, 8, 9)
TICKS = 12


def _asr(defense: str, fraction: float, seed: int) -> float:
    return (0.9 if defense == "none" else 0.05) * min(1.0, fraction * 10) + 0.01 * (seed - 8)


def fill(repo: Repository) -> str:
    """A finished 3 × 2 × 3 sweep with known metrics, timelines and outcomes."""
    grid = {"population.bot_fraction": list(FRACTIONS)}
    repo.create_sweep("feedbeef00000001", {"grid": grid}, name="synthetic", grid=grid, defenses=list(DEFENSES),
                      seeds=list(SEEDS), cells_total=18)
    k = 0
    for defense in DEFENSES:
        for fraction in FRACTIONS:
            for seed in SEEDS:
                k += 1
                run_id = f"run{k:02d}{defense[:3]}"
                scenario = {"name": "synthetic", "ticks": TICKS, "population": {"bot_fraction": fraction},
                            "attack": {"strategy": "flip", "start_tick": 4}}
                repo.start_run(run_id, scenario, defense, seed, sweep_id="feedbeef00000001",
                               cell_key=f"{defense}|{fraction}|{seed}")
                asr = _asr(defense, fraction, seed)
                ticks = [{"tick": t, "attack_success_rate": None if t < 4 else asr, "collateral_rate": asr / 2,
                          "clean_accuracy": 0.95, "label_precision": 1 - asr / 2} for t in range(TICKS)]
                outcomes = [{"account_id": f"a{i}", "is_bot": i < 20,
                             "trust": None if defense == "none" else (0.2 if i < 20 else 0.8) + 0.001 * i}
                            for i in range(200)]
                repo.finish_run(run_id, {"attack_success_rate": asr, "collateral_rate": asr / 2,
                                         "clean_accuracy": 0.95, "bot_recall": 0.5}, ticks=ticks, outcomes=outcomes)
    return "feedbeef00000001"


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Repository(url) as repo:
        fill(repo)
    return url


def _png(path) -> np.ndarray:
    image = mpimg.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05                 # not blank
    return image


def test_sweep_report(db, tmp_path):
    with Repository(db) as repo:
        path = write_report(repo, "feedbeef", tmp_path / "out")
    text = path.read_text()
    assert "# PoisonLab sweep `feedbeef00000001`" in text
    assert "cells: 18 of 18 finished (3 grid point(s) × 2 defense chain(s) × 3 seed(s))" in text
    # the summary row of (0.05, none): mean and spread over the three seeds
    values = [_asr("none", 0.05, s) for s in SEEDS]
    row = next(line for line in text.splitlines() if line.startswith("| 0.05 | none |"))
    assert f"{np.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})" in row
    for name in ("outcome_vs_value.png", "timelines.png", "trust.png"):
        assert f"]({name})" in text
        _png(tmp_path / "out" / name)
    assert text.count("| `run") == 18


def test_run_report(db, tmp_path):
    with Repository(db) as repo:
        path = write_report(repo, "run10rep", tmp_path / "one")
    text = path.read_text()
    assert "defense **reputation**, seed 7" in text
    assert "| 200 | 20 | 0 | 0 |" in text
    _png(tmp_path / "one" / "timeline.png")
    _png(tmp_path / "one" / "trust.png")
    with Repository(db) as repo:
        write_report(repo, "run01non", tmp_path / "undefended")
    assert "keeps no reputation" in (tmp_path / "undefended" / "report.md").read_text()
    assert not (tmp_path / "undefended" / "trust.png").exists()


def _poisonlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("ident,message", [
    ("nosuch", "no run or sweep with id 'nosuch'"),
    ("run", "id prefix 'run' is ambiguous"),
])
def test_unknown_or_ambiguous_id_exits_2(db, tmp_path, ident, message):
    result = _poisonlab("report", ident, "--out", "o", "--db", db, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("poisonlab: error:") and message in lines[0]


def test_report_command_writes_files(db, tmp_path):
    result = _poisonlab("report", "feed", "--out", "rep", "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rep" / "report.md").is_file() and "trust.png" in result.stdout
