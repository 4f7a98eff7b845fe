"""`shopper-edge eval door`: door counts of recorded clips at every phase of every rate and
at a starved board's uneven paces (the replays themselves: tests/device/test_rate_phases.py)."""

import json

import numpy as np
import pytest
import yaml

from appliance.device.detect.detections import Detections
from appliance.lab.eval.door import at_pace, at_phase
from tests.conftest import CLIPS, DATA, EXAMPLE, shopper_edge

TRUTH = DATA / "caviar_front" / "truth.json"
CLIP = CLIPS / "OneLeaveShop1front.mpg"
LOOKS = [(k * 0.04, Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
         for k in range(100)]


@pytest.fixture
def config(tmp_path, models_dir):
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"].update(dir=str(models_dir), threads=1)
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_clip_is_replayed_at_every_phase_and_pace(config, tmp_path):
    """Exact at every phase of every rate (tests/device/test_rate_phases.py sweeps all the
    clips); against counts it never reaches (a wrong truth), every run is listed."""
    result = shopper_edge("eval", "door", CLIP, "--config", config, "--truth", TRUTH,
                          "--paces", "4", "--gaps", "0.12-0.3", "0.04-0.12")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["OneLeaveShop1front.mpg"]
    assert report["truth"] == [0, 1] and report["phase_runs"] == 24
    assert report["wrong_phases"] == []
    assert set(report["gaps"]) == {"0.12-0.3", "0.04-0.12"}
    for runs in report["gaps"].values():
        assert runs["wrong"] == len(runs["paces"]) and set(runs["paces"]) <= set(range(4))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({CLIP.name: [1, 1]}))
    result = shopper_edge("eval", "door", CLIP, "--config", config, "--truth", wrong,
                          "--paces", "3", "--gaps", "0.04-0.12")
    report = json.loads(result.stdout)[CLIP.name]
    assert len(report["wrong_phases"]) == 24 and [6, 0] in report["wrong_phases"]
    assert report["gaps"]["0.04-0.12"] == {"wrong": 3, "paces": [0, 1, 2]}


def test_a_camera_drawn_in_fractions_of_the_frame_counts_the_same(config, tmp_path):
    """The camera's geometry is scaled to the clip's pixels as the pipeline scales it."""
    raw = yaml.safe_load(config.read_text())
    camera = raw["cameras"][0]

    def fraction(points):
        return [[x / 384, y / 288] for x, y in points]

    camera["coordinates"] = "fraction"
    camera["motion_mask"] = [fraction(p) for p in camera["motion_mask"]]
    for line in camera["lines"].values():
        line["points"] = fraction(line["points"])
        line["in_side_point"] = fraction([line["in_side_point"]])[0]
    for zone in camera["zones"].values():
        zone["points"] = fraction(zone["points"])
    path = tmp_path / "fraction.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = shopper_edge("eval", "door", CLIP, "--config", path, "--truth", TRUTH,
                          "--paces", "0")
    assert result.returncode == 0, result.stderr
    # exact at every phase, as the pixel config is (scaled wrongly, it counted nothing)
    assert json.loads(result.stdout)["OneLeaveShop1front.mpg"]["wrong_phases"] == []


def test_a_pace_takes_frames_at_uneven_gaps_the_same_every_time():
    frames = at_pace(LOOKS, 7, (0.12, 0.3))
    gaps = np.diff([t for t, _ in frames])
    assert gaps.min() >= 0.12 - 1e-9 and gaps.max() <= 0.32 + 1e-9 and len(set(gaps)) > 1
    assert frames[0][0] < 8 * 0.04 and [t for t, _ in at_pace(LOOKS, 7, (0.12, 0.3))] == \
        [t for t, _ in frames]
    # looped as an RTSP server loops a clip: media time runs on
    looped = [t for t, _ in at_pace(LOOKS, 7, (0.12, 0.3), loops=2)]
    assert looped[-1] > 4.0 and np.all(np.diff(looped) > 0)
    assert [t for t, _ in at_pace(LOOKS, 7, (0.12, 0.3), stop=2.0)][-1] < 2.0


def test_a_phase_takes_the_frames_a_rate_cap_passes():
    assert [round(t, 2) for t, _ in at_phase(LOOKS, 6.25, 1)][:3] == [0.04, 0.2, 0.36]


@pytest.mark.parametrize("args, message", [
    (["--gaps", "0.3-0.1"], "--gaps 0.3-0.1: expected LOW-HIGH seconds"),
    (["--gaps", "fast"], "--gaps fast: expected LOW-HIGH seconds"),
    (["--paces", "-1"], "--paces -1: expected a whole number"),
])
def test_bad_arguments_are_one_line(config, args, message):
    result = shopper_edge("eval", "door", CLIP, "--config", config, "--truth", TRUTH, *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_clip_without_truth_is_one_line(config, tmp_path):
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"other.mpg": [1, 1]}))
    result = shopper_edge("eval", "door", CLIP, "--config", config, "--truth", truth)
    assert result.returncode == 2
    assert f"{truth}: no [in, out, ...] counts for OneLeaveShop1front.mpg" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = shopper_edge("eval", "door", CLIP, "--config", config, "--truth",
                          tmp_path / "none.json")
    assert result.returncode == 2 and "none.json: cannot read the truth" in result.stderr
