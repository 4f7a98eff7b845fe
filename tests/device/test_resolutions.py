"""High-resolution cameras (issue 17): the same counts at any resolution, and frames decoded
by an ffmpeg or GStreamer child that drops and scales them before they reach Python, each
with its own stream timestamp (tests/device/test_sources.py checks those across a gap)."""

import json
import logging
import subprocess
from functools import partial

import numpy as np
import pytest
import yaml

from appliance.device.sources.ffmpeg import DECODE_MAX_WIDTH, FFmpegSource
from appliance.device.sources.gstreamer import GStreamerSource
from appliance.errors import SourceError
from tests.conftest import CLIPS, EXAMPLE, shopper_edge, truth_counts, wait_for
from tests.setup_page import SetupProcess, setup_config

CLIP = "EnterExitCrossingPaths1front"
NATIVE = (384, 288)
SIZES = {"native": NATIVE, "1080p": (1440, 1080), "4k": (3840, 2880)}


@pytest.fixture(scope="session")
def upscaled_clips(tmp_path_factory) -> dict:
    """The clip as a 1080p and a 4K camera would send it: upscaled, H.264 (made once)."""
    folder = tmp_path_factory.mktemp("hires")
    clips = {"native": CLIPS / f"{CLIP}.mpg"}
    for name, (width, height) in SIZES.items():
        if name == "native":
            continue
        clips[name] = folder / f"{CLIP}-{name}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(clips["native"]),
                        "-vf", f"scale={width}:{height}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-crf", "20", "-an", str(clips[name])],
                       check=True, timeout=600)
    return clips


def _scaled_config(tmp_path, models_dir, clip, factor: float, decoder: str = "auto"):
    """The example's geometry in pixels of the bigger frame, as an installer would draw it."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(models_dir)
    camera = raw["cameras"][0]
    camera["source"] = str(clip)
    camera["decoder"] = decoder

    def scale(points):
        return [[v * factor for v in point] for point in points]

    camera["motion_mask"] = [scale(p) for p in camera["motion_mask"]]
    for line in camera["lines"].values():
        line["points"] = scale(line["points"])
        line["in_side_point"] = scale([line["in_side_point"]])[0]
    for zone in camera["zones"].values():
        zone["points"] = scale(zone["points"])
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("decoder", ["auto", "gstreamer"])  # the ffmpeg child, GStreamer's
@pytest.mark.parametrize("size", list(SIZES))
def test_same_counts_at_native_1080p_and_4k(size, decoder, upscaled_clips, tmp_path,
                                            models_dir):
    factor = SIZES[size][0] / NATIVE[0]
    clip = upscaled_clips[size]
    result = shopper_edge("replay", clip, "--config",
                          _scaled_config(tmp_path, models_dir, clip, factor, decoder),
                          timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lines"]["shop_door"] == truth_counts(f"{CLIP}.mpg")


@pytest.mark.parametrize("child", [FFmpegSource, partial(GStreamerSource, decoder="gstreamer")],
                         ids=["ffmpeg", "gstreamer"])
def test_4k_frames_are_scaled_in_the_decoder_and_capped_frames_never_reach_python(
        child, upscaled_clips):
    source = child(str(upscaled_clips["4k"]), max_fps=5)
    assert source.source_size == (3840, 2880)
    stamps = []
    for frame, timestamp in source:
        assert frame.shape == (960, DECODE_MAX_WIDTH, 3) and frame.dtype == np.uint8
        stamps.append(timestamp)
    frames = 384  # the clip's frames at 25 fps
    assert len(stamps) == pytest.approx(frames / 5, abs=1)
    assert np.allclose(np.diff(stamps), 0.2)
    assert source.stats.frames_read == frames
    assert source.stats.frames_skipped == frames - len(stamps)


def test_a_missing_hardware_decoder_falls_back_to_software_with_one_line(
        upscaled_clips, caplog):
    # This machine has no V4L2 memory-to-memory decoder: ffmpeg's h264_v4l2m2m fails to
    # open, and the child is restarted in software, saying so once.
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    source = FFmpegSource(str(upscaled_clips["1080p"]), max_fps=5, decoder="v4l2m2m")
    assert source.codec == "h264" and source.decoder == "v4l2m2m"
    frames = sum(1 for _ in source)
    assert frames == pytest.approx(384 / 5, abs=1) and source.decoder == "software"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "v4l2m2m decoder did not start" in lines[0] \
        and "decoding in software" in lines[0], lines


def test_a_decoder_without_the_codec_says_software_at_once(caplog):
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    source = FFmpegSource(str(CLIPS / "OneLeaveShop1front.mpg"), decoder="v4l2m2m")
    assert source.decoder == "software"
    assert [r.getMessage() for r in caplog.records] == [
        f"{CLIPS / 'OneLeaveShop1front.mpg'}: decoder v4l2m2m has no mpeg1video decoder; "
        "decoding in software"]


def test_a_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(SourceError, match="bad.mp4: cannot open as a video"):
        FFmpegSource(str(bad))


def test_check_config_warns_about_a_4k_h264_stream_on_a_pi_4(upscaled_clips, tmp_path,
                                                             models_dir):
    config = _scaled_config(tmp_path, models_dir, upscaled_clips["4k"], 10)
    result = shopper_edge("check-config", "--board", "pi4", config)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if ": warning: " in line]
    assert warnings == [
        f"{config}: warning: cameras[0] (front): 3840x2880 H264 is more than Raspberry Pi 4 "
        "decodes in hardware (H264 up to 1920x1080): it is decoded in software, every frame "
        "at the camera's rate; use the camera's substream (most offer 640x360 or 704x576)"]
    # The Pi 4 decodes the 1080p stream in hardware, and the native clip is small: no warning.
    for size, factor in (("1080p", 3.75), ("native", 1)):
        config = _scaled_config(tmp_path, models_dir, upscaled_clips[size], factor)
        result = shopper_edge("check-config", "--board", "pi4", config)
        assert result.returncode == 0 and ": warning: " not in result.stdout, result.stdout


def test_the_setup_page_advises_the_substream_too(upscaled_clips, tmp_path, models_dir):
    """The installer sees check-config's warning among the page's suggestions (this machine
    has no hardware decoder: a 1440x1080 H.264 stream is decoded in software)."""
    config = setup_config(tmp_path, models_dir, source=str(upscaled_clips["1080p"]),
                          geometry=False)
    setup = SetupProcess(config)
    try:
        setup.open_session()
        wait_for(lambda: setup.state()["frame_size"], 120, "the first frame")
        assert setup.state()["frame_size"] == [1440, 1080]  # the camera's own pixels
        door = {"name": "door", "points": [[769, 551], [1237, 551]],
                "in_side_point": [1001, 412]}
        status, result = setup.client.post("/api/validate", {
            "lines": [door], "zones": [], "roi": None, "motion_mask": [], "floor": None})
        assert status == 200 and result["ok"], result
        assert [s for s in result["suggestions"] if "substream" in s] == [
            "1440x1080 H264 is more than this board decodes in hardware (no hardware "
            "decoder used): it is decoded in software, every frame at the camera's rate; use the "
            "camera's substream (most offer 640x360 or 704x576)"]
    finally:
        setup.stop()
