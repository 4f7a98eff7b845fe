"""Where window documents go: every one passes the guard, then each configured output."""

from __future__ import annotations

import logging

from appliance.device.outputs import guard

log = logging.getLogger("shopper_edge.outputs")


class Outputs:
    """The guard in front of a camera's outputs (JSON lines, MQTT): each takes the checked
    bytes, never the document, so nothing unchecked can reach them."""

    def __init__(self, store_id: str, camera_id: str, outputs: list, on_refused=None):
        self.store_id = store_id
        self.camera_id = camera_id
        self.outputs = outputs
        self.on_refused = on_refused  # counts refusals for health
        self.refused = 0

    def write(self, document: dict) -> None:
        try:
            payload = guard.check("counts", document, self.store_id, self.camera_id)
        except guard.GuardRefused as error:
            self.refused += 1
            if self.on_refused:
                self.on_refused()
            log.error("%s: %s", self.camera_id, error)
            return
        for output in self.outputs:
            output.send(payload)
