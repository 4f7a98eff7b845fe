"""HQ storage of window documents: SQLite by default, PostgreSQL when given a URL.

One row per window, keyed by its `message_id`, so a repeat (a QoS 1 redelivery, a spool
resent after a crash) is ignored by the database itself; per-line counts in their own
table for reporting; the whole document is kept too (`document`, JSON text), so later
schema fields need no migration to be stored: the age bands of `shopper.counts/1` and the
zones, journeys, groups and heatmap of `shopper.counts/2` are read from it. Both versions
share these tables. Each new window is also added, in the same transaction, to its camera's
quarter-hour roll-up (rollup.py), which reports read, and to its store's quarter-hour and
day sums, which the chain report (chain.py) reads. The SQL is the common subset of
SQLite and PostgreSQL, but for how rows are sent in bulk (`_source`) and the roll-ups' row
locks (PostgreSQL; SQLite has one writer at a time).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from appliance.errors import ApplianceError, redact_url
from appliance.hq.rollup import STORE_COLUMNS, Rollup, StoreSums, quarter

TABLES = (
    """CREATE TABLE IF NOT EXISTS windows (
        message_id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        clock TEXT NOT NULL,
        window_start TEXT NOT NULL,
        window_end TEXT NOT NULL,
        observed_seconds REAL NOT NULL,
        partial BOOLEAN NOT NULL,
        frames INTEGER NOT NULL,
        document TEXT NOT NULL,
        received_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS windows_by_camera ON windows "
    "(store_id, camera_id, window_start)",
    """CREATE TABLE IF NOT EXISTS line_counts (
        message_id TEXT NOT NULL REFERENCES windows (message_id),
        line TEXT NOT NULL,
        entered INTEGER,
        exited INTEGER,
        PRIMARY KEY (message_id, line))""",
    """CREATE TABLE IF NOT EXISTS camera_status (
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        status TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        PRIMARY KEY (store_id, camera_id))""",
    # Each camera's latest shopper.health/1 document (operational figures only).
    """CREATE TABLE IF NOT EXISTS camera_health (
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        document TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (store_id, camera_id))""",
    # The store's plan behind a camera's heatmap (its people-free plate, from the setup
    # page), set at HQ with `shopper-hq plan set`; base64 text: one SQL for both databases.
    """CREATE TABLE IF NOT EXISTS plans (
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        image TEXT NOT NULL,
        set_at TEXT NOT NULL,
        PRIMARY KEY (store_id, camera_id))""",
    # Every camera that sent a window (the dashboard's list), kept at ingest.
    """CREATE TABLE IF NOT EXISTS cameras (
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        PRIMARY KEY (store_id, camera_id))""",
    # A camera's windows summed per UTC quarter-hour (rollup.py, JSON text), updated in the
    # transaction that stores them; reports read these. first/last_start: the earliest and
    # latest window start in it; grids: how many heatmap grid sizes it holds.
    """CREATE TABLE IF NOT EXISTS rollups (
        store_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        quarter TEXT NOT NULL,
        first_start TEXT NOT NULL,
        last_start TEXT NOT NULL,
        grids INTEGER NOT NULL,
        summary TEXT NOT NULL,
        PRIMARY KEY (store_id, camera_id, quarter))""",
    "CREATE INDEX IF NOT EXISTS rollups_by_quarter ON rollups (quarter)",  # a chain's period
    # A store's windows per UTC quarter-hour and per UTC day as plain numbers
    # (rollup.StoreSums), added to by the database in the same transaction: the chain
    # report (chain.py) sums them in SQL, the days inside its period and the quarter-hours
    # of the days at its ends. first/last_start as in rollups (a period's cut quarter-hours).
    *(f"""CREATE TABLE IF NOT EXISTS {table} (
        store_id TEXT NOT NULL,
        {key} TEXT NOT NULL,
        first_start TEXT NOT NULL,
        last_start TEXT NOT NULL,
        last_end TEXT NOT NULL,
        windows BIGINT NOT NULL,
        partial BIGINT NOT NULL,
        length_ms BIGINT NOT NULL,
        observed DOUBLE PRECISION NOT NULL,
        entered BIGINT NOT NULL,
        exited BIGINT NOT NULL,
        suppressed BIGINT NOT NULL,
        PRIMARY KEY (store_id, {key}))""" for table, key in (("store_quarters", "quarter"),
                                                              ("store_days", "day"))),
    "CREATE INDEX IF NOT EXISTS store_quarters_by_quarter ON store_quarters (quarter)",
)
# Rows per multi-row statement (far below both databases' limits on parameters).
CHUNK = 1000
# PostgreSQL types of the windows' columns, as sent
WINDOW_TYPES = ("text",) * 6 + ("float8", "bool", "int8", "text", "text")
STORE_SUMS_TYPES = ("text",) * 5 + ("int8",) * 3 + ("float8",) + ("int8",) * 3


def add_store_sums(table: str, key: str) -> str:
    """The upsert suffix that adds a batch's new windows to a store_quarters/store_days row
    (CASE: LEAST/GREATEST are PostgreSQL's only)."""
    return (f"ON CONFLICT (store_id, {key}) DO UPDATE SET first_start = CASE WHEN "
            f"excluded.first_start < {table}.first_start THEN excluded.first_start ELSE "
            f"{table}.first_start END, "
            + ", ".join(f"{c} = CASE WHEN excluded.{c} > {table}.{c} THEN excluded.{c} "
                        f"ELSE {table}.{c} END" for c in ("last_start", "last_end")) + ", "
            + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in STORE_COLUMNS[3:]))


class StoreError(ApplianceError):
    pass


@dataclass(frozen=True)
class StoredWindow:
    store_id: str
    camera_id: str
    clock: str
    window_start: str
    window_end: str
    observed_seconds: float
    partial: bool
    lines: dict[str, tuple[int | None, int | None]]  # line -> (in, out); None: suppressed
    # Read from the stored document (no columns of their own); None: suppressed
    age_bands: dict[str, int | None] = field(default_factory=dict)  # band -> visitors
    gender: dict[str, int | None] = field(default_factory=dict)
    # shopper.counts/2 only, as in the document ({} when absent)
    zones: dict[str, dict] = field(default_factory=dict)
    journeys: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    heatmap: dict = field(default_factory=dict)


class WindowStore:
    def __init__(self, target: str, read_only: bool = False):
        """read_only (the dashboard): the database must exist, and it refuses every write
        (SQLite opened with mode=ro, PostgreSQL read-only transactions)."""
        self.target = target
        self.postgres = target.startswith(("postgresql://", "postgres://"))
        self._cameras: set[tuple[str, str]] = set()  # known to be in `cameras` already
        try:
            if self.postgres:
                self._db = _connect_postgres(target, read_only)
                self._errors: tuple = (__import__("psycopg").Error,)
            else:
                path = Path(target.removeprefix("sqlite://"))
                if read_only:
                    if not path.is_file():
                        raise StoreError(f"{target}: no such database "
                                         "(run shopper-hq subscribe first)")
                    self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                               check_same_thread=False)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._db = sqlite3.connect(path, check_same_thread=False)
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._errors = (sqlite3.Error,)
            with self._transaction() as cursor:
                if read_only:  # a database of an older HQ has no plans table yet
                    cursor.execute("SELECT COUNT(*) FROM windows")
                else:
                    for statement in TABLES:
                        cursor.execute(statement)
            if not read_only:
                self._fill_rollups()
            # Read-only, a database of an older HQ has none (or not yet filled): reports
            # then sum the windows.
            self.has_rollups = self._has_table("rollups") and self._filled("rollups")
            # (store_days is filled with store_quarters, in the same transactions)
            self.has_store_sums = self._has_table("store_quarters") and \
                self._has_table("store_days") and self._filled("store_quarters")
        except StoreError:
            raise
        except Exception as error:  # sqlite3/psycopg errors, OSError
            raise StoreError(f"{redact_url(target)}: cannot open the database: "
                             f"{_first_line(error)}") from None

    def add_window(self, document: dict, received_at: str) -> bool:
        """Store a validated counts document; False when its message_id is already stored."""
        return self.add_batch([document], [], received_at)[0]

    def add_batch(self, documents: list[dict], statuses: list[tuple[str, str, str]],
                  received_at: str, health: list[dict] = ()) -> list[bool]:
        """Store validated counts documents, (store, camera, status) changes and health
        documents (the latest kept per camera) in one transaction: all or none. The new
        windows are added to their quarter-hour roll-ups in the same transaction, so a
        repeat is neither stored nor summed twice. Per counts document, whether it was new
        (False: a repeat)."""
        rows = [(d["message_id"], d["store_id"], d["camera_id"], d["clock"], d["window_start"],
                 d["window_end"], float(d["observed_seconds"]), d["partial"], d.get("frames", 0),
                 orjson.dumps(d).decode(), received_at) for d in documents]
        if self.postgres:
            # Rows in key order: two subscribers of a shared subscription storing the same
            # redelivered windows (or statuses of one camera) then take their locks in the
            # same order and wait for each other instead of deadlocking. Sorts are stable,
            # so a camera's later status or health in the batch still wins. (SQLite has one
            # writer, and keeps windows in the order they arrived.)
            rows.sort(key=lambda row: row[0])
            statuses = sorted(statuses, key=lambda s: s[:2])
            health = sorted(health, key=lambda h: (h["store_id"], h["camera_id"]))
        with self._transaction() as cursor:
            new = {message_id for message_id, in self._insert(
                cursor, "windows (message_id, store_id, camera_id, clock, window_start, "
                "window_end, observed_seconds, partial, frames, document, received_at)",
                WINDOW_TYPES, rows, "ON CONFLICT (message_id) DO NOTHING RETURNING message_id")}
            stored, seen = [], set()
            for d in documents:  # a repeat within the batch is a repeat too
                stored.append(d["message_id"] in new and d["message_id"] not in seen)
                seen.add(d["message_id"])
            added = [d for d, new_window in zip(documents, stored, strict=True) if new_window]
            self._insert(cursor, "line_counts (message_id, line, entered, exited)",
                         ("text", "text", "int8", "int8"),
                         [(d["message_id"], line, counts["in"], counts["out"])
                          for d in added for line, counts in d["lines"].items()])
            cameras = self._roll_up(cursor, added)
            for store_id, camera_id, status in statuses:
                self._set_status(cursor, store_id, camera_id, status, received_at)
            for h in health:
                cursor.execute(self._sql(
                    "INSERT INTO camera_health (store_id, camera_id, document, received_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (store_id, camera_id) DO UPDATE SET "
                    "document = excluded.document, received_at = excluded.received_at"),
                    (h["store_id"], h["camera_id"], json.dumps(h, separators=(",", ":")),
                     received_at))
        self._cameras |= cameras  # committed
        return stored

    def _roll_up(self, cursor, documents: list[dict], cameras: bool = True,
                 stores: bool = True) -> set[tuple[str, str]]:
        """Adds new windows to their cameras' quarter-hour roll-ups (and their cameras to
        `cameras`), then to their stores' quarter-hours; returns the cameras."""
        added = self._add_rollups(cursor, documents) if cameras else set()
        if stores:  # after the camera roll-ups: two subscribers lock rows in one order
            self._add_store_sums(cursor, documents)
        return added

    def _add_rollups(self, cursor, documents: list[dict]) -> set[tuple[str, str]]:
        by_quarter: dict[tuple[str, str, str], list[dict]] = {}
        for d in documents:
            by_quarter.setdefault((d["store_id"], d["camera_id"], quarter(d["window_start"])),
                                  []).append(d)
        keys = sorted(by_quarter)
        cameras = {key[:2] for key in keys}
        self._insert(cursor, "cameras (store_id, camera_id)", ("text", "text"),
                     sorted(cameras - self._cameras), "ON CONFLICT DO NOTHING")
        for chunk in _chunks(keys):
            # An empty row first, then the rows locked: two subscribers adding to the same
            # quarter-hour take turns (SQLite has one writer at a time anyway).
            self._insert(cursor, "rollups (store_id, camera_id, quarter, first_start, "
                         "last_start, grids, summary)", ("text",) * 3, chunk,
                         "ON CONFLICT DO NOTHING", extra=", '', '', 0, ''")
            source, params = self._source(("text",) * 3, chunk)
            found = {(s, c, q): summary for s, c, q, summary in cursor.execute(self._sql(
                "SELECT store_id, camera_id, quarter, summary FROM rollups WHERE "
                f"(store_id, camera_id, quarter) IN ({source})"
                + (" ORDER BY 1, 2, 3 FOR UPDATE" if self.postgres else "")), params).fetchall()}
            rows = []
            for key in chunk:
                rollup = Rollup.from_json(found.get(key))
                for d in by_quarter[key]:
                    rollup.add(d)
                rows.append((*key, rollup.first_start, rollup.last_start, len(rollup.heatmaps),
                             rollup.to_json()))
            self._insert(cursor, "rollups (store_id, camera_id, quarter, first_start, "
                         "last_start, grids, summary)", ("text",) * 5 + ("int8", "text"), rows,
                         "ON CONFLICT (store_id, camera_id, quarter) DO UPDATE SET "
                         "first_start = excluded.first_start, last_start = excluded.last_start, "
                         "grids = excluded.grids, summary = excluded.summary")
        return cameras

    def _add_store_sums(self, cursor, documents: list[dict]) -> None:
        quarters: dict[tuple[str, str], StoreSums] = {}
        for d in documents:
            quarters.setdefault((d["store_id"], quarter(d["window_start"])),
                                StoreSums()).add(d)
        days: dict[tuple[str, str], StoreSums] = {}
        for (store_id, start), sums in quarters.items():
            days.setdefault((store_id, start[:10]), StoreSums()).merge(sums)
        for table, key, rows in (("store_quarters", "quarter", quarters),
                                 ("store_days", "day", days)):
            self._insert(cursor, f"{table} (store_id, {key}, {', '.join(STORE_COLUMNS)})",
                         STORE_SUMS_TYPES,
                         [(*k, *rows[k].row()) for k in sorted(rows)],  # one lock order
                         add_store_sums(table, key))

    def _insert(self, cursor, table: str, types: tuple[str, ...], rows: list[tuple],
                suffix: str = "", extra: str = "") -> list[tuple]:
        """INSERT INTO `table` the rows (+ the constants `extra` per row), one statement
        per chunk of rows; what a RETURNING suffix returns."""
        returned = []
        for chunk in _chunks(rows):
            source, params = self._source(types, chunk)
            cursor.execute(self._sql(f"INSERT INTO {table} SELECT t.*{extra} FROM ({source}) t "
                                     f"WHERE TRUE {suffix}"), params)  # WHERE: SQLite's upsert
            if "RETURNING" in suffix:
                returned += cursor.fetchall()
        return returned

    def _source(self, types: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
        """Rows as a subquery with their parameters: one array per column in PostgreSQL
        (unnest: a short query whose parsing psycopg caches, however many rows; parsing a
        VALUES list of 5,500 placeholders per batch was a third of the subscriber's time),
        sent in binary (%b: psycopg's text arrays escaped every document in Python, another
        third); a VALUES list in SQLite (in-process: nothing to save)."""
        if self.postgres:
            return ("SELECT * FROM unnest(" + ", ".join(f"%b::{t}[]" for t in types) + ")",
                    [list(column) for column in zip(*rows, strict=True)])
        return f"VALUES {_values(len(types), len(rows))}", [v for row in rows for v in row]

    def _filled(self, table: str = "rollups", cursor=None) -> bool:
        """Whether a roll-up table (rollups, store_quarters) holds the stored windows (filled
        in one transaction: any row in it, or no window at all)."""
        if cursor is None:
            with self._transaction() as cursor:
                return self._filled(table, cursor)
        return bool(cursor.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()) or \
            not cursor.execute("SELECT 1 FROM windows LIMIT 1").fetchall()

    def _fill_rollups(self) -> None:
        """A database of an older HQ: sums its stored windows into the roll-up tables it
        lacks, once (the first subscriber or report to open it; a second waits and finds
        it done)."""
        if self._filled("rollups") and self._filled("store_quarters"):  # nearly always
            return
        with self._transaction() as cursor:
            # Locked, then looked at again: two starting at once do not both fill it.
            cursor.execute("LOCK TABLE rollups IN EXCLUSIVE MODE" if self.postgres
                           else "BEGIN IMMEDIATE")
            cameras = not self._filled("rollups", cursor)
            stores = not self._filled("store_quarters", cursor)
            if not (cameras or stores):
                return
            total, = cursor.execute("SELECT COUNT(*) FROM windows").fetchone()
            print(f"shopper-hq: {redact_url(self.target)}: summing {total} stored windows into "
                  "quarter-hour roll-ups for reports (once)", file=sys.stderr, flush=True)
            reader = self._db.cursor(name="shopper_hq_fill") if self.postgres \
                else self._db.cursor()
            # In time order per camera: a quarter-hour's windows come together.
            reader.execute("SELECT document FROM windows "
                           "ORDER BY store_id, camera_id, window_start")
            documents = []
            for text, in reader:
                documents.append(orjson.loads(text))
                if len(documents) == 5000:  # bounded memory: a roll-up is added to
                    self._roll_up(cursor, documents, cameras, stores)
                    documents = []
            self._roll_up(cursor, documents, cameras, stores)
            reader.close()
        print(f"shopper-hq: {redact_url(self.target)}: roll-ups filled", file=sys.stderr,
              flush=True)

    def set_status(self, store_id: str, camera_id: str, status: str, changed_at: str) -> None:
        with self._transaction() as cursor:
            self._set_status(cursor, store_id, camera_id, status, changed_at)

    def _set_status(self, cursor, store_id: str, camera_id: str, status: str,
                    changed_at: str) -> None:
        cursor.execute(self._sql(
            "INSERT INTO camera_status (store_id, camera_id, status, changed_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (store_id, camera_id) DO UPDATE SET "
            "status = excluded.status, changed_at = excluded.changed_at"),
            (store_id, camera_id, status, changed_at))

    def set_plan(self, store_id: str, camera_id: str, media_type: str, image: bytes,
                 set_at: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(self._sql(
                "INSERT INTO plans (store_id, camera_id, media_type, image, set_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (store_id, camera_id) DO UPDATE SET "
                "media_type = excluded.media_type, image = excluded.image, "
                "set_at = excluded.set_at"),
                (store_id, camera_id, media_type, base64.b64encode(image).decode(), set_at))

    def plan(self, store_id: str, camera_id: str) -> tuple[str, bytes] | None:
        """(media type, image bytes) of a camera's plan; None when none was set."""
        if not self._has_table("plans"):
            return None
        rows = self.query("SELECT media_type, image FROM plans WHERE store_id = ? AND "
                          "camera_id = ?", [store_id, camera_id])
        return (rows[0][0], base64.b64decode(rows[0][1])) if rows else None

    def plans(self) -> set[tuple[str, str]]:
        """(store, camera) of every plan set."""
        if not self._has_table("plans"):
            return set()
        return {(s, c) for s, c in self.query("SELECT store_id, camera_id FROM plans", [])}

    def _has_table(self, name: str) -> bool:
        sql = ("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = ?"
               if self.postgres else
               "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
        return self.query(sql, [name])[0][0] > 0

    def windows(self, store_id: str | None = None, camera_id: str | None = None,
                since: str | None = None, until: str | None = None) -> Iterator[StoredWindow]:
        """Stored windows in time order per camera, with their line counts and the optional
        sections of the stored document."""
        where, params = window_filter(store_id, camera_id, since, until)
        sql = ("SELECT w.message_id, w.store_id, w.camera_id, w.clock, w.window_start, "
               "w.window_end, w.observed_seconds, w.partial, l.line, l.entered, l.exited, "
               "w.document "
               "FROM windows w LEFT JOIN line_counts l ON l.message_id = w.message_id"
               + (" WHERE " + where if where else "")
               + " ORDER BY w.store_id, w.camera_id, w.window_start, w.message_id, l.line")
        with self._transaction() as cursor:
            rows = cursor.execute(self._sql(sql), params).fetchall()
        current, lines = None, {}
        for row in rows:
            if current is not None and row[0] != current[0]:
                yield _window(current, lines)
                lines = {}
            current = row
            if row[8] is not None:
                lines[row[8]] = (row[9], row[10])
        if current is not None:
            yield _window(current, lines)

    def query(self, sql: str, params: list) -> list[tuple]:
        """All rows of a query (`?` placeholders): for aggregates, a few rows."""
        with self._transaction() as cursor:
            return cursor.execute(self._sql(sql), params).fetchall()

    def stream(self, sql: str, params: list) -> Iterator[tuple]:
        """The rows of a query one at a time, never all in memory (PostgreSQL: a
        server-side cursor; SQLite steps its cursor)."""
        with self._transaction(named=self.postgres) as cursor:
            try:
                cursor.execute(self._sql(sql), params)
                yield from cursor
            finally:
                cursor.close()

    def cameras(self) -> list[tuple[str, str]]:
        """(store, camera) of every camera that sent a window, in order."""
        table = "cameras" if self._has_table("cameras") else "windows"  # an older HQ's
        return [(s, c) for s, c in self.query(f"SELECT DISTINCT store_id, camera_id FROM "
                                              f"{table} ORDER BY 1, 2", [])]

    def camera_counts(self) -> dict[str, int]:
        """Per store, how many cameras ever sent a window."""
        table = "cameras" if self._has_table("cameras") else "windows"  # an older HQ's
        return dict(self.query(f"SELECT store_id, COUNT(DISTINCT camera_id) FROM {table} "
                               "GROUP BY store_id", []))

    def statuses(self, store_id: str | None = None) -> dict[tuple[str, str], tuple[str, str]]:
        """Each camera's status (of one store's cameras if given: a chain has 16,000)."""
        rows = self.query("SELECT store_id, camera_id, status, changed_at FROM camera_status"
                          + (" WHERE store_id = ?" if store_id else ""),
                          [store_id] if store_id else [])
        return {(s, c): (status, at) for s, c, status, at in rows}

    def health(self, store_id: str | None = None) -> dict[tuple[str, str], dict]:
        """Each camera's latest health document (of one store's cameras if given), with
        `received_at` added."""
        if not self._has_table("camera_health"):  # a database of an older HQ
            return {}
        rows = self.query("SELECT store_id, camera_id, document, received_at FROM camera_health"
                          + (" WHERE store_id = ?" if store_id else ""),
                          [store_id] if store_id else [])
        return {(s, c): {**json.loads(document), "received_at": at}
                for s, c, document, at in rows}

    def close(self) -> None:
        self._db.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _transaction(self, named: bool = False):
        return _Transaction(self, named)


class _Transaction:
    """A cursor inside one transaction, committed on success and rolled back on error;
    database errors become one-line StoreErrors."""

    def __init__(self, store: WindowStore, named: bool = False):
        self.store = store
        self.named = named  # a PostgreSQL server-side cursor

    def __enter__(self):
        db = self.store._db
        self.cursor = db.cursor(name="shopper_hq_rows") if self.named else db.cursor()
        return self.cursor

    def __exit__(self, kind, error, traceback):
        db = self.store._db
        if error is None:
            try:
                db.commit()
                return False
            except self.store._errors as commit_error:
                error = commit_error
        try:
            db.rollback()
        except self.store._errors:
            pass
        if isinstance(error, self.store._errors):
            raise StoreError(f"{redact_url(self.store.target)}: {_first_line(error)}") from None
        return False


def window_filter(store_id: str | None = None, camera_id: str | None = None,
                  since: str | None = None, until: str | None = None) -> tuple[str, list]:
    """SQL condition on the windows `w` (empty: all) and its parameters."""
    where, params = [], []
    for column, value, op in (("store_id", store_id, "="), ("camera_id", camera_id, "="),
                              ("window_start", since, ">="), ("window_start", until, "<")):
        if value is not None:
            where.append(f"w.{column} {op} ?")
            params.append(value)
    return " AND ".join(where), params


def _values(columns: int, rows: int) -> str:
    """The rows of a multi-row VALUES list: (?, ?), (?, ?)."""
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


def _chunks(rows: list) -> Iterator[list]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i:i + CHUNK]


def _window(row, lines) -> StoredWindow:
    document = json.loads(row[11])
    return StoredWindow(store_id=row[1], camera_id=row[2], clock=row[3], window_start=row[4],
                        window_end=row[5], observed_seconds=float(row[6]),
                        partial=bool(row[7]), lines=lines,
                        age_bands=document.get("age_bands", {}),
                        gender=document.get("gender", {}), zones=document.get("zones", {}),
                        journeys=document.get("journeys", {}),
                        groups=document.get("groups", {}), heatmap=document.get("heatmap", {}))


def _connect_postgres(url: str, read_only: bool = False):
    try:
        import psycopg
    except ImportError:
        raise StoreError("PostgreSQL needs psycopg: pip install 'shopper-edge[hq]'") from None
    # Read-only: every transaction of the session is, so no statement can write (grant the
    # dashboard's role SELECT only as well).
    options = {"options": "-c default_transaction_read_only=on"} if read_only else {}
    return psycopg.connect(url, connect_timeout=10, **options)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
