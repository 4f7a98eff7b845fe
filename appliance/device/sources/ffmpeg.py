"""Files and network streams decoded by an `ffmpeg` child process.

The child decodes (on the board's hardware decoder where there is one), drops the frames
above the processing rate before they are scaled or converted (its `fps` filter), scales
the rest down to at most DECODE_MAX_WIDTH with an area filter, and writes raw BGR frames to
a pipe: full 4K frames never cross into Python and nothing is written to disk. Geometry stays
in pixels of the camera's own frames: `source_size` is that size, `frame_size` what arrives.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from appliance.device.sources import STREAM_SCHEMES, RateCap, SourceStats
from appliance.errors import SourceError, redact_url

log = logging.getLogger("shopper_edge.sources")
# Wide enough for 2x2 detector tiles (416 px each) and faces of min_face_px on a 4K camera's
# door; a 4K BGR frame is 24.9 MB, a 1280x720 one 2.8 MB.
DECODE_MAX_WIDTH = 1280
# ffmpeg's V4L2 memory-to-memory wrappers, per codec (Pi 4: H.264; Pi 5's HEVC block is
# stateless and reached the same way through Raspberry Pi OS's ffmpeg).
V4L2M2M = {"h264": "h264_v4l2m2m", "hevc": "hevc_v4l2m2m"}
OPEN_TIMEOUT_US = 5_000_000


def probe(source: str, label: str) -> dict:
    """Width, height, codec and frame rate of the first video stream (ffprobe)."""
    network = source.startswith(STREAM_SCHEMES)
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0",
               "-show_entries", "stream=width,height,codec_name,avg_frame_rate",
               "-of", "json"]
    if source.startswith(("rtsp://", "rtsps://")):
        command += ["-rtsp_transport", "tcp"]
    if network:
        command += ["-timeout", str(OPEN_TIMEOUT_US)]
    try:
        result = subprocess.run([*command, source], capture_output=True, text=True,
                                timeout=15)
    except FileNotFoundError:
        raise SourceError(f"{label}: ffprobe is not installed (apt install ffmpeg)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{label}: cannot open the stream (no answer in 15 s)") from None
    streams = json.loads(result.stdout or "{}").get("streams") if result.returncode == 0 \
        else None
    if not streams or not streams[0].get("width"):
        what = "cannot open the stream (refused, unreachable or not a video)" if network \
            else "cannot open as a video (unknown or corrupt format)"
        raise SourceError(f"{label}: {what}")
    stream = streams[0]
    num, _, den = stream.get("avg_frame_rate", "0/0").partition("/")
    fps = float(num) / float(den) if den and float(den) else 0.0
    return {"width": int(stream["width"]), "height": int(stream["height"]),
            "codec": stream.get("codec_name", "?"), "fps": fps if 1 <= fps <= 240 else 25.0}


def hardware_decoder_present() -> bool:
    """A V4L2 memory-to-memory decoder node (the Pi's bcm2835-codec-decode, rpivid)."""
    return any("dec" in p.read_text().lower() or "rpivid" in p.read_text()
               for p in Path("/sys/class/video4linux").glob("video*/name"))


def output_size(width: int, height: int, max_width: int = DECODE_MAX_WIDTH) -> tuple[int, int]:
    if width <= max_width:
        return width, height
    # Even sizes: what the scaler and the chroma planes want.
    return max_width, max(2, 2 * round(height * max_width / width / 2))


class FFmpegSource:
    """Yields `(frame, timestamp)` like the other sources: media seconds for files (frame
    k of the capped rate at k / fps), Unix time for live streams, which are reopened with
    backoff when they drop."""

    def __init__(self, source: str, max_fps: float | None = None,
                 stop: threading.Event | None = None, label: str | None = None,
                 realtime: bool = False, decoder: str = "auto", backoff=(0.5, 30.0)):
        self.source = source
        self.label = redact_url(label or source)
        self.live = source.startswith(STREAM_SCHEMES)
        self.clock = "wall" if self.live else "media"
        self.realtime = realtime
        self.stop = stop or threading.Event()
        self.backoff = backoff
        self.on_tick = lambda: None
        self.cap_fps = max_fps
        self.rate = RateCap(max_fps)  # for live sources: performance.adaptive_rate moves it
        self.stats = SourceStats()
        if not self.live and not Path(source).is_file():
            raise SourceError(f"{source}: no such video file")
        info = probe(source, self.label)
        self.codec = info["codec"]
        self.fps = info["fps"]
        self.source_size = (info["width"], info["height"])
        self.frame_size = output_size(*self.source_size)
        self.duration = None  # unknown without reading the file: no progress total
        self.decoder = self._choose(decoder)
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)

    def _choose(self, wanted: str) -> str:
        if wanted == "software":
            return "software"
        if wanted == "auto":
            return "v4l2m2m" if self.codec in V4L2M2M and hardware_decoder_present() \
                else "software"
        if self.codec not in V4L2M2M:
            log.warning("%s: decoder %s has no %s decoder; decoding in software",
                        self.label, wanted, self.codec)
            return "software"
        return wanted

    def _command(self) -> list[str]:
        command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "verbose"]
        if self.source.startswith(("rtsp://", "rtsps://")):
            command += ["-rtsp_transport", "tcp"]
        if self.live:
            command += ["-timeout", str(OPEN_TIMEOUT_US)]
        if self.realtime and not self.live:
            command += ["-re"]
        if self.decoder == "v4l2m2m":
            command += ["-c:v", V4L2M2M[self.codec]]
        filters = []
        if self.cap_fps and self.cap_fps < self.fps:  # dropped here, before scaling
            filters.append(f"fps={self.cap_fps}:round=near")
        if self.frame_size != self.source_size:
            filters.append("scale={}:{}:flags=area".format(*self.frame_size))
        return [*command, "-i", self.source, "-an", "-sn", "-dn",
                *(["-vf", ",".join(filters)] if filters else []),
                "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1"]

    def _start(self) -> subprocess.Popen:
        self._stderr.clear()
        child = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._drainer = threading.Thread(target=self._drain, args=(child.stderr,), daemon=True)
        self._drainer.start()
        return child

    def _drain(self, stream) -> None:
        for line in stream:
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def _frames(self, child: subprocess.Popen) -> Iterator[np.ndarray]:
        width, height = self.frame_size
        size = width * height * 3
        while True:
            data = child.stdout.read(size)
            if len(data) < size:
                return
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)

    def _finish(self, child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self._drainer.join(5)  # its last lines hold the fps filter's tally
        child.stdout.close()

    def _count_dropped(self) -> None:
        """Frames the fps filter dropped, from its own tally (logged as it closes)."""
        for line in self._stderr:
            found = re.search(r"(\d+) frames in, (\d+) frames out", line)
            if found:
                dropped = max(int(found[1]) - int(found[2]), 0)
                self.stats.frames_read += dropped
                self.stats.frames_skipped += dropped
                return

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        delay = self.backoff[0]
        lost = False  # a live stream that ended and is being reopened
        started = False  # some frame came through: a later failure is not the decoder's
        while not self.stop.is_set():
            child = self._start()
            delivered = 0
            step = 1.0 / min(self.cap_fps or self.fps, self.fps)
            try:
                for frame in self._frames(child):
                    delivered += 1
                    self.stats.frames_read += 1
                    started = True
                    if lost:
                        lost, delay = False, self.backoff[0]
                        self.stats.reconnects += 1
                        log.info("%s: reconnected (reconnects: %d)", self.label,
                                 self.stats.reconnects)
                    if self.live:
                        timestamp = time.time()
                        if not self.rate.due(timestamp):  # adaptive rate, above ffmpeg's
                            self.stats.frames_skipped += 1
                            continue
                    else:
                        timestamp = (delivered - 1) * step
                    yield frame, timestamp
                    if self.stop.is_set():
                        break
            finally:
                self._finish(child)
                self._count_dropped()
            if not started and self.decoder != "software":
                log.warning("%s: the %s decoder did not start (%s); decoding in software",
                            self.label, self.decoder, self._last_error())
                self.decoder = "software"
                continue
            if not self.live:
                if delivered == 0:
                    raise SourceError(f"{self.label}: no decodable video frames "
                                      f"(corrupt or not a video): {self._last_error()}")
                return
            if self.stop.is_set():
                return
            if not lost:
                lost = True
                log.warning("%s: stream lost, reconnecting", self.label)
            else:
                log.info("%s: still unreachable, next try in %.1f s", self.label, delay)
            self.on_tick()
            if self.stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff[1])

    def _last_error(self) -> str:
        errors = [line for line in self._stderr if "rror" in line or "nvalid" in line]
        return (errors or list(self._stderr) or ["no output"])[-1][:200]
