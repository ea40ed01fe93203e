"""The Dagster UI as a user sees it: headless Debian Chromium against `dagster dev` on the sandbox.

`make test` installs Debian's chromium and chromium-driver when they are missing, so this test
runs (and must pass) everywhere the README's test command runs. Screenshots are kept under
`test-artifacts/browser/` for a person to look at.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.dagster_ui import (
    BACKFILL_RUNS,
    LAUNCH_BACKFILL,
    backfill_selector,
    graphql,
    running_ui,
)
from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
# What the machine notes prescribe for this closed network: no GPU, no sandbox (root), and no
# background calls to Google that the network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
]

# one worker runs this module (make test: --dist loadgroup), so its synced UI (the `ui` fixture) is made once, not once per worker
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("waits")]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sandbox mapping synced for one window, then `ploomes-cx ui` (dagster dev: webserver and
    daemon) on that same instance. One per module: starting it takes a while, and the tests only read."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian chromium and chromium-driver are missing; `make test` installs them (apt-get)")
    tmp_path = tmp_path_factory.mktemp("ui")
    home = tmp_path / "state"
    ploomes = PloomesSandbox(
        PloomesDataset(persons=400, seed=42), user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000
    ).start()
    cx = CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000).start()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PLOOMES_CX_HOME", str(home))
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        monkeypatch.delenv("PLOOMES_CX_MAPPINGS", raising=False)
        point_at(monkeypatch, ploomes, cx)
        assert main(["sync", "sandbox", "--window", "2026-11-02", "--quiet"]) == 0
        log = tmp_path / "dagster-dev.log"
        env = dict(os.environ)  # no DAGSTER_HOME: `ploomes-cx ui` uses $PLOOMES_CX_HOME/dagster
    try:
        with running_ui(env, log, PROJECT_ROOT) as url:
            assert "supersede" not in log.read_text().lower()  # `dg dev`, not the superseded `dagster dev`
            yield url, home
    finally:
        ploomes.stop()
        cx.stop()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The module's Chromium, left on a blank page after each test: an open Dagster page keeps
    polling the webserver (and using a core) while the next test runs."""
    yield chromium
    chromium.get("about:blank")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One Chromium for the module's pages (each test opens its own URL and relies on nothing an
    earlier one did): fewer processes started, and one cache for the UI's scripts."""
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver: webdriver.Chrome) -> str:
    return driver.execute_script("return document.body ? document.body.innerText : ''")


def wait_for_text(driver: webdriver.Chrome, *needles: str, timeout: float = 60) -> str:
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(
            lambda d: all(n in page_text(d) for n in needles)
        )
    except Exception:
        shot = ARTIFACTS / f"failed-{int(time.time())}.png"
        driver.save_screenshot(str(shot))
        missing = [n for n in needles if n not in page_text(driver)]
        raise AssertionError(f"{driver.current_url}: never showed {missing} (screenshot {shot})") from None
    return page_text(driver)


def scroll_to(driver: webdriver.Chrome, text: str) -> None:
    """Bring the metadata entry named `text` into view, so the screenshot shows it."""
    for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
        return


def test_the_ui_shows_three_layers_and_a_materialized_row_count(ui, browser):
    url, home = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database_path(home, "sandbox")), read_only=True) as con:
        clients = con.execute("select count(*) from sandbox.stg_clients").fetchall()[0][0]
    assert clients > 0

    browser.get(f"{url}/asset-groups")
    wait_for_text(browser, "sandbox_raw", "sandbox_staging", "sandbox_load")
    browser.save_screenshot(str(ARTIFACTS / "asset-graph.png"))

    browser.get(f"{url}/assets/sandbox/stg_clients")
    text = wait_for_text(browser, "stg_clients", "Row count", "sandbox_staging", "ploomes-cx")
    shown = re.search(r"Row count\s+([\d,]+)", text)
    assert shown and int(shown.group(1).replace(",", "")) == clients, text[:500]
    browser.save_screenshot(str(ARTIFACTS / "stg-clients.png"))
    # "Source code" opens the mapping file that made the asset, and nothing else (ploomes_cx/code_refs.py)
    wait_for_text(browser, "Source code")
    links = (
        "return [...document.querySelectorAll('a')].filter(a => a.href.includes('.yaml')).map(a => a.href)"
    )
    WebDriverWait(browser, 30, poll_frequency=0.5).until(lambda d: d.execute_script(links))
    shown_links = browser.execute_script(links)
    assert len(shown_links) == 1 and "/mappings/sandbox.yaml" in shown_links[0], shown_links
    # Dagster's "Join the community" dialog covers the page on a new instance; the screenshot shows the link
    browser.execute_script(
        "[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Skip')"
        ".forEach(b => b.click())"
    )
    scroll_to(browser, "Source code")
    browser.save_screenshot(str(ARTIFACTS / "source-code.png"))


def test_the_load_assets_show_their_freshness_status_and_deadline(ui, browser):
    url, _ = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{url}/assets/sandbox/load_clients")
    # the daily tick is 00:10 in São Paulo; with an hour of grace a window is late after 01:10
    text = wait_for_text(browser, "Freshness policy", "Deadline: At 01:10 AM")
    status = text.split("Freshness policy", 1)[1].split("\n", 2)[1]
    assert status.strip(), text[:800]  # a status under the policy (Not evaluated, Pass, Warn, Fail)
    browser.save_screenshot(str(ARTIFACTS / "load-clients-freshness.png"))


def test_rejected_rows_and_duplicate_clusters_are_readable_from_their_asset_pages(ui, browser):
    url, home = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database_path(home, "sandbox")), read_only=True) as con:
        rules = [r[0] for r in con.execute("select distinct rule from sandbox.rejected").fetchall()]
    assert rules
    browser.get(f"{url}/assets/sandbox/rejected")
    wait_for_text(browser, "by_rule", "preview", *rules)
    scroll_to(browser, "by_rule")
    browser.save_screenshot(str(ARTIFACTS / "rejected.png"))
    browser.get(f"{url}/assets/sandbox/duplicate_clusters")
    wait_for_text(browser, "merged_clusters", "candidate_clusters", "preview")
    scroll_to(browser, "merged_clusters")
    browser.save_screenshot(str(ARTIFACTS / "duplicate-clusters.png"))


def test_a_backfill_launched_as_the_ui_does_is_one_run_per_range_and_one_run_at_a_time(ui):
    """A UI backfill of a range extracts its windows in one run (the raw assets' backfill policy,
    issue 14 part 1), and the daemon's run queue holds a mapping's runs to one at a time (the
    run-tag limit): two backfills launched together never overlap."""
    url, _ = ui
    ranges = [["2026-11-03", "2026-11-04", "2026-11-05"], ["2026-11-06", "2026-11-07"]]
    backfills = []
    for windows in ranges:
        params = {"selector": backfill_selector("sandbox"), "partitionNames": windows}
        launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfills.append(launched["backfillId"])
    deadline = time.monotonic() + 300
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = [
            run
            for backfill in backfills
            for run in graphql(
                url, BACKFILL_RUNS, {"tags": [{"key": "dagster/backfill", "value": backfill}]}
            )["data"]["runsOrError"]["results"]
        ]
        if len(runs) == len(ranges) and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
            break
        time.sleep(2)
    assert [r["status"] for r in runs] == ["SUCCESS"] * len(ranges), runs
    runs.sort(key=lambda r: r["startTime"])
    # the figure in the README (seconds per backfill run): `pytest -s -k backfill` prints it
    print("backfill run seconds:", [round(r["endTime"] - r["startTime"], 1) for r in runs])
    spans = sorted(
        [
            next(t["value"] for t in r["tags"] if t["key"] == "dagster/asset_partition_range_start"),
            next(t["value"] for t in r["tags"] if t["key"] == "dagster/asset_partition_range_end"),
        ]
        for r in runs
    )
    assert spans == [[w[0], w[-1]] for w in ranges]  # each backfill: one run over its whole range
    for earlier, later in itertools.pairwise(runs):
        assert earlier["endTime"] <= later["startTime"], (earlier, later)  # never two at once


def test_resource_pages_name_the_credential_variables_and_never_show_their_values(ui, browser):
    url, _ = ui
    for resource, variable in (
        ("sandbox_ploomes", "PLOOMES_USER_KEY"),
        ("sandbox_customerx", "CUSTOMERX_TOKEN"),
    ):
        browser.get(f"{url}/locations/ploomes_cx.definitions/resources/{resource}")
        wait_for_text(browser, resource, variable)
        page = browser.page_source
        assert SECRET_KEY not in page and CX_TOKEN not in page
    browser.save_screenshot(str(ARTIFACTS / "customerx-resource.png"))
