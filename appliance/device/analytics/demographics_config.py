"""Demographics settings and their parser (kept apart from the model code, so the config
loads light)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key

UNKNOWN = "unknown"
FACE_DETECTOR_NAMES = ("yunet", "rfb320", "blazeface")


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


def parse_demographics(r: ConfigReader, raw: Any, key: str) -> DemographicsConfig:
    defaults = DemographicsConfig()
    d = r.mapping(raw, key, ("enabled", "face_detector", "faces_per_second", "min_face_px",
                             "looks", "stable_years", "bands", "gender"))
    flags = {name: r.flag(d.get(name, getattr(defaults, name)), join_key(key, name))
             for name in ("enabled", "gender")}
    bands = d.get("bands", list(defaults.bands))
    if not isinstance(bands, list) or not 2 <= len(bands) <= 12 or \
            any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 120
                for b in bands) or bands[0] != 0 or sorted(set(bands)) != bands:
        raise r.fail(join_key(key, "bands"), "expected 2-12 ascending whole ages starting at 0 "
                     "(the lower bound of each band), e.g. [0, 13, 18, 25, 35, 45, 55, 65]")
    return DemographicsConfig(
        enabled=flags["enabled"],
        face_detector=r.choice(d.get("face_detector", "yunet"), join_key(key, "face_detector"),
                               FACE_DETECTOR_NAMES),
        faces_per_second=r.number(d.get("faces_per_second", defaults.faces_per_second),
                                  join_key(key, "faces_per_second"), 0.1, 100),
        min_face_px=r.number(d.get("min_face_px", defaults.min_face_px),
                             join_key(key, "min_face_px"), 8, 1000),
        looks=int(r.number(d.get("looks", defaults.looks), join_key(key, "looks"), 1, 50)),
        stable_years=r.number(d.get("stable_years", defaults.stable_years),
                              join_key(key, "stable_years"), 0, 50),
        bands=tuple(bands),
        gender=flags["gender"],
    )
