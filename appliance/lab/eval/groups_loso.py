"""Leave-one-sequence-out check of companion rules (issue 15): choose every value on two
ETH/UCY sequences, score the third, and compare with the plain rule there.

`python -m appliance.lab.eval.groups_loso [TRAJECTORIES_DIR] [--sensitivity]` prints one
JSON line per family and sequence left out, then the drift family's values chosen on all
three (the shipped defaults); with --sensitivity (some 15 s more) also the drift family
with the distance or the standing speed fitted too. Two families:

- "drift", the shipped GroupDetector's own: both walking, within 1.4 m (the plain rule's
  distance, not fitted) for `together_seconds`, and the pair's offset, fitted against time
  over all the frames both walked, drifting slower than `max_drift` m/s. Each pair's
  seconds and drift come from the device's detector itself (`_PairRecorder`), so the
  figures are the detector's.
- "plain", the plain rule's own family (kept as the record of what did not generalise): a
  pair is together in a frame when closer than `distance` m with velocities (the detector's
  estimate, over 1.2 s) differing by less than `speed_difference` m/s; standing frames weigh
  `standing_weight`; a pair is linked when its weighted seconds together reach
  `together_seconds` and it was together for `share` of the time since it first was.

Groups are connected components of the linked pairs in both.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import deque
from itertools import combinations
from pathlib import Path

import numpy as np

from appliance.device.analytics.groups import DEFAULT_CONFIG, GroupConfig, GroupDetector
from appliance.lab.eval.groups import (
    _by_frame,
    _f1,
    frame_seconds,
    predict_groups,
    read_groups,
    read_obsmat,
)

SEQUENCES = ["eth_seq_eth", "eth_seq_hotel", "ucy_zara01"]
# together_seconds, max_drift (m/s); steps of a few annotation frames and 0.05 m/s.
DRIFT_GRID = list(itertools.product([2.0, 2.5, 3.0, 3.5, 4.0],
                                    [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, float("inf")]))
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
    return _components_f1(links, true_pairs, coexisting)


def _components_f1(links: dict[int, set[int]], true_pairs, coexisting) -> float:
    """Pairwise F1 of the connected components of ``links``."""
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


class _PairRecorder(GroupDetector):
    """The device's detector, noting each pair's seconds close and drift when decided."""

    def __init__(self, config: GroupConfig = DEFAULT_CONFIG):
        super().__init__(config)
        self.pairs: dict[tuple[int, int], tuple[float, float]] = {}

    def end_groups(self, ids):
        for track_id in ids:
            for partner in self._tracks[track_id].partners if track_id in self._tracks else ():
                key = (min(track_id, partner), max(track_id, partner))
                pair = self._pairs[key]
                self.pairs[key] = (pair.close, pair.drift())
        return super().end_groups(ids)


def drift_features(directory: Path, config: GroupConfig = DEFAULT_CONFIG, truth=None):
    """Per pair that walked in view together: (seconds within ``config.distance``, drift
    in m/s), from the device's detector; the true pairs; the pairs that ever shared a
    frame (``truth``: these two, when known)."""
    recorder = _PairRecorder(config)
    predict_groups(read_obsmat(directory / "obsmat.txt"), detector=recorder)
    true_pairs, coexisting = truth or pair_features(directory)[1:]
    return recorder.pairs, true_pairs, coexisting


def drift_f1(features, rule) -> float:
    pairs, true_pairs, coexisting = features
    together_seconds, max_drift = rule
    links: dict[int, set[int]] = {}
    for (a, b), (close, drift) in pairs.items():
        if close >= together_seconds and drift <= max_drift:
            links.setdefault(a, set()).add(b)
            links.setdefault(b, set()).add(a)
    return _components_f1(links, true_pairs, coexisting)


def leave_one_out(scores: dict[str, np.ndarray], grid: list) -> dict[str, tuple]:
    """Sequence left out -> (values chosen on the other two, their mean F1 there, F1 on
    the one left out). Ties go to the first in grid order."""
    result = {}
    for left_out in scores:
        fitted = np.mean([scores[s] for s in scores if s != left_out], 0)
        best = int(np.argmax(fitted))
        result[left_out] = (grid[best], float(fitted[best]), float(scores[left_out][best]))
    return result


def evaluate(directory: str | Path) -> list[dict]:
    """The JSON lines `main` prints (see the module's docstring)."""
    directory = Path(directory)
    plain_features = {s: pair_features(directory / s) for s in SEQUENCES}
    drift = {s: drift_features(directory / s, truth=plain_features[s][1:])
             for s in SEQUENCES}
    plain = {s: round(pairwise_f1(plain_features[s], PLAIN), 4) for s in SEQUENCES}
    lines = []
    families = [("drift", ("together_seconds", "max_drift"), DRIFT_GRID,
                 {s: np.array([drift_f1(drift[s], rule) for rule in DRIFT_GRID])
                  for s in SEQUENCES}),
                ("plain", ("distance", "speed_difference", "together_seconds", "share",
                           "standing_weight"), GRID,
                 {s: np.array([pairwise_f1(plain_features[s], rule) for rule in GRID])
                  for s in SEQUENCES})]
    for family, names, grid, scores in families:
        for left_out, (chosen, fitted, held_out) in leave_one_out(scores, grid).items():
            lines.append({"family": family, "left_out": left_out,
                          "chosen": dict(zip(names, chosen, strict=True)),
                          "f1_fitted": round(fitted, 4), "f1_left_out": round(held_out, 4),
                          "plain_left_out": plain[left_out]})
    scores = families[0][3]
    best = int(np.argmax(np.mean([scores[s] for s in SEQUENCES], 0)))
    lines.append({"family": "drift", "chosen_on_all": dict(zip(
        ("together_seconds", "max_drift"), DRIFT_GRID[best], strict=True)),
        "f1": {s: round(float(scores[s][best]), 4) for s in SEQUENCES}})
    return lines


# Values the drift family does not fit, and what fitting one of them too would try.
UNFITTED = {"distance": [1.0, 1.2, 1.4, 1.6, 1.8], "still_speed": [0.2, 0.3, 0.4, 0.5, 0.6]}


def sensitivity(directory: str | Path) -> list[dict]:
    """The drift family's leave-one-out with one more value fitted (each of UNFITTED in
    turn, the first in grid order winning ties): what fixing it is worth."""
    directory = Path(directory)
    truth = {s: pair_features(directory / s)[1:] for s in SEQUENCES}
    lines = []
    for name, values in UNFITTED.items():
        grid = [(value, *rule) for value in values for rule in DRIFT_GRID]
        features = {(value, s): drift_features(directory / s,
                                               GroupConfig(**{name: value}), truth[s])
                    for value in values for s in SEQUENCES}
        scores = {s: np.array([drift_f1(features[rule[0], s], rule[1:]) for rule in grid])
                  for s in SEQUENCES}
        for left_out, (chosen, fitted, held_out) in leave_one_out(scores, grid).items():
            lines.append({"family": f"drift + {name}", "left_out": left_out,
                          "chosen": dict(zip((name, "together_seconds", "max_drift"),
                                             chosen, strict=True)),
                          "f1_fitted": round(fitted, 4), "f1_left_out": round(held_out, 4)})
    return lines


def main(argv: list[str]) -> None:
    arguments = [a for a in argv if a != "--sensitivity"]
    directory = arguments[0] if arguments else "../shared/data/trajectories"
    for line in evaluate(directory) + (sensitivity(directory) if "--sensitivity" in argv
                                       else []):
        print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1:])
