"""`shopper-edge privacy-notice`: the shop-door notice says what the device counts and
sends, from the same config and schemas as privacy-report, and never promises more."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import yaml

from appliance.device.config import load_config
from appliance.device.privacy_notice import ABOUT_THE_MESSAGE, COUNTED, render
from tests.conftest import EXAMPLE, REPO, shopper_edge

COUNTS = json.loads((REPO / "appliance" / "schemas" / "counts-2.json").read_text())


def config_file(tmp_path, **privacy) -> tuple:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(tmp_path)
    raw["privacy"] = {"min_count": 5, **privacy}
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, raw


def test_every_field_about_people_has_a_plain_sentence():
    """A field added to the counts schema cannot leave the device unmentioned."""
    assert set(COUNTS["properties"]) <= set(COUNTED) | ABOUT_THE_MESSAGE


def test_the_notice_follows_the_config(tmp_path):
    path, raw = config_file(tmp_path)
    plain = render(load_config(path))
    assert "fewer than 5 people is never reported" in plain
    assert "go in and out through the door" in plain
    assert "It does not look at faces." in plain and "age band" not in plain
    assert "random noise" not in plain and "Nothing leaves this computer" in plain
    assert "cut off from the network" in plain

    raw["privacy"] = {"min_count": 1, "epsilon": 1.0, "isolate_pixels": False,
                      "contact": "Jo Bloggs, privacy@shop.example"}
    raw["demographics"] = {"enabled": True, "gender": True}
    raw["behaviour"] = {"groups": False, "heatmap": None}
    raw["cameras"][0]["zones"] = {}
    path.write_text(yaml.safe_dump(raw))
    plain = render(load_config(path))
    assert "never reported" not in plain  # k = 1 promises no suppression
    assert "random noise" in plain
    assert "estimated from the face" in plain and "looks at faces for a moment" in plain
    assert "does not look at faces" not in plain
    assert "cut off from the network" not in plain
    assert "groups" not in plain and "floor are busy" not in plain
    assert "marked areas" not in plain
    assert "Please ask Jo Bloggs, privacy@shop.example." in plain

    (tmp_path / "ca.crt").write_text("x")
    raw["outputs"] = {"jsonl": None, "mqtt": {"host": "broker.lan", "tls": {
        "ca": str(tmp_path / "ca.crt")}, "spool_dir": str(tmp_path / "spool")}}
    path.write_text(yaml.safe_dump(raw))
    assert "Only the counts leave this computer, over an encrypted connection" in \
        render(load_config(path))
    del raw["outputs"]["mqtt"]["tls"]
    path.write_text(yaml.safe_dump(raw))
    assert "over the shop's network (not encrypted)" in render(load_config(path))


def test_markdown_and_a_printable_page_from_the_command_line(tmp_path):
    path, _ = config_file(tmp_path)
    markdown = shopper_edge("privacy-notice", "--config", path)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# People counting in this shop\n")
    page = shopper_edge("privacy-notice", "--config", path, "--format", "html", "--lang", "en")
    assert page.returncode == 0, page.stderr
    text = []
    parser = HTMLParser()
    parser.handle_data = text.append
    parser.feed(page.stdout)
    assert "@page" in page.stdout and "<h1>People counting in this shop</h1>" in page.stdout
    words = " ".join(t.strip() for t in text if t.strip())
    assert "No picture of a person, no face and no video is saved or sent anywhere." in words
    # The setup page's people-free view is the one picture that leaves (docs/privacy.md):
    # the notice says so rather than promise that no picture ever does.
    assert "the installer is shown only a view of the empty shop" in words


def test_mistakes_are_one_line_and_status_2(tmp_path):
    path, _ = config_file(tmp_path)
    result = shopper_edge("privacy-notice", "--config", path, "--lang", "xx")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == \
        "shopper-edge: error: --lang xx: no notice in that language (available: en)"
    result = shopper_edge("privacy-notice", "--config", tmp_path / "missing.yaml")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "missing.yaml" in result.stderr
