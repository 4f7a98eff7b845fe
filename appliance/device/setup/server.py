"""The setup page's local web server: one camera, one installer, one-time token.

Bound to 127.0.0.1 unless another address is given explicitly (the installer reaches it
with `ssh -L`); then requests from other hosts, and a Host header that is not this machine
(DNS rebinding), are refused. The token in the printed URL is exchanged at the first visit
for a session cookie; a second browser with the token is refused while one edits. The
plate (the only image) goes to that browser only, from memory; nothing else leaves.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import sys
import threading
import time
from dataclasses import replace
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from appliance.device.setup import drawing as draw
from appliance.device.setup.config_file import DeviceYaml, unique
from appliance.device.setup.plate import Plate, PlateBuilder, encode_png, people_on
from appliance.device.setup.walk import FirstSeenOnLine
from appliance.errors import ApplianceError, redact_url

log = logging.getLogger("shopper_edge.setup")
COOKIE = "shopper_setup"
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1"}
REBUILD_EVERY = 5  # live camera, plate refused: rebuild after this many new views
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not travel in a Referer
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                               "frame-ancestors 'none'",
}


def _say(line: str) -> None:
    """A line for the installer's terminal."""
    print(f"shopper-edge: setup: {line}", file=sys.stderr, flush=True)


class SetupSession:
    def __init__(self, device: DeviceYaml, *, host: str = "127.0.0.1", port: int = 0,
                 idle_seconds: float = 900, plate_seconds: float = 60, plate_samples: int = 30,
                 report_dir: Path = Path("."), realtime_check: bool = False):
        self.device = device
        self.camera = device.camera
        self.local_only = host in LOCAL_NAMES
        self.token = secrets.token_urlsafe(24)
        self.session: str | None = None
        self.idle_seconds = idle_seconds
        self.plate_seconds = plate_seconds
        self.plate_samples = plate_samples
        self.report_dir = report_dir
        self.realtime_check = realtime_check
        self.last_request = time.monotonic()
        self.lock = threading.Lock()
        self.plate: Plate | None = None
        self.plate_png: bytes | None = None
        self.plate_status = {"state": "collecting", "message": "starting the camera",
                             "samples": 0, "needed": plate_samples}
        self.frame_size: tuple[int, int] | None = None
        self.detector_input = (416, 416)
        self.check: dict | None = None
        self._stop = threading.Event()
        self._plate_stop = threading.Event()
        self._check_stop = threading.Event()
        self._check_thread: threading.Thread | None = None
        self.httpd = _HttpServer((host, port), _Handler)
        self.httpd.setup = self

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?token={self.token}"

    def serve(self) -> None:
        plate = threading.Thread(target=self._collect_plate, name="plate", daemon=True)
        plate.start()
        threading.Thread(target=self._watch_idle, name="idle", daemon=True).start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self._plate_stop.set()
            self.httpd.server_close()
            # The camera readers end before the process does (a decoder thread still
            # running at exit aborts it).
            self.stop_check()
            plate.join(15)

    def close(self, why: str) -> None:
        _say(f"closing: {why}")
        self._stop.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def _watch_idle(self) -> None:
        while not self._stop.wait(0.5):
            if time.monotonic() - self.last_request > self.idle_seconds:
                self.close(f"no request for {self.idle_seconds:.0f} s")

    # -- the plate ---------------------------------------------------------------------

    def _collect_plate(self) -> None:
        from appliance.device.pipeline import load_detector
        from appliance.device.sources import open_source

        try:
            detector = load_detector(self.device.config)
            self.detector_input = detector.input_size
            source = open_source(self.camera.source, None, self._plate_stop,
                                 label=self.camera.source)
        except ApplianceError as error:
            self._plate_failed(str(error))
            return
        live = getattr(source, "live", False)
        duration = getattr(source, "duration", None)
        span = self.plate_seconds if live or not duration else min(self.plate_seconds, duration)
        # Only the sampled frames are decoded: the rate cap skips the rest.
        source.cap_fps = self.plate_samples / span
        builder = PlateBuilder(detector, self.plate_samples)
        added = 0
        try:
            for frame, _timestamp in source:
                builder.add(frame)
                del frame
                added += 1
                self.frame_size = builder.frame_size
                self._set_plate_status("collecting", "collecting views of the scene",
                                       len(builder))
                full = len(builder) == self.plate_samples
                if full and (self.plate is None or not self.plate_png) and \
                        (added == self.plate_samples or added % REBUILD_EVERY == 0):
                    if self._try_plate(builder, detector):
                        return
        except ApplianceError as error:
            self._plate_failed(str(error))
            return
        if self.plate_png is None and not self._plate_stop.is_set():
            if len(builder) < 3:
                self._plate_failed(f"{redact_url(self.camera.source)}: too few frames "
                                   f"for a view of the scene ({len(builder)})")
            elif not self._try_plate(builder, detector):
                self._set_plate_status("error", "a person is in the same place in every view "
                                       "of this clip: no people-free view can be made",
                                       len(builder))
                _say(f"error: {self.plate_status['message']}")

    def _try_plate(self, builder: PlateBuilder, detector) -> bool:
        plate = builder.build()
        found = people_on(plate, detector)
        if len(found):
            self._set_plate_status("waiting", f"a person is still visible ({len(found)} "
                                   "found on the view): waiting for them to move on",
                                   len(builder))
            return False
        png = encode_png(plate)
        with self.lock:
            self.plate, self.plate_png = plate, png
        builder.clear()  # the views die here; only the plate stays, in memory
        self._set_plate_status("ready", f"people-free view from {plate.samples} views "
                               f"({plate.blanked:.0%} blanked where people stayed)",
                               plate.samples)
        _say(f"people-free view ready ({plate.samples} views, {plate.blanked:.0%} blanked)")
        return True

    def _set_plate_status(self, state: str, message: str, samples: int) -> None:
        with self.lock:
            self.plate_status = {"state": state, "message": message, "samples": samples,
                                 "needed": self.plate_samples}

    def _plate_failed(self, message: str) -> None:
        self._set_plate_status("error", message, 0)
        _say(f"error: {message}")

    # -- drawing, validation, saving ---------------------------------------------------

    def _candidate(self, body) -> tuple[dict, object]:
        """(section, config) for a drawing; ApplianceError with the problem line."""
        if self.frame_size is None:
            raise ApplianceError("wait for the camera's first frame")
        try:
            section = draw.to_section(body, self.camera.coordinates, self.frame_size)
        except draw.DrawingError as error:
            raise ApplianceError(f"bad drawing: {error}") from None
        return section, self.device.validate(section)

    def validate(self, body) -> dict:
        _section, config = self._candidate(body)
        camera = config.camera(self.camera.id)
        return {"ok": True, "suggestions": draw.suggestions(camera, self.frame_size,
                                                             self.detector_input)}

    def save(self, body) -> dict:
        section, _config = self._candidate(body)
        backup = self.device.save(section)
        self.camera = self.device.camera
        config = self.device.config
        _say(f"saved {self.device.path} (backup {backup.name}); check-config: OK")
        return {"ok": True, "path": str(self.device.path), "backup": str(backup),
                "message": f"saved {self.device.path}; backup {backup.name}; "
                           f"check-config: OK: store {config.store_id}, camera {self.camera.id}"
                           f" ({len(self.camera.lines)} lines, {len(self.camera.zones)} zones)"}

    # -- the walk test -----------------------------------------------------------------

    def start_check(self, body) -> dict:
        _section, config = self._candidate(body.get("drawing"))
        with self.lock:
            if self._check_thread is not None and self._check_thread.is_alive():
                raise ApplianceError("a walk test is already running")
            self._plate_stop.set()  # one reader of the camera at a time
            self._check_stop = threading.Event()
            camera = config.camera(self.camera.id)
            self.check = {"state": "starting", "message": "", "frames": 0, "fps": 0.0,
                          "seconds": 0.0, "lines": {n.name: {"in": 0, "out": 0}
                                                    for n in camera.lines},
                          "zones": {z.name: {"now": 0, "max": 0} for z in camera.zones},
                          "started": _utc(), "suggestions": draw.suggestions(
                              camera, self.frame_size, self.detector_input)}
            self._check_thread = threading.Thread(target=self._run_check,
                                                  args=(config, camera), daemon=True)
            self._check_thread.start()
        _say("walk test started")
        return {"ok": True}

    def _run_check(self, config, camera) -> None:
        from appliance.device.pipeline import CameraPipeline, load_detector, run_frames
        from appliance.device.sources import open_source

        # The camera's own pipeline, as `run` has it; its windows are dropped: the walk
        # test shows numbers on this page and publishes nothing.
        config = replace(config, performance=replace(config.performance, adaptive_rate=False))
        started = time.monotonic()
        try:
            source = open_source(camera.source, camera.fps, self._check_stop,
                                 label=camera.source, realtime=self.realtime_check)
            pipeline = CameraPipeline(config, camera, load_detector(config), source.clock)
            watch = pipeline.tracker = FirstSeenOnLine(pipeline.tracker, camera,
                                                       config.counting, self.frame_size)
            advice = list(self.check["suggestions"])
            self._update_check(state="running")

            def on_frame(_timestamp: float) -> None:
                zones = pipeline.behaviour.zones.occupancy if pipeline.behaviour else {}
                elapsed = max(time.monotonic() - started, 1e-6)
                with self.lock:
                    check = self.check
                    check["frames"] = pipeline.times.frames
                    check["seconds"] = round(elapsed, 1)
                    check["fps"] = round(pipeline.times.frames / elapsed, 1)
                    check["lines"] = pipeline.totals()
                    check["suggestions"] = advice + watch.advice()
                    for name, now in zones.items():
                        z = check["zones"][name]
                        z["now"], z["max"] = now, max(z["max"], now)

            run_frames(pipeline, source, lambda _document: None, on_frame)
            on_frame(0.0)
            self._update_check(state="finished", message="the source ended"
                               if not self._check_stop.is_set() else "stopped")
        except ApplianceError as error:
            self._update_check(state="error", message=str(error))
            _say(f"error: {error}")
        _say(f"walk test {self.check['state']}: {json.dumps(self.check['lines'])}")

    def _update_check(self, **values) -> None:
        with self.lock:
            self.check.update(values)

    def stop_check(self) -> dict:
        self._check_stop.set()
        if self._check_thread is not None:
            self._check_thread.join(15)
        return {"ok": True}

    def record_check(self, body) -> dict:
        """The walk test's result, expected against counted, as a small JSON report (and
        one line in the terminal or journal): numbers and names only."""
        with self.lock:
            if self.check is None:
                raise ApplianceError("run the walk test first")
            check = json.loads(json.dumps(self.check))
        expected = body.get("expected") if isinstance(body, dict) else None
        if not isinstance(expected, dict):
            raise ApplianceError("expected counts missing")
        lines = {}
        for name, counted in check["lines"].items():
            want = expected.get(name) or {}
            try:
                want = {d: int(want.get(d, 0)) for d in ("in", "out")}
            except (TypeError, ValueError):
                raise ApplianceError(f"line {name}: expected counts must be whole numbers") \
                    from None
            lines[name] = {"expected": want, "counted": counted, "match": want == counted}
        report = {
            "schema": "shopper.setup-check/1", "store_id": self.device.config.store_id,
            "camera_id": self.camera.id, "started": check["started"], "recorded": _utc(),
            "frames": check["frames"], "fps": check["fps"], "lines": lines,
            "zones_max": {n: z["max"] for n, z in check["zones"].items()},
            "suggestions": check["suggestions"],
            "result": "pass" if all(v["match"] for v in lines.values()) else "fail",
        }
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = unique(self.report_dir / f"setup-check-{self.camera.id}-{stamp}.json")
        try:
            path.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise ApplianceError(f"{path}: cannot write the report: {error.strerror}") from None
        summary = ", ".join(f"{n} in {v['counted']['in']}/{v['expected']['in']} out "
                            f"{v['counted']['out']}/{v['expected']['out']}"
                            for n, v in lines.items())
        _say(f"walk test {report['result']}: {summary} (counted/expected); report {path}")
        return {"ok": True, "path": str(path), "report": report}

    # -- state for the page ------------------------------------------------------------

    def state(self) -> dict:
        with self.lock:
            return {
                "camera": self.camera.id, "store": self.device.config.store_id,
                "config": str(self.device.path), "frame_size": self.frame_size,
                "plate": dict(self.plate_status), "check": json.loads(json.dumps(self.check)),
                "drawing": draw.from_camera(self.camera, self.frame_size)
                if self.frame_size else None,
                "zone_kinds": ["shelf", "checkout", "queue", "staff", "entrance", "area"],
            }

    # -- requests ----------------------------------------------------------------------

    def refusal(self, request: _Handler) -> tuple[HTTPStatus, str] | None:
        """Why this request may not be served, or None."""
        peer = ipaddress.ip_address(request.client_address[0])
        if self.local_only:
            if not peer.is_loopback:
                return HTTPStatus.FORBIDDEN, "only requests from this machine (use ssh -L)"
            host = urlsplit(f"//{request.headers.get('Host', '')}").hostname or ""
            if host not in LOCAL_NAMES:
                return HTTPStatus.FORBIDDEN, f"Host {host!r} is not this machine"
        path = urlsplit(request.path)
        cookie = SimpleCookie(request.headers.get("Cookie", ""))
        session = cookie[COOKIE].value if COOKIE in cookie else None
        if path.path == "/" and "token" in parse_qs(path.query):
            token = parse_qs(path.query)["token"][0]
            if not secrets.compare_digest(token, self.token):
                return HTTPStatus.FORBIDDEN, "wrong token: use the URL `shopper-edge setup` " \
                    "printed"
            if self.session is not None and session != self.session:
                return HTTPStatus.CONFLICT, "another installer is already editing camera " \
                    f"{self.camera.id}; ask them to close the page, or wait for the idle timeout"
            return None
        if self.session is None or session is None or \
                not secrets.compare_digest(session, self.session):
            return HTTPStatus.FORBIDDEN, "no session: open the URL `shopper-edge setup` printed"
        return None

    def handle(self, request: _Handler, method: str) -> None:
        refused = self.refusal(request)
        if refused:
            request.reply_text(*refused)
            return
        self.last_request = time.monotonic()
        path = urlsplit(request.path)
        if path.path == "/" and "token" in parse_qs(path.query):
            with self.lock:
                if self.session is None:
                    self.session = secrets.token_urlsafe(24)
                    _say("an installer opened the page")
            request.send_response(HTTPStatus.SEE_OTHER)
            request.send_header("Location", "/")
            request.send_header("Set-Cookie", f"{COOKIE}={self.session}; HttpOnly; "
                                "SameSite=Strict; Path=/")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        route = (method, path.path)
        try:
            if method == "GET" and path.path in ("/", "/index.html"):
                request.reply(HTTPStatus.OK, _static("index.html"), STATIC["index.html"])
            elif method == "GET" and path.path.startswith("/static/") and \
                    path.path[8:] in STATIC:
                request.reply(HTTPStatus.OK, _static(path.path[8:]), STATIC[path.path[8:]])
            elif route == ("GET", "/api/state"):
                request.reply_json(self.state())
            elif route == ("GET", "/api/plate.png"):
                with self.lock:
                    png = self.plate_png
                if png is None:
                    request.reply_text(HTTPStatus.CONFLICT, self.plate_status["message"])
                else:
                    request.reply(HTTPStatus.OK, png, "image/png")
            elif method == "POST" and path.path in POSTS:
                request.reply_json(POSTS[path.path](self, request.json_body()))
            else:
                request.reply_text(HTTPStatus.NOT_FOUND, f"no such page: {path.path}")
        except ApplianceError as error:
            # One line on the page and in the terminal; nothing was written.
            line = str(error)
            _say(f"error: {line}")
            request.reply_json({"ok": False, "error": line}, HTTPStatus.UNPROCESSABLE_ENTITY)


POSTS = {
    "/api/validate": SetupSession.validate,
    "/api/save": SetupSession.save,
    "/api/check/start": SetupSession.start_check,
    "/api/check/stop": lambda s, _body: s.stop_check(),
    "/api/check/record": SetupSession.record_check,
    "/api/close": lambda s, _body: (s.close("the installer closed the page"), {"ok": True})[1],
}


def _static(name: str) -> bytes:
    return resources.files("appliance.device.setup").joinpath("static", name).read_bytes()


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    setup: SetupSession


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "shopper-edge-setup"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self.server.setup.handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.setup.handle(self, "POST")

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass  # request lines carry the token: never logged

    def json_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            raise ApplianceError("request too large")
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            raise ApplianceError("the page sent a request that is not JSON") from None

    def reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, value, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.reply(status, json.dumps(value).encode(), "application/json")

    def reply_text(self, status: HTTPStatus, text: str) -> None:
        self.reply(status, f"shopper-edge setup: {text}\n".encode(), "text/plain; charset=utf-8")
