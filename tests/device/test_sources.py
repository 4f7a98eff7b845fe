import sys
import types

import numpy as np
import pytest

from appliance.device.sources import FileSource, RateCap, open_source
from appliance.device.sources.adaptive import AdaptiveRate
from appliance.errors import SourceError, redact_url
from tests.conftest import CLIPS


def test_rate_cap_keeps_every_fifth_frame_of_25fps_at_5fps():
    cap = RateCap(5)
    kept = [k for k in range(50) if cap.due(k / 25)]
    assert kept == list(range(0, 50, 5))


def test_rate_cap_off_keeps_everything():
    cap = RateCap(None)
    assert all(cap.due(k / 25) for k in range(10))


def test_file_source_timestamps_are_media_time_under_a_cap():
    source = FileSource(str(CLIPS / "OneLeaveShop1front.mpg"), max_fps=5)
    stamps = [t for _, t in source]
    assert len(stamps) == 59 and stamps[1] == pytest.approx(0.2)
    assert np.allclose(np.diff(stamps), 0.2)
    assert source.stats.frames_read == 295 and source.stats.frames_skipped == 236


def test_missing_v4l2_device_and_picamera_are_clear_errors():
    with pytest.raises(SourceError, match="/dev/video42: cannot open the stream"):
        open_source("/dev/video42")
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="picamera2 is not installed"):
            open_source("picamera")


def test_passwords_in_camera_urls_are_never_printed():
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"


class _StandInPicamera2:
    """picamera2's Picamera2, as far as PiCameraSource uses it (Raspberry Pi OS only: a
    unit test of the rate logic; the real camera is not testable on this machine)."""

    def __init__(self, index):
        self.frames = 0

    def configure(self, config):
        pass

    def create_video_configuration(self, main):
        return main

    def start(self):
        pass

    def stop(self):
        pass

    def capture_request(self):
        self.frames += 1
        return types.SimpleNamespace(release=lambda: None)

    def capture_array(self, stream):
        self.frames += 1
        return np.zeros((4, 4, 3), np.uint8)


def test_adaptive_rate_moves_the_pi_camera_s_cap(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2",
                        types.SimpleNamespace(Picamera2=_StandInPicamera2))
    source = open_source("picamera", max_fps=10)
    adaptive = AdaptiveRate(source, 10)
    frames = iter(source)
    next(frames)
    adaptive.after_run(0.25, 0.0)  # 0.25 s a detector run: 2 a second take half the time
    assert adaptive.fps_cap == 2.0 and source.rate.interval == 0.5
    source.stop.set()


def test_ffmpeg_source_stamps_each_frame_with_its_own_pts_across_a_gap(tmp_path):
    """A clip with two seconds missing (a camera that stalled, variable frame rate): the
    ffmpeg child's frames keep their own timestamps, the rate cap picks by them as RateCap
    does, and nothing is stamped inside the gap."""
    import subprocess

    from appliance.device.sources.ffmpeg import FFmpegSource

    clip = tmp_path / "gap.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i",
                    str(CLIPS / "OneLeaveShop1front.mpg"), "-vf",
                    "select='not(between(n,100,149))'", "-fps_mode", "passthrough",
                    "-c:v", "libx264", "-preset", "ultrafast", str(clip)], check=True)
    every = [t for _, t in FFmpegSource(str(clip))]
    assert len(every) == 245
    gap = np.diff(every).max()
    assert gap == pytest.approx(2.04, abs=0.005)  # frames 99 -> 150, as sent
    source = FFmpegSource(str(clip), max_fps=5)
    capped = [t for _, t in source]
    cap = RateCap(5)
    assert capped == [t for t in every if cap.due(t)]
    assert not any(every[99] < t < every[100] for t in capped)
    assert source.stats.frames_read == 245
    assert source.stats.frames_skipped == 245 - len(capped)


def test_ffmpeg_stamps_keep_milliseconds_a_day_into_a_stream():
    """showinfo's pts_time has 6 significant digits (86400.04 s reads 86400): the stamp is
    the integer pts in the filter's time base instead. A unit test of the log parsing."""
    import io
    import queue

    from appliance.device.sources.ffmpeg import FFmpegSource

    source = FFmpegSource(str(CLIPS / "OneLeaveShop1front.mpg"), max_fps=5)
    source._command()  # names the stamping filter
    log = io.BytesIO(
        b"[Parsed_showinfo_2 @ 0x1] config in time_base: 1/90000, frame_rate: 25/1\n"
        b"[Parsed_showinfo_0 @ 0x2] n:7 pts:7776003600 pts_time:86400 pos:1 fmt:yuv420p\n"
        b"[Parsed_showinfo_2 @ 0x1] n:0 pts:7776003600 pts_time:86400 pos:1 fmt:yuv420p\n"
        b"[Parsed_showinfo_0 @ 0x2] n:8 pts:7776007200 pts_time:86400.1 pos:2 fmt:yuv420p\n"
        b"[Parsed_showinfo_0 @ 0x2] n:9 pts:NOPTS pts_time:NOPTS pos:3 fmt:yuv420p\n"
        b"[Parsed_showinfo_2 @ 0x1] n:1 pts:NOPTS pts_time:NOPTS pos:3 fmt:yuv420p\n")
    stamps: queue.Queue = queue.Queue()
    source._drain(log, stamps)
    assert stamps.get_nowait() == pytest.approx(86400.04, abs=1e-6)
    assert stamps.get_nowait() is None and stamps.empty()  # no PTS: the source decides
    assert (source.stats.frames_read, source.stats.frames_skipped) == (3, 1)


def test_only_decoder_nodes_count_as_the_board_s_hardware_decoder(tmp_path):
    """A Pi 4's V4L2 nodes as sysfs names them (a unit test: no Pi here): the decoder is
    found, its encoder and ISP (also "codec") and a USB camera are not."""
    from appliance.device.isolation import hardware_decoder_nodes

    names = {"video0": "UVC Camera (046d:0825)", "video10": "bcm2835-codec-decode",
             "video11": "bcm2835-codec-encode", "video12": "bcm2835-codec-isp",
             "video19": "rpivid"}
    for node, name in names.items():
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n")
    assert hardware_decoder_nodes(tmp_path) == ("/dev/video10", "/dev/video19")
    assert hardware_decoder_nodes(tmp_path / "none") == ()


@pytest.mark.parametrize("board, codec, size, takes", [
    ("pi4", "h264", (1920, 1080), True), ("pi4", "h264", (3840, 2160), False),
    ("pi4", "hevc", (1280, 720), False), ("pi5", "hevc", (3840, 2160), True),
    ("pi5", "h264", (640, 360), False), ("jetson", "h264", (1920, 1080), True),
    ("jetson", "mpeg4", (640, 480), False),
    ("other", "hevc", (3840, 2160), True)])
def test_auto_tries_the_hardware_decoder_only_within_the_board_s_limits(board, codec, size,
                                                                         takes):
    from appliance.device.decode_budget import hardware_takes

    assert hardware_takes(board, codec, *size) is takes
