"""Companion-detection accuracy on annotated trajectories (ETH/UCY ``obsmat.txt`` + ``groups.txt``).

``obsmat.txt`` rows are ``frame ped_id x z y vx vz vy`` in metres (z unused). Annotation is at
2.5 fps, so the usual step between a person's consecutive frame numbers is 0.4 s (6 video
frames in ETH "eth", 10 in "hotel" and UCY). ``groups.txt`` lists one group of ids per line
(duplicate lines count once; a few people are on two lines, the annotators' subgroups), and
anyone on no line is alone. A pair is positive when both people are on one line.

Every frame goes through :class:`GroupDetector` in time order, as on the appliance; a track
ends after its last annotated frame. Pairs are scored only if both people were present in at
least one common frame (others could never be seen together).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np

from appliance.device.analytics.groups import DEFAULT_CONFIG, GroupConfig, GroupDetector
from appliance.errors import ApplianceError

ANNOTATION_SECONDS = 0.4  # ETH and UCY (as resampled by OpenTraj) are annotated at 2.5 fps


def read_obsmat(path: Path) -> np.ndarray:
    """Rows of ``frame, id, x, y`` (metres) from an obsmat file."""
    if not path.is_file():
        raise ApplianceError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) < 5 or not np.isfinite(values[:5]).all():
            raise ApplianceError(f"{path}: line {number}: expected 'frame id x z y ...' numbers, "
                                 f"got {line.strip()[:60]!r}")
        rows.append((values[0], values[1], values[2], values[4]))
    if not rows:
        raise ApplianceError(f"{path}: empty file")
    return np.array(rows)


def read_groups(path: Path) -> list[frozenset[int]]:
    """Groups of two or more from a groups file: one per line, duplicate lines once."""
    if not path.is_file():
        raise ApplianceError(f"{path}: no such file")
    groups: dict[frozenset[int], None] = {}  # ordered set
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            group = frozenset(int(float(v)) for v in line.split())
        except ValueError:
            raise ApplianceError(f"{path}: line {number}: expected person ids, "
                                 f"got {line.strip()[:60]!r}") from None
        if len(group) >= 2:
            groups[group] = None
    return list(groups)


def frame_seconds(data: np.ndarray) -> float:
    """Seconds per frame number: the most common step between a person's frames is 0.4 s."""
    steps: Counter = Counter()
    for person in np.unique(data[:, 1]):
        steps.update(np.diff(np.sort(data[data[:, 1] == person, 0])).tolist())
    steps.pop(0.0, None)
    return ANNOTATION_SECONDS / steps.most_common(1)[0][0] if steps else ANNOTATION_SECONDS


def _by_frame(data: np.ndarray):
    """Yield ``(frame, ids, positions)`` in time order."""
    data = data[np.argsort(data[:, 0], kind="stable")]
    frames, starts = np.unique(data[:, 0], return_index=True)
    for frame, start, stop in zip(frames, starts, [*starts[1:], len(data)], strict=True):
        yield float(frame), data[start:stop, 1].astype(np.int64), data[start:stop, 2:4]


def predict_groups(data: np.ndarray, config: GroupConfig = DEFAULT_CONFIG,
                   detector: GroupDetector | None = None) -> list[frozenset[int]]:
    """Feed ``frame, id, x, y`` rows through the detector (``config``'s, unless one is
    given) as the appliance would (a track ends after its last frame); return the partition
    it reports."""
    seconds = frame_seconds(data)
    last_frame: dict[int, float] = {}
    for frame, person in zip(data[:, 0].tolist(), data[:, 1].astype(np.int64).tolist(),
                             strict=True):
        last_frame[person] = max(frame, last_frame.get(person, frame))
    detector = GroupDetector(config) if detector is None else detector
    groups: list[frozenset[int]] = []
    for frame, ids, positions in _by_frame(data):
        detector.update(frame * seconds, ids, positions)
        groups += detector.end_groups([i for i in ids.tolist() if last_frame[i] == frame])
    return groups + detector.flush_groups()


def _f1(tp: int, predicted: int, true: int) -> tuple[float, float, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate_groups(directory: Path, config: GroupConfig = DEFAULT_CONFIG) -> dict:
    """Pairwise and exact-group accuracy of the detector on one annotated sequence."""
    directory = Path(directory)
    data = read_obsmat(directory / "obsmat.txt")
    groups = read_groups(directory / "groups.txt")
    present = {int(i) for i in data[:, 1]}
    truth = list(dict.fromkeys(g & present for g in groups if len(g & present) >= 2))
    predicted = [g for g in predict_groups(data, config) if len(g) >= 2]

    # Pairs that share at least one frame: the only ones anyone could judge.
    coexisting: set[tuple[int, int]] = set()
    for _, ids, _ in _by_frame(data):
        coexisting.update(combinations(sorted(set(ids.tolist())), 2))

    def pairs(groups: list[frozenset[int]]) -> set[tuple[int, int]]:
        return {p for g in groups for p in combinations(sorted(g), 2)} & coexisting

    true_pairs, predicted_pairs = pairs(truth), pairs(predicted)
    precision, recall, f1 = _f1(len(true_pairs & predicted_pairs), len(predicted_pairs),
                                len(true_pairs))
    *_, group_f1 = _f1(len(set(truth) & set(predicted)), len(predicted), len(truth))
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "group_f1": round(group_f1, 4), "pairs_true": len(true_pairs),
            "pairs_predicted": len(predicted_pairs), "people": len(present),
            "groups_true": len(truth), "groups_predicted": len(predicted)}
