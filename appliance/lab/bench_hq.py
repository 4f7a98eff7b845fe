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


def report_time(admin_url: str, days: float, stores: int) -> dict:
    """The dashboard's views (`build_reports` + `as_json`, as `report --json`) over `days`
    of 60 s windows with behaviour sections from `stores` x 8 cameras, stored through
    WindowStore.add_batch (roll-ups and all): one store's report, and with several stores
    the whole chain's. Each report's time and the growth of the process's peak memory."""
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
    for name, store_id in (("store", "store-0000"), ("chain", None)):
        if name == "chain" and stores == 1:
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
        # The same as a user runs it, in a process of its own, started by a small one:
        # Linux carries a process's peak RSS over into what it forks, so the report's own
        # peak is only known when its parent is small.
        started = time.perf_counter()
        command = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "appliance.hq.cli",
             "report", "--db", url, "--json", "--tz", "Europe/Paris",
             *(["--store", store_id] if store_id else [])],
            stdout=subprocess.PIPE, text=True, check=True)
        result.update({f"{name}_report_command_seconds": round(time.perf_counter() - started, 2),
                       f"{name}_report_command_peak_rss_mib": round(
                           int(command.stdout.splitlines()[-1]) / 1024, 1)})
    store.close()
    return result


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
            results.append(report_time(postgres.url, args.report_days, args.report_stores))
            print(json.dumps(results[-1]), flush=True)
    finally:
        broker.stop()
        postgres.remove()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
