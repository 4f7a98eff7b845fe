"""People, not track ids: the fragments of one person's broken track, linked into one.

A track breaks when its person is hidden for longer than the tracker keeps it (an
occlusion, a pause the detector misses) and the person comes back under a new id. Counted
as ids, one person in five fragments would be five visitors, and could fill a heatmap
cell's k alone. So a new track that starts close to where a track not seen since was last
seen, soon after, continues that person: within `LINK_SECONDS` of that last sighting, and
within `LINK_HEIGHTS` box heights plus `WALK_HEIGHTS` per second of the gap. Behaviour
(zones, journeys, groups, heatmap) then counts people; a person ends only when its last
track has ended and `LINK_SECONDS` have passed without a successor. Errors go the safe way
for privacy: two people linked by mistake are one count fewer, never one person counted
twice. Line counts do not go through here (a track that breaks on a line already hands its
side on, appliance/device/analytics/lines.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from appliance.device.track.tracker import Tracks

# Chosen on PETS09-S2L1 and TUD (`shopper-edge eval fragments`, docs/privacy.md): wider
# bounds link more fragments but also more different people.
LINK_SECONDS = 4.0  # the tracker keeps a lost track 2 s (tracker.lost_seconds); a pause longer
LINK_HEIGHTS = 0.3  # where it reappears: 0.3 box heights ...
WALK_HEIGHTS = 0.3  # ... plus 0.3 box heights per second gone (a slow walk)


@dataclass
class _Sighting:
    person: int  # the track id of the person's first fragment
    time: float
    foot: tuple[float, float]
    height: float
    ended: bool = False  # the tracker ended it
    successor: int | None = None  # the new track that took its person on


class People:
    def __init__(self):
        self._tracks: dict[int, _Sighting] = {}  # the latest sighting of each track id
        self._shown: dict[int, int] = {}  # person -> track id, in the last frame

    def update(self, tracks: Tracks, timestamp: float) -> Tracks:
        """The same tracks with person ids for track ids, and the people who ended as
        `ended`."""
        shown = set(tracks.ids.tolist())
        persons = []
        for k, track_id in enumerate(tracks.ids.tolist()):
            foot = (float(tracks.feet[k, 0]), float(tracks.feet[k, 1]))
            height = float(max(tracks.xyxy[k, 3] - tracks.xyxy[k, 1], 1.0))
            sighting = self._tracks.get(track_id)
            if sighting is None:
                sighting = self._tracks[track_id] = _Sighting(
                    self._predecessor(track_id, foot, height, timestamp, shown), timestamp,
                    foot, height)
            elif sighting.successor is not None:
                # Seen again after a new track took its person on: two people after all,
                # and the newer track is someone of its own.
                successor = self._tracks.get(sighting.successor)
                if successor is not None:
                    successor.person = sighting.successor
                sighting.successor = None
            sighting.time, sighting.foot, sighting.height = timestamp, foot, height
            persons.append(sighting.person)
        self._shown = dict(zip(persons, tracks.ids.tolist(), strict=True))
        for track_id in tracks.ended:
            if track_id in self._tracks:
                self._tracks[track_id].ended = True
        ended = self._release(lambda s: s.ended and timestamp - s.time > LINK_SECONDS)
        return replace(tracks, ids=np.array(persons, np.int64), ended=ended)

    def person(self, track_id: int) -> int:
        """The person a track id belongs to (a crossing names its track)."""
        sighting = self._tracks.get(track_id)
        return sighting.person if sighting is not None else track_id

    def track(self, person: int) -> int:
        """The track id a person was shown under in the last frame (for pose)."""
        return self._shown.get(person, -1)

    def flush(self) -> tuple[int, ...]:
        """The source ended: everyone ends."""
        return self._release(lambda s: True)

    def _predecessor(self, new_id: int, foot, height: float, timestamp: float,
                     shown: set[int]) -> int:
        """The person of the nearest track not seen since, that a walk could bring here;
        else a new person (the new track's own id)."""
        best, best_distance = None, np.inf
        for track_id, s in self._tracks.items():
            gap = timestamp - s.time
            if track_id in shown or s.successor is not None or not 0 < gap <= LINK_SECONDS:
                continue
            distance = np.hypot(foot[0] - s.foot[0], foot[1] - s.foot[1]) / \
                max(height, s.height)
            if distance <= LINK_HEIGHTS + WALK_HEIGHTS * gap and distance < best_distance:
                best, best_distance = s, distance
        if best is None:
            return new_id
        best.successor = new_id
        return best.person

    def _release(self, done) -> tuple[int, ...]:
        """Forget the tracks `done` says are over; the people none of whose tracks is left."""
        over = {t for t, s in self._tracks.items() if done(s)}
        people = {self._tracks[t].person for t in over}
        for track_id in over:
            del self._tracks[track_id]
        living = {s.person for s in self._tracks.values()}
        return tuple(sorted(people - living))
