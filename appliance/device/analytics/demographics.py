"""Age bands of visitors, from faces, without keeping anything that identifies anyone.

While a track lives, its head region (the top of its box) is searched for a face within a
budget of face inferences per second, shared fairly: the tracks looked at least, then longest
ago, go first. A large enough face gives one age estimate (appliance/device/detect/faces.py); a
track stops being looked at once it has `looks` estimates or three that agree within
`stable_years`. When the person ends (the fragments of a broken track are one person,
appliance/device/analytics/people.py), the median of their estimates becomes one count in
an age band (or `unknown`), and the estimates are dropped with it. Only tracks that moved (a
visitor, not a mannequin) are counted. No crop, embedding or descriptor is kept: the head
region is a view of the frame used within `update`, and an estimate is two numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from appliance.device.analytics.demographics_config import UNKNOWN, DemographicsConfig
from appliance.device.analytics.people import People
from appliance.device.detect.faces import AgeGender, AgeGenderModel, Face
from appliance.device.track.tracker import Tracks

HEAD_SHARE = 0.4  # the top of a person box where the face is, with the shoulders


def band_name(age: float, config: DemographicsConfig) -> str:
    index = int(np.searchsorted(config.bands, age, side="right")) - 1
    return config.band_names()[max(index, 0)]


@dataclass(frozen=True)
class Visitor:
    """What one ended track adds to its window: a band and, when enabled, a gender."""

    band: str
    gender: str | None = None  # "female", "male", "unknown"; None when gender is off


class FaceLooker:
    """Face detection on an image region, then age on the best face that is large enough."""

    def __init__(self, detector, age_model: AgeGenderModel, min_face_px: float):
        self.detector = detector
        self.age_model = age_model
        self.min_face_px = min_face_px

    def look(self, region: np.ndarray) -> AgeGender | None:
        faces = [f for f in self.detector.detect(region) if f.size >= self.min_face_px]
        if not faces:
            return None
        face: Face = max(faces, key=lambda f: f.score * f.size)
        return self.age_model.estimate(region, face)


@dataclass
class _Estimates:
    ages: list[float] = field(default_factory=list)
    females: list[float] = field(default_factory=list)
    attempts: int = 0
    last_attempt: float = -np.inf
    moved: bool = False


class Demographics:
    def __init__(self, config: DemographicsConfig, looker: FaceLooker):
        self.config = config
        self.looker = looker
        self.face_inferences = 0
        self._tracks: dict[int, _Estimates] = {}  # by person
        self.people = People()  # the same linking as behaviour's, so a person counts once
        self._tokens = 1.0
        self._last_time: float | None = None

    def update(self, frame: np.ndarray, tracks: Tracks, timestamp: float) -> list[Visitor]:
        """Spend this frame's face budget, then fold the people who ended into visitors."""
        tracks = self.people.update(tracks, timestamp)  # ids are people's from here on
        rate = self.config.faces_per_second
        if self._last_time is not None:
            self._tokens = min(self._tokens + (timestamp - self._last_time) * rate,
                               max(rate, 1.0))
        self._last_time = timestamp
        for i, track_id in enumerate(tracks.ids):
            state = self._tracks.setdefault(int(track_id), _Estimates())
            state.moved |= bool(tracks.moving[i])
        for i in self._queue(tracks):
            if self._tokens < 1:
                break
            self._tokens -= 1
            state = self._tracks[int(tracks.ids[i])]
            state.attempts += 1
            state.last_attempt = timestamp
            estimate = self.looker.look(self._head(frame, tracks.xyxy[i]))
            self.face_inferences += 1
            if estimate is not None:
                state.ages.append(estimate.age)
                state.females.append(estimate.female)
        return self._fold(tracks.ended)

    def end(self, track_ids) -> list[Visitor]:
        """The source ended (and with it the tracks in `track_ids`): everyone is folded."""
        self.people.flush()
        return self._fold(list(self._tracks))

    def _fold(self, people) -> list[Visitor]:
        visitors = []
        for track_id in people:
            state = self._tracks.pop(int(track_id), None)
            if state is not None and state.moved:
                visitors.append(self._visitor(state))
        return visitors

    def _queue(self, tracks: Tracks) -> list[int]:
        """Indices of tracks that still need a look, fairest first."""
        wanted = []
        for i, track_id in enumerate(tracks.ids):
            state = self._tracks[int(track_id)]
            box = tracks.xyxy[i]
            if self._stable(state) or (box[3] - box[1]) * HEAD_SHARE < self.config.min_face_px:
                continue
            wanted.append((len(state.ages), state.attempts, state.last_attempt, i))
        return [i for *_, i in sorted(wanted)]

    def _stable(self, state: _Estimates) -> bool:
        ages = state.ages
        if len(ages) >= self.config.looks:
            return True
        return len(ages) >= 3 and float(np.median(np.abs(np.subtract(ages, np.median(ages))))) \
            <= self.config.stable_years / 2

    @staticmethod
    def _head(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The top of the person box, a little wider: a view into the frame, not a copy."""
        x1, y1, x2, y2 = (float(v) for v in box)
        margin = 0.1 * (x2 - x1)
        height, width = frame.shape[:2]
        top, bottom = int(max(y1, 0)), int(min(y1 + HEAD_SHARE * (y2 - y1), height))
        left, right = int(max(x1 - margin, 0)), int(min(x2 + margin, width))
        return frame[top:max(bottom, top + 1), left:max(right, left + 1)]

    def _visitor(self, state: _Estimates) -> Visitor:
        band = band_name(float(np.median(state.ages)), self.config) if state.ages else UNKNOWN
        gender = None
        if self.config.gender:
            gender = UNKNOWN if not state.females else \
                ("female" if float(np.mean(state.females)) >= 0.5 else "male")
        return Visitor(band, gender)
