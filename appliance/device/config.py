"""Device configuration: one YAML file, parsed once into typed, validated objects.

This module reads the file and the top-level keys; each section's typed config and parser
sit beside the code that uses it (`*_config.py`), all reading through `ConfigReader`, so
every mistake is one `ConfigError` line naming the file, the key path and the problem,
e.g. `front.yaml: cameras[0].lines.door.points: expected 2 points, got 1`.
Relative file paths are resolved against the directory of the config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.device.analytics.behaviour_config import BehaviourConfig, parse_behaviour
from appliance.device.analytics.demographics_config import (
    DemographicsConfig,
    parse_demographics,
)
from appliance.device.analytics.lines_config import CountingConfig, parse_counting
from appliance.device.camera_config import CameraConfig, parse_camera
from appliance.device.config_reader import ID_PATTERN, ConfigReader
from appliance.device.detect.detection_config import DetectionConfig, parse_detection
from appliance.device.inference.models_config import ModelsConfig, parse_models
from appliance.device.outputs_config import OutputsConfig, parse_outputs
from appliance.device.performance_config import PerformanceConfig, parse_performance
from appliance.device.privacy import PrivacyConfig
from appliance.device.privacy_config import parse_privacy
from appliance.device.track.tracker_config import TrackerConfig, parse_tracker
from appliance.errors import ConfigError


@dataclass(frozen=True)
class Config:
    path: Path
    store_id: str
    cameras: tuple[CameraConfig, ...]
    models: ModelsConfig
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    counting: CountingConfig = field(default_factory=CountingConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    demographics: DemographicsConfig = field(default_factory=DemographicsConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    window_seconds: float = 60.0
    # Files of the device not checked here (load_config(..., device_files=False)).
    unchecked: tuple[str, ...] = ()

    def camera(self, camera_id: str | None) -> CameraConfig:
        if camera_id is None:
            return self.cameras[0]
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        known = ", ".join(c.id for c in self.cameras)
        raise ConfigError(f"{self.path}: no camera {camera_id!r} (cameras: {known})")


def load_config(path: str | Path, device_files: bool = True) -> Config:
    """The typed config of a file. device_files=False checks every rule but not the files
    that only the device has (absolute paths: secrets, certificates), as on a workstation."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    return parse_config(raw, path, device_files)


def parse_config(raw: Any, path: Path, device_files: bool = True) -> Config:
    r = ConfigReader(path, device_files)
    top = r.mapping(raw, "", ("store_id", "cameras", "models", "detection", "tracker",
                              "counting", "outputs", "privacy", "demographics",
                              "performance", "behaviour", "window_seconds"))
    if "store_id" not in top:
        raise r.fail("store_id", "missing")
    if "cameras" not in top:
        raise r.fail("cameras", "missing")
    store_id = r.string(top["store_id"], "store_id", ID_PATTERN)
    cameras = top["cameras"]
    if not isinstance(cameras, list) or not cameras:
        raise r.fail("cameras", "expected a non-empty list of cameras")
    parsed = tuple(parse_camera(r, c, f"cameras[{i}]") for i, c in enumerate(cameras))
    seen: set[str] = set()
    for i, camera in enumerate(parsed):
        if camera.id in seen:
            raise r.fail(f"cameras[{i}].id", f"duplicate camera id {camera.id!r}")
        seen.add(camera.id)
    # Sections in this order, so a file with several mistakes always reports the same one.
    return Config(
        path=path,
        store_id=store_id,
        cameras=parsed,
        models=parse_models(r, top.get("models", {}), "models"),
        detection=parse_detection(r, top.get("detection", {}), "detection"),
        tracker=parse_tracker(r, top.get("tracker", {}), "tracker"),
        counting=parse_counting(r, top.get("counting", {}), "counting"),
        outputs=parse_outputs(r, top.get("outputs", {}), "outputs", len(parsed)),
        privacy=parse_privacy(r, top.get("privacy", {}), "privacy"),
        demographics=parse_demographics(r, top.get("demographics", {}), "demographics"),
        performance=parse_performance(r, top.get("performance", {}), "performance"),
        behaviour=parse_behaviour(r, top.get("behaviour", {}), "behaviour"),
        window_seconds=r.number(top.get("window_seconds", 60), "window_seconds", 1, 86400),
        unchecked=tuple(r.unchecked),
    )
