"""`make bench-hq`: how fast `shopper-hq subscribe` stores windows into a real PostgreSQL
from a real Mosquitto, for a chain of thousands of cameras.

Two measurements per setup (one subscriber; two in a shared subscription):
- capacity: a backlog of `--windows` documents is queued at the broker for the subscribers'
  persistent sessions while they are away, then they are started and the windows a second
  stored until the backlog is gone are timed;
- lag: windows published at `--rate` a second for `--seconds`, from publish to stored
  (the row's received_at), p50 and p99.
Each run checks that every window was stored exactly once (nothing lost, nothing twice).
The documents are the device's own (WindowAggregator + privacy protection, line counts and
age bands), with a 16x9 heatmap and three zones in the counts-2 shape, each one checked
by HQ's own schema check before it is sent. Broker and PostgreSQL are the tests' helpers
(tests/broker.py, tests/postgres.py): run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.device.analytics.lines import Crossing
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.window import WindowAggregator
from appliance.hq.store import WindowStore
from appliance.hq.subscriber import window_problem
from appliance.messages import iso

BINS = ("0-10", "10-30", "30-60", "60-120", "120-300", "300+")
BANDS = ["0-17", "18-34", "35-54", "55+", "unknown"]


def documents(n: int, cameras: int, seed: int = 19) -> list[dict]:
    """n window documents, 60 s each, round-robin over `cameras` cameras of 8 per store."""
    rng = random.Random(seed)
    out = []
    t0 = 1_798_761_600.0  # 2027-01-01
    minutes = -(-n // cameras)
    for camera in range(cameras):
        if len(out) >= n:
            break
        store, camera_id = f"store-{camera // 8:04d}", f"cam-{camera % 8}"
        aggregator = WindowAggregator(store, camera_id, ["door", "aisle"], 60.0, "wall",
                                      age_bands=BANDS)
        for minute in range(minutes):
            t = t0 + 60 * minute + rng.uniform(0, 5)
            crossings = [Crossing(rng.choice(("door", "aisle")), rng.choice(("in", "out")), t)
                         for _ in range(rng.choice((0, 2, 6, 9)))]
            closed = aggregator.add(t, crossings) + aggregator.add(t + 50, [])
            out += closed
        out += aggregator.flush()
    out = out[:n]
    for d in out:
        d["schema"] = "shopper.counts/2"
        d["age_bands"] = {band: rng.choice((0, 5, 9)) for band in BANDS}
        d["zones"] = {name: {"kind": kind, "visits": rng.randint(5, 20),
                             "occupancy_mean": round(rng.uniform(0, 3), 2),
                             "occupancy_max": rng.randint(0, 6),
                             "dwell": {"histogram": {b: rng.choice((0, 5, 7)) for b in BINS},
                                       "p50": 12.0, "p90": 40.0}, **extra}
                      for name, kind, extra in (("fruit", "shelf", {"interactions": 6}),
                                                ("bread", "shelf", {"interactions": 5}),
                                                ("lane1", "queue", {}))}
        d["heatmap"] = {"cols": 16, "rows": 9, "person_seconds": ";".join(
            ",".join(str(rng.choice((0, 0, 5, 12, 40))) for _ in range(16)) for _ in range(9))}
    out = [protect(d, PrivacyConfig(min_count=5)) for d in out]
    for d in out[:: max(1, len(out) // 50)]:
        problem = window_problem(d)
        if problem:
            raise SystemExit(f"bench-hq: a generated document is not valid: {problem}")
    return out


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, all threads) the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids(data: str) -> list[int]:
    """The PostgreSQL server of a data directory and its backends."""
    postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return [postmaster, *children]


class Subscribers:
    """`shopper-hq subscribe` processes (a shared subscription when there are several)."""

    def __init__(self, count: int, port: int, db: str, tag: str):
        self.processes = []
        for i in range(count):
            extra = ["--share", "bench"] if count > 1 else []
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "appliance.hq.cli", "subscribe", "--host", "127.0.0.1",
                 "--port", str(port), "--db", db, "--client-id", f"bench-{tag}-{i}", *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        self.lines: list[list[str]] = [[] for _ in self.processes]
        ready = [threading.Event() for _ in self.processes]
        for process, lines, event in zip(self.processes, self.lines, ready, strict=True):
            threading.Thread(target=self._read, args=(process, lines, event), daemon=True).start()
        for event in ready:
            if not event.wait(30):
                self.stop()
                raise SystemExit(f"bench-hq: a subscriber did not start: {self.lines}")

    @staticmethod
    def _read(process, lines, event):
        for line in process.stderr:
            lines.append(line.rstrip())
            if "subscribed to" in line:
                event.set()

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> list[dict]:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        stats = []
        for process, lines in zip(self.processes, self.lines, strict=True):
            process.wait(60)
            time.sleep(0.2)
            found = [json.loads(line) for line in lines if line.startswith("{")]
            stats.append(found[-1] if found else {"exit": process.returncode, "log": lines[-3:]})
        return stats


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, docs: list[dict], rate: float | None) -> dict[str, float]:
    """Publish at `rate` a second (None: as fast as possible); message_id -> publish time."""
    sent, infos = {}, []
    start = time.time()
    for i, d in enumerate(docs):
        if rate:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        sent[d["message_id"]] = time.time()
        infos.append(client.publish(f"shopper/{d['store_id']}/{d['camera_id']}/counts",
                                    json.dumps(d, separators=(",", ":")), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    return sent


def stored(url: str) -> tuple[int, int, list[tuple[str, str]]]:
    import psycopg

    with psycopg.connect(url) as db:
        total, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM windows").fetchone()
        rows = db.execute("SELECT message_id, received_at FROM windows").fetchall()
    return total, distinct, rows


def wait_stored(url: str, n: int, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url) as db:
                if db.execute("SELECT COUNT(*) FROM windows").fetchone()[0] >= n:
                    return
        except psycopg.Error:
            pass  # the table is created by the first subscriber
        time.sleep(0.2)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def new_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def run(subscribers: int, port: int, admin_url: str, backlog: list[dict], live: list[dict],
        rate: float, tag: str, broker_pid: int, postgres_data: str) -> dict:
    url = new_database(admin_url, f"bench_{tag}")
    WindowStore(url).close()  # the tables, before subscribers race to create them
    client = publisher(port)
    # Capacity: the subscribers' sessions exist, they are away, the backlog queues up.
    Subscribers(subscribers, port, url, tag).stop()
    publish(client, backlog, None)
    launched = time.time()
    group = Subscribers(subscribers, port, url, tag)
    connected = time.time()  # the backlog flows from here; before: Python's start-up
    others = {"broker": [broker_pid], "postgresql": postgres_pids(postgres_data)}
    cpu = {"subscribers": cpu_seconds(group.pids()),
           **{name: cpu_seconds(pids) for name, pids in others.items()}}
    wait_stored(url, len(backlog), 90)
    cpu = {"subscribers": cpu_seconds(group.pids()) - cpu["subscribers"],
           **{name: cpu_seconds(pids) - cpu[name] for name, pids in others.items()}}
    total, _, rows = stored(url)
    finished = max(epoch(at) for _, at in rows)
    capacity = len(backlog) / (finished - connected)
    # Lag: a steady rate while they are running.
    sent = publish(client, live, rate)
    wait_stored(url, len(backlog) + len(live), 60)
    stats = group.stop()
    client.loop_stop()
    total, distinct, rows = stored(url)
    lags = sorted(epoch(at) - sent[mid] for mid, at in rows if mid in sent)
    expected = len(backlog) + len(live)
    return {
        "subscribers": subscribers, "database": "postgresql",
        "backlog_windows": len(backlog),
        "windows_per_second": round(capacity, 1),
        "backlog_seconds": round(finished - connected, 2),
        # as measured before: from the launch of the processes (start-up included)
        "windows_per_second_with_startup": round(len(backlog) / (finished - launched), 1),
        # CPU time per backlog window of the subscribers, the broker and PostgreSQL (its
        # server and backends): what the rate would be on free cores, whatever the load
        **{f"{name}_cpu_ms_per_window": round(1000 * seconds / len(backlog), 3)
           for name, seconds in cpu.items()},
        "live_windows": len(live), "live_rate": rate,
        "lag_ms_p50": round(1000 * lags[len(lags) // 2], 1) if lags else None,
        "lag_ms_p99": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1) if lags else None,
        "stored": total, "lost": expected - distinct, "stored_twice": total - distinct,
        "subscriber_stats": stats,
    }


def chain_documents(stores: int, days: float, pool: list[dict]) -> Iterator[list[dict]]:
    """A camera-day at a time, the 60 s windows of `stores` x 8 cameras over `days`: the
    generated documents (the device's own) given new ids, cameras and times in turn."""
    t0 = 1_798_761_600  # 2027-01-01
    i = 0
    for camera in range(8 * stores):
        store_id, camera_id = f"store-{camera // 8:04d}", f"cam-{camera % 8}"
        for day in range(math.ceil(days)):
            minutes = range(1440 * day, min(1440 * (day + 1), round(1440 * days)))
            batch = []
            for minute in minutes:
                d = pool[i % len(pool)]
                i += 1
                batch.append(dict(d, message_id=uuid.uuid4().hex, store_id=store_id,
                                  camera_id=camera_id, window_start=iso(t0 + 60 * minute),
                                  window_end=iso(t0 + 60 * minute + 60)))
            yield batch


# Runs argv[1:] with its output dropped; prints the peak RSS (KiB) it reached.
PEAK_RSS = """import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"""


def report_time(admin_url: str, days: float, stores: int, chain_stores: int = 0,
                rollup_stores: int = 0) -> dict:
    """The dashboard's views (`build_reports` + `as_json`, as `report --json`) over `days`
    of 60 s windows with behaviour sections from `stores` x 8 cameras, stored through
    WindowStore.add_batch (roll-ups and all): one store's report, and with several stores
    the whole chain's. Each report's time and the growth of the process's peak memory.
    With `chain_stores`, the database is then made a chain's size (chain_fill) and the
    dashboard's queries and the chain report (`report --chain`) are timed on it."""
    from zoneinfo import ZoneInfo

    from appliance.hq.aggregate import build_reports
    from appliance.hq.render import as_json

    url = new_database(admin_url, "bench_report")
    store = WindowStore(url)
    pool = documents(2000, 8)
    started, stored = time.perf_counter(), 0
    for batch in chain_documents(stores, days, pool):
        for i in range(0, len(batch), 1000):
            stored += sum(store.add_batch(batch[i:i + 1000], [], "2027-02-01T00:00:00Z"))
    fill_seconds = time.perf_counter() - started
    del pool
    result = {"report_days": days, "report_stores": stores, "stored_windows": stored,
              "fill_windows_per_second": round(stored / fill_seconds, 1)}
    if chain_stores > stores:
        result.update(chain_fill(url, stores, chain_stores, max(rollup_stores, stores)))
    for name, store_id in (("store", "store-0000"), ("chain", None)):
        if name == "chain" and (stores == 1 or chain_stores):  # folding 16,000 cameras: ~1 h
            continue
        started, cpu = time.perf_counter(), time.process_time()
        output = as_json(build_reports(store, ZoneInfo("Europe/Paris"), store_id))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        result.update({
            f"{name}_report_windows": sum(c["windows"] for c in output["cameras"]),
            f"{name}_report_seconds": round(seconds, 2),
            # this process's CPU time (not PostgreSQL's): on a loaded machine, the part of
            # the wall time that is the report's own work
            f"{name}_report_cpu_seconds": round(cpu, 2)})
        del output
        result.update(command_time(f"{name}_report", url, "--tz", "Europe/Paris",
                                   *(["--store", store_id] if store_id else [])))
    store.close()
    if chain_stores:
        result.update(chain_time(url, days))
        # every store a copy of a real one: the chain's windows are the real ones x stores
        if result["chain_all_windows"] != stored * chain_stores // stores:
            raise SystemExit(f"bench-hq: the chain report found {result['chain_all_windows']}"
                             f" windows, not {stored * chain_stores // stores}")
    return result


def command_time(name: str, url: str, *args: str) -> dict:
    """`shopper-hq report --json ARGS` as a user runs it, in a process of its own, started
    by a small one: Linux carries a process's peak RSS over into what it forks, so the
    report's own peak is only known when its parent is small."""
    started = time.perf_counter()
    command = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "appliance.hq.cli",
         "report", "--db", url, "--json", *args], stdout=subprocess.PIPE, text=True, check=True)
    return {f"{name}_command_seconds": round(time.perf_counter() - started, 2),
            f"{name}_command_peak_rss_mib": round(int(command.stdout.splitlines()[-1]) / 1024, 1)}


# A camera's last health document; @S and @C: its store and camera (replaced in SQL).
HEALTH = {"schema": "shopper.health/1", "store_id": "@S", "camera_id": "@C",
          "time": "2027-01-31T00:00:00.000Z", "software_version": "0.19.0",
          "uptime_seconds": 2_592_000, "fps": 6.2, "fps_cap": 8.0, "inference_ms": 61.0,
          "frames_processed": 16_070_400, "frames_skipped": 0, "frames_dropped": 12,
          "stream_reconnects": 3, "clock_steps": 0, "mqtt_connects": 2, "spool_depth": 0,
          "spool_dropped": 0, "messages_refused": 0, "cpu_temp_c": 61.5, "models": {}}
STORE_NAME = "'store-' || lpad(({n})::text, 4, '0')"


def chain_fill(url: str, stores: int, chain_stores: int, rollup_stores: int) -> dict:
    """Makes the database a chain's size: after the `stores` stored through add_batch
    (windows, line counts, roll-ups: all real), stores up to `chain_stores` get, generated
    in SQL, the rows the dashboard and the chain report read: their store quarter-hours
    and days (a copy of a real store's), cameras, statuses and last health; up
    to `rollup_stores` also their camera roll-ups (a real store's, ~1.7 kB a row stored
    each: all 2,000 stores' 46 million would be ~80 GB). No raw windows for them."""
    import psycopg

    started = time.perf_counter()
    real = STORE_NAME.format(n=f"n % {stores}")
    with psycopg.connect(url, autocommit=True) as db:
        for table in ("store_quarters", "store_days"):
            for first in range(stores, chain_stores, 250):
                last = min(first + 250, chain_stores) - 1
                db.execute(f"INSERT INTO {table} SELECT {STORE_NAME.format(n='n')}, "
                           f"q.{'day' if table == 'store_days' else 'quarter'}, "
                           "q.first_start, q.last_start, q.last_end, q.windows, q.partial, "
                           "q.length_ms, q.observed, q.entered, q.exited, q.suppressed FROM "
                           f"generate_series({first}, {last}) n JOIN {table} q ON "
                           f"q.store_id = {real}")
        store_quarters_seconds = time.perf_counter() - started
        for first in range(stores, rollup_stores, 10):
            last = min(first + 10, rollup_stores) - 1
            db.execute(f"INSERT INTO rollups SELECT {STORE_NAME.format(n='n')}, r.camera_id, "
                       "r.quarter, r.first_start, r.last_start, r.grids, r.summary "
                       f"FROM generate_series({first}, {last}) n JOIN rollups r ON "
                       f"r.store_id = {real}")
        camera = STORE_NAME.format(n="n / 8") + ", 'cam-' || (n % 8)"
        db.execute(f"INSERT INTO cameras SELECT {camera} FROM generate_series(0, "
                   f"{8 * chain_stores - 1}) n ON CONFLICT DO NOTHING")
        # one camera in 97 offline
        db.execute(f"INSERT INTO camera_status SELECT {camera}, CASE WHEN n % 97 = 0 THEN "
                   "'offline' ELSE 'online' END, '2027-01-31T00:00:00Z' FROM generate_series(0, "
                   f"{8 * chain_stores - 1}) n ON CONFLICT DO NOTHING")
        db.execute(f"INSERT INTO camera_health SELECT {camera}, replace(replace("
                   f"$h${json.dumps(HEALTH)}$h$, '@S', {STORE_NAME.format(n='n / 8')}), '@C', "
                   "'cam-' || (n % 8)), '2027-01-31T00:00:05Z' FROM generate_series(0, "
                   f"{8 * chain_stores - 1}) n ON CONFLICT DO NOTHING")
        generated = time.perf_counter() - started
        db.execute("VACUUM ANALYZE")  # as autovacuum leaves tables after a bulk load
        sizes = {name: size for name, size in db.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN "
            "('windows', 'line_counts', 'rollups', 'store_quarters', 'store_days', 'cameras', "
            "'camera_status', 'camera_health')").fetchall()}
        counts = {name: db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
                  for name in ("windows", "rollups", "store_quarters", "store_days",
                               "cameras")}
        database = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"chain_stores": chain_stores, "chain_cameras": 8 * chain_stores,
            "chain_rollup_stores": rollup_stores,
            "chain_store_quarters_seconds": round(store_quarters_seconds, 1),
            "chain_generate_seconds": round(generated, 1),
            "chain_vacuum_seconds": round(time.perf_counter() - started - generated, 1),
            "chain_rows": counts, "chain_table_mib": {
                name: round(size / 2**20, 1) for name, size in sorted(sizes.items())},
            "chain_database_gib": round(database / 2**30, 2)}


def chain_time(url: str, days: float) -> dict:
    """On the chain-sized database: the dashboard's camera list (cameras, statuses, plans),
    the cameras' last health, and the chain report over the period (all, and a month of
    Paris days: whole quarter-hours), in process and as `report --chain --json`."""
    from appliance.hq.chain import chain_report
    from appliance.hq.dashboard import Dashboard

    result = {}
    started = time.perf_counter()
    dashboard = Dashboard(url, "x" * 16)
    listed = dashboard.cameras()["cameras"]
    result.update({"dashboard_cameras": len(listed),
                   "dashboard_camera_list_seconds": round(time.perf_counter() - started, 3)})
    store = WindowStore(url, read_only=True)
    started = time.perf_counter()
    health = store.health()
    result.update({"health_cameras": len(health),
                   "health_seconds": round(time.perf_counter() - started, 3)})
    # local days 2 .. `days` of January in Paris (UTC+1): whole quarter-hours
    paris = ("2027-01-01T23:00:00", iso(1_798_761_600 + 86400 * math.floor(days) - 3600)[:19])
    for name, since, until in (("chain_all", None, None), ("chain_paris", *paris)):
        started, cpu = time.perf_counter(), time.process_time()
        report = chain_report(store, None, since, until)
        result.update({f"{name}_stores": report["chain"]["stores"],
                       f"{name}_windows": report["chain"]["windows"],
                       f"{name}_since": since, f"{name}_until": until,
                       f"{name}_seconds": round(time.perf_counter() - started, 2),
                       f"{name}_cpu_seconds": round(time.process_time() - cpu, 2)})
        result.update(command_time(name, url, "--chain", *(["--since", since] if since else []),
                                   *(["--until", until] if until else [])))
    store.close()
    return result


def print_table(result: dict) -> None:
    """The report figures as a table (the JSON has them all)."""
    rows = [("one store, all days, build_reports + as_json", "store_report"),
            ("one store, all days, report --json", "store_report_command"),
            ("chain, all stored, chain_report", "chain_all"),
            ("chain, all stored, report --chain --json", "chain_all_command"),
            ("chain, Paris month, chain_report", "chain_paris"),
            ("chain, Paris month, report --chain --json", "chain_paris_command")]
    print(f"{'query':<46} {'wall s':>8} {'cpu s':>7} {'peak RSS MiB':>12}")
    for label, key in rows:
        if f"{key}_seconds" in result:
            print(f"{label:<46} {result[f'{key}_seconds']:>8} "
                  f"{result.get(f'{key}_cpu_seconds', ''):>7} "
                  f"{result.get(f'{key}_peak_rss_mib', ''):>12}")
    for label, key in (("dashboard camera list", "dashboard_camera_list"),
                       ("cameras' last health", "health")):
        if f"{key}_seconds" in result:
            print(f"{label:<46} {result[f'{key}_seconds']:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=20000, help="backlog windows per run")
    parser.add_argument("--cameras", type=int, default=16000, help="cameras (8 per store)")
    parser.add_argument("--rate", type=float, default=500.0, help="live windows a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="live publishing time")
    parser.add_argument("--report-days", type=float, default=0,
                        help="also time the report of one store over this many days")
    parser.add_argument("--report-stores", type=int, default=1,
                        help="stores (8 cameras each) stored for --report-days; with more "
                        "than one the whole chain's report is timed too")
    parser.add_argument("--chain-stores", type=int, default=0,
                        help="after --report-days, make the database this many stores (8 "
                        "cameras each; the others' rows generated in SQL) and time the "
                        "dashboard's queries and the chain report on it")
    parser.add_argument("--chain-rollup-stores", type=int, default=40,
                        help="with --chain-stores, the stores that also get camera roll-ups "
                        "(~120 MB a store-month)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path.cwd()))
    from tests.broker import Broker
    from tests.postgres import Postgres

    live_n = int(args.rate * args.seconds)
    docs = documents(2 * (args.windows + live_n), args.cameras)
    workdir = Path("bench-results") / "hq-broker"
    shutil.rmtree(workdir, ignore_errors=True)  # no queue left from an earlier run
    broker = Broker(workdir)
    # An unbounded queue: the backlog must not be dropped at the broker (tests' default 10000).
    broker.config.write_text(broker.config.read_text().replace(
        "max_queued_messages 10000", "max_queued_messages 0\nmax_inflight_messages 0"))
    broker.start()
    postgres = Postgres().start()
    results = []
    try:
        for i, subscribers in enumerate((1, 2) if args.windows else ()):
            part = docs[i * (args.windows + live_n):(i + 1) * (args.windows + live_n)]
            result = run(subscribers, broker.port, postgres.url, part[:args.windows],
                         part[args.windows:], args.rate, f"{subscribers}sub",
                         broker.process.pid, postgres.data)
            results.append(result)
            print(json.dumps(result), flush=True)
        if args.report_days:
            results.append(report_time(postgres.url, args.report_days, args.report_stores,
                                       args.chain_stores, args.chain_rollup_stores))
            print(json.dumps(results[-1]), flush=True)
            print_table(results[-1])
    finally:
        broker.stop()
        postgres.remove()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
