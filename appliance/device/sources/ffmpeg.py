"""Files and network streams decoded by an `ffmpeg` child process.

The child decodes (on the board's hardware decoder where there is one), drops the frames
above the processing rate before they are scaled or converted (a `select` filter with
RateCap's rule on the stream's own timestamps), scales the rest down to at most
DECODE_MAX_WIDTH with an area filter, and writes raw BGR frames to a pipe: full 4K frames
never cross into Python and nothing is written to disk. Geometry stays in pixels of the
camera's own frames: `source_size` is that size, `frame_size` what arrives.

Each frame keeps its stream timestamp: a `showinfo` filter after the selection logs every
frame it lets through (its pts) on stderr before the frame is written to stdout, so the
n-th timestamp logged is the n-th frame read. Another `showinfo` before the selection counts
the frames decoded (`stats.frames_read`).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from appliance.device.clock import WallClock
from appliance.device.isolation import hardware_decoder_nodes
from appliance.device.sources import STREAM_SCHEMES, RateCap, SourceStats, StreamClock
from appliance.errors import SourceError, redact_url

log = logging.getLogger("shopper_edge.sources")
# Wide enough for 2x2 detector tiles (416 px each) and faces of min_face_px on a 4K camera's
# door; a 4K BGR frame is 24.9 MB, a 1280x720 one 2.8 MB.
DECODE_MAX_WIDTH = 1280
# ffmpeg's V4L2 memory-to-memory wrappers, per codec (Pi 4: H.264; Pi 5's HEVC block is
# stateless and reached the same way through Raspberry Pi OS's ffmpeg).
V4L2M2M = {"h264": "h264_v4l2m2m", "hevc": "hevc_v4l2m2m"}
OPEN_TIMEOUT_US = 5_000_000  # network open/read timeout: a frozen camera ends the child
IDLE_TICK = 1.0  # a live stream without frames yields (None, now) this often
# showinfo's lines: its input's time base once, then each frame's pts in it (its pts_time
# has only 6 significant digits: 0.1 s after three hours).
SHOWINFO = re.compile(r"^\[Parsed_showinfo_(\d+) @ [^\]]*\] (?:n:\s*\d+ pts:\s*(-?\d+|NOPTS) "
                      r"|config in time_base: (\d+)/(\d+))")


def _network_options(source: str) -> list[str]:
    """RTSP over TCP (survives lossy links and NAT) and socket timeouts, so that a frozen
    camera ends the child instead of hanging it."""
    options = ["-rtsp_transport", "tcp"] if source.startswith(("rtsp://", "rtsps://")) else []
    if source.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        options += ["-timeout", str(OPEN_TIMEOUT_US)]
    return options


def probe(source: str, label: str) -> dict:
    """Width, height, codec, frame rate and, for a file, duration of the first video stream
    (ffprobe; a file's packets are counted: containers' own durations can be estimates,
    0.13 s for the CAVIAR clips)."""
    network = source.startswith(STREAM_SCHEMES)
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0",
               "-show_entries", "stream=width,height,codec_name,avg_frame_rate"
               + ("" if network else ",nb_read_packets"), "-of", "json"]
    if not network:
        command.append("-count_packets")
    command += _network_options(source)
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
    fps = fps if 1 <= fps <= 240 else 25.0
    packets = int(stream.get("nb_read_packets") or 0)
    return {"width": int(stream["width"]), "height": int(stream["height"]),
            "codec": stream.get("codec_name", "?"), "fps": fps,
            "duration": packets / fps if packets else None}


def output_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    if max_width is None or width <= max_width:
        return width, height
    # Even sizes: what the scaler and the chroma planes want.
    return max_width, max(2, 2 * round(height * max_width / width / 2))


def rate_select(fps: float) -> str:
    """RateCap's rule as an ffmpeg `select` expression on the frame's timestamp t: keep a
    frame once t reaches the next due time, stepping from the previous due time (25 -> 5 fps
    keeps every 5th frame). ld(0) is the next due time, ld(1) whether a frame was kept. A
    frame without a timestamp (t is NAN) is kept: nothing to judge it by."""
    i = 1.0 / fps
    return (f"if(isnan(t),1,if(not(ld(1))+gte(t+0.000001,ld(0)),"
            f"st(0,if(ld(1),max(ld(0)+{i!r},t+{i / 2!r}),t+{i!r}))*0+st(1,1),0))")


class FFmpegSource:
    """Yields `(frame, timestamp)` like the other sources: media seconds (the stream's own
    PTS) for files; for live streams the time each frame was sent on the monotonic clock
    (StreamClock on its PTS; `wall_clock` gives the windows' time, device/clock.py),
    `(None, now)` about once a second while no frame comes, and reopening with backoff
    when the stream drops."""

    def __init__(self, source: str, max_fps: float | None = None,
                 stop: threading.Event | None = None, label: str | None = None,
                 realtime: bool = False, decoder: str = "auto", backoff=(0.5, 30.0),
                 max_width: int | None = DECODE_MAX_WIDTH):
        self.source = source
        self.label = redact_url(label or source)
        self.live = source.startswith(STREAM_SCHEMES)
        self.clock = "wall" if self.live else "media"
        self.realtime = realtime
        self.stop = stop or threading.Event()
        self.backoff = backoff
        self.cap_fps = max_fps
        self.rate = RateCap(max_fps)  # live: performance.adaptive_rate lowers it further
        self.stats = SourceStats()
        self.wall_clock = WallClock(self.stats) if self.live else None
        if not self.live and not Path(source).is_file():
            raise SourceError(f"{source}: no such video file")
        info = probe(source, self.label)
        self.codec = info["codec"]
        self.fps = info["fps"]
        self.source_size = (info["width"], info["height"])
        self.frame_size = output_size(*self.source_size, max_width)
        self.duration = info["duration"]  # files: for progress and the setup's sampling
        self.decoder = self._choose(decoder)
        self._stderr: deque[str] = deque(maxlen=40)
        self._stamps: queue.Queue[float | None] = queue.Queue()

    def _choose(self, wanted: str) -> str:
        if wanted == "software":
            return "software"
        if wanted == "auto":
            from appliance.device.decode_budget import hardware_takes, this_board

            takes = self.codec in V4L2M2M and hardware_decoder_nodes() and \
                hardware_takes(this_board(), self.codec, *self.source_size)
            return "v4l2m2m" if takes else "software"
        if self.codec not in V4L2M2M:
            log.warning("%s: decoder %s has no %s decoder; decoding in software",
                        self.label, wanted, self.codec)
            return "software"
        return wanted

    def _command(self) -> list[str]:
        command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats"]
        command += _network_options(self.source)
        if self.realtime and not self.live:
            command += ["-re"]
        if self.decoder == "v4l2m2m":
            command += ["-c:v", V4L2M2M[self.codec]]
        filters = ["showinfo=checksum=0"]  # every decoded frame: frames_read
        if self.cap_fps:
            filters.append(f"select='{rate_select(self.cap_fps)}'")
        if self.frame_size != self.source_size:
            filters.append("scale={}:{}:flags=area".format(*self.frame_size))
        filters.append("showinfo=checksum=0")  # every frame written: its timestamp
        self._stamped_filter = str(len(filters) - 1)
        # passthrough: the frames as selected, none duplicated to fill a constant rate.
        return [*command, "-i", self.source, "-an", "-sn", "-dn", "-vf", ",".join(filters),
                "-fps_mode", "passthrough", "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1"]

    def _start(self) -> subprocess.Popen:
        self._stderr.clear()
        self._stamps = queue.Queue()
        # stdin stays the parent's (-nostdin): the confined pixel worker may not open
        # /dev/null for writing, which subprocess.DEVNULL does.
        child = subprocess.Popen(self._command(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, bufsize=0)
        self._drainer = threading.Thread(target=self._drain, args=(child.stderr, self._stamps),
                                         name="ffmpeg-stderr", daemon=True)
        self._drainer.start()
        return child

    def _drain(self, stream, stamps: queue.Queue) -> None:
        """ffmpeg's log: showinfo's lines count and stamp frames; the rest is kept for
        error messages."""
        time_base = 0.0
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            found = SHOWINFO.match(line)
            if found is None:
                if not line.startswith("[Parsed_showinfo_"):
                    self._stderr.append(line)
                continue
            stamped = found[1] == self._stamped_filter
            if found[3] is not None:
                if stamped:
                    time_base = int(found[3]) / int(found[4])
                continue
            if found[1] == "0":
                self.stats.frames_read += 1
                self.stats.frames_skipped += 1  # until the selection lets it through
            if stamped:
                self.stats.frames_skipped -= 1
                stamps.put(None if found[2] == "NOPTS" else int(found[2]) * time_base)

    def _frames(self, child: subprocess.Popen) -> Iterator[np.ndarray | None]:
        """The child's frames as they come; None after each IDLE_TICK without one."""
        width, height = self.frame_size
        size = width * height * 3
        pipe = child.stdout
        while True:
            frame = np.empty((height, width, 3), np.uint8)
            view, got = memoryview(frame).cast("B"), 0
            while got < size:
                ready, _, _ = select.select([pipe], [], [], IDLE_TICK)
                if not ready:
                    if self.stop.is_set():
                        return
                    yield None
                    continue
                read = pipe.readinto(view[got:])
                if not read:
                    return  # the child ended (end of file, lost stream, failed decoder)
                got += read
            yield frame

    def _finish(self, child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self._drainer.join(5)
        child.stdout.close()
        child.stderr.close()

    def __iter__(self) -> Iterator[tuple[np.ndarray | None, float]]:
        clock = StreamClock()
        child_interval = 1.0 / self.cap_fps if self.cap_fps else 0.0
        delay = self.backoff[0]
        lost = False  # a live stream that ended and is being reopened
        started = False  # some frame came through: a later failure is not the decoder's
        while not self.stop.is_set():
            child = self._start()
            delivered = 0
            try:
                for frame in self._frames(child):
                    if frame is None:
                        if self.live:
                            yield None, time.monotonic()
                        continue
                    try:
                        pts = self._stamps.get(timeout=5)
                    except queue.Empty:
                        raise SourceError(f"{self.label}: ffmpeg gave a frame without its "
                                          "timestamp") from None
                    delivered += 1
                    started = True
                    if lost:
                        lost, delay = False, self.backoff[0]
                        self.stats.reconnects += 1
                        log.info("%s: reconnected (reconnects: %d)", self.label,
                                 self.stats.reconnects)
                    # Without a PTS: the time it was read (live, as StreamClock does), or
                    # its place among the frames (a file without timestamps: all are kept).
                    timestamp = pts if pts is not None or self.live else \
                        (delivered - 1) / self.fps
                    if self.live:
                        timestamp = clock.stamp(pts, time.monotonic())
                        # The child keeps the configured rate; a cap the adaptive rate lowered
                        # below it is applied here.
                        if self.rate.interval > child_interval * 1.01 and \
                                not self.rate.due(timestamp):
                            self.stats.frames_skipped += 1
                            continue
                    yield frame, timestamp
                    del frame
                    if self.stop.is_set():
                        break
            finally:
                self._finish(child)
            if self.stop.is_set():
                return
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
            if not lost:
                lost = True
                log.warning("%s: stream lost, reconnecting", self.label)
            elif delivered == 0:
                log.info("%s: still unreachable, next try in %.1f s", self.label, delay)
            yield from self._idle(delay)
            delay = min(delay * 2, self.backoff[1])

    def _idle(self, seconds: float) -> Iterator[tuple[None, float]]:
        """Wait before reopening, with a frameless item about every second so that the
        camera's windows close on time and its loop still shows it turns."""
        deadline = time.monotonic() + seconds
        while True:
            yield None, time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.wait(min(IDLE_TICK, left)):
                return

    def _last_error(self) -> str:
        errors = [line for line in self._stderr if "rror" in line or "nvalid" in line]
        return (errors or list(self._stderr) or ["no output"])[-1][:200]

