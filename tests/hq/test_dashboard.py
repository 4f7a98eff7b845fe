"""`shopper-hq serve` as a real process over HTTP: it needs the token, opens the database
read-only, and its figures are those of `shopper-hq report --json` for the same query
(on the ~2,800 varied windows of test_hq_aggregate, in SQLite and PostgreSQL); CSV export;
`shopper-hq plan set` and the plan it serves; one-line errors."""

from __future__ import annotations

import csv
import io
import json
import secrets
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.hq.store import StoreError, WindowStore
from tests.hq.test_hq_aggregate import fill
from tests.postgres import Postgres, postgres_bin


class Dashboard:
    """`shopper-hq serve` on a free port; `get` fetches with the token."""

    def __init__(self, db, directory: Path):
        self.token = secrets.token_hex(16)
        token_file = directory / "token"
        token_file.write_text(self.token + "\n")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance.hq.cli", "serve", "--db", str(db),
             "--listen", "127.0.0.1:0", "--token-file", str(token_file)],
            stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        first = self.process.stderr.readline()
        self.lines.append(first)
        if "serving http://" not in first:
            self.process.kill()
            raise AssertionError(f"serve did not start: {first}{self.process.stderr.read()}")
        self.url = first.split("serving ")[1].strip()
        threading.Thread(target=lambda: self.lines.extend(self.process.stderr),
                         daemon=True).start()

    def get(self, path: str, token: str | None = "", headers=None):
        """(status, headers, body) of a GET; token "" means the right one."""
        request = urllib.request.Request(self.url.rstrip("/") + path, headers=headers or {})
        if token is not None:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=60) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def report(self, **query) -> dict:
        status, _, body = self.get("/api/report?" + urllib.parse.urlencode(query))
        assert status == 200, body
        return json.loads(body)

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(20) == 0


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def report_json(db, query: dict) -> dict:
    """`shopper-hq report --json` with the arguments the page's query stood for."""
    args = [f"--{name}={value}" if value != "" else f"--{name}"  # "": a flag
            for name, value in query.items() if value is not None]
    result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "report", "--db",
                             str(db), "--json", *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    db = tmp_path_factory.mktemp("dash") / "hq.sqlite"
    fill(str(db))
    return db


@pytest.fixture(scope="module")
def dashboard(filled, tmp_path_factory):
    server = Dashboard(filled, tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


QUERIES = [  # the page's choices: store, camera, time zone, local days from .. to
    {},
    {"tz": "Europe/Paris", "from": "2027-03-28", "to": "2027-03-28"},  # the DST day
    {"tz": "Asia/Kolkata", "store": "shop-1", "from": "2027-03-27"},
    {"store": "shop-1", "camera": "floor", "to": "2027-03-28"},
    {"store": "shop-3"},  # nothing
]


@pytest.mark.parametrize("query", QUERIES)
def test_page_figures_are_those_of_report_json(filled, dashboard, query):
    page = dashboard.report(**query)
    args = page.pop("query")
    assert args["tz"] == query.get("tz", "UTC") and args["store"] == query.get("store")
    assert page == report_json(filled, args)
    if "from" in query:  # local midnight in UTC, as text the stored times start with
        assert args["since"] == {"UTC": "2027-03-28T00:00:00", "Europe/Paris":
                                 "2027-03-27T23:00:00", "Asia/Kolkata":
                                 "2027-03-26T18:30:00"}[args["tz"]] or args["tz"] == "UTC"
    if query == QUERIES[1]:
        assert args["until"] == "2027-03-28T22:00:00"  # summer time: +2 at the day's end
        assert page["cameras"] and all(c["first_window"] >= "2027-03-27T23:00"
                                       for c in page["cameras"])


@pytest.mark.parametrize("query", QUERIES[:3])
def test_chain_figures_are_those_of_report_chain(filled, dashboard, query):
    status, _, body = dashboard.get("/api/chain?" + urllib.parse.urlencode(query))
    assert status == 200, body
    page = json.loads(body)
    args = page.pop("query")
    command = report_json(filled, {"chain": "", **{k: v for k, v in args.items()
                                                   if k in ("store", "since", "until")}})
    command.pop("query")
    assert page == command and page["stores"]
    assert dashboard.get("/api/chain?camera=floor")[0] == 400


def test_token_is_needed(dashboard):
    for token in (None, "wrong-" + dashboard.token):
        status, _, body = dashboard.get("/api/report", token=token)
        assert status == 401 and b"log in" in body
    status, headers, _ = dashboard.get("/", token=None)
    assert status == 303 and headers["Location"] == "/login"
    status, _, body = dashboard.get("/login", token=None)
    assert status == 200 and b'name="token"' in body

    def login(token):
        request = urllib.request.Request(dashboard.url + "login", method="POST",
                                         data=urllib.parse.urlencode({"token": token}).encode())
        try:
            urllib.request.build_opener(NoRedirect).open(request, timeout=10)
        except urllib.error.HTTPError as error:
            return error.headers
        raise AssertionError("no redirect")

    assert login("nope")["Location"] == "/login?failed=1" and not login("nope")["Set-Cookie"]
    cookie = login(dashboard.token)["Set-Cookie"]
    assert "HttpOnly" in cookie and dashboard.token not in cookie
    session = cookie.split(";")[0]
    status, _, body = dashboard.get("/api/cameras", token=None, headers={"Cookie": session})
    assert status == 200 and {"store_id": "shop-1", "camera_id": "door", "status": "online",
                              "status_changed_at": "2027-04-01T00:00:00Z",
                              "plan": False} in json.loads(body)["cameras"]
    # Change the digest's last character (to one it is not, or the "tampered" cookie is valid).
    tampered = session[:-1] + ("1" if session.endswith("0") else "0")
    status, _, _ = dashboard.get("/api/cameras", token=None, headers={"Cookie": tampered})
    assert status == 401
    status, _, body = dashboard.get("/")
    assert status == 200 and b"/static/app.js" in body


def test_bad_queries_are_one_line_400(dashboard):
    for query, message in ((("tz", "Mars/Olympus"), "tz 'Mars/Olympus': unknown time zone"),
                           (("from", "yesterday"), "from 'yesterday': expected a date"),
                           (("store", "a b"), "store 'a b': letters, digits")):
        status, _, body = dashboard.get("/api/report?" + urllib.parse.urlencode([query]))
        assert status == 400 and json.loads(body)["error"].startswith(message), body
    status, _, body = dashboard.get("/api/report.csv?table=secrets")
    assert status == 400 and b"table 'secrets'" in body


def test_csv_export_is_what_the_view_shows(dashboard):
    query = {"store": "shop-1", "tz": "Europe/Paris"}
    page = dashboard.report(**query)
    tables = {}
    for table in ("cameras", "hours", "zones", "age"):
        status, headers, body = dashboard.get("/api/report.csv?" + urllib.parse.urlencode(
            {**query, "table": table}))
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        tables[table] = list(csv.DictReader(io.StringIO(body.decode())))
    hours = [(r["camera_id"], r["hour (Europe/Paris)"], r["line"], int(r["in"]), int(r["out"]))
             for r in tables["hours"]]
    assert hours == [(c["camera_id"], hour, line, n["in"], n["out"]) for c in page["cameras"]
                     for hour, lines in c["hours"].items() for line, n in lines.items()]
    assert len(hours) > 100
    floor = next(c for c in page["cameras"] if c["camera_id"] == "floor")
    zones = {r["zone"]: r for r in tables["zones"]}
    assert set(zones) == set(floor["behaviour"]["zones"]) == {"fruit", "lane1", "bread"}
    fruit = floor["behaviour"]["zones"]["fruit"]
    assert int(zones["fruit"]["visits"]) == fruit["visits"]
    assert float(zones["fruit"]["dwell_p50_s"]) == fruit["dwell"]["p50"]
    door = next(c for c in page["cameras"] if c["camera_id"] == "door")
    assert {(r["camera_id"], r["line"]): int(r["in"]) for r in tables["cameras"]} == \
        {(c["camera_id"], line): n["in"] for c in page["cameras"] for line, n in
         c["lines"].items()}
    assert [int(r["visitors"]) for r in tables["age"] if r["camera_id"] == "door"] == \
        list(door["age_bands"].values())


def png(path: Path, width=320, height=240) -> Path:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (40, 120, 200)
    cv2.imwrite(str(path), image)
    return path


def plan_set(db, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.hq.cli", "plan", "set", "--db",
                           str(db), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_plan_set_validates_and_the_dashboard_serves_it(tmp_path):
    db = tmp_path / "hq.sqlite"
    WindowStore(str(db)).close()
    good = png(tmp_path / "plate.png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    (tmp_path / "notes.png").write_text("not an image")
    tiny = png(tmp_path / "tiny.png", 32, 20)
    for args, message in (
        ([tmp_path / "none.png"], "none.png: no such file"),
        ([tmp_path / "notes.png"], "notes.png: not a PNG or JPEG image"),
        ([truncated], "truncated.png: cannot decode the PNG image"),
        ([tiny], "tiny.png: 32x20 pixels; a plan image's sides are 64 to 8192 pixels"),
        (["--camera", "bad/name", good], "--camera 'bad/name': letters, digits"),
    ):
        full = (["--store", "shop-1"] + (["--camera", "front"] if "--camera" not in args
                                          else []) + args)
        result = plan_set(db, *full)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("shopper-hq: error: ") and message in lines[0], lines
    result = plan_set(tmp_path / "missing.sqlite", "--store", "s", "--camera", "c", good)
    assert result.returncode == 2 and "missing.sqlite: no such database" in result.stderr
    assert plan_set(db, "--store", "shop-1", "--camera", "front", good).returncode == 0
    jpeg = tmp_path / "plate.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(str(good)))
    assert plan_set(db, "--store", "shop-1", "--camera", "back", jpeg).returncode == 0

    server = Dashboard(db, tmp_path)
    try:
        status, headers, body = server.get("/api/plan?store=shop-1&camera=front")
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert body == good.read_bytes()
        status, headers, body = server.get("/api/plan?store=shop-1&camera=back")
        assert headers["Content-Type"] == "image/jpeg" and body == jpeg.read_bytes()
        status, _, body = server.get("/api/plan?store=shop-1&camera=side")
        assert status == 404 and json.loads(body) == {
            "error": "no plan for shop-1/side (shopper-hq plan set)"}
        assert server.get("/api/plan?store=shop-1&camera=front", token=None)[0] == 401
    finally:
        server.stop()


def test_serve_bad_input_is_one_line(tmp_path):
    db = tmp_path / "hq.sqlite"
    WindowStore(str(db)).close()
    (tmp_path / "short").write_text("abc\n")
    (tmp_path / "token").write_text("x" * 32)
    (tmp_path / "junk.sqlite").write_text("not a database at all " * 100)
    for args, message in (
        (["--db", str(tmp_path / "none.sqlite")], "none.sqlite: no such database"),
        (["--db", str(tmp_path / "junk.sqlite")], "junk.sqlite: file is not a database"),
        (["--db", "postgresql://nobody@127.0.0.1:1/none"],
         "postgresql://***@127.0.0.1:1/none: cannot open the database"),
        (["--token-file", str(tmp_path / "short")], "the token must be one word of at least"),
        (["--token-file", str(tmp_path / "nothing")], "nothing: cannot read"),
        (["--listen", "8080"], "--listen '8080': expected HOST:PORT"),
    ):
        full = ["--db", str(db), "--token-file", str(tmp_path / "token"), *args]
        result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "serve", *full],
                                capture_output=True, text=True, timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("shopper-hq: error: ") and message in lines[0], lines
    result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "serve", "--db",
                             str(db)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--token-file" in result.stderr  # never open by default


def test_read_only_store_refuses_writes_sqlite(tmp_path):
    db = tmp_path / "hq.sqlite"
    fill_small(str(db))
    store = WindowStore(str(db), read_only=True)
    try:
        assert store.query("SELECT COUNT(*) FROM windows", [])[0][0] == 1
        with pytest.raises(StoreError, match="readonly|read-only"):
            store.set_status("shop-1", "door", "offline", "2027-01-01T00:00:00Z")
    finally:
        store.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT status FROM camera_status").fetchall() == \
            [("online",)]


def fill_small(target: str) -> None:
    from tests.hq.test_hq import windows

    store = WindowStore(target)
    store.add_window(windows(hours=1, per_hour=1)[0], "2027-01-01T00:00:00Z")
    store.set_status("shop-1", "door", "online", "2027-01-01T00:00:00Z")
    store.close()


def test_postgresql_dashboard_read_only_and_equal_to_report(tmp_path):
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: make system-deps")
    postgres = Postgres().start()
    try:
        fill(postgres.url)
        store = WindowStore(postgres.url, read_only=True)
        with pytest.raises(StoreError, match="read-only transaction"):
            store.set_status("shop-1", "door", "offline", "2027-01-01T00:00:00Z")
        store.close()
        server = Dashboard(postgres.url, tmp_path)
        try:
            for query in QUERIES[:2]:
                page = server.report(**query)
                assert page.pop("query") and page == report_json(
                    postgres.url, server.report(**query)["query"])
        finally:
            server.stop()
    finally:
        postgres.remove()
