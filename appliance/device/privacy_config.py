"""The parser of `privacy:` into `PrivacyConfig` (which stays in privacy.py, beside the rules
it sets)."""

from __future__ import annotations

from typing import Any

from appliance.device.config_reader import ConfigReader, join_key
from appliance.device.privacy import PrivacyConfig


def parse_privacy(r: ConfigReader, raw: Any, key: str) -> PrivacyConfig:
    p = r.mapping(raw, key, ("min_count", "epsilon", "sensitivity", "isolate_pixels",
                             "contact"))
    isolate = r.flag(p.get("isolate_pixels", True), join_key(key, "isolate_pixels"))
    min_count = r.number(p.get("min_count", 5), join_key(key, "min_count"), 1, 1000)
    if min_count != int(min_count):
        raise r.fail(join_key(key, "min_count"), f"expected a whole number, got {min_count}")
    epsilon = p.get("epsilon")
    sensitivity = r.number(p.get("sensitivity", 2), join_key(key, "sensitivity"), 1, 100)
    return PrivacyConfig(
        min_count=int(min_count),
        epsilon=None if epsilon is None else r.number(epsilon, join_key(key, "epsilon"), 0,
                                                      100, low_open=True),
        sensitivity=int(sensitivity),
        isolate_pixels=isolate,
        contact=None if p.get("contact") is None else r.string(p["contact"],
                                                               join_key(key, "contact")),
    )
