"""HQ takes what devices send now: a counts/2 window without `frames` (no longer sent: it
placed the start or stop inside a partial window) is valid and stored, next to one from an
older device that still sends it."""

from __future__ import annotations

from appliance.hq.store import WindowStore
from appliance.hq.subscriber import window_problem
from tests.hq.test_hq_behaviour import window


def test_a_window_without_frames_is_valid_and_stored(tmp_path):
    new, old = window("door", 0), window("door", 1)
    del new["frames"]
    assert window_problem(new) is None and window_problem(old) is None
    store = WindowStore(str(tmp_path / "hq.sqlite"))
    try:
        assert store.add_window(new, "2027-01-15T08:01:00.000Z")
        assert store.add_window(old, "2027-01-15T08:02:00.000Z")
        assert len(list(store.windows("shop-1", "door"))) == 2
    finally:
        store.close()
