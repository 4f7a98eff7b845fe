"""The setup page in a real browser: Debian's Chromium, headless, driven by selenium through
chromium-driver, served by a real `shopper-edge setup` from a real clip and a real RTSP
stream. The installer's steps: look at the people-free view (checked here with the real
detector on the very pixels the browser shows), draw a door line and a zone with the mouse,
save, check-config, walk test, record; refusals and bad input as one line on the page.

Screenshots go to $SETUP_SCREENSHOTS (default: the test's tmp folder), to look at by hand.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.device.config import load_config
from appliance.device.pipeline import load_detector
from tests.conftest import CLIPS, NAMESPACES, REPO, shopper_edge, truth_counts, wait_for
from tests.setup_page import SetupProcess, setup_config

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SYSTEM_PYTHON = "/usr/bin/python3"
FRAME_WIDTH = 384  # the CAVIAR clips' frames


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # Never a skip, which would hide a missing install step (tests/conftest.py: requires).
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.fail("Chromium and chromium-driver are not installed: make system-deps")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # This machine has no network: without these Chromium stalls on its background calls.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("SETUP_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def started(tmp_path):
    processes = []

    def start(config, *extra):
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        process = SetupProcess(config, "--report-dir", str(workdir), *extra, cwd=workdir)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def _wait_text(driver, element_id: str, wanted: str, seconds: float = 60) -> str:
    wait_for(lambda: wanted in _text(driver, element_id), seconds,
             lambda: f"{wanted!r} in #{element_id}: {_text(driver, element_id)!r}")
    return _text(driver, element_id)


def _open(driver, setup: SetupProcess) -> None:
    driver.delete_all_cookies()
    driver.get(setup.url)
    wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('plate');"
        "return !p.hidden && p.complete && p.naturalWidth > 0"), 180,
        lambda: f"the plate on the page: {_text(driver, 'plate-status')!r}")


def _plate_as_shown(driver) -> np.ndarray:
    """The very pixels the browser shows, read back from its <img>."""
    data_url = driver.execute_script(
        "const p = document.getElementById('plate'), c = document.createElement('canvas');"
        "c.width = p.naturalWidth; c.height = p.naturalHeight;"
        "c.getContext('2d').drawImage(p, 0, 0); return c.toDataURL('image/png');")
    png = base64.b64decode(data_url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def _click(driver, x: int, y: int) -> None:
    """A real mouse click on frame pixel (x, y) of the view."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    left, top, width = driver.execute_script(
        "const r = document.getElementById('canvas').getBoundingClientRect();"
        "return [r.left, r.top, r.width];")
    scale = width / FRAME_WIDTH
    assert scale >= 2, scale  # a whole viewport pixel then lands on the intended frame pixel
    actions = ActionChains(driver)
    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(int(left + (x + 0.25) * scale),
                                            int(top + (y + 0.25) * scale))
    builder.pointer_action.click()
    builder.perform()
    actions.reset_actions()


def _drag(driver, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press on frame pixel `start`, move to `end`, release: moves a corner."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    left, top, width = driver.execute_script(
        "const r = document.getElementById('canvas').getBoundingClientRect();"
        "return [r.left, r.top, r.width];")
    scale = width / FRAME_WIDTH

    def at(point):
        return int(left + (point[0] + 0.25) * scale), int(top + (point[1] + 0.25) * scale)

    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(*at(start))
    builder.pointer_action.pointer_down()
    builder.pointer_action.move_to_location(*at(((start[0] + end[0]) // 2,
                                                 (start[1] + end[1]) // 2)))
    builder.pointer_action.move_to_location(*at(end))
    builder.pointer_action.pointer_up()
    builder.perform()


def _tool(driver, name: str) -> None:
    driver.find_element("css selector", f"input[name=tool][value={name}]").click()


def test_installer_draws_saves_and_walks_the_door(browser, started, tmp_path, models_dir, shots):
    config = setup_config(tmp_path, models_dir, geometry=False)
    setup = started(config)
    _open(browser, setup)
    assert "people-free view from 30 views" in _text(browser, "plate-status")
    plate = _plate_as_shown(browser)
    assert plate.shape == (288, 384, 3)
    detector = load_detector(load_config(config))
    assert len(detector.detect(plate)) == 0  # no detectable person in what the browser got
    # The door line, left to right along the threshold: its "in" arrow points into the shop.
    _tool(browser, "line")
    _click(browser, 205, 147)
    _click(browser, 330, 147)
    # The shop floor: four corners, then the first again to close it.
    _tool(browser, "zone")
    for x, y in ((205, 60), (330, 60), (330, 147), (205, 147), (205, 60)):
        _click(browser, x, y)
    # A floor rectangle on the walkway, its two sides measured: the groups' metres.
    _tool(browser, "floor")
    for x, y in ((100, 200), (300, 200), (330, 260), (70, 260)):
        _click(browser, x, y)
    for box_id, metres in (("floor-width", "4"), ("floor-depth", "2.5")):
        box = browser.find_element("id", box_id)
        box.clear()
        box.send_keys(metres + "\t")
    _wait_text(browser, "validation", "OK: the config parser accepts this")
    browser.save_screenshot(str(shots / "setup-drawn.png"))
    browser.find_element("id", "save").click()
    assert "check-config: OK" in _wait_text(browser, "saved", "saved")
    check = shopper_edge("check-config", config)
    assert check.returncode == 0 and "front (1 lines, 1 zones)" in check.stdout, check.stderr
    camera = load_config(config).cameras[0]
    assert [(line.name, line.points) for line in camera.lines] == \
        [("door1", ((205.0, 147.0), (330.0, 147.0)))]
    assert camera.lines[0].in_side_point[1] < 147  # inside the shop
    assert [(z.name, z.kind, z.points) for z in camera.zones] == \
        [("area1", "area", ((205.0, 60.0), (330.0, 60.0), (330.0, 147.0), (205.0, 147.0)))]
    assert "# the burned-in date and time" in config.read_text()  # comments kept
    corners = np.array([[[100, 200], [300, 200], [330, 260], [70, 260]]], float)
    metres = cv2.perspectiveTransform(corners, np.array(camera.homography))[0]
    assert np.allclose(metres, [[0, 0], [4, 0], [4, 2.5], [0, 2.5]], atol=1e-3)
    # The walk test on the clip: the numbers on the page are the clip's truth.
    browser.find_element("id", "check-start").click()
    _wait_text(browser, "check-status", "finished", 300)
    truth = truth_counts("OneLeaveShopReenter1front.mpg")
    assert {"in": int(_text(browser, "line-door1-in")),
            "out": int(_text(browser, "line-door1-out"))} == truth
    assert "390 frames" in _text(browser, "check-status")
    for direction in ("in", "out"):
        box = browser.find_element("id", f"expect-door1-{direction}")
        box.clear()
        box.send_keys(str(truth[direction]))
    browser.find_element("id", "check-record").click()
    assert _wait_text(browser, "recorded", "pass: report").endswith(".json")
    browser.save_screenshot(str(shots / "setup-walk-test.png"))
    # Refusals seen by a browser: a second installer, then a wrong token.
    browser.delete_all_cookies()
    browser.get(setup.url)
    assert "another installer is already editing camera front" in browser.page_source
    browser.get(setup.base + "/?token=guess")
    assert "wrong token" in browser.page_source
    assert [p.suffix for p in (tmp_path / "work").iterdir()] == [".json"]  # no image


def test_bad_drawing_is_one_line_on_the_page(browser, started, tmp_path, models_dir, shots):
    config = setup_config(tmp_path, models_dir, geometry=False)
    before = config.read_text()
    setup = started(config)
    _open(browser, setup)
    _tool(browser, "line")
    _click(browser, 100, 100)
    _click(browser, 100, 100)  # a line of zero length
    line = _wait_text(browser, "validation", "the two points are the same")
    assert line == f"{config}: cameras[0].lines.door1.points: the two points are the same"
    browser.find_element("css selector", "#items button:last-child").click()  # delete it
    _wait_text(browser, "validation", "OK")
    # A line drawn a little off is dragged into place by its corner, then saved.
    _click(browser, 205, 150)
    _click(browser, 320, 150)
    _drag(browser, (320, 150), (330, 147))
    _wait_text(browser, "validation", "OK")
    browser.find_element("id", "save").click()
    _wait_text(browser, "saved", "check-config: OK")
    assert load_config(config).cameras[0].lines[0].points == ((205.0, 150.0), (330.0, 147.0))
    saved = config.read_text()
    _tool(browser, "zone")
    for x, y in ((20, 200), (120, 260), (120, 200), (20, 260)):
        _click(browser, x, y)
    browser.find_element("id", "finish").click()
    _wait_text(browser, "validation", "the polygon crosses itself (edges 1 and 3)")
    browser.save_screenshot(str(shots / "setup-bad-zone.png"))
    browser.find_element("id", "save").click()
    assert "crosses itself" in _wait_text(browser, "saved", "crosses itself")
    assert config.read_text() == saved  # the bad zone changed nothing
    [backup] = tmp_path.glob("device.yaml.*.bak")
    assert backup.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "screenshots") == \
        ["device.yaml", backup.name, "work"]


def test_live_rtsp_camera_plate_and_walk_numbers(browser, started, tmp_path, models_dir, shots):
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"no {SYSTEM_PYTHON} for the GStreamer RTSP server: make system-deps")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port",
                               str(port), "--file", str(CLIPS / "OneLeaveShop1front.mpg")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "READY":
            pytest.fail(f"GStreamer's RTSP server did not start (make system-deps): "
                        f"{server.stderr.read()[:200]}")
        config = setup_config(tmp_path, models_dir, source=f"rtsp://127.0.0.1:{port}/cam")
        setup = started(config, "--plate-seconds", "8")
        _open(browser, setup)
        plate = _plate_as_shown(browser)
        assert plate.shape == (288, 384, 3)
        assert len(load_detector(load_config(config)).detect(plate)) == 0
        browser.save_screenshot(str(shots / "setup-rtsp-plate.png"))
        browser.find_element("id", "check-start").click()
        _wait_text(browser, "check-status", "running", 60)
        if NAMESPACES:  # the camera is read in its own, empty network namespace
            [reader] = setup.pixel_processes()
            assert os.readlink(f"/proc/{reader}/ns/net") != \
                os.readlink(f"/proc/{setup.process.pid}/ns/net")
        wait_for(lambda: int(_text(browser, "check-status").split(" - ")[1].split()[0]) > 20,
                 60, lambda: _text(browser, "check-status"))
        assert _text(browser, "line-shop_door-in").isdigit()
        browser.find_element("id", "check-stop").click()
        _wait_text(browser, "check-status", "stopped", 30)
        browser.find_element("id", "close").click()
        assert setup.process.wait(30) == 0
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)


def test_unreachable_camera_is_one_line_on_the_page(browser, started, tmp_path, models_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    config = setup_config(tmp_path, models_dir, source=f"rtsp://cam:pw@127.0.0.1:{port}/cam")
    setup = started(config)
    browser.delete_all_cookies()
    browser.get(setup.url)
    line = _wait_text(browser, "plate-status", "cannot open the stream")
    assert line == f"rtsp://***@127.0.0.1:{port}/cam: cannot open the stream (refused, " \
        "unreachable or not a video)"
    assert browser.find_element("id", "plate-status").get_attribute("class") == "status error"
    assert "pw@" not in browser.page_source
    wait_for(lambda: any(line in text for text in setup.stderr), 10, "the terminal line")
