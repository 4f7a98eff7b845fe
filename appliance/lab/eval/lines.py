"""Line-counting accuracy on MOT-style data: public detections through the appliance's own
tracker and line counter, against crossings of the same segment by the ground-truth foot
points (bottom centre of each box).

The truth counts one crossing each time a person's foot point changes side of the line
between two consecutive annotated frames and the path meets the segment itself (to within
a pixel of its ends). `every`
keeps every Nth frame for the appliance (a lower processing rate), never for the truth.
"""

from __future__ import annotations

import numpy as np

from appliance.device.analytics.lines import LineCounter
from appliance.device.analytics.lines_config import CountingConfig, LineConfig
from appliance.device.detect.detections import Detections
from appliance.device.track.tracker import Tracker
from appliance.device.track.tracker_config import TrackerConfig
from appliance.lab.eval.mot import Sequence, evaluate, kept_frames


def default_in_side(points) -> tuple[float, float]:
    """A point to the left of X1,Y1 -> X2,Y2 as seen on screen (image y points down)."""
    (x1, y1), (x2, y2) = points
    return ((x1 + x2) / 2 + (y2 - y1), (y1 + y2) / 2 - (x2 - x1))


def truth_crossings(truth: Sequence, line: LineConfig) -> dict[str, int]:
    counter = LineCounter(line, CountingConfig())  # for its geometry only
    a, normal = counter.a, counter.normal
    # One pixel past either end still counts: a line drawn to the frame edge meets people
    # whose annotated box is cut at that edge, and CVML stores boxes as centre and size, so
    # such a foot point comes back a fraction of a pixel outside (576.2 on a 576-high frame).
    slack = 1.0 / counter.length
    paths: dict[int, list[np.ndarray]] = {}
    for frame in sorted(truth):
        ids, xywh, _ = truth[frame]
        feet = np.stack([xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3]], 1)
        for person, foot in zip(ids.tolist(), feet, strict=True):
            paths.setdefault(person, []).append(foot)
    counts = {"in": 0, "out": 0}
    for path in paths.values():
        for p, q in zip(path, path[1:], strict=False):
            dp, dq = float((p - a) @ normal), float((q - a) @ normal)
            if (dp > 0) == (dq > 0) or dp == dq:
                continue
            point = p + (q - p) * (dp / (dp - dq))
            along = float((point - a) @ (counter.b - a)) / counter.length**2
            if -slack <= along <= 1 + slack:
                counts["in" if dq > 0 else "out"] += 1
    return counts


def count_line(detections: Sequence, line: LineConfig, fps: float, every: int,
               tracker_config: TrackerConfig) -> tuple[dict[str, int], Sequence]:
    """Run tracker and counter over every `every`th frame; returns counts and the tracks."""
    tracker, counter = Tracker(tracker_config), LineCounter(line, CountingConfig())
    tracked: Sequence = {}
    if not detections:
        return dict(counter.counts), tracked
    first = min(detections)
    for frame in range(first, max(detections) + 1, every):
        _, xywh, scores = detections.get(frame, (None, np.zeros((0, 4)), np.zeros(0)))
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)
        tracks = tracker.update(Detections(xyxy, scores.astype(np.float32)), frame / fps)
        counter.update(tracks, frame / fps)
        if len(tracks):
            boxes = tracks.xyxy.astype(np.float64)
            boxes[:, 2:] -= boxes[:, :2]
            tracked[frame] = (tracks.ids.copy(), boxes, tracks.scores.astype(np.float64))
    return dict(counter.counts), tracked


def evaluate_line(truth: Sequence, detections: Sequence, points, in_side=None,
                  fps: float = 25.0, every: int = 1,
                  tracker_config: TrackerConfig | None = None) -> dict:
    line = LineConfig("line", tuple(map(tuple, points)),
                      in_side_point=tuple(in_side) if in_side else default_in_side(points))
    counts, tracked = count_line(detections, line, fps, every,
                                 tracker_config or TrackerConfig())
    expected = truth_crossings(truth, line)
    error = abs(counts["in"] - expected["in"]) + abs(counts["out"] - expected["out"])
    total = expected["in"] + expected["out"]
    kept = kept_frames(truth, detections, every)  # the truth on the frames looked at
    return {"in": counts["in"], "out": counts["out"],
            "truth_in": expected["in"], "truth_out": expected["out"],
            "abs_error": error, "error_share": round(error / total, 4) if total else None,
            "fps": round(fps / every, 3), "idf1": evaluate(kept, tracked)["idf1"]}
