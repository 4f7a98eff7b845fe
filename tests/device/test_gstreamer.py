"""The GStreamer child decoder (sources/gstreamer.py, issue 17): GStreamer's software
elements on a real file and a real RTSP stream count what the ffmpeg child counts, and
`decoder: nvdec` (a Jetson's nvv4l2decoder, absent here) falls back in one line.
tests/device/test_resolutions.py replays the clip at 1080p and 4K through both children."""

import json
import logging
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from appliance.device.sources import decoding_source
from appliance.device.sources.ffmpeg import FFmpegSource
from appliance.device.sources.gstreamer import GStreamerSource, element_present, on_jetson
from appliance.errors import SourceError
from tests.conftest import CLIPS, EXAMPLE, NAMESPACES, truth_counts, wait_for
from tests.device.test_rtsp import _free_port, _gst_rtsp_available, _kill, _start_server

CLIP = CLIPS / "EnterExitCrossingPaths1front.mpg"


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory):
    """The clip as an H.264 camera sends it (what NVDEC decodes), at its own size."""
    clip = tmp_path_factory.mktemp("h264") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-c:v", "libx264",
                    "-preset", "ultrafast", "-an", str(clip)], check=True, timeout=300)
    return clip


def test_frames_and_stamps_match_the_ffmpeg_child_s():
    """The same frames at the same times, counted the same way; pixels within a few grey
    levels (the two children's YUV -> BGR conversions round differently)."""
    gst = GStreamerSource(str(CLIP), max_fps=5, decoder="gstreamer")
    ffmpeg = FFmpegSource(str(CLIP), max_fps=5)
    ours = list(gst)
    theirs = list(ffmpeg)
    assert gst.source_size == ffmpeg.source_size == gst.frame_size == (384, 288)
    assert [t for _, t in ours] == pytest.approx([t for _, t in theirs], abs=1e-6)
    assert len(ours) == 77 and ours[1][1] == pytest.approx(0.2)
    assert gst.stats == ffmpeg.stats
    assert gst.stats.frames_read == 383 and gst.stats.frames_skipped == 383 - 77
    difference = [np.abs(a.astype(int) - b.astype(int)).mean()
                  for (a, _), (b, _) in zip(ours, theirs, strict=False)]
    assert max(difference) < 8, max(difference)


def test_odd_widths_arrive_unpadded(tmp_path):
    """GStreamer pads each BGR row to 4 bytes: a 350-pixel-wide stream still arrives as
    350x3 bytes a row, the picture unshifted."""
    clip = tmp_path / "odd.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-vf", "scale=350:262",
                    "-c:v", "libx264", "-preset", "ultrafast", "-frames:v", "10", str(clip)],
                   check=True, timeout=120)
    ours = [f for f, _ in GStreamerSource(str(clip), decoder="gstreamer")]
    theirs = [f for f, _ in FFmpegSource(str(clip))]
    assert len(ours) == len(theirs) == 10 and ours[0].shape == (262, 350, 3)
    assert max(np.abs(a.astype(int) - b.astype(int)).mean()
               for a, b in zip(ours, theirs, strict=True)) < 8


def test_nvdec_without_nvv4l2decoder_falls_back_in_one_line(h264_clip, caplog):
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    assert not element_present("nvv4l2decoder")  # no Jetson here
    source = GStreamerSource(str(h264_clip), max_fps=5, decoder="nvdec")
    assert source.decoder == "gstreamer"
    assert sum(1 for _ in source) == pytest.approx(384 / 5, abs=1)
    assert [r.getMessage() for r in caplog.records] == [
        f"{h264_clip}: decoder nvdec: GStreamer has no nvv4l2decoder here (not a Jetson, or "
        "JetPack's multimedia packages are missing); decoding in software (GStreamer)"]


def test_nvdec_that_does_not_start_falls_back_in_one_line(h264_clip, caplog, monkeypatch):
    """nvv4l2decoder listed but failing (here: really absent, so gst-launch refuses the
    pipeline): the child is restarted with the software elements, saying so once."""
    import appliance.device.sources.gstreamer as gstreamer

    monkeypatch.setattr(gstreamer, "element_present", lambda name: True)
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    source = GStreamerSource(str(h264_clip), max_fps=5, decoder="nvdec")
    assert source.decoder == "nvdec" and "nvv4l2decoder" in " ".join(source._command())
    assert sum(1 for _ in source) == pytest.approx(384 / 5, abs=1)
    assert source.decoder == "gstreamer"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "the nvdec decoder did not start" in lines[0] \
        and "nvv4l2decoder" in lines[0] and "decoding in software (GStreamer)" in lines[0], lines


def test_nvdec_without_the_codec_says_software_at_once(caplog):
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    source = GStreamerSource(str(CLIP), decoder="nvdec")
    assert source.decoder == "gstreamer"
    assert [r.getMessage() for r in caplog.records] == [
        f"{CLIP}: decoder nvdec has no mpeg1video decoder; decoding in software (GStreamer)"]


def test_auto_takes_gstreamer_s_nvdec_on_a_jetson_only(tmp_path, monkeypatch, caplog):
    release = tmp_path / "nv_tegra_release"
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 4 Model B Rev 1.4\x00")
    assert not on_jetson(release, model)
    release.write_text("# R36 (release), REVISION: 3.0\n")
    assert on_jetson(release, model)
    release.unlink()
    model.write_text("NVIDIA Jetson Orin Nano Developer Kit\x00")
    assert on_jetson(release, model)

    assert type(decoding_source(str(CLIP), decoder="auto")) is FFmpegSource  # not a Jetson
    import appliance.device.sources.gstreamer as gstreamer

    monkeypatch.setattr(gstreamer, "on_jetson", lambda: True)
    caplog.set_level(logging.WARNING, "shopper_edge.sources")
    source = decoding_source(str(CLIP), decoder="auto")
    assert type(source) is GStreamerSource and source.decoder == "gstreamer"
    assert "decoder nvdec has no mpeg1video decoder" in caplog.records[0].getMessage()


def test_replay_with_gstreamer_counts_the_truth(tmp_path, models_dir):
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["cameras"][0]["decoder"] = "gstreamer"
    config = tmp_path / "device.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "appliance.device.cli", "replay", str(CLIP),
                             "--config", str(config)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["lines"]["shop_door"] == truth_counts(CLIP.name)
    assert summary["frames"] == 383  # every frame of the clip (fps: 25)


@pytest.mark.parametrize("decoder", ["software", "gstreamer"])
def test_a_live_rtsp_stream_counts_the_truth_with_either_child(decoder, h264_clip, tmp_path,
                                                               models_dir):
    """A real RTSP server plays the clip (an .mp4: once per client, in real time);
    `shopper-edge run` (through the pixel worker and its camera relay where namespaces
    allow) counts what the clip holds, and is stopped when the stream ends (a reconnection
    would start the clip again)."""
    if not _gst_rtsp_available():
        pytest.fail("GStreamer's RTSP server is not installed: make system-deps")
    port = _free_port()
    server = _start_server(port, h264_clip)
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["window_seconds"] = 4
    raw["privacy"]["isolate_pixels"] = NAMESPACES
    raw["cameras"][0].update(source=f"rtsp://127.0.0.1:{port}/cam", decoder=decoder)
    config = tmp_path / "live.yaml"
    config.write_text(yaml.safe_dump(raw))
    out_path, err_path = tmp_path / "windows.jsonl", tmp_path / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        appliance = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run",
                                      "--config", str(config)], stdout=out, stderr=err)
    try:
        # The clip is 15.3 s; nobody crosses the door in its first seconds.
        wait_for(lambda: "stream lost" in err_path.read_text(), 90, err_path.read_text,
                 poll=0.2)
    finally:
        appliance.send_signal(signal.SIGTERM)
        appliance.wait(30)
        _kill(server)
    assert appliance.returncode == 0, err_path.read_text()
    totals = {"in": 0, "out": 0}
    for line in out_path.read_text().splitlines():
        for key in totals:
            totals[key] += json.loads(line)["lines"]["shop_door"][key] or 0
    assert totals == truth_counts(CLIP.name), err_path.read_text()


def test_without_gstreamer_installed_it_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gst-launch-1.0 on it
    with pytest.raises(SourceError, match=r"clip.mpg: gst-launch-1.0 is not installed \(apt "
                                          r"install gstreamer1.0-tools .*gstreamer1.0-libav\)"):
        GStreamerSource(str(tmp_path / "clip.mpg"), decoder="gstreamer")
