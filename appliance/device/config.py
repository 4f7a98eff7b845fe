"""Device configuration: one YAML file, parsed once into typed, validated objects.

Every mistake becomes one `ConfigError` line naming the file, the key path and the problem,
e.g. `front.yaml: cameras[0].lines.door.points: expected 2 points, got 1`.

Geometry (line end points, zone polygons) is in pixels of the source frame by default; with
`coordinates: fraction` on a camera it is in 0-1 fractions of the frame width and height.
Relative file paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.demographics_config import DemographicsConfig
from appliance.device.detect.motion_config import MotionConfig
from appliance.device.privacy import PrivacyConfig
from appliance.errors import ConfigError
from appliance.messages import TOPIC_PREFIX_PATTERN

DETECTORS = ("yolox_nano", "fastestdet")
# The manifest's model names (models/manifest.yaml), for models.variants.
MODEL_NAMES = ("yolox_nano", "fastestdet", "yunet", "rfb320", "age_gender", "movenet",
               "blazeface")
FACE_DETECTORS = ("yunet", "rfb320", "blazeface")
ZONE_KINDS = ("shelf", "checkout", "queue", "staff", "entrance", "area")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# MQTT topic levels: no wildcards, no `$` topics, no empty levels.
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_{}-]{1,128}$")
Point = tuple[float, float]


@dataclass(frozen=True)
class LineConfig:
    name: str
    points: tuple[Point, Point]
    # Any point on the side a person is on after "entering"; defaults to the left of a->b.
    in_side_point: Point | None = None


@dataclass(frozen=True)
class ZoneConfig:
    name: str
    kind: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class CameraConfig:
    id: str
    source: str
    # Processing rate cap in frames per second of media time; None processes every frame.
    fps: float | None = None
    coordinates: str = "pixels"  # or "fraction"
    lines: tuple[LineConfig, ...] = ()
    zones: tuple[ZoneConfig, ...] = ()
    # Detect only inside this polygon (the detector sees its bounding box; people whose feet
    # are outside are dropped), and/or in cols x rows overlapping tiles, for small people.
    roi: tuple[Point, ...] | None = None
    tiles: tuple[int, int] = (1, 1)
    # Polygons where motion never wakes the detector (a burned-in clock, a screen, a door
    # glass with traffic behind it); people there are still detected when it runs.
    motion_mask: tuple[tuple[Point, ...], ...] = ()
    # 3x3 matrix from pixels (of this geometry) to metres on the floor, for groups.
    homography: tuple[tuple[float, float, float], ...] | None = None

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn this camera's geometry into pixels of a width x height frame."""
        return (float(width), float(height)) if self.coordinates == "fraction" else (1.0, 1.0)


@dataclass(frozen=True)
class ModelVariant:
    """Another file of a manifest model's network (e.g. INT8 from appliance/lab/quantize.py), in the
    models directory, pinned by its own sha256; its format picks the back-end."""

    name: str
    file: str
    sha256: str


@dataclass(frozen=True)
class ModelsConfig:
    dir: Path
    detector: str = "yolox_nano"
    threads: int = 2
    variants: tuple[ModelVariant, ...] = ()

    def variant(self, name: str) -> ModelVariant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class DetectionConfig:
    # Boxes below this score are dropped before tracking; ByteTrack uses the 0.1-0.5 band.
    min_score: float = 0.1
    nms_iou: float = 0.45


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = 0.5
    new_track_score: float = 0.6
    match_iou: float = 0.2
    # Seconds a lost track is kept for re-association (media time, so fps independent).
    lost_seconds: float = 2.0
    # A track counts as a visitor only after its foot point moved this many box heights;
    # mannequins and posters never do.
    min_travel: float = 0.5


@dataclass(frozen=True)
class CountingConfig:
    # Half-width of the band around a line, in box heights of the person crossing it. A side
    # is decided only outside the band, so feet hovering on the line never count twice.
    band: float = 0.12
    min_band_px: float = 3.0


@dataclass(frozen=True)
class PerformanceConfig:
    # Decode the next frame on its own thread while this one is analysed.
    decode_thread: bool = False
    motion_skip: MotionConfig = field(default_factory=MotionConfig)
    # Live sources: lower the processing rate when the board cannot keep up.
    adaptive_rate: bool = False


@dataclass(frozen=True)
class TlsConfig:
    ca: Path | None = None  # None: the system's trusted CAs
    cert: Path | None = None  # client certificate and key, when the broker wants one
    key: Path | None = None


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    topic_prefix: str = "shopper"
    # "{store}" and "{camera}" are filled in: every camera has its own session and will.
    client_id: str = "shopper-edge-{store}-{camera}"
    username: str | None = None
    password_file: Path | None = None  # the password never sits in the YAML
    tls: TlsConfig | None = None  # None: plain TCP
    qos: int = 1
    keepalive: int = 60
    health_seconds: float = 60.0
    # Windows wait here while the broker is unreachable; one SQLite file per camera.
    spool_dir: Path = Path("/var/lib/shopper-edge/spool")
    spool_max_messages: int = 100_000  # about 69 days of 60 s windows, about 40 MB

    def client_id_for(self, store_id: str, camera_id: str) -> str:
        return self.client_id.format(store=store_id, camera=camera_id)


@dataclass(frozen=True)
class OutputsConfig:
    # "-" is standard output; a path appends JSON lines to that file.
    jsonl: str | None = "-"
    mqtt: MqttConfig | None = None


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

    def camera(self, camera_id: str | None) -> CameraConfig:
        if camera_id is None:
            return self.cameras[0]
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        known = ", ".join(c.id for c in self.cameras)
        raise ConfigError(f"{self.path}: no camera {camera_id!r} (cameras: {known})")


class _Reader:
    """Walks the parsed YAML, remembering the key path for error messages."""

    def __init__(self, path: Path):
        self.path = path

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
                raise self.fail(_join(key, shown), f"unknown key (allowed: {', '.join(allowed)})")
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
        if low is not None and (value <= low if low_open else value < low):
            raise self.fail(key, f"must be {'>' if low_open else '>='} {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(key, f"must be <= {high}, got {value}")
        return float(value)

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
        if not path.is_file():
            raise self.fail(key, f"{path}: no such file")
        return path

    def resolve(self, value: str) -> str:
        """Relative paths are relative to the config file; URLs and devices stay as given."""
        if "://" in value or value.startswith("/") or value.isdigit():
            return value
        return str((self.path.parent / value).resolve())


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def load_config(path: str | Path) -> Config:
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
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path) -> Config:
    r = _Reader(path)
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
    parsed = tuple(_camera(r, c, f"cameras[{i}]") for i, c in enumerate(cameras))
    seen: set[str] = set()
    for i, camera in enumerate(parsed):
        if camera.id in seen:
            raise r.fail(f"cameras[{i}].id", f"duplicate camera id {camera.id!r}")
        seen.add(camera.id)
    return Config(
        path=path,
        store_id=store_id,
        cameras=parsed,
        models=_models(r, top.get("models", {}), "models"),
        detection=_detection(r, top.get("detection", {}), "detection"),
        tracker=_tracker(r, top.get("tracker", {}), "tracker"),
        counting=_counting(r, top.get("counting", {}), "counting"),
        outputs=_outputs(r, top.get("outputs", {}), "outputs", len(parsed)),
        privacy=_privacy(r, top.get("privacy", {}), "privacy"),
        demographics=_demographics(r, top.get("demographics", {}), "demographics"),
        performance=_performance(r, top.get("performance", {}), "performance"),
        behaviour=_behaviour(r, top.get("behaviour", {}), "behaviour"),
        window_seconds=r.number(top.get("window_seconds", 60), "window_seconds", 1, 86400),
    )


def _camera(r: _Reader, raw: Any, key: str) -> CameraConfig:
    c = r.mapping(raw, key, ("id", "source", "fps", "coordinates", "lines", "zones", "roi",
                             "tiles", "homography", "motion_mask"))
    for required in ("id", "source"):
        if required not in c:
            raise r.fail(_join(key, required), "missing")
    coordinates = r.choice(c.get("coordinates", "pixels"), _join(key, "coordinates"),
                           ("pixels", "fraction"))
    fraction = coordinates == "fraction"
    fps = c.get("fps")
    source = c["source"]
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)  # V4L2 device index
    lines = []
    raw_lines = c.get("lines") or {}
    r.mapping(raw_lines, _join(key, "lines"), tuple(raw_lines) if isinstance(raw_lines, dict)
              else ())
    for name, line in raw_lines.items():
        lkey = f"{key}.lines.{name}"
        r.string(name, lkey, ID_PATTERN)
        line = r.mapping(line, lkey, ("points", "in_side_point"))
        if "points" not in line:
            raise r.fail(f"{lkey}.points", "missing")
        a, b = r.points(line["points"], f"{lkey}.points", 2, fraction)
        if a == b:
            raise r.fail(f"{lkey}.points", "the two points are the same")
        inside = line.get("in_side_point")
        inside = r.point(inside, f"{lkey}.in_side_point", fraction) if inside is not None else None
        if inside is not None and _cross(a, b, inside) == 0:
            raise r.fail(f"{lkey}.in_side_point", "lies on the line; it must be on one side")
        lines.append(LineConfig(name=name, points=(a, b), in_side_point=inside))
    zones = []
    raw_zones = c.get("zones") or {}
    r.mapping(raw_zones, _join(key, "zones"), tuple(raw_zones) if isinstance(raw_zones, dict)
              else ())
    for name, zone in raw_zones.items():
        zkey = f"{key}.zones.{name}"
        r.string(name, zkey, ID_PATTERN)
        if isinstance(zone, list):  # shorthand: just the polygon, kind "area"
            zone = {"points": zone}
        zone = r.mapping(zone, zkey, ("kind", "points"))
        if "points" not in zone:
            raise r.fail(f"{zkey}.points", "missing")
        zones.append(ZoneConfig(
            name=name,
            kind=r.choice(zone.get("kind", "area"), f"{zkey}.kind", ZONE_KINDS),
            points=r.points(zone["points"], f"{zkey}.points", None, fraction),
        ))
    tiles = c.get("tiles", [1, 1])
    if not isinstance(tiles, list) or len(tiles) != 2 or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4 for n in tiles):
        raise r.fail(_join(key, "tiles"), f"expected [columns, rows] of 1-4 each, got {tiles!r}")
    roi = c.get("roi")
    mask_key = _join(key, "motion_mask")
    motion_mask = c.get("motion_mask") or []
    if not isinstance(motion_mask, list) or any(
            not isinstance(polygon, list) or not all(isinstance(p, list) for p in polygon)
            for polygon in motion_mask):
        raise r.fail(mask_key, "expected a list of polygons, each a list of [x, y] points "
                     "(one polygon too goes inside a list: [[[x, y], ...]])")
    homography = c.get("homography")
    if homography is not None:
        hkey = _join(key, "homography")
        if not isinstance(homography, list) or len(homography) != 3 or any(
                not isinstance(row, list) or len(row) != 3 for row in homography):
            raise r.fail(hkey, "expected a 3x3 matrix (three rows of three numbers)")
        homography = tuple(tuple(r.number(v, f"{hkey}[{i}]") for v in row)
                           for i, row in enumerate(homography))
        h = homography
        det = (h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
               - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
               + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0]))
        if abs(det) < 1e-12:
            raise r.fail(hkey, "is singular: it cannot map pixels to the floor")
    return CameraConfig(
        homography=homography,
        roi=None if roi is None else r.points(roi, _join(key, "roi"), None, fraction),
        motion_mask=tuple(r.points(polygon, f"{mask_key}[{i}]", None, fraction)
                          for i, polygon in enumerate(motion_mask)),
        tiles=(tiles[0], tiles[1]),
        id=r.string(c["id"], _join(key, "id"), ID_PATTERN),
        source=r.resolve(r.string(source, _join(key, "source"))),
        fps=None if fps in (None, 0) else r.number(fps, _join(key, "fps"), 0, 240, low_open=True),
        coordinates=coordinates,
        lines=tuple(lines),
        zones=tuple(zones),
    )


def _cross(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _models(r: _Reader, raw: Any, key: str) -> ModelsConfig:
    m = r.mapping(raw, key, ("dir", "detector", "threads", "variants"))
    directory = m.get("dir", "/var/lib/shopper-edge/models")
    raw_variants = m.get("variants") or {}
    vkey = _join(key, "variants")
    r.mapping(raw_variants, vkey, tuple(raw_variants) if isinstance(raw_variants, dict) else ())
    variants = []
    for name, variant in raw_variants.items():
        nkey = f"{vkey}.{name}"
        if name not in MODEL_NAMES:
            raise r.fail(nkey, f"not a model of the manifest ({', '.join(MODEL_NAMES)})")
        variant = r.mapping(variant, nkey, ("file", "sha256"))
        for required in ("file", "sha256"):
            if required not in variant:
                raise r.fail(f"{nkey}.{required}", "missing")
        file = r.string(variant["file"], f"{nkey}.file")
        if "/" in file or not re.fullmatch(r"[^/]+\.(onnx|tflite)", file):
            raise r.fail(f"{nkey}.file", f"{file!r}: expected a .onnx or .tflite file name in "
                         "the models directory")
        sha = r.string(variant["sha256"], f"{nkey}.sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise r.fail(f"{nkey}.sha256", "expected 64 lowercase hex digits "
                         "(sha256sum of the file)")
        variants.append(ModelVariant(name, file, sha))
    return ModelsConfig(
        dir=Path(r.resolve(r.string(directory, _join(key, "dir")))),
        detector=r.choice(m.get("detector", "yolox_nano"), _join(key, "detector"), DETECTORS),
        threads=int(r.number(m.get("threads", 2), _join(key, "threads"), 1, 64)),
        variants=tuple(variants),
    )


def _detection(r: _Reader, raw: Any, key: str) -> DetectionConfig:
    d = r.mapping(raw, key, ("min_score", "nms_iou"))
    return DetectionConfig(
        min_score=r.number(d.get("min_score", 0.1), _join(key, "min_score"), 0.01, 1),
        nms_iou=r.number(d.get("nms_iou", 0.45), _join(key, "nms_iou"), 0.05, 1),
    )


def _tracker(r: _Reader, raw: Any, key: str) -> TrackerConfig:
    defaults = TrackerConfig()
    t = r.mapping(raw, key, tuple(defaults.__dataclass_fields__))
    values = {name: r.number(t.get(name, getattr(defaults, name)), _join(key, name), 0)
              for name in defaults.__dataclass_fields__}
    return TrackerConfig(**values)


def _counting(r: _Reader, raw: Any, key: str) -> CountingConfig:
    defaults = CountingConfig()
    c = r.mapping(raw, key, tuple(defaults.__dataclass_fields__))
    values = {name: r.number(c.get(name, getattr(defaults, name)), _join(key, name), 0)
              for name in defaults.__dataclass_fields__}
    return CountingConfig(**values)


def _performance(r: _Reader, raw: Any, key: str) -> PerformanceConfig:
    p = r.mapping(raw, key, ("decode_thread", "motion_skip", "adaptive_rate"))
    flags = {}
    for name in ("decode_thread", "adaptive_rate"):
        flags[name] = p.get(name, False)
        if not isinstance(flags[name], bool):
            raise r.fail(_join(key, name), f"expected true or false, got {flags[name]!r}")
    mkey = _join(key, "motion_skip")
    m = r.mapping(p.get("motion_skip", {}), mkey, ("enabled", "threshold", "pixel_delta",
                                                   "max_skip_seconds", "walking_speed"))
    enabled = m.get("enabled", False)
    if not isinstance(enabled, bool):
        raise r.fail(_join(mkey, "enabled"), f"expected true or false, got {enabled!r}")
    d = MotionConfig()
    return PerformanceConfig(**flags, motion_skip=MotionConfig(
        enabled=enabled,
        threshold=r.number(m.get("threshold", d.threshold), _join(mkey, "threshold"), 0, 1),
        pixel_delta=int(r.number(m.get("pixel_delta", d.pixel_delta),
                                 _join(mkey, "pixel_delta"), 1, 255)),
        max_skip_seconds=r.number(m.get("max_skip_seconds", d.max_skip_seconds),
                                  _join(mkey, "max_skip_seconds"), 0, 60),
        walking_speed=r.number(m.get("walking_speed", d.walking_speed),
                               _join(mkey, "walking_speed"), 0, 10)))


def _behaviour(r: _Reader, raw: Any, key: str) -> BehaviourConfig:
    d = BehaviourConfig()
    b = r.mapping(raw, key, tuple(d.__dataclass_fields__))
    numbers = {name: r.number(b.get(name, getattr(d, name)), _join(key, name), low, high)
               for name, low, high in (("zone_margin", 0, 2), ("exit_seconds", 0, 600),
                                       ("reach", 0, 5), ("still_speed", 0, 10),
                                       ("interaction_seconds", 0, 600),
                                       ("pose_per_second", 0.1, 100), ("staff_share", 0, 1))}
    flags = {}
    for name in ("pose", "groups"):
        flags[name] = b.get(name, getattr(d, name))
        if not isinstance(flags[name], bool):
            raise r.fail(_join(key, name), f"expected true or false, got {flags[name]!r}")
    bins = b.get("dwell_bins", list(d.dwell_bins))
    if not isinstance(bins, list) or not 1 <= len(bins) <= 10 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 86400
            for v in bins) or sorted(set(bins)) != bins:
        raise r.fail(_join(key, "dwell_bins"), "expected 1-10 ascending whole seconds "
                     "(upper bin edges), e.g. [10, 30, 60, 120, 300]")
    heatmap = b.get("heatmap", list(d.heatmap))
    if heatmap is not None and (not isinstance(heatmap, list) or len(heatmap) != 2 or any(
            isinstance(n, bool) or not isinstance(n, int) for n in heatmap)
            or not 1 <= heatmap[0] <= 32 or not 1 <= heatmap[1] <= 18):
        raise r.fail(_join(key, "heatmap"), f"expected [columns, rows] with 1-32 columns and "
                     f"1-18 rows, or null to turn it off, got {heatmap!r}")
    return BehaviourConfig(**numbers, **flags, dwell_bins=tuple(bins),
                           heatmap=None if heatmap is None else (heatmap[0], heatmap[1]))


def _demographics(r: _Reader, raw: Any, key: str) -> DemographicsConfig:
    defaults = DemographicsConfig()
    d = r.mapping(raw, key, ("enabled", "face_detector", "faces_per_second", "min_face_px",
                             "looks", "stable_years", "bands", "gender"))
    flags = {}
    for name in ("enabled", "gender"):
        value = d.get(name, getattr(defaults, name))
        if not isinstance(value, bool):
            raise r.fail(_join(key, name), f"expected true or false, got {value!r}")
        flags[name] = value
    bands = d.get("bands", list(defaults.bands))
    if not isinstance(bands, list) or not 2 <= len(bands) <= 12 or \
            any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 120
                for b in bands) or bands[0] != 0 or sorted(set(bands)) != bands:
        raise r.fail(_join(key, "bands"), "expected 2-12 ascending whole ages starting at 0 "
                     "(the lower bound of each band), e.g. [0, 13, 18, 25, 35, 45, 55, 65]")
    return DemographicsConfig(
        enabled=flags["enabled"],
        face_detector=r.choice(d.get("face_detector", "yunet"), _join(key, "face_detector"),
                               FACE_DETECTORS),
        faces_per_second=r.number(d.get("faces_per_second", defaults.faces_per_second),
                                  _join(key, "faces_per_second"), 0.1, 100),
        min_face_px=r.number(d.get("min_face_px", defaults.min_face_px),
                             _join(key, "min_face_px"), 8, 1000),
        looks=int(r.number(d.get("looks", defaults.looks), _join(key, "looks"), 1, 50)),
        stable_years=r.number(d.get("stable_years", defaults.stable_years),
                              _join(key, "stable_years"), 0, 50),
        bands=tuple(bands),
        gender=flags["gender"],
    )


def _privacy(r: _Reader, raw: Any, key: str) -> PrivacyConfig:
    p = r.mapping(raw, key, ("min_count", "epsilon", "sensitivity", "isolate_pixels",
                             "contact"))
    isolate = p.get("isolate_pixels", True)
    if not isinstance(isolate, bool):
        raise r.fail(_join(key, "isolate_pixels"), f"expected true or false, got {isolate!r}")
    min_count = r.number(p.get("min_count", 5), _join(key, "min_count"), 1, 1000)
    if min_count != int(min_count):
        raise r.fail(_join(key, "min_count"), f"expected a whole number, got {min_count}")
    epsilon = p.get("epsilon")
    sensitivity = r.number(p.get("sensitivity", 2), _join(key, "sensitivity"), 1, 100)
    return PrivacyConfig(
        min_count=int(min_count),
        epsilon=None if epsilon is None else r.number(epsilon, _join(key, "epsilon"), 0, 100,
                                                      low_open=True),
        sensitivity=int(sensitivity),
        isolate_pixels=isolate,
        contact=None if p.get("contact") is None else r.string(p["contact"],
                                                               _join(key, "contact")),
    )


def _outputs(r: _Reader, raw: Any, key: str, cameras: int) -> OutputsConfig:
    o = r.mapping(raw, key, ("jsonl", "mqtt"))
    jsonl = o.get("jsonl", "-")
    if jsonl is not None and jsonl != "-":
        jsonl = r.resolve(r.string(jsonl, _join(key, "jsonl")))
    mqtt = o.get("mqtt")
    return OutputsConfig(jsonl=jsonl, mqtt=None if mqtt is None
                         else _mqtt(r, mqtt, _join(key, "mqtt"), cameras))


def _mqtt(r: _Reader, raw: Any, key: str, cameras: int) -> MqttConfig:
    defaults = MqttConfig(host="", port=0)
    m = r.mapping(raw, key, ("host", "port", "topic_prefix", "client_id", "username",
                             "password", "password_file", "tls", "qos", "keepalive",
                             "health_seconds", "spool_dir", "spool_max_messages"))
    if "password" in m:
        raise r.fail(_join(key, "password"), "not allowed: put the password in a file readable "
                     "only by the service and give its path as password_file")
    if "host" not in m:
        raise r.fail(_join(key, "host"), "missing")
    tls = _tls(r, m.get("tls"), _join(key, "tls"))
    client_id = r.string(m.get("client_id", defaults.client_id), _join(key, "client_id"))
    if not CLIENT_ID_PATTERN.match(client_id):
        raise r.fail(_join(key, "client_id"), "use 1-128 letters, digits, '-', '_' and the "
                     "placeholders {store} and {camera}")
    try:
        client_id.format(store="s", camera="c")
    except (KeyError, IndexError, ValueError):
        raise r.fail(_join(key, "client_id"), "only {store} and {camera} may be filled in") \
            from None
    if cameras > 1 and "{camera}" not in client_id:
        raise r.fail(_join(key, "client_id"), "must contain {camera} when the config has "
                     "several cameras (each camera holds its own MQTT session)")
    prefix = r.string(m.get("topic_prefix", defaults.topic_prefix), _join(key, "topic_prefix"))
    if not TOPIC_PREFIX_PATTERN.match(prefix):
        raise r.fail(_join(key, "topic_prefix"), f"{prefix!r} must be 1-4 topic levels of "
                     "letters, digits, '-' or '_' (no wildcards, no leading '$' or '/')")
    username = m.get("username")
    password_file = m.get("password_file")
    if password_file is not None:
        password_file = r.existing_file(password_file, _join(key, "password_file"))
        if username is None:
            raise r.fail(_join(key, "username"), "missing (a password_file needs a username)")
    return MqttConfig(
        host=r.string(m["host"], _join(key, "host")),
        port=int(r.number(m.get("port", 8883 if tls else 1883), _join(key, "port"), 1, 65535)),
        topic_prefix=prefix,
        client_id=client_id,
        username=None if username is None else r.string(username, _join(key, "username")),
        password_file=password_file,
        tls=tls,
        qos=int(r.choice(m.get("qos", 1), _join(key, "qos"), (0, 1, 2))),
        keepalive=int(r.number(m.get("keepalive", 60), _join(key, "keepalive"), 5, 3600)),
        health_seconds=r.number(m.get("health_seconds", 60), _join(key, "health_seconds"),
                                1, 86400),
        spool_dir=Path(r.resolve(r.string(m.get("spool_dir", str(defaults.spool_dir)),
                                          _join(key, "spool_dir")))),
        spool_max_messages=int(r.number(m.get("spool_max_messages", 100_000),
                                        _join(key, "spool_max_messages"), 10, 10_000_000)),
    )


def _tls(r: _Reader, raw: Any, key: str) -> TlsConfig | None:
    """`tls: true` trusts the system CAs; a mapping with `ca` turns TLS on unless
    `enabled: false`; absent or `false` is plain TCP."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return TlsConfig()
    t = r.mapping(raw, key, ("enabled", "ca", "cert", "key"))
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise r.fail(_join(key, "enabled"), f"expected true or false, got {enabled!r}")
    if not enabled:
        return None
    files = {name: r.existing_file(t[name], _join(key, name)) if name in t else None
             for name in ("ca", "cert", "key")}
    if (files["cert"] is None) != (files["key"] is None):
        raise r.fail(_join(key, "cert" if files["cert"] is None else "key"),
                     "missing (a client certificate needs both cert and key)")
    return TlsConfig(**files)
