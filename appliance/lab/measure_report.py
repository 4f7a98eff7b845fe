"""One-off measurement (not a test): `shopper-hq report` time and peak memory, summed by
the database (now) and folded window by window in memory (before), on a SQLite database
of ~100k real window documents.

    .venv/bin/python -m appliance.lab.measure_report fill /tmp/hq-100k.sqlite
    .venv/bin/python -m appliance.lab.measure_report new /tmp/hq-100k.sqlite
    .venv/bin/python -m appliance.lab.measure_report old /tmp/hq-100k.sqlite

Each run is its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import sys
import time
from zoneinfo import ZoneInfo

from appliance.hq.aggregate import build_reports
from appliance.hq.render import as_json
from appliance.hq.store import WindowStore
from tests.hq.test_hq_aggregate import behaviour_sections, camera_windows, fold_windows


def fill(db: str) -> None:
    rng = random.Random(100)
    store = WindowStore(db)
    store._db.execute("PRAGMA synchronous=OFF")  # a throwaway file: no fsync per window
    n = 0
    for s in range(3):
        for c in range(4):
            extra = behaviour_sections if c == 0 else None
            for document in camera_windows(rng, f"shop-{s}", f"cam-{c}", ["door", "late"],
                                           60.0, 6.2, extra):
                n += store.add_window(document, "2027-04-01T00:00:00Z")
    store.close()
    print(f"stored {n} windows in {db}")


def report(db: str, how: str) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = WindowStore(db)
    started = time.perf_counter()
    zone = ZoneInfo("Europe/Paris")
    if how == "new":
        reports = build_reports(store, zone)
    else:
        reports = fold_windows(store.windows(), zone, store.statuses())
    output = json.dumps(as_json(reports), indent=1)
    seconds = time.perf_counter() - started
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    windows = sum(r.windows for r in reports)
    print(f"{how}: {windows} windows, {seconds:.1f} s, peak RSS {peak / 1024:.0f} MiB "
          f"({rss_before / 1024:.0f} MiB before), JSON sha256 "
          f"{hashlib.sha256(output.encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    command, db = sys.argv[1:3]
    fill(db) if command == "fill" else report(db, command)
