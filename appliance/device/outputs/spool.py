"""Store and forward: a bounded queue of outgoing messages in one SQLite file per camera.

Every counts window is written here first and deleted only when the broker has
acknowledged it, so a window survives a broker outage, `kill -9` and power loss (WAL with
synchronous=FULL: a committed row is on disk). Messages leave in the order they came.
When the bound is reached the oldest are deleted and the loss is counted in the file, so
health can report it across restarts. Only guard-checked aggregates are ever put here.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from appliance.errors import ApplianceError

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('dropped', 0);
"""


class SpoolError(ApplianceError):
    pass


class Spool:
    def __init__(self, path: Path, max_messages: int):
        self.path = Path(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode; writes use explicit transactions below.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise SpoolError(f"{self.path}: cannot open the spool: {error}") from None

    def put(self, topic: str, payload: bytes) -> int:
        """Append a message; returns how many old ones were dropped to stay in bound."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                # No time of its own: nothing finer than the window is kept on disk.
                self._db.execute("INSERT INTO messages (topic, payload) VALUES (?, ?)",
                                 (topic, payload.decode("ascii")))
                (depth,) = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
                excess = max(depth - self.max_messages, 0)
                if excess:
                    self._db.execute("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages "
                                     "ORDER BY seq LIMIT ?)", (excess,))
                    self._db.execute("UPDATE counters SET value = value + ? "
                                     "WHERE name = 'dropped'", (excess,))
                self._db.execute("COMMIT")
                return excess
            except sqlite3.Error as error:
                self._rollback()
                raise SpoolError(f"{self.path}: cannot store a message: {error}") from None

    def after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to `limit` messages with a sequence number above `seq`, oldest first."""
        with self._lock:
            return self._db.execute("SELECT seq, topic, payload FROM messages WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (seq, limit)).fetchall()

    def delete(self, seq: int) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            except sqlite3.Error as error:
                raise SpoolError(f"{self.path}: cannot delete a sent message: {error}") \
                    from None

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def dropped(self) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name = 'dropped'"
                                    ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
