"""The installer's setup page over real HTTP, from a real process on a real CAVIAR clip:
the people-free plate (checked with the real detector), refusals, saving with comments kept,
the walk test's numbers, and bad input as one line with nothing written.

The browser (Chromium) drives the same page in test_setup_browser.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import yaml

from appliance.device.config import load_config
from appliance.device.pipeline import load_detector
from appliance.device.sources import FileSource
from tests.conftest import CLIPS, NAMESPACES, REPO, shopper_edge, truth_counts, wait_for
from tests.setup_page import Client, SetupProcess, setup_config

DOOR = {"name": "shop_door", "points": [[205, 147], [330, 147]], "in_side_point": [267, 110]}
SHOP = {"name": "shop_floor", "kind": "area",
        "points": [[205, 60], [330, 60], [330, 147], [205, 147]]}


def _drawing(**changes) -> dict:
    drawing = {"lines": [DOOR], "zones": [SHOP], "roi": None,
               "motion_mask": [[[0, 0], [384, 0], [384, 12], [0, 12]]], "floor": None}
    drawing.update(changes)
    return drawing


@pytest.fixture
def workdir(tmp_path):
    """An empty working directory: whatever the setup writes shows up here."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def started(tmp_path, models_dir, workdir):
    processes = []

    def start(*extra, config=None, **kwargs):
        config = config or setup_config(tmp_path, models_dir, **kwargs)
        process = SetupProcess(config, "--report-dir", str(workdir), *extra, cwd=workdir)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def test_plate_is_people_free_and_only_in_memory(started, tmp_path, workdir):
    setup = started()
    setup.open_session()
    state = setup.wait_plate()
    assert state["plate"]["state"] == "ready", state["plate"]
    assert state["frame_size"] == [384, 288]
    status, png = setup.client.get("/api/plate.png")
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    plate = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert plate.shape == (288, 384, 3)
    config = tmp_path / "device.yaml"
    # The same detector finds people (and the mannequins) on the clip's frames ...
    detector = load_detector(load_config(config))
    clip = FileSource(str(CLIPS / "OneLeaveShopReenter1front.mpg"))
    frames = [f for i, (f, _t) in enumerate(clip) if i % 40 == 0]
    assert sum(len(detector.detect(f)) for f in frames) > len(frames)
    # ... and nothing on the plate: people left out, the mannequins' spots blanked.
    assert len(detector.detect(plate)) == 0
    blanked = int(state["plate"]["message"].split("(")[1].split("%")[0])
    assert blanked in range(1, 21), state["plate"]["message"]
    # The mannequin inside the door stood there throughout: its spot is a smooth fill.
    spot = plate[65:115, 300:330].astype(float)
    assert spot.std(axis=(0, 1)).max() < 15 < frames[0][65:115, 300:330].std(axis=(0, 1)).min()
    # The rest is the scene: close to a frame's background away from people.
    assert np.abs(plate[150:280].astype(int) - frames[0][150:280].astype(int)).mean() < 12
    # Nothing written anywhere: no image, no file at all.
    assert setup.client.post("/api/close", {})[0] == 200
    assert setup.process.wait(30) == 0
    assert list(workdir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.yaml", "work"]


def test_refusals(started):
    setup = started()
    # No token, a wrong token: nothing but the refusal.
    assert Client(setup.base).get("/api/state")[0] == 403
    status, body = Client(setup.base).get("/?token=wrong")
    assert status == 403 and b"wrong token" in body
    assert Client(setup.base).get("/api/plate.png")[0] == 403
    setup.open_session()
    assert setup.client.get("/api/state")[0] == 200
    # A second installer with the right token while one edits.
    status, body = Client(setup.base).get(setup.url)
    assert status == 409 and b"another installer is already editing" in body
    # A web page elsewhere pointing a browser here (DNS rebinding): a foreign Host.
    status, body = setup.client.get("/api/state", headers={"Host": "evil.example:80"})
    assert status == 403 and b"not this machine" in body
    # From the network: bound to 127.0.0.1 only, nothing answers on the other addresses.
    port = int(setup.base.rsplit(":", 1)[1])
    for address in _other_addresses():
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))


def _other_addresses() -> list[str]:
    result = subprocess.run(["hostname", "-I"], capture_output=True, text=True)
    return [a for a in result.stdout.split() if not a.startswith("127.") and ":" not in a]


def test_save_keeps_comments_and_other_keys_and_check_config_accepts(started, tmp_path):
    setup = started(geometry=False)
    setup.open_session()
    wait_for(lambda: setup.state()["frame_size"], 60, "the first frame")
    config = tmp_path / "device.yaml"
    before = config.read_text()
    assert setup.state()["drawing"]["lines"] == []
    status, result = setup.client.post("/api/validate", _drawing())
    assert status == 200 and result == {"ok": True, "suggestions": []}
    floor = {"points": [[100, 200], [300, 200], [330, 260], [70, 260]],
             "width_m": 4.0, "depth_m": 2.5}
    status, result = setup.client.post("/api/save", _drawing(floor=floor))
    assert status == 200 and result["ok"], result
    after = config.read_text()
    # The backup is the file as it was; every comment and other key survives.
    backup = tmp_path / os.path.basename(result["backup"])
    assert backup.read_text() == before
    for line in before.splitlines():
        if "#" in line and "lines" not in line:
            assert line in after, line
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    camera = new["cameras"][0]
    assert camera["lines"] == {"shop_door": {"points": DOOR["points"],
                                             "in_side_point": DOOR["in_side_point"]}}
    assert camera["zones"] == {"shop_floor": {"kind": "area", "points": SHOP["points"]}}
    h = np.array(camera.pop("homography"))
    for key in ("lines", "zones"):
        camera.pop(key)
    assert new == old
    # The floor rectangle's corners land on its measured metres.
    corners = np.array(floor["points"], float)
    metres = cv2.perspectiveTransform(corners[None], h)[0]
    assert np.allclose(metres, [[0, 0], [4, 0], [4, 2.5], [0, 2.5]], atol=1e-3)
    check = shopper_edge("check-config", config)
    assert check.returncode == 0 and "1 lines, 1 zones" in check.stdout, check.stderr
    # Saving again (within the same second, too) changes nothing and keeps both backups.
    status, result = setup.client.post("/api/save", _drawing(floor=floor))
    assert status == 200 and config.read_text() == after
    backups = sorted(p.read_text() for p in tmp_path.glob("device.yaml.*.bak"))
    assert len(backups) == 2 and before in backups and after in backups


def test_walk_test_counts_the_clip_and_records_a_report(started, workdir):
    setup = started()
    setup.open_session()
    wait_for(lambda: setup.state()["frame_size"], 60, "the first frame")
    # A second line where both shoppers first appear, inside the shop (their feet at
    # y 117-119 in this clip): fragile, and the walk test says so.
    inner = {"name": "inner", "points": [[205, 120], [330, 120]], "in_side_point": [267, 90]}
    status, result = setup.client.post("/api/check/start",
                                       {"drawing": _drawing(lines=[DOOR, inner])})
    assert status == 200 and result["ok"]
    wait_for(lambda: setup.state()["check"]["state"] == "finished", 240,
             lambda: f"the walk test: {setup.state()['check']}")
    check = setup.state()["check"]
    truth = truth_counts("OneLeaveShopReenter1front.mpg")
    assert check["lines"]["shop_door"] == truth
    assert check["suggestions"] == [
        "line inner: 2 of 2 people were first seen already on the line, so which way they "
        "crossed is a guess; move the line to where people are seen before they reach it"]
    assert check["frames"] == 390 and check["fps"] > 0
    assert check["zones"]["shop_floor"]["max"] >= 1
    status, result = setup.client.post("/api/check/record", {"expected": {"shop_door": truth}})
    assert status == 200 and result["report"]["result"] == "pass"
    # Only the line the installer walked is judged; the other is reported, not judged.
    assert result["report"]["lines"]["inner"]["match"] is None
    # Both appeared on the inner line; the one who leaves the shop goes on from it towards
    # the door, which the counter takes as an "out" once they leave its band (issue 15's
    # first-seen-on-the-line rule); the suggestion above still flags the line as fragile.
    assert check["lines"]["inner"] == {"in": 0, "out": 1}
    report = json.loads((workdir / os.path.basename(result["path"])).read_text())
    assert report["lines"]["shop_door"] == {"expected": truth, "counted": truth, "match": True}
    assert "line inner: 2 of 2 people" in report["suggestions"][0]
    assert report["camera_id"] == "front" and report["frames"] == 390
    wait_for(lambda: any("walk test pass: shop_door in 1/1 out 1/1, inner" in line
                         for line in setup.stderr), 10, "the result in the terminal")
    # A wrong expectation is recorded as a fail.
    wrong = {"shop_door": {"in": 3, "out": 1}}
    assert setup.client.post("/api/check/record", {"expected": wrong})[1]["report"]["result"] \
        == "fail"
    # Only the two reports were written (numbers and names, no image).
    assert all(p.suffix == ".json" for p in workdir.iterdir())


def test_suggestions_for_fragile_geometry(started):
    setup = started()
    setup.open_session()
    wait_for(lambda: setup.state()["frame_size"], 60, "the first frame")
    edge = {"name": "edge", "points": [[1, 150], [120, 150]], "in_side_point": [60, 100]}
    tiny = {"name": "tiny", "points": [[200, 100], [215, 100]], "in_side_point": [207, 90]}
    status, result = setup.client.post("/api/validate", _drawing(lines=[edge, tiny]))
    assert status == 200 and result["ok"]
    text = "\n".join(result["suggestions"])
    assert "line edge: an end is 1 px from the frame edge" in text
    assert "line tiny: the door is 16 px wide at the detector's input" in text
    assert "line edge: the door" not in text and "line tiny: an end" not in text


@pytest.mark.parametrize("drawing, message", [
    (_drawing(zones=[{"name": "bow", "kind": "queue",
                      "points": [[10, 10], [100, 100], [100, 10], [10, 100]]}]),
     "cameras[0].zones.bow.points: the polygon crosses itself (edges 1 and 3)"),
    (_drawing(lines=[{"name": "door", "points": [[50, 50], [50, 50]]}]),
     "cameras[0].lines.door.points: the two points are the same"),
    (_drawing(roi=[[0, 0], [200, 200], [200, 0], [0, 200]]),
     "cameras[0].roi: the polygon crosses itself"),
    (_drawing(lines=[{"name": "bad name!", "points": [[1, 1], [9, 9]]}]),
     "must be 1-64 letters"),
])
def test_bad_drawing_is_one_line_and_nothing_is_written(started, tmp_path, drawing, message):
    setup = started()
    setup.open_session()
    wait_for(lambda: setup.state()["frame_size"], 60, "the first frame")
    config = tmp_path / "device.yaml"
    before = config.read_text()
    for path in ("/api/validate", "/api/save"):
        status, result = setup.client.post(path, drawing)
        assert status == 422 and not result["ok"]
        assert message in result["error"] and "\n" not in result["error"]
        assert result["error"].startswith(str(config))
    assert config.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.yaml", "work"]
    wait_for(lambda: any(message in line for line in setup.stderr), 10,
             "the line in the terminal")


def test_unwritable_config_is_one_line_and_nothing_is_written(started, tmp_path, models_dir):
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    config = setup_config(config_dir, models_dir)
    before = config.read_text()
    setup = started(config=config)
    setup.open_session()
    wait_for(lambda: setup.state()["frame_size"], 60, "the first frame")
    _make_read_only(config_dir)
    try:
        status, result = setup.client.post("/api/save", _drawing())
        assert status == 422
        assert result["error"].startswith(f"{config}: cannot write: ")
        assert "\n" not in result["error"]
        assert config.read_text() == before
        assert [p.name for p in config_dir.iterdir()] == ["device.yaml"]
        wait_for(lambda: any("cannot write" in line for line in setup.stderr), 10,
                 "the line in the terminal")
    finally:
        _make_writable(config_dir)


def _make_read_only(directory) -> None:
    """root ignores permissions: make the folder and the file immutable then."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.fail("running as root without chattr (e2fsprogs: make system-deps)")
        for path in (directory / "device.yaml", directory):
            subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        (directory / "device.yaml").chmod(0o444)
        directory.chmod(0o555)


def _make_writable(directory) -> None:
    if os.geteuid() == 0:
        for path in (directory, directory / "device.yaml"):
            subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        directory.chmod(0o755)
        (directory / "device.yaml").chmod(0o644)


def test_unreachable_camera_is_one_line_on_the_page_and_in_the_terminal(started, workdir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    setup = started(source=f"rtsp://user:secret@127.0.0.1:{port}/cam")
    setup.open_session()
    state = setup.wait_plate(60)
    message = state["plate"]["message"]
    assert state["plate"]["state"] == "error"
    assert message == f"rtsp://***@127.0.0.1:{port}/cam: cannot open the stream " \
        "(refused, unreachable or not a video)"
    wait_for(lambda: any(message in line for line in setup.stderr), 10, "the terminal line")
    assert "secret" not in "\n".join(setup.stderr)
    assert setup.client.get("/api/plate.png")[0] == 409
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--camera", "back"], "no camera 'back' (cameras: front)"),
    (["--camera", "front", "--config", "/nonexistent/device.yaml"],
     "/nonexistent/device.yaml: no such file"),
])
def test_bad_command_line_is_one_line(tmp_path, models_dir, args, message):
    config = setup_config(tmp_path, models_dir)
    result = shopper_edge("setup", "--config", config, *args, "--port", "0", timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_non_local_address_is_refused_under_systemd(tmp_path, models_dir):
    config = setup_config(tmp_path, models_dir)
    result = subprocess.run(
        [sys.executable, "-m", "appliance.device.cli", "setup", "--config", str(config),
         "--camera", "front", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "INVOCATION_ID": "0123456789abcdef"})
    assert result.returncode == 2
    assert result.stderr.strip() == "shopper-edge: error: --host 0.0.0.0: the setup page " \
        "listens only on this machine when started by systemd"


def test_stops_after_the_idle_timeout_though_the_page_polls(started):
    setup = started("--idle-minutes", "0.05")
    setup.open_session()
    while setup.process.poll() is None:  # an open tab asks for the state every second
        try:
            setup.client.get("/api/state")
        except OSError:  # closing
            pass
        time.sleep(0.5)
    assert setup.process.wait(30) == 0
    wait_for(lambda: any("nothing done on the page for 3 s" in line for line in setup.stderr),
             10, "the closing line")


def test_port_in_use_is_one_line(tmp_path, models_dir):
    config = setup_config(tmp_path, models_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = shopper_edge("setup", "--config", config, "--camera", "front", "--port", port,
                              timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"shopper-edge: error: 127.0.0.1:{port}: cannot listen: " \
        "Address already in use"


def test_busy_checkout_plate_is_people_free(tmp_path, models_dir):
    """The supermarket clip (720p, cashiers who never leave, a queue, 2x2 tiles): the pixel
    process makes a plate on which the detector finds nobody, a large share of it filled
    where people stayed."""
    import base64

    from tests.conftest import DATA

    raw = yaml.safe_load((REPO / "examples" / "supermarket-checkout.yaml").read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["cameras"][0]["source"] = str(DATA / "supermarket" / "supermarket.mp4")
    raw.setdefault("privacy", {})["isolate_pixels"] = NAMESPACES
    config = tmp_path / "checkout.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "appliance.device.setup.pixels", "--config",
                             str(config), "--camera", "checkout", "--task", "plate"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-500:] + result.stderr[-2000:]
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    [made] = [m for m in messages if "plate" in m]
    assert 0.1 < made["blanked"] < 0.6
    plate = cv2.imdecode(np.frombuffer(base64.b64decode(made["plate"]), np.uint8),
                         cv2.IMREAD_COLOR)
    assert plate.shape == (540, 960, 3)  # 1280x720, at most 960 wide
    detector = load_detector(load_config(config))
    assert len(detector.detect(plate)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkout.yaml"]


def test_the_pixel_process_can_write_no_file_and_dump_no_core(tmp_path, models_dir, workdir):
    """The setup's pixel process holds frames as the pixel worker does, and setup runs as
    root: code inside it, once it is under way (a hook Python runs there, as a compromised
    decoder's code would), tries to create a file in the working directory, tmp and the
    config's folder. Every attempt is refused, and it is non-dumpable with no core limit."""
    from tests.device.test_isolation import WRITE_PROBE, landlock_abi

    config = setup_config(tmp_path, models_dir)
    hooks, tmp = tmp_path / "hooks", tmp_path / "tmp"
    hooks.mkdir()
    tmp.mkdir()
    (hooks / "sitecustomize.py").write_text(WRITE_PROBE)
    probed = (workdir, tmp, tmp_path) if landlock_abi() else ()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=os.pathsep.join([str(hooks), str(REPO)]),
               WRITE_PROBE_MAIN="appliance.device.setup.pixels",
               WRITE_PROBE_DIRS=":".join(map(str, probed)))
    result = subprocess.run([sys.executable, "-m", "appliance.device.setup.pixels", "--config",
                             str(config), "--camera", "front", "--task", "plate",
                             "--samples", "8", *(["--isolate"] if NAMESPACES else [])],
                            capture_output=True, text=True, cwd=workdir, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-500:] + result.stderr[-2000:]
    assert any("plate" in json.loads(line) for line in result.stdout.splitlines())
    assert "probe: dumpable 0 core (0, 0)" in result.stderr, result.stderr[-2000:]
    assert probed or "Landlock is not available" in result.stderr
    for directory in probed:
        assert f"probe: {directory}: refused: Permission denied" in result.stderr, \
            result.stderr[-2000:]
        assert not (directory / "stolen.raw").exists()
    assert list(workdir.iterdir()) == [] and list(tmp.iterdir()) == []
