"""Leave-one-sequence-out check of companion rules (issue 15): choose every value on two
ETH/UCY sequences, score the third, and compare with the plain rule there.

`python -m appliance.lab.eval.groups_loso [TRAJECTORIES_DIR]` prints one JSON line per
sequence left out. The rule family is the plain rule's: a pair is together in a frame when
closer than `distance` m with velocities (the detector's estimate, over 1.2 s) differing by
less than `speed_difference` m/s; standing frames weigh `standing_weight`; a pair is linked
when its weighted seconds together reach `together_seconds` and it was together for
`share` of the time since it first was; groups are connected components. This is an
evaluation only: the device's GroupDetector is unchanged (see docs/accuracy.md).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import deque
from itertools import combinations
from pathlib import Path

import numpy as np

from appliance.lab.eval.groups import _by_frame, _f1, frame_seconds, read_groups, read_obsmat

SEQUENCES = ["eth_seq_eth", "eth_seq_hotel", "ucy_zara01"]
PLAIN = (1.4, 0.45, 4.0, 0.0, 1.0)  # distance, speed difference, seconds, share, standing
GRID = list(itertools.product([1.2, 1.4, 1.6, 2.0], [0.3, 0.45, 0.6], [2.0, 3.0, 4.0, 6.0],
                              [0.0, 0.5], [0.05, 1.0]))
VELOCITY_WINDOW, HISTORY, STILL_SPEED = 1.2, 2.0, 0.4


def pair_features(directory: Path):
    """Per pair of people present together: rows of (time, distance, speed difference,
    both standing); the true pairs; the pairs that ever shared a frame."""
    data = read_obsmat(directory / "obsmat.txt")
    seconds, history, rows, coexisting = frame_seconds(data), {}, {}, set()
    for frame, ids, positions in _by_frame(data):
        t, velocities = frame * seconds, []
        for person, point in zip(ids.tolist(), positions, strict=True):
            past = history.setdefault(person, deque())
            past.append((t, point.copy()))
            while t - past[0][0] > HISTORY:
                past.popleft()
            k = len(past) - 1
            while k > 0 and t - past[k][0] < VELOCITY_WINDOW:
                k -= 1
            elapsed = t - past[k][0]
            velocities.append((point - past[k][1]) / elapsed if elapsed >= VELOCITY_WINDOW / 2
                              else np.full(2, np.nan))
        people = ids.tolist()
        for a, b in combinations(range(len(people)), 2):
            key = (min(people[a], people[b]), max(people[a], people[b]))
            coexisting.add(key)
            still = np.hypot(*velocities[a]) < STILL_SPEED and \
                np.hypot(*velocities[b]) < STILL_SPEED
            rows.setdefault(key, []).append((t, np.hypot(*(positions[a] - positions[b])),
                                             np.hypot(*(velocities[a] - velocities[b])), still))
    present = {int(i) for i in data[:, 1]}
    truth = [g & present for g in read_groups(directory / "groups.txt") if len(g & present) >= 2]
    true_pairs = {p for g in truth for p in combinations(sorted(g), 2)} & coexisting
    return {k: np.array(v, float) for k, v in rows.items()}, true_pairs, coexisting


def pairwise_f1(features, rule) -> float:
    rows, true_pairs, coexisting = features
    distance, speed_difference, together_seconds, share, standing = rule
    links: dict[int, set[int]] = {}
    for (a, b), r in rows.items():
        together = (r[:, 1] <= distance) & (r[:, 2] <= speed_difference)  # NaN: not
        if not together.any():
            continue
        first = int(np.argmax(together))
        step = np.minimum(np.diff(r[:, 0], prepend=r[0, 0] - 0.4), 1.0)[first:]
        weight = np.where(r[first:, 3] > 0, standing, 1.0)
        evidence = (step * together[first:] * weight).sum()
        if evidence >= together_seconds and \
                (step * together[first:]).sum() >= share * step.sum():
            links.setdefault(a, set()).add(b)
            links.setdefault(b, set()).add(a)
    predicted, seen = set(), set()
    for start in links:
        if start in seen:
            continue
        group, todo = {start}, [start]
        while todo:
            for other in links[todo.pop()] - group:
                group.add(other)
                todo.append(other)
        seen |= group
        predicted |= set(combinations(sorted(group), 2))
    predicted &= coexisting
    return _f1(len(predicted & true_pairs), len(predicted), len(true_pairs))[2]


def main(directory: str) -> None:
    features = {s: pair_features(Path(directory) / s) for s in SEQUENCES}
    scores = {s: np.array([pairwise_f1(features[s], rule) for rule in GRID]) for s in SEQUENCES}
    for left_out in SEQUENCES:
        fitted = np.mean([scores[s] for s in SEQUENCES if s != left_out], 0)
        best = int(np.argmax(fitted))
        print(json.dumps({"left_out": left_out, "chosen": dict(zip(
            ("distance", "speed_difference", "together_seconds", "share", "standing_weight"),
            GRID[best], strict=True)), "f1_fitted": round(float(fitted[best]), 4),
            "f1_left_out": round(float(scores[left_out][best]), 4),
            "plain_left_out": round(pairwise_f1(features[left_out], PLAIN), 4)}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/trajectories")
