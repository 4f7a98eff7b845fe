"""Frame sources: files and RTSP/HTTP streams through an ffmpeg or GStreamer child
(sources/child.py), V4L2 devices and the Pi camera.

Each source yields `(frame, timestamp)` pairs, at most `max_fps` per second of its own clock:
media seconds from the start for files, monotonic-clock seconds for live sources (their
`wall_clock` gives wall-clock time for the windows: device/clock.py). Frames above the rate
cap are not converted into an image and are not kept. A file that ends
ends the run; a live stream that drops is reopened with exponential backoff, and each
reopening is counted in `stats.reconnects`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from appliance.device.clock import WallClock
from appliance.errors import SourceError, redact_url

log = logging.getLogger("shopper_edge.sources")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass
class SourceStats:
    frames_read: int = 0  # frames taken from the source
    frames_skipped: int = 0  # above the processing-rate cap, never decoded
    frames_dropped: int = 0  # read but not decodable
    reconnects: int = 0
    clock_steps: int = 0  # the system clock stepped under a live source (device/clock.py)


class RateCap:
    """Lets through at most `fps` frames per second of source time, evenly spaced."""

    def __init__(self, fps: float | None):
        self.interval = 1.0 / fps if fps else 0.0
        self._next = -np.inf

    def due(self, timestamp: float) -> bool:
        if timestamp + 1e-6 < self._next:
            return False
        # Step from the previous due time, not from now, so 25 -> 5 fps keeps every 5th frame.
        self._next = max(self._next + self.interval, timestamp + self.interval / 2) \
            if np.isfinite(self._next) else timestamp + self.interval
        return True


class StreamClock:
    """The time of each live frame on the monotonic clock, from the stream's own timestamps
    (PTS).

    A board too slow for every frame reads a backlog: frames that waited in the buffer come
    out within milliseconds of each other. Stamped with the time they were read, a person
    would seem to jump (the counter takes that for an identity switch) and the rate cap
    would pick the oldest frames. So a frame keeps the time it was sent: its PTS plus the
    smallest delay seen so far (the network's). Without usable PTS (a camera that gives
    none, or a stream that restarted) it is the time the frame was read.
    """

    max_lag = 10.0  # seconds behind the clock before the backlog is declared lost

    def __init__(self):
        self.offset: float | None = None
        self.last_pts: float | None = None
        self.last: float = -np.inf

    def stamp(self, pts: float | None, now: float) -> float:
        usable = pts is not None and pts > 0 and (self.last_pts is None or pts > self.last_pts)
        if pts is not None and self.last_pts is not None and pts < self.last_pts:
            self.offset = None  # the stream started again (a reconnect, a loop)
        if pts is not None and pts > 0:
            self.last_pts = pts
        if not usable:
            stamp = now
        else:
            if self.offset is None or now - (pts + self.offset) > self.max_lag:
                self.offset = now - pts
            self.offset = min(self.offset, now - pts)
            stamp = pts + self.offset
        self.last = max(self.last, stamp)
        return self.last


def open_source(source: str, max_fps: float | None = None,
                stop: threading.Event | None = None, label: str | None = None,
                realtime: bool = False, decoder: str = "auto", full_size: bool = False):
    """`label`: how to name the source in messages, when `source` is a stand-in (the pixel
    worker opens a network camera through its loopback relay). `realtime` paces a file.
    Files and network streams are decoded by a child process (`decoding_source`), which
    drops and scales frames before they reach Python; `full_size` keeps the camera's own
    size (the setup page draws geometry in its pixels)."""
    if source.startswith("picamera"):
        return PiCameraSource(source, max_fps, stop)
    if source.isdigit() or source.startswith("/dev/video"):
        return StreamSource(source, max_fps, stop)
    return decoding_source(source, max_fps, stop, label=label, realtime=realtime,
                           decoder=decoder, full_size=full_size)


def decoding_source(source: str, max_fps: float | None = None,
                    stop: threading.Event | None = None, label: str | None = None,
                    realtime: bool = False, decoder: str = "auto", full_size: bool = False):
    """A file or network stream decoded by a child: GStreamer for `decoder: gstreamer` or
    `nvdec` and for `auto` on a Jetson (its NVDEC is reached through GStreamer, and
    JetPack 6's ffmpeg is 4.4 without it), else ffmpeg (sources/ffmpeg.py)."""
    from appliance.device.sources.child import DECODE_MAX_WIDTH

    max_width = None if full_size else DECODE_MAX_WIDTH
    if decoder == "auto":
        from appliance.device.sources.gstreamer import on_jetson

        decoder = "nvdec" if on_jetson() else "auto"
    if decoder in ("gstreamer", "nvdec"):
        from appliance.device.sources.gstreamer import GStreamerSource

        return GStreamerSource(source, max_fps, stop, label=label, realtime=realtime,
                               decoder=decoder, max_width=max_width)
    from appliance.device.sources.ffmpeg import FFmpegSource

    return FFmpegSource(source, max_fps, stop, label=label, realtime=realtime,
                        decoder=decoder, max_width=max_width)


class FileSource:
    clock = "media"
    live = False
    wall_clock = None  # windows carry media time

    def __init__(self, path: str, max_fps: float | None = None, realtime: bool = False,
                 stop: threading.Event | None = None):
        self.path = path
        self.stop = stop or threading.Event()
        self.cap_fps = max_fps
        self.realtime = realtime  # sleep so frames come at the clip's own pace
        self.stats = SourceStats()
        if not Path(path).is_file():
            raise SourceError(f"{path}: no such video file")
        self._capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise SourceError(f"{path}: cannot open as a video (unknown or corrupt format)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 25.0
        frames = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        # The container's estimate, for progress only; counting relies on real frames.
        self.duration = frames / self.fps if frames > 0 else None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        rate = RateCap(self.cap_fps)
        index = 0
        started = time.monotonic()
        try:
            while not self.stop.is_set() and self._capture.grab():
                timestamp = index / self.fps
                if self.realtime:
                    time.sleep(max(started + timestamp - time.monotonic(), 0.0))
                index += 1
                self.stats.frames_read += 1
                if not rate.due(timestamp):
                    self.stats.frames_skipped += 1
                    continue
                ok, frame = self._capture.retrieve()
                if not ok:
                    break
                yield frame, timestamp
        finally:
            self._capture.release()
        if index == 0:
            raise SourceError(f"{self.path}: no decodable video frames (corrupt or not a video)")


class StreamSource:
    """V4L2 devices (network cameras go through sources/ffmpeg.py); reopened with backoff
    when the device drops."""

    clock = "wall"
    live = True

    def __init__(self, source: str, max_fps: float | None = None,
                 stop: threading.Event | None = None, backoff=(0.5, 30.0),
                 label: str | None = None):
        self.source = source
        self.label = redact_url(label or source)
        self.rate = RateCap(max_fps)  # a live source's cap moves: performance.adaptive_rate
        self.stop = stop or threading.Event()
        self.backoff = backoff
        self.stats = SourceStats()
        self.wall_clock = WallClock(self.stats)
        self._capture = self._open()
        if self._capture is None:
            raise SourceError(f"{self.label}: cannot open the stream "
                              "(refused, unreachable or not a video)")

    def _open(self):
        device = int(self.source) if self.source.isdigit() else self.source
        capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def __iter__(self) -> Iterator[tuple[np.ndarray | None, float]]:
        rate = self.rate
        clock = StreamClock()
        delay = self.backoff[0]
        try:
            while not self.stop.is_set():
                if self._capture is None:
                    # Wait, then try again, doubling the wait up to the cap; meanwhile a
                    # frameless item about every second, so that the camera's windows close
                    # on time and its loop still shows it turns.
                    yield from self._idle(delay)
                    if self.stop.is_set():
                        break
                    delay = min(delay * 2, self.backoff[1])
                    self._capture = self._open()
                    if self._capture is None:
                        log.info("%s: still unreachable, next try in %.1f s",
                                 self.label, delay)
                        continue
                    self.stats.reconnects += 1
                    log.info("%s: reconnected (reconnects: %d)", self.label,
                             self.stats.reconnects)
                if not self._capture.grab():
                    self._capture.release()
                    self._capture = None
                    log.warning("%s: stream lost, reconnecting", self.label)
                    continue
                delay = self.backoff[0]
                timestamp = clock.stamp(self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000,
                                        time.monotonic())
                self.stats.frames_read += 1
                if not rate.due(timestamp):
                    self.stats.frames_skipped += 1
                    continue
                ok, frame = self._capture.retrieve()
                if ok:
                    yield frame, timestamp
                else:
                    self.stats.frames_dropped += 1
        finally:
            if self._capture is not None:
                self._capture.release()


    IDLE_TICK = 1.0

    def _idle(self, seconds: float) -> Iterator[tuple[None, float]]:
        deadline = time.monotonic() + seconds
        while True:
            yield None, time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.wait(min(self.IDLE_TICK, left)):
                return


class PiCameraSource:
    """The Raspberry Pi camera through picamera2 (`source: picamera` or `picamera:1`)."""

    clock = "wall"
    live = True

    def __init__(self, source: str, max_fps: float | None = None,
                 stop: threading.Event | None = None):
        try:
            from picamera2 import Picamera2  # only on Raspberry Pi OS
        except ImportError:
            raise SourceError(f"{source}: picamera2 is not installed here (it comes with "
                              "Raspberry Pi OS: apt install python3-picamera2)") from None
        index = int(source.split(":", 1)[1]) if ":" in source else 0
        self.stop = stop or threading.Event()
        self.rate = RateCap(max_fps)  # a live source's cap moves: performance.adaptive_rate
        self.stats = SourceStats()
        self.wall_clock = WallClock(self.stats)
        try:
            self._camera = Picamera2(index)
            self._camera.configure(self._camera.create_video_configuration(
                main={"format": "RGB888", "size": (1280, 720)}))
            self._camera.start()
        except Exception as error:  # picamera2 raises plain exceptions
            raise SourceError(f"{source}: cannot start the camera: {error}") from None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        rate = self.rate
        try:
            while not self.stop.is_set():
                timestamp = time.monotonic()
                self.stats.frames_read += 1
                if not rate.due(timestamp):
                    self._camera.capture_request().release()
                    self.stats.frames_skipped += 1
                    continue
                yield self._camera.capture_array("main"), timestamp  # RGB888 is BGR order
        finally:
            self._camera.stop()
