"""What the walk test watches besides the counts: people first seen already on a line.

A person whose track starts inside a line's band has no side yet: the counter takes the
side they leave the band from, which a door frame's edge or a pillar (where people appear)
can make wrong, so such a line is fragile.
The watcher wraps the pipeline's tracker and reads the tracks it returns; it changes
nothing and keeps only track ids.
"""

from __future__ import annotations

import numpy as np

from appliance.device.analytics.lines_config import CountingConfig
from appliance.device.camera_config import CameraConfig
from appliance.device.track.tracker import Tracks


class FirstSeenOnLine:
    def __init__(self, tracker, camera: CameraConfig, counting: CountingConfig,
                 frame_size: tuple[int, int]):
        self.tracker = tracker
        self.counting = counting
        sx, sy = camera.scale(*frame_size)
        self.lines = [(line.name, np.array(line.points[0]) * (sx, sy),
                       np.array(line.points[1]) * (sx, sy)) for line in camera.lines]
        self._seen: set[int] = set()
        self._on_line: dict[int, str] = {}  # track id -> line it was first seen on
        self.people: set[int] = set()  # moving tracks: visitors
        self.on_line: dict[str, set[int]] = {name: set() for name, _a, _b in self.lines}

    def __getattr__(self, name):
        return getattr(self.tracker, name)  # the pipeline's other calls go straight through

    def update(self, detections, timestamp: float) -> Tracks:
        tracks = self.tracker.update(detections, timestamp)
        heights = tracks.xyxy[:, 3] - tracks.xyxy[:, 1]
        for k, track_id in enumerate(tracks.ids.tolist()):
            if track_id not in self._seen:
                self._seen.add(track_id)
                band = max(self.counting.band * heights[k], self.counting.min_band_px)
                for name, a, b in self.lines:
                    if _distance(tracks.feet[k], a, b) <= band:
                        self._on_line[track_id] = name
                        break
            if tracks.moving[k]:  # a visitor, not a mannequin
                self.people.add(track_id)
                if track_id in self._on_line:
                    self.on_line[self._on_line[track_id]].add(track_id)
        return tracks

    def advice(self) -> list[str]:
        return [f"line {name}: {len(ids)} of {len(self.people)} people were first seen "
                "already on the line, so which way they crossed is a guess; move the line to "
                "where people are seen before they reach it"
                for name, ids in self.on_line.items() if ids]


def _distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """From point p to segment a-b."""
    ab = b - a
    t = np.clip(float((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    return float(np.hypot(*(p - (a + t * ab))))
