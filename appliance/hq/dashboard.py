"""`shopper-hq serve`: the head-office dashboard, a read-only web page over the store
`report` reads (standard library http.server; the page is plain HTML/JS in hq/web).

Every figure comes from `build_reports` + `as_json`, the code behind `report --json`, so the
page shows the report's numbers. Access needs the token (a login form sets a cookie made
from it; scripts send `Authorization: Bearer TOKEN`). The database is opened read-only
per request: the server can neither change nor add anything.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import sys
from datetime import date, datetime, time, timedelta
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.errors import ApplianceError
from appliance.hq.aggregate import build_reports
from appliance.hq.chain import chain_report
from appliance.hq.plans import NAME_PATTERN
from appliance.hq.render import as_json
from appliance.hq.store import StoreError, WindowStore

COOKIE = "shopper_hq"
STATIC = {"index.html": "text/html", "login.html": "text/html", "app.js": "text/javascript",
          "app.css": "text/css"}
CSV_TABLES = ("cameras", "hours", "zones", "age")
MIN_TOKEN_CHARS = 16


class QueryError(ValueError):
    """A bad parameter of a request: answered 400 with this one line."""


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as error:
        raise ApplianceError(f"--token-file {path}: cannot read: "
                             f"{error.strerror or error}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ApplianceError(f"--token-file {path}: the token must be one word of at least "
                             f"{MIN_TOKEN_CHARS} characters (e.g. openssl rand -hex 16)")
    return token


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ApplianceError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


class Dashboard:
    def __init__(self, db: str, token: str):
        self.db = db
        self.token = token
        # The cookie holds a digest of the token, never the token itself.
        self.session = hmac.new(token.encode(), b"shopper-hq session", hashlib.sha256).hexdigest()
        WindowStore(db, read_only=True).close()  # a wrong database fails now, in one line

    def store(self) -> WindowStore:
        return WindowStore(self.db, read_only=True)

    def cameras(self) -> dict:
        store = self.store()
        try:
            rows = store.cameras()
            statuses, plans = store.statuses(), store.plans()
        finally:
            store.close()
        return {"cameras": [{"store_id": s, "camera_id": c,
                             "status": statuses.get((s, c), (None, None))[0],
                             "status_changed_at": statuses.get((s, c), (None, None))[1],
                             "plan": (s, c) in plans} for s, c in rows]}

    def report(self, query: dict[str, str]) -> dict:
        """{"query": the report's arguments, **report --json} for the page's choice."""
        args = report_args(query)
        store = self.store()
        try:
            reports = build_reports(store, ZoneInfo(args["tz"]), args["store"],
                                    args["camera"], args["since"], args["until"])
        finally:
            store.close()
        return {"query": args, **as_json(reports)}

    def chain(self, query: dict[str, str]) -> dict:
        """`report --chain --json` for the query's store (or all) and period: one row per
        store and the chain's total, summed by the database."""
        args = report_args(query)
        if args["camera"]:
            raise QueryError("camera: the chain report is per store")
        store = self.store()
        try:
            report = chain_report(store, args["store"], args["since"], args["until"])
        finally:
            store.close()
        return {**report, "query": args}

    def plan(self, query: dict[str, str]) -> tuple[str, bytes] | None:
        store = self.store()
        try:
            return store.plan(_name(query, "store", True), _name(query, "camera", True))
        finally:
            store.close()


def report_args(query: dict[str, str]) -> dict:
    """The `report` arguments of a page query: store, camera, tz and the period, either as
    `since`/`until` (UTC, as report takes them) or as local dates `from`/`to` (whole days
    in tz, turned into the UTC since/until shown back to the page)."""
    tz = query.get("tz") or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"tz {tz!r}: unknown time zone") from None
    since, until = query.get("since") or None, query.get("until") or None
    for name, value in (("since", since), ("until", until)):
        if value is not None and not re.fullmatch(r"\d{4}-\d\d-\d\d(T[\d:.]+Z?)?", value):
            raise QueryError(f"{name} {value!r}: expected an ISO 8601 UTC time")
    for name, days in (("from", 0), ("to", 1)):
        if query.get(name):
            try:
                day = date.fromisoformat(query[name]) + timedelta(days=days)
            except ValueError:
                raise QueryError(f"{name} {query[name]!r}: expected a date YYYY-MM-DD") from None
            utc = datetime.combine(day, time(), zone).astimezone(ZoneInfo("UTC"))
            text = utc.strftime("%Y-%m-%dT%H:%M:%S")  # a prefix of the stored times' text
            since, until = (text, until) if name == "from" else (since, text)
    return {"store": _name(query, "store"), "camera": _name(query, "camera"), "tz": tz,
            "since": since, "until": until}


def _name(query: dict[str, str], key: str, required: bool = False) -> str | None:
    value = query.get(key) or None
    if value is None and required:
        raise QueryError(f"{key}: missing")
    if value is not None and not NAME_PATTERN.fullmatch(value):
        raise QueryError(f"{key} {value!r}: letters, digits, - and _ only")
    return value


def csv_table(report: dict, table: str) -> str:
    """One of the page's tables as CSV, from the same JSON the page draws."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cameras = report["cameras"]
    if table == "cameras":
        writer.writerow(["store_id", "camera_id", "status", "first_window", "last_window",
                         "windows", "partial_windows", "coverage", "suppressed_counts", "line",
                         "in", "out"])
        for c in cameras:
            for line, counts in (c["lines"] or {"": {"in": None, "out": None}}).items():
                writer.writerow([c["store_id"], c["camera_id"], c["status"], c["first_window"],
                                 c["last_window"], c["windows"], c["partial_windows"],
                                 c["coverage"], c["suppressed_counts"], line, counts["in"],
                                 counts["out"]])
    elif table == "hours":
        writer.writerow(["store_id", "camera_id", f"hour ({report['query']['tz']})", "line",
                         "in", "out"])
        for c in cameras:
            for hour, lines in c["hours"].items():
                for line, counts in lines.items():
                    writer.writerow([c["store_id"], c["camera_id"], hour, line, counts["in"],
                                     counts["out"]])
    elif table == "zones":
        writer.writerow(["store_id", "camera_id", "zone", "kind", "visits", "interactions",
                         "dwell_p50_s", "dwell_p90_s", "at_least", "occupancy_mean",
                         "occupancy_max", "suppressed_counts"])
        for c in cameras:
            for name, z in ((c["behaviour"] or {}).get("zones") or {}).items():
                writer.writerow([c["store_id"], c["camera_id"], name, z["kind"], z["visits"],
                                 z["interactions"], z["dwell"]["p50"], z["dwell"]["p90"],
                                 " ".join(z["dwell"]["at_least"]), z["occupancy_mean"],
                                 z["occupancy_max"], sum(z["suppressed"].values())])
    elif table == "age":
        writer.writerow(["store_id", "camera_id", "band", "visitors", "share_of_known"])
        for c in cameras:
            for band, n in c["age_bands"].items():
                writer.writerow([c["store_id"], c["camera_id"], band, n,
                                 c["age_shares"].get(band)])
    else:
        raise QueryError(f"table {table!r}: one of {', '.join(CSV_TABLES)}")
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    server_version = "shopper-hq"
    dashboard: Dashboard  # set by serve()

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/login":
            return self._static("login.html")
        if not self._authorised():
            if url.path.startswith("/api/"):
                return self._json({"error": "log in first (token)"}, HTTPStatus.UNAUTHORIZED)
            return self._redirect("/login")
        try:
            if url.path == "/":
                return self._static("index.html")
            if url.path.startswith("/static/") and url.path[8:] in STATIC:
                return self._static(url.path[8:])
            if url.path == "/api/cameras":
                return self._json(self.dashboard.cameras())
            if url.path == "/api/report":
                return self._json(self.dashboard.report(query))
            if url.path == "/api/chain":
                return self._json(self.dashboard.chain(query))
            if url.path == "/api/report.csv":
                table = query.get("table", "")
                if table not in CSV_TABLES:
                    raise QueryError(f"table {table!r}: one of {', '.join(CSV_TABLES)}")
                body = csv_table(self.dashboard.report(query), table).encode()
                return self._send(body, "text/csv; charset=utf-8", extra={
                    "Content-Disposition": f'attachment; filename="shopper-{table}.csv"'})
            if url.path == "/api/plan":
                plan = self.dashboard.plan(query)
                if plan is None:
                    return self._json({"error": f"no plan for {query['store']}/"
                                       f"{query['camera']} (shopper-hq plan set)"},
                                      HTTPStatus.NOT_FOUND)
                return self._send(plan[1], plan[0])
            return self._json({"error": f"{url.path}: not found"}, HTTPStatus.NOT_FOUND)
        except QueryError as error:
            return self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except StoreError as error:
            print(f"shopper-hq: {error}", file=sys.stderr, flush=True)
            return self._json({"error": str(error)}, HTTPStatus.SERVICE_UNAVAILABLE)

    def do_POST(self):  # noqa: N802
        if urlsplit(self.path).path != "/login":
            return self._json({"error": "read-only"}, HTTPStatus.METHOD_NOT_ALLOWED)
        length = min(int(self.headers.get("Content-Length") or 0), 4096)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[-1].strip()
        if not hmac.compare_digest(given.encode(), self.dashboard.token.encode()):
            return self._redirect("/login?failed=1")
        return self._redirect("/", cookie=f"{COOKIE}={self.dashboard.session}; HttpOnly; "
                              "SameSite=Strict; Path=/")

    def _authorised(self) -> bool:
        bearer = self.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            return hmac.compare_digest(bearer[7:].strip().encode(),
                                       self.dashboard.token.encode())
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        return COOKIE in cookie and hmac.compare_digest(cookie[COOKIE].value.encode(),
                                                        self.dashboard.session.encode())

    def _static(self, name: str) -> None:
        body = (resources.files("appliance.hq") / "web" / name).read_bytes()
        self._send(body, STATIC[name] + "; charset=utf-8")

    def _json(self, value: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(value).encode(), "application/json", status)

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        self._send(b"", "text/plain", HTTPStatus.SEE_OTHER,
                   {"Location": location, **({"Set-Cookie": cookie} if cookie else {})})

    def _send(self, body: bytes, media_type: str, status: HTTPStatus = HTTPStatus.OK,
              extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass  # no access log: errors are printed where they happen


def serve(db: str, token: str, host: str, port: int) -> None:
    """Serve until interrupted; prints the URL once listening."""
    dashboard = Dashboard(db, token)
    handler = type("DashboardHandler", (Handler,), {"dashboard": dashboard})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise ApplianceError(f"--listen {host}:{port}: {error.strerror or error}") from None
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    print(f"shopper-hq: serving http://{bound_host}:{bound_port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
