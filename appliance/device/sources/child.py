"""What the decoding children share (sources/ffmpeg.py, sources/gstreamer.py).

A child process decodes a file or a network stream, drops the frames above the processing
rate before they are scaled or converted, scales the rest down to at most DECODE_MAX_WIDTH
and writes raw BGR frames to a pipe of its own (never a file). It logs one line per frame
it writes, with that frame's timestamp, before writing it, so the n-th timestamp logged is
the n-th frame read. The child's log (stdout and stderr) is drained on a thread: the
subclass's `_log_line` takes the lines about frames; the rest is kept for error messages.

This class reads the frames, stamps them, yields idle ticks while a live stream sends
nothing, reopens a live stream with backoff, and falls back to the software decoder, in
one line, when the board's decoder does not start.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from appliance.device.clock import WallClock
from appliance.device.sources import STREAM_SCHEMES, RateCap, SourceStats, StreamClock
from appliance.device.sources.ffprobe import probe
from appliance.errors import SourceError, redact_url

log = logging.getLogger("shopper_edge.sources")
# Wide enough for 2x2 detector tiles (416 px each) and faces of min_face_px on a 4K camera's
# door; a 4K BGR frame is 24.9 MB, a 1280x720 one 2.8 MB.
DECODE_MAX_WIDTH = 1280
IDLE_TICK = 1.0  # a live stream without frames yields (None, now) this often
# A live child that delivers nothing for this long is ended and the stream reopened: a
# camera (or the pixel worker's relay to it) may keep the connection open yet send nothing,
# which not every child's own network timeout catches (GStreamer's rtspsrc over TCP).
STALL_SECONDS = 10.0


def output_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    if max_width is None or width <= max_width:
        return width, height
    # Even sizes: what the scalers and the chroma planes want.
    return max_width, max(2, 2 * round(height * max_width / width / 2))


class ChildSource:
    """Yields `(frame, timestamp)` like the other sources: media seconds (the stream's own
    PTS) for files; for live streams the time each frame was sent on the monotonic clock
    (StreamClock on its PTS; `wall_clock` gives the windows' time, device/clock.py),
    `(None, now)` about once a second while no frame comes, and reopening with backoff
    when the stream drops.

    A subclass names its `program` and `software` decoder and gives `_choose(wanted)`,
    `_command(frames_fd)` and `_log_line(line, stamps)`."""

    program = "decoder"  # the child's executable, for messages
    software = "software"  # the decoder that needs nothing of the board
    software_words = "software"  # how the fallback line names it
    row_align = 1  # bytes each frame row is padded to in the pipe

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
        raise NotImplementedError

    def _command(self, frames_fd: int) -> list[str]:
        raise NotImplementedError

    def _log_line(self, line: str, stamps: queue.Queue) -> bool:
        """Takes a line about frames (counting or stamping them): True; else False."""
        raise NotImplementedError

    def _start(self) -> subprocess.Popen:
        self._stderr.clear()
        self._stamps = queue.Queue()
        frames_read, frames_write = os.pipe()
        try:
            # stdin stays the parent's: the confined pixel worker may not open /dev/null
            # for writing, which subprocess.DEVNULL does.
            child = subprocess.Popen(self._command(frames_write), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(frames_write,),
                                     bufsize=0)
        except BaseException:
            os.close(frames_read)
            raise
        finally:
            os.close(frames_write)
        self._pipe = open(frames_read, "rb", buffering=0)  # noqa: SIM115 (closed in _finish)
        self._drainer = threading.Thread(target=self._drain, args=(child.stdout, self._stamps),
                                         name=f"{self.program}-log", daemon=True)
        self._drainer.start()
        return child

    def _drain(self, stream, stamps: queue.Queue) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if not self._log_line(line, stamps):
                self._stderr.append(line)

    def _frames(self) -> Iterator[np.ndarray | None]:
        """The child's frames as they come; None after each IDLE_TICK without one."""
        width, height = self.frame_size
        row = -(-width * 3 // self.row_align) * self.row_align
        size = row * height
        pipe = self._pipe
        last = time.monotonic()  # when the child last sent something
        while True:
            buffer = np.empty((height, row), np.uint8)
            view, got = memoryview(buffer).cast("B"), 0
            while got < size:
                ready, _, _ = select.select([pipe], [], [], IDLE_TICK)
                if not ready:
                    if self.stop.is_set():
                        return
                    if self.live and time.monotonic() - last > STALL_SECONDS:
                        self._stderr.append(f"no frame for {STALL_SECONDS:.0f} s")
                        return
                    yield None
                    continue
                read = pipe.readinto(view[got:])
                if not read:
                    return  # the child ended (end of file, lost stream, failed decoder)
                got += read
                last = time.monotonic()
            if row != width * 3:  # padded rows (GStreamer's BGR of a width not 4k)
                buffer = np.ascontiguousarray(buffer[:, :width * 3])
            yield buffer.reshape(height, width, 3)

    def _finish(self, child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self._drainer.join(5)
        self._pipe.close()
        child.stdout.close()

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
                for frame in self._frames():
                    if frame is None:
                        if self.live:
                            yield None, time.monotonic()
                        continue
                    try:
                        pts = self._stamps.get(timeout=5)
                    except queue.Empty:
                        raise SourceError(f"{self.label}: {self.program} gave a frame without "
                                          "its timestamp") from None
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
            if not started and self.decoder != self.software:
                log.warning("%s: the %s decoder did not start (%s); decoding in %s",
                            self.label, self.decoder, self._last_error(),
                            self.software_words)
                self.decoder = self.software
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
