"""The setup page's local web server: one camera, one installer, one-time token.

Bound to 127.0.0.1 unless another address is given explicitly (the installer reaches it
with `ssh -L`); then requests from other hosts, and a Host header that is not this machine
(DNS rebinding), are refused. The token in the printed URL is exchanged at the first visit
for a session cookie; a second browser with the token is refused while one edits.

The camera is read by a pixel process (appliance/device/setup/pixels.py) under the pixel
worker's rules: with privacy.isolate_pixels, in an empty network namespace that reaches a
network camera only through the relay. What it hands over is the plate (the only image,
served from memory to that one browser) and numbers; nothing else leaves.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from appliance.device.isolation import CameraDialer, camera_address
from appliance.device.setup import drawing as draw
from appliance.device.setup.config_file import DeviceYaml, unique
from appliance.errors import ApplianceError

log = logging.getLogger("shopper_edge.setup")
COOKIE = "shopper_setup"
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1"}
MAX_LINE = 64 * 1024 * 1024  # a plate of 960 px width as base64 PNG is a few MB at most
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
        self.plate_png: bytes | None = None
        self.plate_status = {"state": "collecting", "message": "starting the camera",
                             "samples": 0, "needed": plate_samples}
        self.frame_size: tuple[int, int] | None = None
        self.detector_input = (416, 416)
        self.decode_warning: str | None = None  # the stream is more than the board decodes
        self.check: dict | None = None
        self._stop = threading.Event()
        self._plate_process: PixelProcess | None = None
        self._check_process: PixelProcess | None = None
        self._starting = threading.Lock()
        self.httpd = (_HttpServer6 if ":" in host else _HttpServer)((host, port), _Handler)
        self.httpd.setup = self

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?token={self.token}"

    def serve(self) -> None:
        self._plate_process = PixelProcess(self.device, "plate", self._on_plate, (
            "--plate-seconds", str(self.plate_seconds), "--samples", str(self.plate_samples)))
        threading.Thread(target=self._watch_idle, name="idle", daemon=True).start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self.httpd.server_close()
            self._plate_process.stop()
            self.stop_check()

    def close(self, why: str) -> None:
        _say(f"closing: {why}")
        self._stop.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def _watch_idle(self) -> None:
        while not self._stop.wait(0.5):
            if time.monotonic() - self.last_request > self.idle_seconds:
                self.close(f"nothing done on the page for {self.idle_seconds:.0f} s")

    # -- the plate (made by the pixel process) -----------------------------------------

    def _on_plate(self, message: dict) -> None:
        with self.lock:
            if "frame" in message:
                self.frame_size = tuple(message["frame"]["size"])
                self.detector_input = tuple(message["frame"]["detector_input"])
                self.decode_warning = message["frame"].get("decode_warning")
            elif "status" in message:
                self.plate_status = message["status"]
            elif "plate" in message:
                self.plate_png = base64.b64decode(message["plate"])
                self.plate_status = {
                    "state": "ready", "samples": message["samples"],
                    "needed": self.plate_samples,
                    "message": f"people-free view from {message['samples']} views "
                               f"({message['blanked']:.0%} blanked where people stayed)"}
            elif "error" in message:
                self.plate_status = {"state": "error", "message": message["error"],
                                     "samples": 0, "needed": self.plate_samples}
            elif "exit" in message and self.plate_png is None and not message["stopped"] \
                    and self.plate_status["state"] != "error":
                self.plate_status = {"state": "error", "samples": 0,
                                     "needed": self.plate_samples,
                                     "message": f"the camera reader stopped (status "
                                                f"{message['exit']})"}
            else:
                return
            state, text = self.plate_status["state"], self.plate_status["message"]
        if state == "ready" and "plate" in message:
            _say(f"people-free view ready ({text})")
        elif state == "error":
            _say(f"error: {text}")

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
        return {"ok": True, "suggestions": self._suggestions(camera)}

    def _suggestions(self, camera) -> list[str]:
        return [*draw.suggestions(camera, self.frame_size, self.detector_input),
                *([self.decode_warning] if self.decode_warning else [])]

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
        if not isinstance(body, dict):
            raise ApplianceError("bad drawing: expected a JSON object")
        section, config = self._candidate(body.get("drawing"))
        camera = config.camera(self.camera.id)
        with self._starting:  # one walk test at a time, even with two clicks at once
            return self._start_check(section, camera)

    def _start_check(self, section: dict, camera) -> dict:
        if self._check_running():
            raise ApplianceError("a walk test is already running")
        with self.lock:
            advice = self._suggestions(camera)
            self.check = check = {"state": "starting", "message": "", "frames": 0, "fps": 0.0,
                          "seconds": 0.0, "lines": {n.name: {"in": 0, "out": 0}
                                                    for n in camera.lines},
                          "zones": {z.name: {"now": 0, "max": 0} for z in camera.zones},
                          "started": _utc(), "advice": advice, "suggestions": advice}
        # One reader of the camera at a time: the plate is made (or not needed) by now.
        self._plate_process.stop()
        self._check_process = PixelProcess(
            self.device, "check", lambda message: self._on_check(message, check),
            ("--realtime",) if self.realtime_check else (),
            {"section": section, "frame_size": self.frame_size})
        _say("walk test started")
        return {"ok": True}

    def _on_check(self, message: dict, check: dict) -> None:
        """A message from the walk test that `check` (this run's numbers) belongs to."""
        with self.lock:
            if "check" in message:
                update = message["check"]
                check.update(state="running", frames=update["frames"], fps=update["fps"],
                             seconds=update["seconds"], lines=update["lines"],
                             zones=update["zones"],
                             suggestions=check["advice"] + update["advice"])
                return
            if "error" in message:
                check.update(state="error", message=message["error"])
            elif "exit" in message and check["state"] != "error":
                check.update(state="finished", message="stopped" if message["stopped"]
                             else "the source ended")
            else:
                return
            state, text, lines = check["state"], check["message"], check["lines"]
        if state == "error":
            _say(f"error: {text}")
        else:
            _say(f"walk test {state}: {json.dumps(lines)}")

    def _check_running(self) -> bool:
        return self._check_process is not None and self._check_process.running

    def stop_check(self) -> dict:
        if self._check_process is not None:
            self._check_process.stop()
        return {"ok": True}

    def record_check(self, body) -> dict:
        """The walk test's result, expected against counted, as a small JSON report (and
        one line in the terminal or journal): numbers and names only."""
        with self.lock:
            if self.check is None:
                raise ApplianceError("run the walk test first")
            check = json.loads(json.dumps(self.check))
            check.pop("advice")
        expected = body.get("expected") if isinstance(body, dict) else None
        if not isinstance(expected, dict):
            raise ApplianceError("expected counts missing")
        lines = {}
        for name, counted in check["lines"].items():
            if name not in expected:  # a line the installer did not walk: counted, not judged
                lines[name] = {"expected": None, "counted": counted, "match": None}
                continue
            want = expected[name] or {}
            try:
                want = {d: int(want.get(d, 0)) for d in ("in", "out")}
            except (TypeError, ValueError):
                raise ApplianceError(f"line {name}: expected counts must be whole numbers") \
                    from None
            lines[name] = {"expected": want, "counted": counted, "match": want == counted}
        judged = [v["match"] for v in lines.values() if v["match"] is not None]
        if not judged:
            raise ApplianceError("give the expected counts of at least one line you walked")
        report = {
            "schema": "shopper.setup-check/1", "store_id": self.device.config.store_id,
            "camera_id": self.camera.id, "started": check["started"], "recorded": _utc(),
            "frames": check["frames"], "fps": check["fps"], "lines": lines,
            "zones_max": {n: z["max"] for n, z in check["zones"].items()},
            "suggestions": check["suggestions"],
            "result": "pass" if all(judged) else "fail",
        }
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = unique(self.report_dir / f"setup-check-{self.camera.id}-{stamp}.json")
        try:
            path.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise ApplianceError(f"{path}: cannot write the report: {error.strerror}") from None
        summary = ", ".join(f"{n} in {v['counted']['in']}/{v['expected']['in']} out "
                            f"{v['counted']['out']}/{v['expected']['out']}"
                            if v["expected"] is not None else
                            f"{n} in {v['counted']['in']} out {v['counted']['out']} (not walked)"
                            for n, v in lines.items())
        _say(f"walk test {report['result']}: {summary} (counted/expected); report {path}")
        return {"ok": True, "path": str(path), "report": report}

    # -- state for the page ------------------------------------------------------------

    def state(self) -> dict:
        with self.lock:
            return {
                "camera": self.camera.id, "store": self.device.config.store_id,
                "config": str(self.device.path), "frame_size": self.frame_size,
                "plate": dict(self.plate_status),
                "check": {k: v for k, v in self.check.items() if k != "advice"}
                if self.check else None,
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
        path = urlsplit(request.path)
        # The page's own polling is not the installer at work, unless a walk test runs:
        # a tab left open does not keep the server up past the idle timeout.
        if path.path != "/api/state" or self._check_running():
            self.last_request = time.monotonic()
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


class PixelProcess:
    """The setup's pixel process for one task, and the thread that reads its messages (the
    relay to a network camera when isolated, as the publisher gives the pixel worker)."""

    def __init__(self, device: DeviceYaml, task: str, on_message, extra=(), request=None):
        config, camera = device.config, device.camera
        command = [sys.executable, "-m", "appliance.device.setup.pixels", "--config",
                   str(device.path), "--camera", camera.id, "--task", task, *extra]
        isolate = config.privacy.isolate_pixels
        if isolate:
            command.append("--isolate")
        pass_fds: tuple[int, ...] = ()
        dialer_end = None
        if isolate and camera_address(camera.source):
            dialer_end, worker_end = socket.socketpair()
            command += ["--control-fd", str(worker_end.fileno())]
            pass_fds = (worker_end.fileno(),)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        pass_fds=pass_fds)
        if dialer_end is not None:
            worker_end.close()
            CameraDialer(dialer_end, camera.source).start()
        self.process.stdin.write(json.dumps(request).encode() if request is not None else b"")
        self.process.stdin.close()
        self.on_message = on_message
        self.stopping = False  # the server asked it to stop
        self._reader = threading.Thread(target=self._read, name=f"pixels-{task}", daemon=True)
        self._reader.start()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _read(self) -> None:
        while line := self.process.stdout.readline(MAX_LINE):
            try:
                self.on_message(json.loads(line))
            except ValueError:
                log.warning("setup: the pixel process sent a line that is not JSON")
        self.on_message({"exit": self.process.wait(), "stopped": self.stopping})

    def stop(self) -> None:
        self.stopping = True
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)


def _static(name: str) -> bytes:
    return resources.files("appliance.device.setup").joinpath("static", name).read_bytes()


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _HttpServer(ThreadingHTTPServer):
    # server_close() waits for the requests in flight: "close" gets its answer before the
    # process exits (with daemon threads the exit could cut it off).
    daemon_threads = False
    block_on_close = True
    setup: SetupSession


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


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
