"""Track ids per true person, before and after linking a broken track's fragments into one
person (appliance/device/analytics/people.py), on MOTChallenge/CVML ground truth.

The device's tracker runs on public detections; `People` links its tracks as the device
does. A true person's ids are the distinct track (or person) ids matched to their box at
IoU >= 0.5 in any frame; "moving" counts the ids that ever moved, which is what the
visitor figures count. A link is wrong when the two tracks it joins were matched to
different true people only.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import numpy as np

from appliance.device.analytics.people import People
from appliance.device.detect.detections import Detections, box_iou
from appliance.lab.eval.mot import Sequence


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)


def ids_per_person(truth: Sequence, detections: Sequence, fps: float, tracker) -> dict:
    people = People()
    track_ids, person_ids = defaultdict(set), defaultdict(set)
    truth_of_track, person_of_track = defaultdict(set), {}
    moving_tracks, moving_people = set(), set()
    for frame in range(min(detections), max(detections) + 1):
        _, xywh, scores = detections.get(frame, (None, np.zeros((0, 4)), np.zeros(0)))
        tracks = tracker.update(Detections(_xyxy(xywh), scores.astype(np.float32)), frame / fps)
        linked = people.update(tracks, frame / fps)
        moving_tracks |= set(tracks.ids[tracks.moving].tolist())
        moving_people |= set(linked.ids[linked.moving].tolist())
        person_of_track.update(zip(tracks.ids.tolist(), linked.ids.tolist(), strict=True))
        if frame not in truth or not len(tracks):
            continue
        true_ids, true_xywh, _ = truth[frame]
        iou = box_iou(_xyxy(true_xywh), tracks.xyxy)
        for row, true_id in enumerate(true_ids.tolist()):
            best = int(iou[row].argmax())
            if iou[row, best] >= 0.5:
                track_ids[true_id].add(int(tracks.ids[best]))
                truth_of_track[int(tracks.ids[best])].add(true_id)
                person_ids[true_id].add(int(linked.ids[best]))
    tracks_of = defaultdict(list)
    for track_id, person in sorted(person_of_track.items()):
        tracks_of[person].append(track_id)
    joined = [pair for tracks in tracks_of.values() for pair in pairwise(tracks)]
    wrong = sum(1 for a, b in joined if truth_of_track[a] and truth_of_track[b] and
                not truth_of_track[a] & truth_of_track[b])
    true_people = len({i for ids, _, _ in truth.values() for i in ids.tolist()})
    matched = max(len(track_ids), 1)
    return {
        "true_people": true_people,
        "matched_people": len(track_ids),
        "track_ids_per_person": round(sum(map(len, track_ids.values())) / matched, 2),
        "person_ids_per_person": round(sum(map(len, person_ids.values())) / matched, 2),
        "moving_track_ids": len(moving_tracks),
        "moving_people": len(moving_people),
        "links": len(joined),
        "wrong_links": wrong,
    }
