"""Adaptive processing rate for live sources: when frames take longer to process than the
rate allows, the rate cap comes down so the newest frames are processed instead of a
growing backlog; when there is room again it goes back up, never above the configured
`fps`. The current cap is reported in health (`fps_cap`)."""

from __future__ import annotations

DUTY = 0.8  # keep the processing loop busy at most this share of the time
FLOOR_FPS = 1.0


class AdaptiveRate:
    def __init__(self, source, ceiling: float | None):
        self.source = source
        self.ceiling = ceiling
        self.fps_cap = ceiling  # None: every frame
        self._mean: float | None = None

    def after_frame(self, seconds: float) -> None:
        """Account one frame's processing time and move the source's cap if needed."""
        self._mean = seconds if self._mean is None else 0.9 * self._mean + 0.1 * seconds
        sustainable = max(DUTY / max(self._mean, 1e-6), FLOOR_FPS)
        target = sustainable if self.ceiling is None else min(self.ceiling, sustainable)
        # A cap above what the camera sends never bites, so without a configured fps the
        # sustainable rate itself is a safe cap. Small changes are ignored (no flapping).
        back_to_ceiling = target == self.ceiling and self.fps_cap != self.ceiling
        if self.fps_cap is None or back_to_ceiling or \
                abs(target - self.fps_cap) > 0.1 * self.fps_cap:
            self.fps_cap = round(target, 2)
            self.source.rate.interval = 1.0 / self.fps_cap
