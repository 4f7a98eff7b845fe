"""Demographics settings (kept apart from the model code, so the config loads light)."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "unknown"


@dataclass(frozen=True)
class DemographicsConfig:
    enabled: bool = False
    face_detector: str = "yunet"  # or rfb320
    faces_per_second: float = 5.0  # face inferences per second per camera
    min_face_px: float = 20.0  # smaller faces are not estimated (too unreliable)
    looks: int = 5
    stable_years: float = 3.0
    bands: tuple[int, ...] = (0, 13, 18, 25, 35, 45, 55, 65)  # lower bounds, ascending
    gender: bool = False

    def band_names(self) -> list[str]:
        bounds = self.bands
        names = [f"{low}-{high - 1}" for low, high in zip(bounds, bounds[1:], strict=False)]
        return [*names, f"{bounds[-1]}+", UNKNOWN]
