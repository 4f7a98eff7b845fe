"""The store-and-forward spool: order, bound, and durability across a real SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from appliance.device.outputs.spool import Spool, SpoolError
from tests.conftest import shopper_edge


def payload(i: int) -> bytes:
    return b'{"n":%d}' % i


def test_messages_leave_in_the_order_they_came(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", 100)
    for i in range(5):
        spool.put("t/counts", payload(i))
    rows = spool.after(0, 3)
    assert [p for _, _, p in rows] == ['{"n":0}', '{"n":1}', '{"n":2}']
    spool.delete(rows[1][0])
    assert [p for _, _, p in spool.after(rows[0][0], 10)] == ['{"n":2}', '{"n":3}', '{"n":4}']
    assert spool.depth() == 4


def test_the_bound_drops_the_oldest_and_the_loss_is_counted_across_restarts(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", 10)
    dropped = [spool.put("t", payload(i)) for i in range(13)]
    assert dropped == [0] * 10 + [1, 1, 1]
    assert [p for _, _, p in spool.after(0, 100)][0] == '{"n":3}'
    spool.close()
    again = Spool(tmp_path / "s.sqlite", 10)
    assert again.depth() == 10 and again.dropped() == 3
    again.put("t", payload(13))
    assert again.dropped() == 4


WRITER = """
import sys, time
from appliance.device.outputs.spool import Spool
spool = Spool(sys.argv[1], 1000)
for i in range(50):
    spool.put("t/counts", b'{"n":%d}' % i)
print("stored", flush=True)
time.sleep(60)
"""


def test_what_was_stored_survives_kill_9(tmp_path):
    path = tmp_path / "s.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "stored"
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    spool = Spool(path, 1000)
    assert [p for _, _, p in spool.after(0, 100)] == [f'{{"n":{i}}}' for i in range(50)]


def test_a_damaged_spool_file_is_one_clear_error(tmp_path, write_config):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "caviar-demo-front.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool(spool_dir / "caviar-demo-front.sqlite", 10)
    config = write_config(outputs={"mqtt": {"host": "localhost", "port": 1,
                                            "spool_dir": str(spool_dir)}})
    result = shopper_edge("replay", tmp_path / "none.mpg", "--config", config)
    assert result.returncode == 2  # the missing clip is reported before the spool is opened
    result = shopper_edge("run", "--config", config)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("cannot open the spool: file is not a database")
    assert len(result.stderr.strip().splitlines()) == 1
