"""JSON lines output: one window document per line, on stdout or appended to a file."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from appliance.errors import ApplianceError


class JsonLinesOutput:
    def __init__(self, target: str):
        self.target = target
        self._lock = threading.Lock()
        if target == "-":
            self._file = sys.stdout.buffer
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                # Unbuffered: one write per window, so a failed one (disk full) leaves nothing
                # behind to be written twice when it is tried again.
                self._file = open(target, "ab", buffering=0)  # noqa: SIM115
            except OSError as error:
                raise ApplianceError(f"{target}: cannot open for writing: {error.strerror}") \
                    from None

    def send(self, payload: bytes) -> None:
        with self._lock:  # cameras of one process may share it
            line = memoryview(payload + b"\n")
            while line:
                line = line[self._file.write(line):]
            self._file.flush()  # a window is small and rare: make it durable at once

    def close(self) -> None:
        if self._file is not sys.stdout.buffer:
            self._file.close()
