"""`shopper-edge privacy-report` lists exactly what the guard lets out, from its schemas."""

from __future__ import annotations

import json
import re

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
    health = json.loads((SCHEMAS / "health-2.json").read_text())
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
    # What is not closed is said too (docs/privacy.md): arrival times, and health's rate
    # where the board is too slow for the configured fps with motion skip on and no
    # adaptive rate, or where people cost more than the adaptive cap leaves.
    assert "see a camera's start and stop to the second" in text
    assert "Health's load figures follow the camera, the rate cap and the time of one " \
        "detector run, not people" in text
    assert "dips" not in text
    raw["performance"] = {"motion_skip": {"enabled": True}}
    config.write_text(yaml.safe_dump(raw))
    text = shopper_edge("privacy-report", "--config", config).stdout
    assert "`fps` dips in the windows where people moved" in text
    raw["performance"]["adaptive_rate"] = True
    config.write_text(yaml.safe_dump(raw))
    text = shopper_edge("privacy-report", "--config", config).stdout
    assert "frames cost more than the time the cap leaves beside the detector (50%" in text
    assert "where people moved" not in text


def test_the_walk_finds_every_schema_property():
    """If a property were added to a schema, the report's walk must list it."""
    schema = json.loads((SCHEMAS / "counts-2.json").read_text())
    schema["properties"]["zones"] = {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"visits": {"$ref": "#/$defs/count"}}}}
    assert "zones.<name>.visits" in leaves(schema)
    assert set(schema["properties"]) <= {name.split(".")[0] for name in leaves(schema)}


def test_privacy_md_says_why_each_field_is_safe():
    """docs/privacy.md's table names every field of counts/1, counts/2 and health/2 with
    why it places nobody in time more finely than a window: a field added to a schema
    needs a row (a backquoted name, `.x` continuing the row's first name's parent, a name
    covering the fields under it)."""
    text = (REPO / "docs" / "privacy.md").read_text()
    table = text.split("## What each field says about time and people", 1)[1]
    table = table.split("\n## ", 1)[0]
    named: dict[str, set[str]] = {"counts-1": set(), "counts-2": set(), "health-2": set()}
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if not row.startswith("|") or len(cells) != 3 or not cells[2] or \
                cells[0] == "message" or set(cells[0]) <= set("-"):
            continue
        names, parent = set(), ""
        for name in re.findall(r"`([^`]+)`", cells[1]):
            if name.startswith("."):
                name = parent + name
            else:
                parent = name.rsplit(".", 1)[0]
            names.add(name.removesuffix(".*"))
        for message, schema in (("counts/1", "counts-1"), ("/2", "counts-2"),
                                ("health/2", "health-2")):
            if message in cells[0]:
                named[schema] |= names
    for schema, names in named.items():
        for field in leaves(json.loads((SCHEMAS / f"{schema}.json").read_text())):
            field = field.replace("<name>", "*")
            assert any(field == n or field.startswith(n + ".") for n in names), \
                f"{schema}: {field} is not in docs/privacy.md's table"
