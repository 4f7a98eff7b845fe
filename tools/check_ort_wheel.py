"""`make stage ORT_WHEEL=FILE`: whether FILE is an onnxruntime wheel the device can install:
NVIDIA's onnxruntime-gpu for a Jetson (JetPack 6: from the Jetson Zoo, e.g.
onnxruntime_gpu-1.19.0-cp310-cp310-linux_aarch64.whl), for the staged Python
(DEVICE_PYTHON) and the device's architecture (that of PLATFORM's tags, or this machine's).

    python tools/check_ort_wheel.py FILE DEVICE_PYTHON "PLATFORM"

Exit 0 when it fits; else one line naming the file and what does not fit, exit 2.
"""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename


def problem(path: Path, python: str, platforms: str) -> str | None:
    if not path.is_file():
        return "no such file"
    try:
        name, _version, _build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return "not a wheel's file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)"
    if not name.startswith("onnxruntime"):
        return f"a wheel of {name}, not of onnxruntime (e.g. onnxruntime_gpu)"
    wanted = "cp" + python.replace(".", "")
    interpreters = sorted({tag.interpreter for tag in tags})
    if wanted not in interpreters:
        return (f"built for {', '.join(interpreters)}, not CPython {python} "
                f"(DEVICE_PYTHON={python})")
    arches = {re.sub(r"^(many|musl)?linux(_\d+_\d+|\d+)?_", "", p) for p in platforms.split()}
    arch = arches.pop() if len(arches) == 1 else platform.machine()
    wheel_platforms = sorted({tag.platform for tag in tags})
    if not any(p.startswith(("linux_", "manylinux")) and p.endswith("_" + arch)
               for p in wheel_platforms):
        where = f"PLATFORM={platforms}" if platforms.strip() else "this machine"
        return f"built for {', '.join(wheel_platforms)}, not Linux {arch} ({where})"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: check_ort_wheel.py FILE DEVICE_PYTHON PLATFORM", file=sys.stderr)
        return 2
    path, python, platforms = Path(argv[0]), argv[1], argv[2]
    found = problem(path, python, platforms)
    if found:
        print(f"make stage: ORT_WHEEL={path}: {found}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
