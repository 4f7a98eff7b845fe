from appliance.device.analytics.lines import Crossing
from appliance.device.window import WindowAggregator


def test_live_windows_align_to_wall_clock_minutes():
    windows = WindowAggregator("s1", "cam", ["door"], 60, "wall")
    start = 1_800_000_030.0  # hh:mm:30
    assert windows.add(start, [Crossing("door", "in", start)]) == []
    assert windows.add(start + 20, [Crossing("door", "out", start + 20)]) == []
    closed = windows.add(start + 31, [Crossing("door", "in", start + 31)])  # next minute
    assert len(closed) == 1
    first = closed[0]
    assert first["window_start"].endswith(":00.000Z") and first["window_end"].endswith(":00.000Z")
    assert first["lines"] == {"door": {"in": 1, "out": 1}}
    # Started at hh:mm:30: partial, but nothing in it says when inside the minute.
    assert first["partial"] is True and first["observed_seconds"] == 60.0
    assert "frames" not in first
    (last,) = windows.flush()
    assert last["lines"] == {"door": {"in": 1, "out": 0}} and last["partial"] is True
    assert last["observed_seconds"] == 60.0


def test_nothing_in_a_window_tells_when_inside_it_the_camera_started_or_stopped():
    """Two cameras start and stop at different moments inside the same windows and see the
    same crossing: apart from the random message id, their documents are the same."""
    runs = []
    for started, stopped in ((1_800_000_001.0, 1_800_000_125.0),
                             (1_800_000_047.5, 1_800_000_171.3)):
        windows = WindowAggregator("s1", "cam", ["door"], 60, "wall")
        documents = []
        t = started
        while t < stopped:
            crossed = [Crossing("door", "in", t)] if int(t) == 1_800_000_090 else []
            documents += windows.add(t, crossed)
            t += 0.2
        documents += windows.flush()
        runs.append([{k: v for k, v in d.items() if k != "message_id"} for d in documents])
    assert len(runs[0]) == 3 and runs[0] == runs[1]


def test_a_gap_emits_the_empty_windows_in_between():
    windows = WindowAggregator("s1", "cam", ["door"], 10, "media")
    windows.add(0.0, [])
    closed = windows.add(35.0, [])
    assert [d["window_start"] for d in closed] == [
        "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:10.000Z", "1970-01-01T00:00:20.000Z"]
    assert closed[0]["partial"] is False and closed[0]["observed_seconds"] == 10
    assert closed[1]["partial"] is True and closed[1]["observed_seconds"] == 0  # an outage


def test_windows_close_on_time_without_frames():
    """A live camera that is down: close_due closes each window as it ends, without frames
    (observed 0), and the next frame lands in the window it belongs to."""
    windows = WindowAggregator("s1", "cam", ["door"], 60, "wall")
    start = 1_800_000_010.0
    windows.add(start, [Crossing("door", "in", start)])
    assert windows.close_due(start + 49) == []
    [first] = windows.close_due(start + 50)  # its end: hh:mm+1:00
    assert first["lines"] == {"door": {"in": 1, "out": 0}} and first["observed_seconds"] == 60
    [empty, empty2] = windows.close_due(start + 170)
    assert empty["observed_seconds"] == 0 and empty["partial"] is True
    assert empty["lines"] == {"door": {"in": 0, "out": 0}}
    assert empty2["window_start"] > empty["window_start"]
    assert windows.add(start + 175, []) == []  # the open window started at +170's minute
    [last] = windows.flush()
    assert last["window_start"].endswith(":00.000Z") and last["observed_seconds"] == 60
