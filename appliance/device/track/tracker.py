"""A ByteTrack-class multi-object tracker, small enough to read in one sitting.

Per update: every live track predicts with its Kalman filter; high-score detections are
matched to tracked and recently lost tracks by IoU; low-score detections (ByteTrack's key
idea: occluded people score low) rescue the still-unmatched tracked ones; lost tracks try
the confident detections left with their predicted box widened by the filter's position
spread; tentative tracks need a second sighting; new tracks start from the remaining
confident detections, except a second box on someone already tracked in this frame (the
bottoms level, more than half of the smaller box inside the other: a door shopper's own box
beside the box of them and a mannequin together). The Kalman filter's velocity noise
grows with the time between looks, which keeps identities at low frame rates (7 fps PETS,
rate-capped cameras).

Two people often make one box while they pass: a track matched to a box that also covers
another unmatched track's predicted box keeps the velocity it had (its position follows
the box), so each prediction follows its own person when the box splits, and it is
flagged `merged` for the counter (the box's foot point may be the other person's).

Lost tracks are kept for `lost_seconds` of media time, so the behaviour does not depend on
the processing rate. A track is marked `moving` once its foot point has travelled
`min_travel` box heights from where it started; mannequins and posters never are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import linear_sum_assignment

from appliance.device.detect.detections import Detections, box_iou
from appliance.device.track import kalman
from appliance.device.track.tracker_config import TrackerConfig

_BIG = 1e6


@dataclass(frozen=True)
class Tracks:
    """Tracks confirmed and seen in this frame; `ended` lists ids that died this frame."""

    ids: np.ndarray  # (N,) int64
    xyxy: np.ndarray  # (N, 4) float32, filtered boxes
    scores: np.ndarray  # (N,) float32, score of the matched detection
    moving: np.ndarray  # (N,) bool, has travelled: a visitor, not a fixture
    ended: tuple[int, ...] = ()
    # (N,) bool: the box also covers another track's predicted box (two people in one
    # box; its foot point may be the other person's); None: no such box
    merged: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def feet(self) -> np.ndarray:
        """(N, 2) bottom-centre points: where a person stands (computed once per frame,
        though lines, zones, shelves and the heatmap all read it)."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], 1)


@dataclass(eq=False)
class _Track:
    id: int
    mean: np.ndarray
    cov: np.ndarray
    xyxy: np.ndarray  # the box of `mean`, kept in step with it
    score: float
    origin: np.ndarray  # foot point at birth
    origin_height: float
    last_seen: float
    confirmed: bool = False
    lost: bool = False
    moving: bool = False
    matched: bool = field(default=False, repr=False)
    merged: bool = field(default=False, repr=False)
    box: np.ndarray | None = field(default=None, repr=False)  # this update's detection
    # this update's prediction, before any look corrects it: the merge hold keeps its
    # velocity (a reference, not a copy: the filter's update makes new arrays)
    predicted: np.ndarray | None = field(default=None, repr=False)


class Tracker:
    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._frames = 0
        self._last_timestamp: float | None = None

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        cfg = self.config
        self._frames += 1
        tracks = self._tracks
        if tracks:
            means = np.stack([t.mean for t in tracks])
            for i, t in enumerate(tracks):
                if t.lost:
                    means[i, 7] = 0  # a lost box should not keep growing or shrinking
            means, covs = kalman.predict(means, np.stack([t.cov for t in tracks]),
                                         seconds=self._step(timestamp))
            boxes = kalman.xyah_to_xyxy(means[:, :4])
            for t, m, c, b in zip(tracks, means, covs, boxes, strict=True):
                t.mean, t.cov, t.xyxy, t.matched, t.merged = m, c, b, False, False
                t.predicted = m

        high = detections.scores >= cfg.high_score
        high_idx = np.flatnonzero(high)
        low_idx = np.flatnonzero(~high)
        pool = [t for t in tracks if t.confirmed]
        unconfirmed = [t for t in tracks if not t.confirmed]

        # 1. confident detections vs tracked and lost tracks, by IoU
        pairs, pool_left, high_left = _match_iou(pool, detections, high_idx, cfg.match_iou)
        self._apply(pairs, detections, timestamp)
        # 2. weak detections vs tracks that were tracked until now (not the lost ones)
        active = [t for t in pool_left if not t.lost]
        pairs, _, _ = _match_iou(active, detections, low_idx, 0.5)
        self._apply(pairs, detections, timestamp)
        pool_left = [t for t in pool_left if not t.matched]
        # 2b. lost tracks vs the confident detections left, their predicted box widened by
        # the filter's own position uncertainty (it grows while a track is lost, so a person
        # who sped up or slowed down while hidden is found again); last, so that a lost
        # track never takes a box from a track followed until now
        lost = [t for t in pool_left if t.lost]
        pairs, _, high_left = _match_iou(lost, detections, high_left, cfg.match_iou,
                                         widen=True)
        self._apply(pairs, detections, timestamp)
        pool_left = [t for t in pool_left if not t.matched]
        self._hold_merged(pool, pool_left)
        # 3. tentative tracks need a second sighting to be confirmed
        pairs, dead, high_left = _match_iou(unconfirmed, detections, high_left, 0.3)
        self._apply(pairs, detections, timestamp)

        ended = []
        for t in pool_left:
            t.lost = True
        survivors = []
        for t in tracks:
            if t in dead:
                continue  # a tentative track never seen twice was noise: no id spent
            if t.lost and timestamp - t.last_seen > cfg.lost_seconds:
                ended.append(t.id)
                continue
            survivors.append(t)
        seen = [t.box for t in survivors if t.matched]
        for i in high_left:
            if detections.scores[i] >= cfg.new_track_score and \
                    not _same_person(detections.xyxy[i], seen):
                survivors.append(self._start(detections.xyxy[i], detections.scores[i], timestamp))
        self._tracks = survivors
        self._last_timestamp = timestamp

        shown = [t for t in survivors if t.confirmed and t.matched]
        if not shown:
            return Tracks(np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                          np.zeros(0, np.float32), np.zeros(0, bool), tuple(ended))
        return Tracks(
            ids=np.array([t.id for t in shown], np.int64),
            xyxy=np.stack([t.xyxy for t in shown]).astype(np.float32),
            scores=np.array([t.score for t in shown], np.float32),
            moving=np.array([t.moving for t in shown], bool),
            ended=tuple(ended),
            merged=np.array([t.merged for t in shown], bool),
        )

    def _hold_merged(self, pool: list[_Track], unmatched: list[_Track]) -> None:
        """A box that also covers an unmatched track's predicted box holds two people: the
        track matched to it keeps the velocity it had (its position follows the box), so
        when the box splits each prediction follows its own person; and it is flagged,
        since the box's foot point may be the other person's."""
        matched = [t for t in pool if t.matched]
        # Only a visitor (a track that has travelled) can be hidden behind someone: not a
        # fixture's track, nor a duplicate just born on the same person (at a door a
        # mannequin beside the line split a shopper's track in two, and holding the
        # shopper's box for the duplicate hid the exit; docs/accuracy.md).
        unmatched = [t for t in unmatched if t.moving]
        if not matched or not unmatched:
            return
        iou = box_iou(np.stack([t.box for t in matched]),
                      np.stack([t.xyxy for t in unmatched]))
        for t, overlaps in zip(matched, iou, strict=True):
            if overlaps.max() >= self.config.match_iou:
                t.merged = True
                t.mean = t.mean.copy()
                t.mean[4:] = t.predicted[4:]

    def _step(self, timestamp: float) -> float:
        """Seconds since the previous update (1/25 s for the first)."""
        if self._last_timestamp is None:
            return 0.04
        return max(timestamp - self._last_timestamp, 1e-3)

    def fastest(self) -> float:
        """The fastest person's speed (Kalman velocity, per second of media time) in box
        heights a second, among the tracks seen in the last update (a lost one may have
        left the view)."""
        speeds = [np.hypot(t.mean[4], t.mean[5]) / max(t.mean[3], 1.0)
                  for t in self._tracks if t.confirmed and not t.lost]
        return max(speeds, default=0.0)

    def flush(self) -> tuple[int, ...]:
        """End every track (the source ended); returns their ids."""
        ended = tuple(t.id for t in self._tracks if t.confirmed)
        self._tracks = []
        return ended

    def _start(self, xyxy: np.ndarray, score: float, timestamp: float) -> _Track:
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(xyxy.astype(np.float64)),
                                    self._step(timestamp))
        track = _Track(id=0, mean=mean, cov=cov, xyxy=kalman.xyah_to_xyxy(mean[:4]),
                       score=float(score),
                       origin=_foot(xyxy), origin_height=float(xyxy[3] - xyxy[1]),
                       last_seen=timestamp, matched=True,
                       confirmed=self._frames == 1)  # ByteTrack: first frame starts confirmed
        if track.confirmed:
            self._confirm(track)
        return track

    def _confirm(self, track: _Track) -> None:
        """Ids are given on confirmation, so one-frame noise spends none."""
        track.confirmed = True
        track.id = self._next_id
        self._next_id += 1

    def _apply(self, pairs: list[tuple[_Track, int]], detections: Detections,
               timestamp: float) -> None:
        if not pairs:
            return
        measured = detections.xyxy[[i for _, i in pairs]].astype(np.float64)
        means, covs = kalman.update(np.stack([t.mean for t, _ in pairs]),
                                    np.stack([t.cov for t, _ in pairs]),
                                    kalman.xyxy_to_xyah(measured))
        boxes = kalman.xyah_to_xyxy(means[:, :4])
        for (track, i), mean, cov, box, xyxy in zip(pairs, means, covs, boxes, measured,
                                                     strict=True):
            track.mean, track.cov, track.xyxy = mean, cov, box
            track.score = float(detections.scores[i])
            track.box = xyxy
            track.last_seen = timestamp
            if not track.confirmed:
                self._confirm(track)
            track.lost = False
            track.matched = True
            if not track.moving:
                # The smaller height: a box merged with a mannequin must not shrink the travel.
                height = max(min(xyxy[3] - xyxy[1], track.origin_height), 1.0)
                travel = np.hypot(*(_foot(xyxy) - track.origin)) / height
                track.moving = travel >= self.config.min_travel


def _foot(xyxy: np.ndarray) -> np.ndarray:
    return np.array([(xyxy[0] + xyxy[2]) / 2, xyxy[3]], np.float64)


def _assign(cost: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """Minimum-cost assignment, keeping only pairs whose cost is within the limit."""
    if cost.size == 0:
        return []
    gated = np.where(cost <= limit, cost, _BIG)
    rows, cols = linear_sum_assignment(gated)
    return [(r, c) for r, c in zip(rows, cols, strict=True) if gated[r, c] < _BIG]


def _match_iou(tracks: list[_Track], detections: Detections, det_idx: np.ndarray,
               min_iou: float, widen: bool = False
               ) -> tuple[list[tuple[_Track, int]], list[_Track], np.ndarray]:
    """Match by IoU; with `widen`, each track's box grows by one standard deviation of its
    predicted centre on each side (x and y)."""
    if not tracks or det_idx.size == 0:
        return [], list(tracks), det_idx
    boxes = np.stack([t.xyxy for t in tracks])
    if widen:
        spread = np.sqrt(np.stack([t.cov[[0, 1], [0, 1]] for t in tracks]))
        boxes = np.concatenate([boxes[:, :2] - spread, boxes[:, 2:] + spread], 1)
    cost = 1 - box_iou(boxes, detections.xyxy[det_idx].astype(np.float64))
    pairs = _assign(cost, 1 - min_iou)
    return _split(tracks, det_idx, pairs)


def _same_person(xyxy: np.ndarray, boxes: list[np.ndarray]) -> bool:
    """Is this box a second look at someone a track already has in this frame: the smaller
    of the two boxes inside the other, their bottoms level (a person's own box next to the
    box of them and a mannequin together)? Two people never stand on one spot: someone in
    front of another stands lower in the image, someone beside them outside their box."""
    xyxy = xyxy.astype(np.float64)
    for box in boxes:
        height = max(xyxy[3] - xyxy[1], box[3] - box[1])
        if abs(xyxy[3] - box[3]) > 0.1 * height:
            continue  # not standing on the same ground line
        lt, rb = np.maximum(xyxy[:2], box[:2]), np.minimum(xyxy[2:], box[2:])
        inter = float(np.prod(np.clip(rb - lt, 0, None)))
        smaller = min(np.prod(xyxy[2:] - xyxy[:2]), np.prod(box[2:] - box[:2]))
        if inter >= 0.5 * smaller:
            return True
    return False


def _split(tracks, det_idx, pairs):
    matched = [(tracks[r], int(det_idx[c])) for r, c in pairs]
    used_t = {r for r, _ in pairs}
    used_d = {c for _, c in pairs}
    tracks_left = [t for k, t in enumerate(tracks) if k not in used_t]
    det_left = np.array([d for k, d in enumerate(det_idx) if k not in used_d], np.int64)
    return matched, tracks_left, det_left
