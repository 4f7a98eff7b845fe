import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from appliance.device.config import load_config
from appliance.errors import ConfigError
from tests.conftest import EXAMPLE, REPO, shopper_edge


def test_example_config_parses_into_typed_objects():
    config = load_config(EXAMPLE)
    camera = config.cameras[0]
    assert config.store_id == "caviar-demo"
    assert camera.id == "front" and camera.fps == 25
    assert camera.lines[0].name == "shop_door"
    assert camera.lines[0].points == ((205, 147), (330, 147))
    assert camera.lines[0].in_side_point == (267, 110)
    assert [z.name for z in camera.zones] == ["shop_floor", "walkway"]
    assert config.models.detector == "yolox_nano"
    assert Path(camera.source).is_absolute()  # relative to the config file


def test_config_loads_without_the_heavy_libraries():
    # The pixel worker loads the config before its models; each section's *_config module
    # must stay free of numpy, OpenCV, scipy and the guard's jsonschema.
    code = ("import sys; from appliance.device.config import load_config; "
            f"load_config({str(EXAMPLE)!r}); "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    for heavy in ("numpy", "cv2", "scipy", "onnxruntime", "jsonschema"):
        assert f"'{heavy}'" not in loaded


def _write(tmp_path, raw) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


def _example():
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["cameras"][0]["lines"]["shop_door"].update(points=[[1, 2]]),
     "cameras[0].lines.shop_door.points: expected 2 points, got 1"),
    (lambda r: r["cameras"][0]["lines"]["shop_door"].update(points=[[1, 2], [1, 2]]),
     "cameras[0].lines.shop_door.points: the two points are the same"),
    (lambda r: r["cameras"][0]["lines"]["shop_door"].update(in_side_point=[300, 147]),
     "cameras[0].lines.shop_door.in_side_point: lies on the line"),
    (lambda r: r["cameras"][0].update(fps=-1), "cameras[0].fps: must be > 0"),
    (lambda r: r["cameras"][0].update(coordinates="fraction"),
     "cameras[0].lines.shop_door.points[0]: must be <= 1.0"),
    (lambda r: r["cameras"][0].pop("source"), "cameras[0].source: missing"),
    (lambda r: r["cameras"][0]["zones"]["walkway"].update(kind="garden"),
     "cameras[0].zones.walkway.kind: expected one of"),
    (lambda r: r["cameras"][0]["zones"]["walkway"].update(points=[[0, 0], [1, 1]]),
     "cameras[0].zones.walkway.points: expected at least 3 points, got 2"),
    (lambda r: r["models"].update(detector="yolov99"), "models.detector: expected one of"),
    (lambda r: r.update(store_id="bad id!"), "store_id: 'bad id!' must be"),
    (lambda r: r.update(colour="red"), "colour: unknown key"),
    (lambda r: r.update(cameras=[]), "cameras: expected a non-empty list"),
    (lambda r: r["cameras"].append(dict(r["cameras"][0])), "cameras[1].id: duplicate"),
    (lambda r: r.update(window_seconds="a minute"), "window_seconds: expected a number"),
    (lambda r: r.update(window_seconds=float("nan")), "window_seconds: expected a finite number"),
    (lambda r: r["models"].update(threads=float("nan")), "models.threads: expected a finite"),
    (lambda r: r.setdefault("tracker", {}).update(lost_seconds=float("inf")),
     "tracker.lost_seconds: expected a finite number, got inf"),
    (lambda r: r["outputs"].update(jsonl="out\x00.jsonl"),
     "outputs.jsonl: contains a NUL character"),
    (lambda r: r["cameras"][0].update(source="clip\x00.mpg"),
     "cameras[0].source: contains a NUL character"),
])
def test_each_mistake_is_one_line_naming_file_key_and_problem(tmp_path, mutate, message):
    raw = _example()
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_fraction_coordinates_scale_to_the_frame(tmp_path):
    raw = _example()
    camera = raw["cameras"][0]
    camera["coordinates"] = "fraction"
    camera["lines"]["shop_door"] = {"points": [[0.5, 0.5], [0.75, 0.5]],
                                    "in_side_point": [0.6, 0.25]}
    camera["zones"] = {}
    camera["motion_mask"] = [[[0, 0], [1, 0], [1, 0.04], [0, 0.04]]]
    config = load_config(_write(tmp_path, raw))
    assert config.cameras[0].scale(384, 288) == (384.0, 288.0)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    broken = _write(tmp_path, "store_id: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(broken)


def test_check_config_command(tmp_path):
    ok = shopper_edge("check-config", EXAMPLE)
    assert ok.returncode == 0 and "OK" in ok.stdout
    raw = _example()
    raw["cameras"][0]["lines"]["shop_door"]["points"] = [[1, 2]]
    bad = shopper_edge("check-config", _write(tmp_path, raw))
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr
    assert "cameras[0].lines.shop_door.points: expected 2 points, got 1" in lines[0]


def test_check_config_verifies_the_models_it_will_load(tmp_path):
    """A missing or altered model fails check-config, not the camera's start."""
    raw = _example()
    raw["models"]["dir"] = str(tmp_path / "models")
    missing = shopper_edge("check-config", _write(tmp_path, raw))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "yolox_nano.onnx: model 'yolox_nano' is missing" in missing.stderr
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "yolox_nano.onnx").write_bytes(b"not the model")
    altered = shopper_edge("check-config", _write(tmp_path, raw))
    assert altered.returncode == 2 and "yolox_nano" in altered.stderr


def test_check_config_offline_checks_every_rule_but_the_device_s_files(tmp_path):
    device = REPO / "examples" / "device.yaml"
    on_device = shopper_edge("check-config", device)
    assert on_device.returncode == 2
    assert "outputs.mqtt.tls.ca: /etc/shopper-edge/store-ca.crt: no such file" in \
        on_device.stderr
    offline = shopper_edge("check-config", "--offline", device)
    assert offline.returncode == 0, offline.stderr
    ok, unchecked = offline.stdout.splitlines()
    assert "OK: store store-0001" in ok and "models not checked (--offline)" in ok
    assert "outputs.mqtt.tls.ca: /etc/shopper-edge/store-ca.crt" in unchecked
    assert "outputs.mqtt.password_file: /etc/shopper-edge/secrets/mqtt.password" in unchecked
    # Every other rule still holds offline.
    raw = yaml.safe_load(device.read_text())
    raw["cameras"][0]["lines"]["shop_door"]["points"] = [[1, 2]]
    bad = shopper_edge("check-config", "--offline", _write(tmp_path, raw))
    assert bad.returncode == 2 and "expected 2 points, got 1" in bad.stderr


def _mqtt(tmp_path, **settings) -> dict:
    raw = _example()
    raw["outputs"]["mqtt"] = {"host": "broker.store.lan", **settings}
    return raw


def test_mqtt_section_defaults_and_tls(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret = tmp_path / "front.password"
    secret.write_text("s3cret\n")
    config = load_config(_write(tmp_path, _mqtt(tmp_path, username="dev-front",
                                                 password_file="front.password",
                                                 tls={"ca": "ca.crt"})))
    mqtt = config.outputs.mqtt
    assert (mqtt.host, mqtt.port, mqtt.qos, mqtt.keepalive) == ("broker.store.lan", 8883, 1, 60)
    assert mqtt.tls.ca == ca and mqtt.tls.cert is None  # TLS on because a CA is given
    assert mqtt.password_file == secret and mqtt.topic_prefix == "shopper"
    assert mqtt.client_id_for("s1", "front") == "shopper-edge-s1-front"
    plain = load_config(_write(tmp_path, _mqtt(tmp_path))).outputs.mqtt
    assert plain.tls is None and plain.port == 1883
    off = load_config(_write(tmp_path, _mqtt(tmp_path, tls={"ca": "ca.crt", "enabled": False})))
    assert off.outputs.mqtt.tls is None


@pytest.mark.parametrize("settings, message", [
    ({"password": "hunter2"}, "outputs.mqtt.password: not allowed: put the password in a file"),
    ({"username": "u", "password_file": "nope.txt"}, "outputs.mqtt.password_file: "),
    ({"password_file": "ca.crt"}, "outputs.mqtt.username: missing"),
    ({"tls": {"ca": "ca.crt", "cert": "ca.crt"}}, "outputs.mqtt.tls.key: missing"),
    ({"tls": {"ca": "missing.crt"}}, "missing.crt: no such file"),
    ({"topic_prefix": "shopper/#"}, "outputs.mqtt.topic_prefix: 'shopper/#' must be"),
    ({"topic_prefix": "$SYS"}, "outputs.mqtt.topic_prefix"),
    ({"qos": 3}, "outputs.mqtt.qos: expected one of 0, 1, 2, got 3"),
    ({"qos": True}, "outputs.mqtt.qos: expected one of"),
    ({"port": 70000}, "outputs.mqtt.port: must be <= 65535"),
    ({"client_id": "{camera}-{mac}"}, "outputs.mqtt.client_id: only {store} and {camera}"),
    ({"spool_max_messages": 1}, "outputs.mqtt.spool_max_messages: must be >= 10"),
    ({"broker": "x"}, "outputs.mqtt.broker: unknown key"),
])
def test_mqtt_mistakes_are_one_line(tmp_path, settings, message):
    (tmp_path / "ca.crt").write_text("x")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, _mqtt(tmp_path, **settings)))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_one_client_id_per_camera(tmp_path):
    raw = _mqtt(tmp_path, client_id="edge-{store}")
    raw["cameras"].append(dict(raw["cameras"][0], id="back"))
    with pytest.raises(ConfigError, match="client_id: must contain {camera}"):
        load_config(_write(tmp_path, raw))


def test_a_config_whose_windows_the_schema_would_refuse_is_refused_here(tmp_path):
    """The schema admits 32 lines a window: with 33, every window would be refused at run
    time, so check-config refuses the config, in one line (the guard does the proving)."""
    from appliance.device.limits import check_limits

    raw = _example()
    raw["cameras"][0]["lines"] = {f"door{i}": {"points": [[0, i], [100, i]]}
                                  for i in range(32)}
    check_limits(load_config(_write(tmp_path, raw)))
    raw["cameras"][0]["lines"]["door32"] = {"points": [[0, 40], [100, 40]]}
    too_many = _write(tmp_path, raw)
    with pytest.raises(ConfigError, match="camera front: its windows would break the message "
                       "schema .*lines breaks maxProperties=32"):
        check_limits(load_config(too_many))
    result = shopper_edge("check-config", "--offline", too_many)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "maxProperties=32" in result.stderr
