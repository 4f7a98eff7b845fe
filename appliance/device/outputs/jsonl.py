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
            self._stream = sys.stdout
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as error:
                raise ApplianceError(f"{target}: cannot open for writing: {error.strerror}") \
                    from None

    def send(self, payload: bytes) -> None:
        with self._lock:  # cameras of one process may share it
            self._stream.write(payload.decode("ascii") + "\n")
            self._stream.flush()  # a window is small and rare: make it durable at once

    def close(self) -> None:
        if self._stream is not sys.stdout:
            self._stream.close()
