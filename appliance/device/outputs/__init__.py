"""Where window documents go: every one passes the guard, then each configured output."""

from __future__ import annotations

import logging
from collections import deque

from appliance.device.outputs import guard

log = logging.getLogger("shopper_edge.outputs")


class Outputs:
    """The guard in front of a camera's outputs (JSON lines, MQTT): each takes the checked
    bytes, never the document, so nothing unchecked can reach them."""

    # Windows held in memory for an output that fails (a day of 60 s windows), tried again
    # in order before each new one; the oldest goes only past this.
    PENDING_MAX = 1440

    def __init__(self, store_id: str, camera_id: str, outputs: list, on_refused=None):
        self.store_id = store_id
        self.camera_id = camera_id
        self.outputs = outputs
        self.on_refused = on_refused  # counts refusals for health
        self.refused = 0
        self._pending = [deque() for _ in outputs]
        self._failing: list[str | None] = [None] * len(outputs)

    def write(self, document: dict) -> None:
        try:
            payload = guard.check("counts", document, self.store_id, self.camera_id)
        except guard.GuardRefused as error:
            self.refused += 1
            if self.on_refused:
                self.on_refused()
            log.error("%s: %s", self.camera_id, error)
            return
        for index, output in enumerate(self.outputs):
            pending = self._pending[index]
            if len(pending) == self.PENDING_MAX:
                pending.popleft()
                log.error("%s: %s has failed for %d windows: dropped the oldest",
                          self.camera_id, type(output).__name__, self.PENDING_MAX)
            pending.append(payload)
            self._flush(index, output, pending)

    def _flush(self, index: int, output, pending: deque) -> None:
        """Send what this output holds, oldest first. Its failure (a full disk, a spool it
        cannot write) stops neither the other outputs nor the camera, and loses no window:
        one line when it starts failing and one when it recovers."""
        while pending:
            try:
                output.send(pending[0])
            except Exception as error:  # any output's failure is contained
                problem = f"{type(error).__name__}: {error}"
                if self._failing[index] != problem:
                    log.error("%s: %s failed (%s); holding %d window(s) to try again",
                              self.camera_id, type(output).__name__, problem, len(pending))
                    self._failing[index] = problem
                return
            pending.popleft()
        if self._failing[index] is not None:
            log.warning("%s: %s works again; every held window sent", self.camera_id,
                        type(output).__name__)
            self._failing[index] = None
