"""The device YAML as the setup page edits it: one camera's geometry keys are validated with
the device's own parser and written back with every other key and comment kept (ruamel.yaml
round trip), after a backup."""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from appliance.device.config import Config, load_config, parse_config
from appliance.device.limits import check_limits
from appliance.device.setup.drawing import GEOMETRY_KEYS, self_crossing
from appliance.errors import ConfigError


class DeviceYaml:
    def __init__(self, path: str | Path, camera_id: str):
        self.path = Path(path)
        self.config = load_config(self.path)  # one line and status 2 on a bad file
        self.camera = self.config.camera(camera_id)
        self.index = [c.id for c in self.config.cameras].index(camera_id)
        self.key = f"cameras[{self.index}]"

    def validate(self, section: dict) -> Config:
        """The whole config as it would be with this camera section; ConfigError if not."""
        raw = copy.deepcopy(yaml.safe_load(self.path.read_text(encoding="utf-8")))
        _apply(raw["cameras"][self.index], section)
        config = parse_config(raw, self.path)
        problem = self_crossing(config.cameras[self.index], self.key)
        if problem:
            raise ConfigError(f"{self.path}: {problem}")
        check_limits(config)  # as check-config: windows the message schema would refuse
        return config

    def save(self, section: dict) -> Path:
        """Validate, back the file up, write it; returns the backup. Nothing is left
        behind when any step fails."""
        self.validate(section)
        text = self.path.read_text(encoding="utf-8")  # now: keep edits made meanwhile
        document = _yaml().load(text)
        _apply(document["cameras"][self.index], section, round_trip=True)
        out = io.StringIO()
        _yaml().dump(document, out)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        backup = unique(self.path.with_name(f"{self.path.name}.{stamp}.bak"))
        temp = None
        try:
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False,
                                             prefix=f".{self.path.name}.",
                                             encoding="utf-8") as f:
                temp = Path(f.name)
                f.write(out.getvalue())
            shutil.copymode(self.path, temp)
            shutil.copy2(self.path, backup)
            os.replace(temp, self.path)
        except OSError as error:
            for leftover in (temp, backup):
                if leftover is not None and leftover.exists() and leftover != self.path:
                    leftover.unlink(missing_ok=True)
            raise ConfigError(f"{self.path}: cannot write: {error.strerror}") from None
        self.config = load_config(self.path)  # what `check-config` says of the result
        self.camera = self.config.cameras[self.index]
        return backup


def unique(path: Path) -> Path:
    """`path`, or `NAME-2.SUFFIX`, `NAME-3.SUFFIX`, ...: never one that exists (a second save
    in the same second must not overwrite the first backup, the file as it was)."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _yaml() -> YAML:
    y = YAML()
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096  # never wrap a long line
    y.preserve_quotes = True
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def _apply(camera: dict, section: dict, round_trip: bool = False) -> None:
    """Set the geometry keys; an entry that stays (a line, a zone) keeps its comments."""
    for key in GEOMETRY_KEYS:
        if key not in section:
            continue  # e.g. homography when no floor was drawn: left as it is
        value = section[key]
        if value is None:
            camera.pop(key, None)
        elif round_trip and isinstance(value, dict) and isinstance(camera.get(key), dict):
            old = camera[key]
            for name in [n for n in old if n not in value]:
                del old[name]
            for name, entry in value.items():
                if isinstance(old.get(name), dict):
                    for sub in [k for k in old[name] if k not in entry]:
                        del old[name][sub]
                    for sub, v in entry.items():
                        old[name][sub] = _flow(v)
                else:
                    old[name] = _flow(entry)
        else:
            camera[key] = _flow(value) if round_trip else value


def _flow(value):
    """Points and matrices in flow style ([[x, y], ...]) as people write them."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _flow(v)
        return out
    if isinstance(value, list):
        out = CommentedSeq(_flow(v) for v in value)
        if all(isinstance(v, (int, float)) or isinstance(v, list) and
               all(isinstance(w, (int, float)) for w in v) for v in value):
            out.fa.set_flow_style()
        else:
            out.fa.set_block_style()
        return out
    return value
