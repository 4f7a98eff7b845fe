"""Files and network streams decoded by an `ffmpeg` child process (sources/child.py).

The child decodes (on the board's hardware decoder where there is one), drops the frames
above the processing rate before they are scaled or converted (a `select` filter with
RateCap's rule on the stream's own timestamps), scales the rest down to at most
DECODE_MAX_WIDTH with an area filter, and writes raw BGR frames to a pipe: full 4K frames
never cross into Python and nothing is written to disk. Geometry stays in pixels of the
camera's own frames: `source_size` is that size, `frame_size` what arrives.

Each frame keeps its stream timestamp: a `showinfo` filter after the selection logs every
frame it lets through (its pts) before the frame is written, so the n-th timestamp logged
is the n-th frame read. Another `showinfo` before the selection counts the frames decoded
(`stats.frames_read`). Works with ffmpeg 4.4 (Ubuntu 22.04) and later.
"""

from __future__ import annotations

import logging
import queue
import re

from appliance.device.isolation import hardware_decoder_nodes
from appliance.device.sources.child import DECODE_MAX_WIDTH, ChildSource, output_size
from appliance.device.sources.ffprobe import ffmpeg_version, network_options, probe

__all__ = ["DECODE_MAX_WIDTH", "FFmpegSource", "output_size", "probe", "rate_select"]
log = logging.getLogger("shopper_edge.sources")
# ffmpeg's V4L2 memory-to-memory wrappers, per codec (Pi 4: H.264; Pi 5's HEVC block is
# stateless and reached the same way through Raspberry Pi OS's ffmpeg).
V4L2M2M = {"h264": "h264_v4l2m2m", "hevc": "hevc_v4l2m2m"}
# showinfo's lines: its input's time base once, then each frame's pts in it (its pts_time
# has only 6 significant digits: 0.1 s after three hours).
SHOWINFO = re.compile(r"^\[Parsed_showinfo_(\d+) @ [^\]]*\] (?:n:\s*\d+ pts:\s*(-?\d+|NOPTS) "
                      r"|config in time_base: (\d+)/(\d+))")


def rate_select(fps: float) -> str:
    """RateCap's rule as an ffmpeg `select` expression on the frame's timestamp t: keep a
    frame once t reaches the next due time, stepping from the previous due time (25 -> 5 fps
    keeps every 5th frame). ld(0) is the next due time, ld(1) whether a frame was kept. A
    frame without a timestamp (t is NAN) is kept: nothing to judge it by."""
    i = 1.0 / fps
    return (f"if(isnan(t),1,if(not(ld(1))+gte(t+0.000001,ld(0)),"
            f"st(0,if(ld(1),max(ld(0)+{i!r},t+{i / 2!r}),t+{i!r}))*0+st(1,1),0))")


class FFmpegSource(ChildSource):
    """`decoder`: auto (the board's V4L2 decoder where it takes the stream), software or
    v4l2m2m."""

    program = "ffmpeg"
    _time_base = 0.0  # of the stamping showinfo's pts, from its first line

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

    def _command(self, frames_fd: int = 1) -> list[str]:
        command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats"]
        command += network_options(self.source)
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
        # passthrough: the frames as selected, none duplicated to fill a constant rate
        # (-fps_mode since ffmpeg 5.1; -vsync before).
        sync = "-fps_mode" if ffmpeg_version() >= (5, 1) else "-vsync"
        return [*command, "-i", self.source, "-an", "-sn", "-dn", "-vf", ",".join(filters),
                sync, "passthrough", "-pix_fmt", "bgr24", "-f", "rawvideo",
                f"pipe:{frames_fd}"]

    def _log_line(self, line: str, stamps: queue.Queue) -> bool:
        """showinfo's lines count and stamp frames; the time base comes first."""
        found = SHOWINFO.match(line)
        if found is None:
            return line.startswith("[Parsed_showinfo_")
        stamped = found[1] == self._stamped_filter
        if found[3] is not None:
            if stamped:
                self._time_base = int(found[3]) / int(found[4])
            return True
        if found[1] == "0":
            self.stats.frames_read += 1
            self.stats.frames_skipped += 1  # until the selection lets it through
        if stamped:
            self.stats.frames_skipped -= 1
            stamps.put(None if found[2] == "NOPTS" else int(found[2]) * self._time_base)
        return True

