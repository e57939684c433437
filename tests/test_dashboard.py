"""The dashboard, page by page (Streamlit's AppTest), over a database of real runs; and ``poisonlab dashboard``.

The database is filled once per test session by the real commands: a
``poisonlab compare`` (baseline, none, majority, reputation) and a small
``poisonlab sweep`` (bot fraction × defense × two seeds).
"""

from __future__ import annotations

import doctest
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from stream.storage import Repository  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES = {"live": "views/live.py", "compare": "views/compare.py", "sweep": "views/sweep.py",
         "accounts": "views/accounts.py", "launch": "views/launch.py"}
SMALL = ["ticks=24", "attack.start_tick=8", "population.users=600", "mail.emails_per_tick=60",
         "mail.eval_emails_per_tick=40", "attack.campaign_emails_per_tick=8", "model.warmup_emails=600"]
SWEEP = ["ticks=12", "attack.start_tick=4", "population.users=400", "mail.emails_per_tick=40",
         "mail.eval_emails_per_tick=30", "attack.campaign_emails_per_tick=8", "model.warmup_emails=400"]
_BUILT: dict[str, dict] = {}


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


def build_results_db(tmp_path_factory) -> dict:
    """A results database holding a real comparison and a real sweep (built once per session).

    Returns
    -------
    dict
        ``path`` (the SQLite file), ``url``, ``group_id`` and ``sweep_id``.
    """
    if "db" not in _BUILT:
        from simulator.cli import main

        root = tmp_path_factory.mktemp("dashboard-results")
        path = root / "results.db"
        url = f"sqlite:///{path}"
        assert main(["compare", *_sets(SMALL), "--defenses", "none,majority,reputation", "--db", url,
                     "--workers", "2", "--quiet", "--chart", str(root / "compare.png")]) == 0
        assert main(["sweep", *_sets(SWEEP), "--grid", "population.bot_fraction=0.02,0.1", "--defenses",
                     "none,reputation", "--seeds", "2", "--db", url, "--workers", "2", "--quiet"]) == 0
        with Repository(url) as repo:
            [group_id] = {r["group_id"] for r in repo.list_runs(None) if r["group_id"]}
            [sweep] = repo.list_sweeps()
        _BUILT["db"] = {"path": path, "url": url, "group_id": group_id, "sweep_id": sweep["sweep_id"]}
    return _BUILT["db"]


def copy_db(source: Path, target: Path) -> str:
    """A consistent copy of an SQLite results database (backup API); its URL."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def add_running_run(url: str, ticks: int = 10) -> tuple[str, list[dict]]:
    """A run caught mid-way: the reputation run's scenario and first `ticks` ticks, status ``running``.

    Returns the new run id and the remaining ticks of the source run (to add later).
    """
    with Repository(url) as repo:
        source = next(r for r in repo.list_runs(None) if r["defense"] == "reputation" and r["group_id"])
        doc = repo.get_run(source["run_id"])
        run_id = uuid.uuid4().hex
        repo.start_run(run_id, doc["scenario"], doc["defense"], doc["seed"])
        repo.add_ticks(run_id, doc["timeline"][:ticks])
    return run_id, doc["timeline"][ticks:]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return build_results_db(tmp_path_factory)


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def open_app(monkeypatch, url: str, page: str | None = None) -> AppTest:
    """The app as ``streamlit run dashboard/app.py -- --db URL`` starts it, on `page`."""
    monkeypatch.setattr(sys, "argv", [str(APP), "--db", url])
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if page is not None:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    """The charts on the page: each its Vega-Lite spec with the rows of its datasets under ``"rows"``.

    Streamlit sends an Altair chart's data beside the spec, as Arrow tables.
    """
    import pyarrow as pa

    out = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        rows = [row for values in (spec.get("datasets") or {}).values() for row in values]
        for dataset in element.proto.datasets:
            rows += pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
        out.append(spec | {"rows": rows})
    return out


def chart_rows(chart: dict) -> list[dict]:
    """Every data row of a chart from :func:`charts`."""
    return chart["rows"]


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [s.value for s in at.success] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


# ----------------------------------------------------------------------------- pages


@pytest.mark.parametrize("page,heading,min_charts", [
    ("live", "Live run", 3),
    ("compare", "Compare defenses", 5),
    ("sweep", "Sweep", 2),
    ("accounts", "Accounts", 3),
    ("launch", "Launch", 0),
])
def test_every_page_renders_from_the_database(monkeypatch, results, page, heading, min_charts):
    at = open_app(monkeypatch, results["url"], page)
    assert [t.value for t in at.title] == [heading]
    assert at.caption[0].value, "every page explains itself in one line under its title"
    assert len(at.get("vega_lite_chart")) >= min_charts
    assert results["url"] in at.sidebar.markdown[-1].value or any(
        results["url"] in c.value for c in at.sidebar.caption)


def test_live_marks_the_attack_start_and_shows_the_stored_ticks(monkeypatch, results):
    at = open_app(monkeypatch, results["url"], "live")
    run_id = at.selectbox(key="live_run").value
    with Repository(results["url"]) as repo:
        doc = repo.get_run(run_id)
    start = doc["scenario"]["attack"]["start_tick"]
    at.slider(key="live_smooth").set_value(1).run()
    attack_chart = next(c for c in charts(at) if "Attack success" in json.dumps(c))
    rows = chart_rows(attack_chart)
    assert {"tick": start, "label": f"attack starts (tick {start})"} in rows
    plotted = {r["tick"]: r["value"] for r in rows if r.get("series") == "Attack success"}
    stored = {t["tick"]: t["attack_success_rate"] for t in doc["timeline"] if t["attack_success_rate"] is not None}
    assert plotted == pytest.approx(stored)


def test_live_picks_the_running_run_and_follows_it_to_the_end(monkeypatch, results, tmp_path):
    url = copy_db(results["path"], tmp_path / "live.db")
    run_id, rest = add_running_run(url)
    at = open_app(monkeypatch, url, "live")
    assert at.selectbox(key="live_run").value == run_id
    assert "running: 10 of 24 ticks stored" in at.get("progress")[0].proto.text
    with Repository(url) as repo:
        repo.add_ticks(run_id, rest[:10])
    st.cache_data.clear()
    at.run()
    assert "running: 20 of 24 ticks stored" in at.get("progress")[0].proto.text
    with Repository(url) as repo:
        repo.add_ticks(run_id, rest[10:])
        repo.finish_run(run_id, {"attack_success_rate": 0.0})
    st.cache_data.clear()
    at.run()
    assert not at.exception
    assert not at.get("progress") and "Run finished" in text_of(at)


def test_compare_shows_the_stored_final_metrics_and_a_headline(monkeypatch, results):
    at = open_app(monkeypatch, results["url"], "compare")
    assert at.selectbox(key="compare_group").value == results["group_id"]
    with Repository(results["url"]) as repo:
        runs = repo.runs_in_group(results["group_id"])
    bars = next(c for c in charts(at) if "xOffset" in json.dumps(c))
    plotted = {(r["metric"], r["run"]): r["value"] for r in chart_rows(bars) if r.get("value") is not None}
    for run in runs:
        label = "no attack (baseline)" if run["attack_strategy"] == "none" else run["defense"]
        value = run["metrics"]["attack_success_rate"]
        if value is not None:
            assert plotted[("Attack success", label)] == pytest.approx(value)
    undefended = next(r for r in runs if r["defense"] == "none" and r["attack_strategy"] != "none")
    expected = f"{100 * undefended['metrics']['attack_success_rate']:.1f}% of the campaign reached inboxes"
    assert expected in at.success[0].value
    assert len([c for c in charts(at) if "attack starts" in json.dumps(c)]) == 4


def test_sweep_heatmap_holds_the_mean_over_seeds(monkeypatch, results):
    at = open_app(monkeypatch, results["url"], "sweep")
    assert at.selectbox(key="sweep_id").value == results["sweep_id"]
    assert at.selectbox(key="sweep_metric").value == "attack_success_rate"
    with Repository(results["url"]) as repo:
        cells = repo.sweep_runs(results["sweep_id"])
    expected = {}
    for cell in cells:
        value = cell["metrics"]["attack_success_rate"]
        if value is not None:
            expected.setdefault((cell["params"]["population.bot_fraction"], cell["defense"]), []).append(value)
    heatmap = next(c for c in charts(at) if "rect" in json.dumps(c))
    plotted = {(r["x"], r["defense"]): r for r in chart_rows(heatmap)}
    assert set(plotted) == set(expected)
    for key, values in expected.items():
        assert plotted[key]["mean"] == pytest.approx(sum(values) / len(values))
        assert plotted[key]["low"] == pytest.approx(min(values)) and plotted[key]["seeds"] == len(values)
    at.selectbox(key="sweep_metric").set_value("collateral_rate").run()
    assert not at.exception and "Collateral damage by population.bot_fraction" in at.subheader[0].value


def test_sweep_page_without_sweeps_says_how_to_make_one(monkeypatch, tmp_path):
    at = open_app(monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}", "sweep")
    assert "No sweeps yet" in at.info[0].value and "poisonlab sweep" in at.info[0].value
    assert not at.get("vega_lite_chart")


@pytest.mark.parametrize("page", ["live", "compare", "accounts"])
def test_pages_on_an_empty_database_point_to_launch(monkeypatch, tmp_path, page):
    at = open_app(monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}", page)
    assert "Launch" in at.info[0].value and "poisonlab" in at.info[0].value


def test_accounts_counts_bots_from_the_stored_outcomes(monkeypatch, results):
    at = open_app(monkeypatch, results["url"], "accounts")
    run_id = at.selectbox(key="accounts_run").value
    with Repository(results["url"]) as repo:
        outcomes = repo.account_outcomes(run_id)
        metrics = repo.get_run(run_id)["metrics"]
    assert metrics["bot_recall"] > 0, "the page opens on a run whose defense caught bots"
    bots = [o for o in outcomes if o["is_bot"]]
    table = at.dataframe[-1].value                              # the "Each bot" table
    assert len(table) == len(bots)
    caught = sum(o["flagged_tick"] is not None for o in bots)
    assert caught == round(metrics["bot_recall"] * len(bots))
    legend = {r["legend"] for c in charts(at) for r in chart_rows(c) if "legend" in r}
    assert f"caught: {caught}" in legend and f"missed: {len(bots) - caught}" in legend
    assert any("final trust" in json.dumps(c) for c in charts(at))


def test_accounts_without_outcomes_derives_what_it_can(monkeypatch, results, tmp_path):
    url = f"sqlite:///{tmp_path / 'no-outcomes.db'}"
    with Repository(results["url"]) as source, Repository(url) as target:
        run = next(r for r in source.list_runs(None) if r["defense"] == "reputation" and r["group_id"])
        target.save_result(source.get_run(run["run_id"]))          # metrics and ticks, no per-account rows
    at = open_app(monkeypatch, url, "accounts")
    assert "not stored" in at.warning[0].value
    bots = round(600 * 0.05)
    caught = round(run["metrics"]["bot_recall"] * bots)
    legend = {r["legend"] for c in charts(at) for r in chart_rows(c) if "legend" in r}
    assert f"caught: {caught}" in legend and f"missed: {bots - caught}" in legend


def test_launch_rejects_bad_input_in_one_line_and_starts_nothing(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'launch-bad.db'}"
    at = open_app(monkeypatch, url, "launch")
    at.text_area(key="launch_overrides").set_value("population.flavour=1")
    at.button(key="launch_start").click().run()
    assert [e.value for e in at.error] == ["Not started: population.flavour: unknown key"]
    from dashboard.data import launcher

    assert launcher(url).launches == []


def test_launch_runs_a_real_run_in_the_background_and_shows_its_progress(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'launch.db'}"
    at = open_app(monkeypatch, url, "launch")
    at.radio(key="launch_mode").set_value("run")
    at.text_input(key="launch_defenses").set_value("reputation")
    at.number_input(key="launch_seed").set_value(3)
    at.text_area(key="launch_overrides").set_value("\n".join(SMALL))
    at.button(key="launch_start").click().run()
    assert not at.exception and not at.error
    from dashboard.data import launcher

    [launch] = launcher(url).launches
    assert launch.argv[:2] == ["run", "--db"] and "--defense" in launch.argv
    launch.process.wait(timeout=300)
    assert launch.status == "finished", launch.log_path.read_text()
    st.cache_data.clear()
    at.run()
    progress = [p.proto.text for p in at.get("progress")]
    assert progress == ["reputation: finished, 24 of 24 ticks stored"]
    with Repository(url) as repo:
        [run] = repo.list_runs()
    assert (run["status"], run["seed"], run["defense"]) == ("finished", 3, "reputation")
    at.button(key=f"launch_watch_{run['run_id']}").click().run()
    assert at.selectbox(key="live_run").value == run["run_id"]        # switched to the Live run page


# ----------------------------------------------------------------------------- modules


@pytest.mark.parametrize("module", ["dashboard.data", "dashboard.launcher", "dashboard.components.labels",
                                    "dashboard.components.charts"])
def test_docstring_examples(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- the command


def poisonlab(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args,message", [
    (["--port", "70000"], "--port 70000: expected a TCP port between 1 and 65535"),
    (["--db", "nosuchdb://x"], "nosuchdb"),
])
def test_dashboard_command_rejects_bad_input_in_one_line(args, message):
    result = poisonlab("dashboard", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("poisonlab: error:") and message in lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 300.0) -> None:
    """Wait until the server answers its health check (generous bound: a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"waiting for the dashboard on port {port}: the server exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"waiting for the dashboard on port {port}: no healthy answer after {timeout} s")


def test_dashboard_command_serves_the_app_on_localhost(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "simulator.cli", "dashboard", "--port", str(port),
                                "--db", f"sqlite:///{tmp_path / 'served.db'}"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        if listening.returncode == 0 and listening.stdout.strip():
            assert all("127.0.0.1:" in line for line in listening.stdout.strip().splitlines())
    finally:
        process.terminate()
        out, err = process.communicate(timeout=120)
    assert f"http://127.0.0.1:{port}" in out
    assert "Traceback" not in err
