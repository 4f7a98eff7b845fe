"""What a board can decode, for check-config's warnings about a camera's stream.

A stream the board's hardware decoder does not take is decoded in software, every frame at
the camera's own rate (the processing rate cap drops frames only after decoding). Measured
on x86 (docs/performance.md): about 4-5 ms of CPU to decode a 1080p frame, 12-18 ms at 4K;
a Pi's Cortex-A cores are several times slower. Above SOFTWARE_PIXELS, recommend the substream.
"""

from __future__ import annotations

from pathlib import Path

BOARD_NAMES = {"pi4": "Raspberry Pi 4", "pi5": "Raspberry Pi 5", "jetson": "Jetson",
               "other": "this board"}
# Largest frame each board's hardware decoder takes, per codec (ffprobe's codec names): a
# Pi's through ffmpeg's V4L2 wrappers, a Jetson's NVDEC (Orin: 4K H.264 and H.265) through
# GStreamer's nvv4l2decoder (sources/gstreamer.py; `decoder: auto` there).
HARDWARE = {"pi4": {"h264": (1920, 1080)}, "pi5": {"hevc": (3840, 2160)},
            "jetson": {"h264": (3840, 2160), "hevc": (3840, 2160)}, "other": {}}
SOFTWARE_PIXELS = 1280 * 720


def this_board(model_file: Path = Path("/proc/device-tree/model")) -> str:
    try:
        model = model_file.read_text(errors="replace")
    except OSError:
        return "other"
    for key, name in (("pi4", "Raspberry Pi 4"), ("pi5", "Raspberry Pi 5"),
                      ("jetson", "Jetson")):
        if name in model:
            return key
    return "other"


def hardware_takes(board: str, codec: str, width: int, height: int) -> bool:
    """Whether `decoder: auto` should try the board's V4L2 decoder on this stream: within
    its limits on a known board; on another board with a decoder node, any codec (the
    source falls back to software in one line when it cannot)."""
    if board == "other":
        return True
    limit = HARDWARE[board].get(codec)
    return limit is not None and width <= limit[0] and height <= limit[1]


def stream_warning(board: str, codec: str, width: int, height: int) -> str | None:
    """One sentence when the stream costs more than the board should spend decoding."""
    if board != "other" and hardware_takes(board, codec, width, height):
        return None  # the hardware decoder takes it (cameras[].decoder: auto)
    if width * height <= SOFTWARE_PIXELS:
        return None
    hardware = ", ".join(f"{c.upper()} up to {w}x{h}" for c, (w, h) in HARDWARE[board].items())
    return (f"{width}x{height} {codec.upper()} is more than {BOARD_NAMES[board]} decodes in "
            f"hardware ({hardware or 'no hardware decoder used'}): it is decoded in software, "
            "every frame at the camera's rate; use the camera's substream (most offer "
            "640x360 or 704x576)")
