"""`shopper-edge privacy-report` lists exactly what the guard lets out, from its schemas."""

from __future__ import annotations

import json

import yaml

from appliance.device.privacy_report import fields
from tests.conftest import REPO, shopper_edge

SCHEMAS = REPO / "appliance" / "schemas"


def leaves(schema: dict) -> set[str]:
    return {name for name, _ in fields(schema)}


def test_every_field_the_guard_admits_is_listed(tmp_path):
    raw = yaml.safe_load((REPO / "examples" / "device.yaml").read_text())
    (tmp_path / "ca.crt").write_text("x")
    (tmp_path / "mqtt.password").write_text("x")
    raw["outputs"]["mqtt"].update(password_file=str(tmp_path / "mqtt.password"),
                                  tls={"ca": str(tmp_path / "ca.crt")},
                                  spool_dir="/var/lib/shopper-edge/spool")
    raw["privacy"] = {"min_count": 5, "epsilon": 0.5}
    config = tmp_path / "device.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = shopper_edge("privacy-report", "--config", config)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    counts = json.loads((SCHEMAS / "counts-2.json").read_text())
    health = json.loads((SCHEMAS / "health-1.json").read_text())
    expected = leaves(counts) | leaves(health)
    assert {"lines.<name>.in", "lines.<name>.out", "message_id", "suppressed",
            "models.<name>.sha256", "cpu_temp_c"} <= expected
    for name in expected:
        assert f"`{name}`" in text, name
    for topic in ("counts", "status", "health"):
        assert f"`shopper/store-0001/C/{topic}`" in text
    assert "over TLS" in text and "dev-store-0001-front" in text
    assert "Counts from 1 to 4 are sent as null" in text
    assert "0.5-differentially private" in text
    assert "/var/lib/shopper-edge/spool/store-0001-<camera>.sqlite" in text
    assert "about 69 days" in text
    assert "yolox_nano" in text and "empty network namespace" in text


def test_the_walk_finds_every_schema_property():
    """If a property were added to a schema, the report's walk must list it."""
    schema = json.loads((SCHEMAS / "counts-2.json").read_text())
    schema["properties"]["zones"] = {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"visits": {"$ref": "#/$defs/count"}}}}
    assert "zones.<name>.visits" in leaves(schema)
    assert set(schema["properties"]) <= {name.split(".")[0] for name in leaves(schema)}
