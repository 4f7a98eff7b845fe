"""What a stream is (ffprobe), and the options ffmpeg and ffprobe need for network streams,
in the installed ffmpeg's own dialect (Debian 12: 5.1; Ubuntu 22.04, i.e. JetPack 6: 4.4).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess

from appliance.device.sources import STREAM_SCHEMES
from appliance.errors import SourceError

OPEN_TIMEOUT_US = 5_000_000  # network open/read timeout: a frozen camera ends the child


@functools.cache
def ffmpeg_version() -> tuple[int, int]:
    """The installed ffmpeg's (major, minor); a build without a release number (a git
    snapshot) counts as new."""
    try:
        first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                               timeout=15).stdout.partition("\n")[0]
    except (OSError, subprocess.TimeoutExpired):
        return (99, 0)  # missing: probe and the child name the package to install
    found = re.match(r"ffmpeg version n?(\d+)\.(\d+)", first)
    return (int(found[1]), int(found[2])) if found else (99, 0)


def network_options(source: str) -> list[str]:
    """RTSP over TCP (survives lossy links and NAT) and socket timeouts, so that a frozen
    camera ends the child instead of hanging it. ffmpeg 4.4's RTSP `-timeout` is a listen
    timeout (it turns the client into a server): its socket timeout is `-stimeout`."""
    rtsp = source.startswith(("rtsp://", "rtsps://"))
    options = ["-rtsp_transport", "tcp"] if rtsp else []
    if source.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        old = rtsp and ffmpeg_version() < (5, 0)
        options += ["-stimeout" if old else "-timeout", str(OPEN_TIMEOUT_US)]
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
    command += network_options(source)
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
