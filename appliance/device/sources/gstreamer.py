"""Files and network streams decoded by a GStreamer child process (`gst-launch-1.0`), the
way to a Jetson's NVDEC (sources/child.py has the contract, shared with sources/ffmpeg.py).

`decoder: nvdec` (and `auto` on a Jetson): the stream is parsed (parsebin), decoded by
NVIDIA's nvv4l2decoder into GPU memory, rate-dropped there (videorate), and scaled and
converted by nvvidconv; only the small frames are converted to BGR. `decoder: gstreamer`:
the same with GStreamer's software elements (decodebin, i.e. libav's decoders, videorate,
videoscale, videoconvert), what is testable without a Jetson, and the fallback when
nvv4l2decoder is missing or fails to start.

Each frame keeps its stream timestamp: an `identity` element after the rate drop logs each
buffer (its pts) through gst-launch's -v before the frame is written to the frames pipe;
another after the decoder counts the frames decoded. videorate keeps a frame on the rate's
grid and stamps it with that grid time, at most half a rate interval from its own pts.
"""

from __future__ import annotations

import functools
import logging
import queue
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

from appliance.device.sources.child import ChildSource
from appliance.device.sources.ffprobe import OPEN_TIMEOUT_US
from appliance.errors import SourceError

log = logging.getLogger("shopper_edge.sources")
# What a Jetson's NVDEC decodes that cameras send (ffprobe's codec names).
NVDEC_CODECS = ("h264", "hevc")
# gst-launch -v's line for each buffer an identity element passes: its pts as H:MM:SS.ns.
BUFFER = re.compile(r"^/GstPipeline:pipeline\d+/GstIdentity:(decoded|stamped): "
                    r"last-message = chain .*?\bpts: (?:none|(\d+):(\d+):(\d+\.\d+))")
PACKAGES = ("gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-bad gstreamer1.0-libav")


def on_jetson(tegra_release: Path = Path("/etc/nv_tegra_release"),
              model_file: Path = Path("/proc/device-tree/model")) -> bool:
    """A Jetson (L4T writes /etc/nv_tegra_release; the device tree names the module)."""
    from appliance.device.decode_budget import this_board

    return tegra_release.exists() or this_board(model_file) == "jetson"


@functools.cache
def element_present(name: str) -> bool:
    """Whether GStreamer has this element here (gst-inspect-1.0 --exists)."""
    try:
        return subprocess.run(["gst-inspect-1.0", "--exists", name], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _quoted(value: str) -> str:
    """A property value in gst-launch's syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GStreamerSource(ChildSource):
    """`decoder`: nvdec (a Jetson's nvv4l2decoder) or gstreamer (software elements)."""

    program = "gst-launch-1.0"
    software = "gstreamer"
    software_words = "software (GStreamer)"
    row_align = 4  # GStreamer pads each row of a BGR frame to 4 bytes

    def __init__(self, source: str, *args, **kwargs):
        if shutil.which("gst-launch-1.0") is None:
            raise SourceError(f"{source}: gst-launch-1.0 is not installed (apt install "
                              f"{PACKAGES})")
        super().__init__(source, *args, **kwargs)

    def _choose(self, wanted: str) -> str:
        if wanted in ("gstreamer", "software"):
            return "gstreamer"
        if self.codec not in NVDEC_CODECS:
            log.warning("%s: decoder nvdec has no %s decoder; decoding in %s",
                        self.label, self.codec, self.software_words)
            return "gstreamer"
        if not element_present("nvv4l2decoder"):
            log.warning("%s: decoder nvdec: GStreamer has no nvv4l2decoder here (not a Jetson, "
                        "or JetPack's multimedia packages are missing); decoding in %s",
                        self.label, self.software_words)
            return "gstreamer"
        return "nvdec"

    def _source_element(self) -> list[str]:
        if self.source.startswith(("rtsp://", "rtsps://")):
            # Over TCP (survives lossy links and NAT); a frozen camera ends the child.
            return ["rtspsrc", f"location={_quoted(self.source)}", "protocols=tcp",
                    "latency=200", f"tcp-timeout={OPEN_TIMEOUT_US}"]
        if self.live:
            return ["urisourcebin", f"uri={_quoted(self.source)}"]
        return ["filesrc", f"location={_quoted(self.source)}"]

    def _command(self, frames_fd: int = 1) -> list[str]:
        width, height = self.frame_size
        nvmm = self.decoder == "nvdec"
        rate = ""
        if self.cap_fps:
            fps = Fraction(self.cap_fps).limit_denominator(1000)
            memory = "(memory:NVMM)" if nvmm else ""
            # drop-only: frames above the rate are dropped, none is ever repeated.
            rate = (f" ! videorate drop-only=true ! video/x-raw{memory},"
                    f"framerate={fps.numerator}/{fps.denominator}")
        if nvmm:
            decode = "parsebin ! nvv4l2decoder"
            convert = (f"nvvidconv ! video/x-raw,format=BGRx,width={width},height={height} "
                       "! videoconvert ! video/x-raw,format=BGR")
        else:
            decode = "decodebin"
            convert = (f"videoscale ! videoconvert ! video/x-raw,format=BGR,width={width},"
                       f"height={height}")
        # sync: a file played at its own pace (--realtime); otherwise as fast as it comes.
        sync = "true" if self.realtime and not self.live else "false"
        rest = (f"! {decode} ! identity name=decoded silent=false{rate} ! {convert} "
                f"! identity name=stamped silent=false ! fdsink fd={frames_fd} sync={sync}")
        # One argument per token: gst-launch escapes the spaces inside each argument.
        return ["gst-launch-1.0", "-v", *self._source_element(), *rest.split()]

    def _log_line(self, line: str, stamps: queue.Queue) -> bool:
        found = BUFFER.match(line)
        if found is None:
            # -v's other notifications (caps, events); errors start with ERROR/WARNING.
            return line.startswith("/GstPipeline:")
        if found[1] == "decoded":
            self.stats.frames_read += 1
            self.stats.frames_skipped += 1  # until the rate lets it through
            return True
        self.stats.frames_skipped -= 1
        stamps.put(None if found[2] is None else
                   int(found[2]) * 3600 + int(found[3]) * 60 + float(found[4]))
        return True
