"""Line-counting accuracy on MOT-style data: public detections through the appliance's own
tracker and line counter, against crossings of the same segment by the ground-truth foot
points (bottom centre of each box).

The truth counts one crossing each time a person's foot point changes side of the line
between two consecutive annotated frames and the path meets the segment itself (to within
a pixel of its ends). `every`
keeps every Nth frame for the appliance (a lower processing rate), never for the truth;
`cap` keeps the frames the appliance's rate cap lets through (a board's `fps` cap, uneven
gaps where it does not divide the sequence's rate).

The totals can hide errors that cancel (a missed "in" and someone else's extra "in"), so
each count is also paired with a true crossing in the same direction at most
`LineCounter.split_seconds` away (the latest the counter may count a crossing: a companion
coming out of a shared box), as many pairs as can be made, then the closest in time: true
crossings left over were `missed`, counts left over `extra`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from appliance.device.analytics.lines import LineCounter
from appliance.device.analytics.lines_config import CountingConfig, LineConfig
from appliance.device.detect.detections import Detections
from appliance.device.sources import RateCap
from appliance.device.track.tracker import Tracker
from appliance.device.track.tracker_config import TrackerConfig
from appliance.lab.eval.mot import Sequence, evaluate, kept_frames


def default_in_side(points) -> tuple[float, float]:
    """A point to the left of X1,Y1 -> X2,Y2 as seen on screen (image y points down)."""
    (x1, y1), (x2, y2) = points
    return ((x1 + x2) / 2 + (y2 - y1), (y1 + y2) / 2 - (x2 - x1))


def truth_crossings(truth: Sequence, line: LineConfig) -> dict[str, int]:
    counts = {"in": 0, "out": 0}
    for _, direction in truth_events(truth, line):
        counts[direction] += 1
    return counts


def truth_events(truth: Sequence, line: LineConfig) -> list[tuple[int, str]]:
    """(frame, direction) of every true crossing: the frame the foot point is past the line."""
    counter = LineCounter(line, CountingConfig())  # for its geometry only
    a, normal = counter.a, counter.normal
    # One pixel past either end still counts: a line drawn to the frame edge meets people
    # whose annotated box is cut at that edge, and CVML stores boxes as centre and size, so
    # such a foot point comes back a fraction of a pixel outside (576.2 on a 576-high frame).
    slack = 1.0 / counter.length
    paths: dict[int, list[tuple[int, np.ndarray]]] = {}
    for frame in sorted(truth):
        ids, xywh, _ = truth[frame]
        feet = np.stack([xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3]], 1)
        for person, foot in zip(ids.tolist(), feet, strict=True):
            paths.setdefault(person, []).append((frame, foot))
    events = []
    for path in paths.values():
        for (_, p), (frame, q) in zip(path, path[1:], strict=False):
            dp, dq = float((p - a) @ normal), float((q - a) @ normal)
            if (dp > 0) == (dq > 0) or dp == dq:
                continue
            point = p + (q - p) * (dp / (dp - dq))
            along = float((point - a) @ (counter.b - a)) / counter.length**2
            if -slack <= along <= 1 + slack:
                events.append((frame, "in" if dq > 0 else "out"))
    return sorted(events)


def unpaired(truth: list[tuple[float, str]], counted: list[tuple[float, str]],
             seconds: float) -> tuple[int, int]:
    """(missed, extra): true crossings and counts, (time, direction) each, left over after
    pairing each count with a true crossing in the same direction at most `seconds` away:
    as many pairs as can be made (a pair out of reach costs more than any set of pairs in
    reach), then the smallest total time apart."""
    missed = extra = 0
    for direction in ("in", "out"):
        t = np.array([time for time, d in truth if d == direction])
        c = np.array([time for time, d in counted if d == direction])
        pairs = 0
        if len(t) and len(c):
            apart = np.abs(t[:, None] - c[None, :])
            rows, cols = linear_sum_assignment(np.where(apart <= seconds, apart, 1e9))
            pairs = int((apart[rows, cols] <= seconds).sum())
        missed += len(t) - pairs
        extra += len(c) - pairs
    return missed, extra


def processed_frames(first: int, last: int, fps: float, every: int = 1,
                     cap: float | None = None) -> list[int]:
    """The frames from `first` to `last` the appliance looks at: every `every`th, or those
    its rate cap lets through at `cap` frames a second (the pipeline's own `RateCap`, evenly
    spaced in source time: 5 fps from a 7 fps sequence takes gaps of one and two frames, as
    a board capped at 5 fps does)."""
    if cap is None:
        return list(range(first, last + 1, every))
    rate = RateCap(cap)
    return [frame for frame in range(first, last + 1) if rate.due(frame / fps)]


def count_line(detections: Sequence, line: LineConfig, fps: float, frames: list[int],
               tracker_config: TrackerConfig
               ) -> tuple[dict[str, int], Sequence, list[tuple[float, str]]]:
    """Run tracker and counter over `frames`; returns counts, the tracks and the
    (time, direction) of each count."""
    tracker, counter = Tracker(tracker_config), LineCounter(line, CountingConfig())
    tracked: Sequence = {}
    counted: list[tuple[float, str]] = []
    for frame in frames:
        _, xywh, scores = detections.get(frame, (None, np.zeros((0, 4)), np.zeros(0)))
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)
        tracks = tracker.update(Detections(xyxy, scores.astype(np.float32)), frame / fps)
        counted += [(c.timestamp, c.direction) for c in counter.update(tracks, frame / fps)]
        if len(tracks):
            boxes = tracks.xyxy.astype(np.float64)
            boxes[:, 2:] -= boxes[:, :2]
            tracked[frame] = (tracks.ids.copy(), boxes, tracks.scores.astype(np.float64))
    return dict(counter.counts), tracked, counted


def evaluate_line(truth: Sequence, detections: Sequence, points, in_side=None,
                  fps: float = 25.0, every: int = 1, cap: float | None = None,
                  tracker_config: TrackerConfig | None = None) -> dict:
    """Counts of the line against the truth; with `cap`, on the frames a rate cap of that
    many frames a second lets through, else on every `every`th frame."""
    line = LineConfig("line", tuple(map(tuple, points)),
                      in_side_point=tuple(in_side) if in_side else default_in_side(points))
    first = min(detections) if detections else 0
    frames = processed_frames(first, max(detections, default=first - 1), fps, every, cap)
    counts, tracked, counted = count_line(detections, line, fps, frames,
                                          tracker_config or TrackerConfig())
    events = truth_events(truth, line)
    expected = {d: sum(1 for _, e in events if e == d) for d in ("in", "out")}
    missed, extra = unpaired([(frame / fps, d) for frame, d in events], counted,
                             LineCounter.split_seconds)
    error = abs(counts["in"] - expected["in"]) + abs(counts["out"] - expected["out"])
    total = expected["in"] + expected["out"]
    if cap is None:
        kept = kept_frames(truth, detections, every)  # the truth on the frames looked at
    else:
        looked = set(processed_frames(first, max(truth, default=first), fps, cap=cap))
        kept = {frame: boxes for frame, boxes in truth.items() if frame in looked}
    return {"in": counts["in"], "out": counts["out"],
            "truth_in": expected["in"], "truth_out": expected["out"],
            "abs_error": error, "error_share": round(error / total, 4) if total else None,
            "missed": missed, "extra": extra,
            "fps": round(cap if cap is not None else fps / every, 3),
            "idf1": evaluate(kept, tracked)["idf1"]}
