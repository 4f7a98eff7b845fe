"""Steps the system clock as the appliance's Python sees it, for tests/device/test_clock.py.

On PYTHONPATH, this runs in every Python process of the appliance (the publisher and its
worker inherit the environment): `time.time()` and `time.time_ns()` are shifted by the
seconds in the file named by SHOPPER_FAKE_CLOCK_FILE, read again at most once a second,
as a board's clock steps at time sync. CLOCK_MONOTONIC stays real, as the kernel keeps it
through a step. (libfaketime would do this for the whole process, but Debian 12's 0.9.10
breaks Python 3.11's time.sleep when it leaves the monotonic clock alone: libfaketime
issue 426.)
"""

import os
import time

_path = os.environ.get("SHOPPER_FAKE_CLOCK_FILE")
if _path:
    _real_time, _real_time_ns, _monotonic = time.time, time.time_ns, time.monotonic
    _state = {"offset": 0.0, "read": float("-inf")}

    def _offset() -> float:
        now = _monotonic()
        if now - _state["read"] >= 1.0:
            _state["read"] = now
            try:
                with open(_path) as file:
                    _state["offset"] = float(file.read().strip())
            except (OSError, ValueError):
                pass  # keep the last offset: the test rewrites the file
        return _state["offset"]

    time.time = lambda: _real_time() + _offset()
    time.time_ns = lambda: _real_time_ns() + int(_offset() * 1e9)
