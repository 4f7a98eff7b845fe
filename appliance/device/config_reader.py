"""The reader every section parser uses: walks the parsed YAML, remembering the key path, so
every mistake becomes one `ConfigError` line naming the file, the key path and the problem,
e.g. `front.yaml: cameras[0].lines.door.points: expected 2 points, got 1`.

Relative file paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

# Store, camera, line and zone names: they appear in MQTT topics and report columns.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
Point = tuple[float, float]


class ConfigReader:
    def __init__(self, path: Path, device_files: bool = True):
        self.path = path
        # Off (check-config --offline, on a workstation): absolute paths name files of the
        # device (secrets, certificates), noted here instead of checked.
        self.device_files = device_files
        self.unchecked: list[str] = []

    def fail(self, key: str, problem: str) -> ConfigError:
        text = f"{key}: {problem}" if key else problem
        # Keys and values come from the file: escape what would break the one line.
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        return ConfigError(f"{self.path}: {text}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                shown = name if isinstance(name, str) and name.isprintable() and name \
                    else repr(name)  # a key with a newline must not break the one line
                raise self.fail(join_key(key, shown),
                                f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def string(self, value: Any, key: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}")
        if "\x00" in value:  # no path, URL or name may hold one (the OS refuses them)
            raise self.fail(key, "contains a NUL character")
        if pattern and not pattern.match(value):
            raise self.fail(key, f"{value!r} must be 1-64 letters, digits, '-' or '_'")
        return value

    def number(self, value: Any, key: str, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):  # YAML's .nan passes every bound check, .inf most
            raise self.fail(key, f"expected a finite number, got {value}")
        if low is not None and (value <= low if low_open else value < low):
            raise self.fail(key, f"must be {'>' if low_open else '>='} {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(key, f"must be <= {high}, got {value}")
        return float(value)

    def numbers(self, cls, raw: Any, key: str):
        """A section that is a dataclass of non-negative numbers (tracker, counting): each
        key optional, defaults from the class."""
        defaults = cls()
        section = self.mapping(raw, key, tuple(defaults.__dataclass_fields__))
        return cls(**{name: self.number(section.get(name, getattr(defaults, name)),
                                        join_key(key, name), 0)
                      for name in defaults.__dataclass_fields__})

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise self.fail(key, f"expected one of {', '.join(map(str, choices))}, "
                            f"got {value!r}")
        return value

    def points(self, value: Any, key: str, count: int | None, fraction: bool) -> tuple[Point, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of [x, y] points, got {_kind(value)}")
        if count is not None and len(value) != count:
            raise self.fail(key, f"expected {count} points, got {len(value)}")
        if count is None and len(value) < 3:
            raise self.fail(key, f"expected at least 3 points, got {len(value)}")
        return tuple(self.point(p, f"{key}[{i}]", fraction) for i, p in enumerate(value))

    def point(self, value: Any, key: str, fraction: bool) -> Point:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, f"expected [x, y], got {value!r}")
        x, y = (self.number(v, key, 0.0, 1.0 if fraction else None) for v in value)
        return (x, y)

    def existing_file(self, value: Any, key: str) -> Path:
        path = Path(self.resolve(self.string(value, key)))
        if not self.device_files and path.is_absolute():
            self.unchecked.append(f"{key}: {path}")
            return path
        if not path.is_file():
            raise self.fail(key, f"{path}: no such file")
        return path

    def resolve(self, value: str) -> str:
        """Relative paths are relative to the config file; URLs and devices stay as given."""
        if "://" in value or value.startswith("/") or value.isdigit():
            return value
        return str((self.path.parent / value).resolve())


def join_key(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
