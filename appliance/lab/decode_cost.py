"""Decode cost per frame at 1080p and 4K, H.264 and H.265 (`make bench` runs it).

The CAVIAR clip EnterExitCrossingPaths1front is upscaled and re-encoded once per size and
codec into a temporary folder (never kept), then read three ways, each on every frame of
the clip:
- `decode`: ffmpeg decoding to null, full size: what a camera's stream costs in software;
- `device`: the appliance's source (sources/ffmpeg.py) at a 5 fps cap: the ffmpeg child
  selects, scales to 1280 px and pipes BGR frames, Python reads them with their timestamps;
- `gstreamer`: the same with the GStreamer child's software elements (sources/gstreamer.py,
  `decoder: gstreamer`: what a Jetson falls back to without NVDEC);
- `opencv`: OpenCV's capture at the same cap (sources.FileSource, full-size frames in
  Python), for comparison.
CPU is user + system time of the process and its children, per frame of the clip, once the
source is open; wall ms likewise. Nothing here runs on a device.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from appliance.device.sources import FileSource
from appliance.device.sources.ffmpeg import FFmpegSource
from appliance.device.sources.gstreamer import GStreamerSource

CLIP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "caviar_front" / \
    "clips" / "EnterExitCrossingPaths1front.mpg"
SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
CODECS = {"h264": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23"],
          "h265": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "28",
                   "-x265-params", "log-level=error"]}
CAP_FPS = 5


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cost(run: Callable[[object], object], what, frames: int) -> dict:
    """CPU and wall ms per frame of the clip for one way of reading it (`run(what)`); the
    sources are opened (probed) before, as a camera is once."""
    cpu, started = _cpu_seconds(), time.perf_counter()
    run(what)
    return {"cpu_ms": round(1000 * (_cpu_seconds() - cpu) / frames, 2),
            "wall_ms": round(1000 * (time.perf_counter() - started) / frames, 2)}


def _drain(source) -> int:
    return sum(1 for _ in source)


def measure(frames: int, threads: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size, (width, height) in SIZES.items():
            for codec, encoder in CODECS.items():
                clip = Path(folder) / f"{size}-{codec}.mp4"
                subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP),
                                "-frames:v", str(frames), "-vf", f"scale={width}:{height}",
                                *encoder, "-an", str(clip)], check=True)
                decode = ["ffmpeg", "-v", "error", "-nostdin", "-threads", str(threads),
                          "-i", str(clip), "-f", "null", "-"]
                results.append({
                    "size": f"{width}x{height}", "codec": codec, "frames": frames,
                    "decode": _cost(subprocess.run, decode, frames),
                    "device": _cost(_drain, FFmpegSource(str(clip), CAP_FPS), frames),
                    "gstreamer": _cost(_drain, GStreamerSource(str(clip), CAP_FPS,
                                                               decoder="gstreamer"), frames),
                    "opencv": _cost(_drain, FileSource(str(clip), CAP_FPS), frames)})
                print(json.dumps(results[-1]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="decoder threads of the `decode` run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.frames, args.threads)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
