"""Decode cost per frame at 1080p and 4K, H.264 and H.265 (`make bench` runs it).

Each CAVIAR clip is upscaled and re-encoded once into a temporary folder, then decoded by
ffmpeg: to null (every frame, full size: what a camera's stream costs in software), and as
the device does (the fps filter at 5 fps and an area scale to 1280 px, raw BGR to a pipe).
CPU is the child's user + system time (getrusage), per frame of the clip; wall ms likewise.
Nothing here runs on a device.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from appliance.device.sources.ffmpeg import DECODE_MAX_WIDTH

CLIP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "caviar_front" / \
    "clips" / "EnterExitCrossingPaths1front.mpg"
SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
CODECS = {"h264": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23"],
          "h265": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "28",
                   "-x265-params", "log-level=error"]}


def _child_cpu(command: list[str]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one ffmpeg run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


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
                          "-i", str(clip)]
                full_cpu, full_wall = _child_cpu([*decode, "-f", "null", "-"])
                scaled = f"fps=5,scale={DECODE_MAX_WIDTH}:-2:flags=area"
                device_cpu, device_wall = _child_cpu(
                    [*decode, "-vf", scaled, "-pix_fmt", "bgr24", "-f", "rawvideo", "-"])
                results.append({
                    "size": size, "codec": codec, "frames": frames,
                    "every_frame_cpu_ms": round(1000 * full_cpu / frames, 2),
                    "every_frame_wall_ms": round(1000 * full_wall / frames, 2),
                    "device_path_cpu_ms": round(1000 * device_cpu / frames, 2),
                    "device_path_wall_ms": round(1000 * device_wall / frames, 2)})
                print(json.dumps(results[-1]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.frames, args.threads)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
