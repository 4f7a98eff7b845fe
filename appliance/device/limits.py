"""What check-config proves before a camera runs: the largest window document its config can
produce passes the guard. The message schema caps what a window may hold (lines, zones, age
bands, the suppressed list); a config beyond a cap would have every window refused at run
time, so it is refused here instead, in one line."""

from __future__ import annotations

from dataclasses import replace

from appliance.device.analytics.behaviour import BehaviourWindow
from appliance.device.camera_config import CameraConfig
from appliance.device.config import Config
from appliance.device.outputs import guard
from appliance.device.privacy import count_cells, protect
from appliance.device.window import WindowAggregator
from appliance.errors import ConfigError


def largest_windows(config: Config, camera: CameraConfig) -> list[dict]:
    """The camera's window document at its fullest: every count the config can make present,
    once all suppressed (the longest `suppressed` list) and once all published."""
    d = config.demographics
    aggregator = WindowAggregator(
        config.store_id, camera.id, [line.name for line in camera.lines],
        config.window_seconds, "media", age_bands=d.band_names() if d.enabled else None,
        gender=d.enabled and d.gender, min_people=config.privacy.min_count,
        behaviour=BehaviourWindow(camera, config.behaviour, 1920, 1080))
    aggregator.add(0.0, [])
    [document] = aggregator.flush()
    cells, _ = count_cells(document)
    documents = []
    for value, min_count in ((1, max(2, config.privacy.min_count)), (10**6, 1)):
        for path in cells:
            *parents, key = path
            node = document
            for parent in parents:
                node = node[parent]
            node[key] = value
        privacy = replace(config.privacy, min_count=min_count, epsilon=None)
        documents.append(protect(document, privacy))
    return documents


def check_limits(config: Config) -> None:
    """Every camera's largest windows through the guard; a refusal is a config error."""
    for camera in config.cameras:
        for document in largest_windows(config, camera):
            try:
                guard.check("counts", document, config.store_id, camera.id)
            except guard.GuardRefused as error:
                raise ConfigError(
                    f"{config.path}: camera {camera.id}: its windows would break the message "
                    f"schema ({error}); fewer lines or zones") from None
