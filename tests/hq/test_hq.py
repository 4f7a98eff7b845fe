"""HQ: `shopper-hq subscribe` against a real Mosquitto, into SQLite and a real PostgreSQL;
`shopper-hq report` on what it stored."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from appliance.device.analytics.lines import Crossing
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.window import WindowAggregator
from appliance.hq.store import WindowStore
from tests.broker import Broker
from tests.conftest import HqProcess, wait_for
from tests.postgres import Postgres, postgres_bin

T0 = 1_798_761_600.0  # 2027-01-01T00:00:00Z


def windows(store="shop-1", camera="door", hours=2, per_hour=4, window=60.0) -> list[dict]:
    """Wall-clock windows with `per_hour` people in (and one out) in each hour."""
    aggregator = WindowAggregator(store, camera, ["door"], window, "wall")
    documents = []
    for hour in range(hours):
        for i in range(per_hour):
            t = T0 + hour * 3600 + i * 600 + 1
            documents += aggregator.add(t, [Crossing("door", "in", t)] +
                                        ([Crossing("door", "out", t)] if i == 0 else []))
    documents += aggregator.flush()
    return [protect(d, PrivacyConfig(min_count=1)) for d in documents]


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker").start()  # anonymous, plain: HQ logic only here
    yield broker
    broker.stop()


def publisher(broker: Broker) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def start_hq(broker: Broker, db, *extra, client_id="hq-test") -> HqProcess:
    return HqProcess(broker.port, db, *extra, client_id=client_id)


def stored_ids(db) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [i for (i,) in connection.execute("SELECT message_id FROM windows ORDER BY rowid")]


def test_repeats_are_dropped_and_junk_is_rejected_without_stopping(broker, tmp_path):
    db = tmp_path / "hq.sqlite"
    hq = start_hq(broker, str(db))
    client = publisher(broker)
    first, second = windows(hours=1)[:2]
    publish(client, "shopper/shop-1/door/counts", json.dumps(first).encode())
    publish(client, "shopper/shop-1/door/counts", json.dumps(first).encode())  # a redelivery
    publish(client, "shopper/shop-1/door/counts", b"\x89PNG\r\n\x1a\n\x00\x00")
    publish(client, "shopper/shop-1/back/counts", json.dumps(first).encode())  # wrong camera
    forged = dict(second, thumbnail="aGk=")
    publish(client, "shopper/shop-1/door/counts", json.dumps(forged).encode())
    publish(client, "shopper/shop-1/door/status", b"online")
    publish(client, "shopper/shop-1/door/counts", json.dumps(second).encode())
    wait_for(lambda: db.exists() and len(stored_ids(db)) == 2)
    time.sleep(0.5)
    client.loop_stop()
    stats, err = hq.stop()
    assert stats == {"stored": 2, "duplicates": 1, "rejected": 3, "statuses": 1}
    assert stored_ids(db) == [first["message_id"], second["message_id"]]
    assert "rejected a message on shopper/shop-1/door/counts: not JSON" in err
    assert "store or camera differs from the topic" in err
    assert "PNG" not in err and "aGk=" not in err


def test_a_config_error_status_is_stored_and_a_forged_status_rejected(broker, tmp_path):
    db = tmp_path / "hq.sqlite"
    hq = start_hq(broker, str(db))
    client = publisher(broker)
    line = b"config-error: device.yaml: cameras[0].fps: must be > 0, got -5"
    publish(client, "shopper/shop-1/door/status", line)
    publish(client, "shopper/shop-1/back/status", b"config-error: see rtsp://10.0.0.7/live")
    wait_for(lambda: db.exists() and WindowStore(str(db)).statuses())
    time.sleep(0.5)
    client.loop_stop()
    stats, err = hq.stop()
    assert stats == {"stored": 0, "duplicates": 0, "rejected": 1, "statuses": 1}
    assert WindowStore(str(db)).statuses()[("shop-1", "door")][0] == line.decode()
    assert "rejected a message on shopper/shop-1/back/status: status: a config error" in err
    assert "10.0.0.7" not in err


def test_shared_subscription_splits_the_windows_between_instances(broker, tmp_path):
    dbs = [tmp_path / "hq-a.sqlite", tmp_path / "hq-b.sqlite"]
    hqs = [start_hq(broker, str(db), "--share", "hq", client_id=f"hq-{i}")
           for i, db in enumerate(dbs)]
    client = publisher(broker)
    sent = windows(hours=1, per_hour=6, window=300)
    for document in sent:
        publish(client, "shopper/shop-1/door/counts", json.dumps(document).encode())
    wait_for(lambda: all(db.exists() for db in dbs) and
                    sum(len(stored_ids(db)) for db in dbs) == len(sent))
    client.loop_stop()
    for hq in hqs:
        hq.stop()
    a, b = (set(stored_ids(db)) for db in dbs)
    assert a and b and not a & b  # both worked, none twice
    assert a | b == {d["message_id"] for d in sent}


def test_hq_queue_survives_hq_being_away(broker, tmp_path):
    """A persistent session: what arrives while HQ is stopped is delivered when it returns."""
    db = tmp_path / "hq.sqlite"
    start_hq(broker, str(db)).stop()
    client = publisher(broker)
    sent = windows(hours=1)
    for document in sent:
        publish(client, "shopper/shop-1/door/counts", json.dumps(document).encode())
    client.loop_stop()
    hq = start_hq(broker, str(db))
    wait_for(lambda: len(stored_ids(db)) == len(sent))
    hq.stop()
    assert stored_ids(db) == [d["message_id"] for d in sent]


def report(db, *extra):
    return subprocess.run([sys.executable, "-m", "appliance.hq.cli", "report", "--db", str(db),
                           *map(str, extra)], capture_output=True, text=True, timeout=120)


def test_report_footfall_by_hour_coverage_and_charts(tmp_path):
    db = tmp_path / "hq.sqlite"
    store = WindowStore(str(db))
    for document in windows(hours=2, per_hour=4) + windows(camera="back", hours=1, per_hour=1):
        assert store.add_window(document, "2027-01-01T03:00:00Z")
    store.set_status("shop-1", "door", "online", "2027-01-01T03:00:00Z")
    store.close()
    result = report(db, "--json")
    assert result.returncode == 0, result.stderr
    door, back = sorted(json.loads(result.stdout)["cameras"],
                        key=lambda r: r["camera_id"] != "door")
    assert door["footfall_by_hour"] == {"2027-01-01 00:00": 4, "2027-01-01 01:00": 4}
    assert door["footfall_by_day"] == {"2027-01-01": 8} and door["peak_hour"] == \
        "2027-01-01 00:00"
    assert door["lines"] == {"door": {"in": 8, "out": 2}}
    assert door["status"] == "online" and back["status"] is None
    assert back["footfall_by_hour"] == {"2027-01-01 00:00": 1}
    assert 0 < door["coverage"] < 1  # frames in only 8 of the minutes the windows span

    result = report(db, "--store", "shop-1", "--camera", "door", "--tz", "Europe/Paris",
                    "--plot", tmp_path / "charts")
    assert result.returncode == 0, result.stderr
    assert "2027-01-01 01:00" in result.stdout and "2027-01-01 02:00" in result.stdout
    assert "footfall by day: 2027-01-01 8; peak hour 2027-01-01 01:00 (4 in)" in result.stdout
    assert "camera back" not in result.stdout
    chart = tmp_path / "charts" / "shop-1-door-footfall.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000


def test_report_chain_per_store_and_total(tmp_path):
    db = tmp_path / "hq.sqlite"
    store = WindowStore(str(db))
    for document in (windows(hours=2, per_hour=4) + windows(camera="back", hours=1, per_hour=1)
                     + windows(store="shop-2", hours=1, per_hour=3)):
        assert store.add_window(document, "2027-01-01T03:00:00Z")
    store.close()
    result = report(db, "--chain", "--json", "--until", "2027-01-01T01:00")
    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)
    assert [(s["store_id"], s["cameras"], s["in"], s["out"]) for s in chain["stores"]] == \
        [("shop-1", 2, 5, 2), ("shop-2", 1, 3, 1)]  # the door's first hour and the back's
    assert chain["chain"]["stores"] == 2 and chain["chain"]["in"] == 8
    assert chain["chain"]["cameras"] == 3 and not chain["chain"]["lower_bound"]
    result = report(db, "--chain")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:5] == ["shop-1", "2", str(len(windows()) + len(windows(
        camera="back", hours=1, per_hour=1))), lines[1].split()[3], "9"]
    assert lines[3].startswith("chain (2 stores)") and lines[3].split()[6] == "12"


def test_report_age_profile_per_camera_and_store(tmp_path):
    """Age bands (and gender on one camera) per camera and summed per store; a null band is
    suppressed (1..4 on the device): it adds nothing and counts in suppressed_counts."""
    door = windows(hours=2, per_hour=4)
    # Keys out of order, and a configured first band whose text sorts after "25-34":
    # bands go by their lower age, "unknown" last.
    door[0]["age_bands"] = {"unknown": 2, "65+": 5, "25-34": 10, "18-24": 6, "5-12": None}
    door[1]["age_bands"] = {"5-12": 5, "18-24": 4, "25-34": None, "65+": 5, "unknown": 0}
    back = windows(camera="back", hours=1, per_hour=1)
    back[0]["age_bands"] = {"18-24": 5, "25-34": 5, "unknown": 2}
    back[0]["gender"] = {"female": 6, "male": None, "unknown": 3}
    db = tmp_path / "hq.sqlite"
    store = WindowStore(str(db))
    for document in door + back + windows(store="shop-2", hours=1):  # shop-2: no age data
        assert store.add_window(document, "2027-01-01T03:00:00Z")
    stored = list(store.windows(camera_id="back"))
    assert stored[0].gender == {"female": 6, "male": None, "unknown": 3}
    assert next(store.windows(store_id="shop-2")).age_bands == {}
    store.close()

    result = report(db, "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    reports = {(r["store_id"], r["camera_id"]): r for r in output["cameras"]}
    d, b, other = reports["shop-1", "door"], reports["shop-1", "back"], reports["shop-2", "door"]
    assert list(d["age_bands"].items()) == [("5-12", 5), ("18-24", 10), ("25-34", 10),
                                            ("65+", 10), ("unknown", 2)]
    assert d["age_shares"] == {"5-12": 0.1429, "18-24": 0.2857, "25-34": 0.2857,
                               "65+": 0.2857}
    assert d["gender"] == {} and d["suppressed_counts"] == 2
    assert b["age_bands"] == {"18-24": 5, "25-34": 5, "unknown": 2}
    assert b["age_shares"] == {"18-24": 0.5, "25-34": 0.5}
    assert b["gender"] == {"female": 6, "male": 0, "unknown": 3} and b["suppressed_counts"] == 1
    assert other["age_bands"] == other["age_shares"] == other["gender"] == {}
    store, = output["stores"]  # shop-2 has neither age data nor behaviour
    assert store["store_id"] == "shop-1" and store["behaviour"] is None
    assert store["age"]["cameras"] == 2 and store["age"]["suppressed_counts"] == 3
    assert store["age"]["age_bands"] == {"5-12": 5, "18-24": 15, "25-34": 15, "65+": 10,
                                         "unknown": 4}

    charts = tmp_path / "charts"
    result = report(db, "--plot", charts)
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines.count("age band visitors share") == 3  # door, back, store shop-1
    door_lines = lines[next(i for i, line in enumerate(lines)
                            if line.startswith("store shop-1 / camera door")):]
    door_table = door_lines[door_lines.index("age band visitors share") + 1:][:5]
    assert door_table == ["5-12 5 14.3%", "18-24 10 28.6%", "25-34 10 28.6%", "65+ 10 28.6%",
                          "unknown 2 -"]
    assert "gender: female 6, male 0, unknown 3" in lines
    assert "2 counts were suppressed on the device (below its threshold): totals here are " \
        "lower bounds" in lines
    heading = "store shop-1 age profile (2 cameras), 2027-01-01T00:00:00.000Z .. " \
        f"{door[-1]['window_end']}"
    store_table = lines[lines.index(heading) + 2:][:6]
    assert store_table == ["5-12 5 11.1%", "18-24 15 33.3%", "25-34 15 33.3%", "65+ 10 22.2%",
                           "unknown 4 -", "gender: female 6, male 0, unknown 3"]
    assert not any(line.startswith("store shop-2 age profile") for line in lines)
    chart = charts / "shop-1-age-profile.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    assert f"wrote {chart}" in result.stderr
    assert not (charts / "shop-2-age-profile.png").exists()
    assert (charts / "shop-2-door-footfall.png").exists()


def test_subscribe_bad_input_is_one_line(tmp_path):
    for args, message in (
        (["--db", "/proc/no/such/dir/hq.sqlite"], "cannot open the database"),
        (["--share", "a/b"], "--share 'a/b': one topic level"),
        (["--tls-ca", str(tmp_path / "none.crt")], "--tls-ca"),
        (["--password-file", str(tmp_path / "none")], "--password-file"),
    ):
        result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "subscribe",
                                 "--host", "127.0.0.1", "--db", str(tmp_path / "hq.sqlite"),
                                 *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("shopper-hq: error: ")
        assert message in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--db", "missing.sqlite"], "missing.sqlite: no such database"),
    (["--tz", "Mars/Olympus"], "--tz 'Mars/Olympus': unknown time zone"),
    (["--chain", "--camera", "door"], "--chain: per store and chain only"),
])
def test_report_bad_input_is_one_line(tmp_path, args, message):
    db = tmp_path / "hq.sqlite"
    WindowStore(str(db)).close()
    result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "report", "--db",
                             str(db), *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"shopper-hq: error: {message}"] or \
        message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def postgres():
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: make system-deps")
    server = Postgres().start()
    yield server
    server.remove()


def test_postgresql_store_and_database_outage(broker, tmp_path, postgres):
    """Windows go to PostgreSQL; when it fails HQ exits (3) without acknowledging, and the
    broker redelivers the window to the restarted HQ."""
    hq = start_hq(broker, postgres.url)
    client = publisher(broker)
    sent = windows(hours=1)
    publish(client, "shopper/shop-1/door/counts", json.dumps(sent[0]).encode())
    time.sleep(1)
    postgres.stop()
    publish(client, "shopper/shop-1/door/counts", json.dumps(sent[1]).encode())
    assert hq.wait(30) == 3
    err = "\n".join(hq.lines)
    assert "shopper-hq: error: postgresql://***@127.0.0.1" in err or \
        f"127.0.0.1:{postgres.port}" in err
    postgres.start()
    hq = start_hq(broker, postgres.url)
    for document in sent[2:]:
        publish(client, "shopper/shop-1/door/counts", json.dumps(document).encode())
    client.loop_stop()
    time.sleep(2)
    stats, err = hq.stop()
    store = WindowStore(postgres.url)
    try:
        stored = [w.window_start for w in store.windows()]
        # Age bands come from the stored document, with the same SQL as in SQLite.
        aged = dict(windows(store="shop-2", hours=1)[0], age_bands={"18-24": 6, "65+": None})
        assert store.add_window(aged, "2027-01-01T03:00:00Z")
        assert [w.age_bands for w in store.windows(store_id="shop-2")] == \
            [{"18-24": 6, "65+": None}]
    finally:
        store.close()
    assert stored == [d["window_start"] for d in sent]
    result = report(postgres.url, "--json")
    assert json.loads(result.stdout)["cameras"][0]["lines"] == {"door": {"in": 4, "out": 1}}
