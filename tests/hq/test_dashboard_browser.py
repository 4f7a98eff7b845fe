"""The dashboard in a real browser (Debian's chromium, headless, through chromedriver), over
a database filled by real replays (real model, real CAVIAR clips) through a real Mosquitto
into `shopper-hq subscribe`: log in, every figure on the page equals `report --json`, the
charts and the heatmap over its plan render, a store and a period can be chosen.
Screenshots go to var/screenshots/ (artifacts to look at, not committed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.broker import Broker
from tests.conftest import CLIPS, REPO, HqProcess, truth_counts, wait_for
from tests.hq.test_dashboard import Dashboard, report_json

SCREENSHOTS = REPO / "var" / "screenshots"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPLAYS = {  # store -> clip of the CAVIAR front camera
    "caviar-a": "OneLeaveShop1front.mpg",
    "caviar-b": "OneLeaveShopReenter1front.mpg",
}


def plate(clip: Path, path: Path) -> Path:
    """The camera's people-free plate, as the setup page exports it: the median of frames
    spread over the clip (people move, the shop stays)."""
    capture = cv2.VideoCapture(str(clip))
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 10 == 0:
            frames.append(frame)
        index += 1
    capture.release()
    cv2.imwrite(str(path), np.median(np.stack(frames), axis=0).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def filled_by_replays(tmp_path_factory, models_dir):
    """Two stores' cameras replayed through a real broker into HQ's SQLite."""
    directory = tmp_path_factory.mktemp("replays")
    broker = Broker(directory / "broker").start()
    db = directory / "hq.sqlite"
    hq = HqProcess(broker.port, db, client_id="hq-dash")
    try:
        sent = 0
        for store, clip in REPLAYS.items():
            raw = yaml.safe_load((REPO / "examples" / "caviar-front.yaml").read_text())
            raw.update(store_id=store, window_seconds=2)
            raw["models"]["dir"] = str(models_dir)
            raw["behaviour"] = {"heatmap": [16, 12]}
            raw["cameras"][0]["source"] = str(CLIPS / clip)
            raw["outputs"] = {"jsonl": None, "mqtt": {
                "host": "localhost", "port": broker.port, "spool_dir": str(directory / store)}}
            config = directory / f"{store}.yaml"
            config.write_text(yaml.safe_dump(raw))
            result = subprocess.run(
                [sys.executable, "-m", "appliance.device.cli", "replay", str(CLIPS / clip),
                 "--config", str(config), "--no-progress", "--wait-broker", "10"],
                capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            assert summary["unsent"] == 0
            sent += summary["windows"]
        import sqlite3

        def stored():
            with sqlite3.connect(db) as connection:
                return connection.execute("SELECT COUNT(*) FROM windows").fetchone()[0]

        wait_for(lambda: db.exists() and stored() == sent, what="HQ storing every window")
    finally:
        hq.stop()
        broker.stop()
    for store, clip in REPLAYS.items():
        result = subprocess.run(
            [sys.executable, "-m", "appliance.hq.cli", "plan", "set", "--db", str(db),
             "--store", store, "--camera", "front",
             str(plate(CLIPS / clip, directory / f"{store}-plate.png"))],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    return db


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="shopper-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,2400",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def resolve(report: dict, key: str):
    """The value at a figure's data-key ("camera|store|camera|path..." or "store|id|...")."""
    kind, owner, *path = key.split("|")
    if kind == "camera":
        camera, *path = path
        node = next(c for c in report["cameras"]
                    if (c["store_id"], c["camera_id"]) == (owner, camera))
    else:
        node = next(s for s in report["stores"] if s["store_id"] == owner)
    for step in path:
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def loaded(driver, since: str) -> bool:
    return (driver.execute_script("return document.body.dataset.loaded || ''") or "") > since


def check_figures(driver, db) -> dict:
    """Every figure on the page against `report --json` of the page's query."""
    query = driver.execute_script("return report.query")
    expected = report_json(db, query)
    figures = driver.execute_script(
        "return [...document.querySelectorAll('[data-key]')].map("
        "e => [e.dataset.key, e.dataset.value, e.textContent])")
    assert len(figures) > 20
    for key, value, text in figures:
        want = resolve(expected, key)
        assert json.loads(value) == want, key
        if isinstance(want, int) and not isinstance(want, bool):
            assert text.removeprefix("≥ ") == str(want), key
    return expected


def test_dashboard_in_chromium(filled_by_replays, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    server = Dashboard(filled_by_replays, tmp_path)
    try:
        browser.get(server.url)
        assert browser.current_url.endswith("/login")
        browser.find_element(By.ID, "token").send_keys("wrong-token-1234567")
        browser.find_element(By.ID, "login").click()
        # The form posts and the browser lands on /login?failed=1: an element found before
        # that belongs to the page being left.
        wait_for(lambda: "failed=1" in browser.current_url, what="the login page again")
        assert browser.find_element(By.ID, "failed").is_displayed()
        browser.find_element(By.ID, "token").send_keys(server.token)
        browser.find_element(By.ID, "login").click()
        wait_for(lambda: loaded(browser, "0"), what="the page drawing the report")
        expected = check_figures(browser, filled_by_replays)
        assert [c["store_id"] for c in expected["cameras"]] == list(REPLAYS)
        # Real replays: the door counts of the clips' truth reached the page.
        door = {c["store_id"]: c["lines"]["shop_door"] for c in expected["cameras"]}
        assert door == {store: truth_counts(clip) for store, clip in REPLAYS.items()}
        # Charts: one in- and one out-bar per hour; the heatmap over the plan.
        bars = browser.execute_script(
            "return [...document.querySelectorAll('svg.hours')].map(s => "
            "[s.dataset.bars, s.querySelectorAll('rect').length])")
        assert bars and all(int(n) * 2 == rects for n, rects in bars)
        heatmaps = browser.execute_script("""
            return [...document.querySelectorAll('.heatmap')].map(box => {
              const img = box.querySelector('img'), canvas = box.querySelector('canvas');
              const data = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                                canvas.height).data;
              let painted = 0;
              for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
              return [img && img.complete ? img.naturalWidth : 0, canvas.width, painted,
                      canvas.width * canvas.height];
            })""")
        assert len(heatmaps) == 2
        for plan_width, canvas_width, painted, pixels in heatmaps:
            assert plan_width == canvas_width == 384  # drawn at the plan's size
            assert 0 < painted < pixels  # people were somewhere, not everywhere
        browser.save_screenshot(str(SCREENSHOTS / "dashboard-all.png"))

        # Choose a store and a period (the clips' windows are in media time: 1970-01-01).
        before = browser.execute_script("return document.body.dataset.loaded")
        Select(browser.find_element(By.ID, "store")).select_by_value("caviar-b")
        browser.find_element(By.ID, "from").send_keys("01011970")
        browser.find_element(By.ID, "to").send_keys("01011970")
        tz = browser.find_element(By.ID, "tz")
        tz.clear()
        tz.send_keys("Europe/Paris")
        browser.find_element(By.ID, "show").click()
        wait_for(lambda: loaded(browser, before), what="the page redrawing")
        query = browser.execute_script("return report.query")
        assert query == {"store": "caviar-b", "camera": None, "tz": "Europe/Paris",
                         "since": "1969-12-31T23:00:00", "until": "1970-01-01T23:00:00"}
        expected = check_figures(browser, filled_by_replays)
        assert [c["store_id"] for c in expected["cameras"]] == ["caviar-b"]
        assert list(expected["cameras"][0]["footfall_by_hour"]) == ["1970-01-01 01:00"]
        browser.save_screenshot(str(SCREENSHOTS / "dashboard-store-b-paris.png"))
        csv_link = browser.find_element(By.CSS_SELECTOR, "a.csv[data-table=cameras]")
        assert "table=cameras&store=caviar-b" in csv_link.get_attribute("href")
    finally:
        server.stop()
