"""The reference pipeline for `shopper-edge bench`: what most engineers would assemble today.
The same ONNX detector (same pre- and post-processing), the `trackers` package's
ByteTrackTracker (the successor of supervision's ByteTrack, removed in supervision 0.30) and
supervision's LineZone counting bottom-centre crossings. Bench tooling only: `trackers` and
`supervision` are in the dev extra, never on a device.
"""

from __future__ import annotations

import time

import numpy as np


def run_reference(detector, frames, line, fps: float) -> dict:
    """Process `frames` like the appliance; returns frames, seconds and in/out counts."""
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=fps)
    (ax, ay), (bx, by) = line.points
    if line.in_side_point is not None:
        px, py = line.in_side_point
        # LineZone counts "in" for crossings towards the left of start->end (as ours does by
        # default); swap the ends if the configured in side is on the right.
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
            (ax, ay), (bx, by) = (bx, by), (ax, ay)
    zone = sv.LineZone(sv.Point(ax, ay), sv.Point(bx, by),
                       triggering_anchors=(sv.Position.BOTTOM_CENTER,))
    count = 0
    started = time.perf_counter()
    for frame, _timestamp in frames:
        found = detector.detect(frame)
        del frame
        detections = sv.Detections(xyxy=found.xyxy.astype(np.float32),
                                   confidence=found.scores.astype(np.float32),
                                   class_id=np.zeros(len(found.scores), int))
        zone.trigger(tracker.update(detections))
        count += 1
    seconds = time.perf_counter() - started
    return {"frames": count, "seconds": seconds,
            "lines": {line.name: {"in": int(zone.in_count), "out": int(zone.out_count)}}}
