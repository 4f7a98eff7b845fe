"""Adaptive processing rate for live sources: the rate cap is the rate at which the board
can run the person detector on every frame, never above the configured `fps`; it comes
down when the detector gets slower (a hot board that throttles, a busier CPU) and goes back
up when it is fast again. The cap in force is reported in health (`fps_cap`).

The cap follows only the time of one detector run, slowly averaged and taken to a rung of a
fixed ladder, not each frame's whole processing time: a frame's time grows with the people
in view (tracking, faces, pose) and, with motion skip, falls to a thumbnail's when nobody
moves, so a cap that followed it would tell at window grain whether people were in view
(docs/privacy.md, Health). One run of the network costs the same whoever is in the picture.
The other stages get the rest of the time (device/capacity.py); when many people make a
frame cost more than that, frames wait in the source, keep the time they were sent
(StreamClock) and the cap picks among them by that time until the loop has caught up."""

from __future__ import annotations

from appliance.device.capacity import sustainable_fps

AVERAGE_SECONDS = 10.0  # the detector's time is averaged over about this much source time
RAISE_MARGIN = 1.1  # a higher rung is taken only with this much room beyond it


class AdaptiveRate:
    def __init__(self, source, ceiling: float | None):
        self.source = source
        self.ceiling = ceiling
        self.fps_cap = ceiling  # None: every frame
        self.run_seconds: float | None = None  # the detector's time per frame, averaged
        self._last: float | None = None  # source time of the last run

    def after_run(self, seconds: float, timestamp: float) -> None:
        """Account one frame's detector time (all its tiles) at source time `timestamp`
        and move the source's cap if needed."""
        if self.run_seconds is None:
            self.run_seconds = seconds
        else:
            # Weighted by the source time since the last run, not per run: a busy scene
            # (a run every frame) and a still one (a run every few seconds) average alike.
            weight = min(max(timestamp - self._last, 0.0) / AVERAGE_SECONDS, 1.0)
            self.run_seconds += weight * (seconds - self.run_seconds)
        self._last = timestamp
        rung = sustainable_fps(self.run_seconds)
        if self.fps_cap is not None and rung > self.fps_cap and \
                sustainable_fps(self.run_seconds * RAISE_MARGIN) <= self.fps_cap:
            return  # just above a rung: stay below it rather than flap
        target = rung if self.ceiling is None else min(self.ceiling, rung)
        if target != self.fps_cap:
            # A cap above what the camera sends never bites, so without a configured fps the
            # sustainable rate itself is a safe cap.
            self.fps_cap = target
            self.source.rate.interval = 1.0 / target
