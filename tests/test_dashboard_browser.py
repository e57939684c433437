"""The dashboard in a real browser: ``streamlit run`` on a free port, headless Chromium through Playwright.

Every page is visited; each must draw its charts (waiting for the Vega-Lite
elements, not for page load) and show no Streamlit exception. A screenshot of
each page is saved under the test's tmp dir and copied to ``docs/screenshots/``.
Needs the Debian package ``chromium`` (``/usr/bin/chromium``) and the Python
package ``playwright`` (in the ``test`` extra); skipped, naming what is missing,
without them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from simulator.commands.dashboard import streamlit_command
from stream.storage import Repository
from tests.test_dashboard import SMALL, add_running_run, build_results_db, copy_db, free_port, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
CHART = "[data-testid=stVegaLiteChart]"
EXCEPTION = "[data-testid=stException]"
#: Bound of waits for the page to show something (ms; generous: a loaded machine is slow, not wrong).
WAIT_MS = 300_000

pytestmark = pytest.mark.slow

if not CHROMIUM.exists():
    pytest.skip("Debian package chromium not installed: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Python package playwright not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A dashboard server over a copy of the results database, plus a run that is still going."""
    results = build_results_db(tmp_path_factory)
    root = tmp_path_factory.mktemp("browser")
    url = copy_db(results["path"], root / "served.db")
    running, rest = add_running_run(url)
    port = free_port()
    log = open(root / "streamlit.log", "w")
    process = subprocess.Popen(streamlit_command(url, port), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_healthy(port, process)
        yield {"base": f"http://127.0.0.1:{port}", "url": url, "running": running, "rest": rest,
               "shots": root / "screenshots"}
    finally:
        process.terminate()
        process.wait(timeout=120)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_for_charts(page, count: int, timeout_s: float = 300.0) -> None:
    """Wait until `count` charts have drawn (a canvas or an SVG inside each chart element)."""
    page.wait_for_selector(CHART, timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    drawn = page.locator(f"{CHART} canvas, {CHART} svg.marks")
    while drawn.count() < count:
        assert time.monotonic() < deadline, f"waited {timeout_s:.0f} s for {count} charts: only {drawn.count()} drew"
        page.wait_for_timeout(250)


def screenshot(page, served, name: str) -> Path:
    """The whole page (the main area scrolls, so the viewport is grown to fit), also copied to docs/."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 6000))})
    page.wait_for_timeout(800)                       # charts re-fit to the new size
    served["shots"].mkdir(parents=True, exist_ok=True)
    path = served["shots"] / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def no_exception(page) -> None:
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()


def test_live_page_follows_a_running_run(page, served):
    page.goto(served["base"] + "/")
    wait_for_charts(page, 3)
    page.get_by_text("running: 10 of 24 ticks stored").wait_for(timeout=WAIT_MS)
    with Repository(served["url"]) as repo:
        repo.add_ticks(served["running"], served["rest"][:10])
    page.get_by_text("running: 20 of 24 ticks stored").wait_for(timeout=WAIT_MS)   # no reload: it refreshes
    wait_for_charts(page, 3)
    no_exception(page)
    screenshot(page, served, "live")


@pytest.mark.parametrize("path,name,charts", [("/compare", "compare", 5), ("/sweep", "sweep", 2),
                                              ("/accounts", "accounts", 3)])
def test_page_draws_its_charts(page, served, path, name, charts):
    page.goto(served["base"] + path)
    wait_for_charts(page, charts)
    no_exception(page)
    screenshot(page, served, name)
    no_exception(page)


def test_launch_page_starts_a_run_and_shows_it_finish(page, served):
    page.goto(served["base"] + "/launch")
    page.get_by_text("Nothing started from this dashboard yet.").wait_for(timeout=WAIT_MS)
    page.get_by_text("one run", exact=True).click()
    page.get_by_label("Defenses", exact=True).fill("reputation")
    page.get_by_label("Overrides (one key=value per line, as with --set)", exact=True).fill("\n".join(SMALL))
    page.get_by_role("button", name="Start").click()
    page.get_by_text("reputation: finished, 24 of 24 ticks stored").wait_for(timeout=2 * WAIT_MS)
    page.get_by_text("#1 · finished").wait_for(timeout=WAIT_MS)           # and the command has exited
    no_exception(page)
    screenshot(page, served, "launch")
    page.get_by_role("button", name="Watch live").click()
    wait_for_charts(page, 3)
    page.get_by_text("Run finished.", exact=False).wait_for(timeout=WAIT_MS)
    no_exception(page)
