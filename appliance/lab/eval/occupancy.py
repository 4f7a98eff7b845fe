"""Occupancy accuracy on still frames with a people count per frame (the Mall data set).

Each frame goes through the person detector the way a camera's frames do (the detection
area: the ROI mask's bounding box split into overlapping tiles, boxes merged), and a person
counts when their score reaches `count_score` and their head point lies inside the ROI mask.
The head point is the box's top centre moved down a tenth of the box height: where the head
of a standing person is, and still the head when the lower body is hidden by the crowd, which
is what count ground truth marks (the Mall data set's are head points); the foot point of a
hidden body would be a guess.

The truth file is CSV with a header naming `frame` and `count` columns; `frame` is the
number in an image's file name (`seq_000001.jpg` is frame 1) or the file name itself.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import cv2
import numpy as np

from appliance.device.detect.area import DetectionArea
from appliance.device.detect.detection_config import DetectionConfig
from appliance.device.detect.detections import Detections
from appliance.device.detect.person import PersonDetector, build_detector
from appliance.device.inference.backend import build_backend
from appliance.device.inference.models import load_manifest, verified_path
from appliance.errors import ApplianceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
HEAD = 0.1  # the head point: this share of the box height below the box's top

# Chosen on the first 500 Mall frames, checked on the last 500 and on MOT17 (docs/occupancy.md).
TILES = (2, 2)
COUNT_SCORE = 0.1


def frame_files(frames_dir: Path) -> list[Path]:
    if not frames_dir.is_dir():
        raise ApplianceError(f"{frames_dir}: no such directory")
    files = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ApplianceError(f"{frames_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_counts(truth: Path) -> dict[str, int]:
    """`frame,count` rows -> {frame: count}; the frame as written (a number or a name)."""
    try:
        lines = truth.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ApplianceError(f"{truth}: cannot read it: {reason}") from None
    rows = csv.reader(lines)
    header = [name.strip().lower() for name in next(rows, [])]
    if "frame" not in header or "count" not in header:
        raise ApplianceError(f"{truth}: line 1: expected a header with columns frame,count")
    frame_at, count_at = header.index("frame"), header.index("count")
    counts: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            frame, count = row[frame_at].strip(), int(row[count_at])
        except (IndexError, ValueError):
            raise ApplianceError(f"{truth}: line {number}: expected a frame and a whole count, "
                                 f"got {','.join(row)!r}") from None
        key = str(int(frame)) if frame.isdigit() else frame  # 0001 is frame 1
        problem = ("no frame" if not frame else "a negative count" if count < 0 else
                   f"frame {frame} again" if key in counts else None)
        if problem:
            raise ApplianceError(f"{truth}: line {number}: {problem}")
        counts[key] = count
    return counts


def truth_of(path: Path, counts: dict[str, int], truth: Path) -> int:
    """The count for one image: by its file name, else by the last number in it."""
    digits = re.findall(r"\d+", path.stem)
    for key in (path.name, path.stem, str(int(digits[-1])) if digits else None):
        if key in counts:
            return counts[key]
    raise ApplianceError(f"{truth}: no count for frame {path.name}")


def read_mask(roi_mask: Path) -> np.ndarray:
    mask = cv2.imread(str(roi_mask), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ApplianceError(f"{roi_mask}: not a readable image")
    if not mask.any():
        raise ApplianceError(f"{roi_mask}: the mask is empty (no pixel above 0)")
    return mask > 0


def count_people(detections: Detections, mask: np.ndarray, count_score: float) -> int:
    """People whose score reaches count_score and whose head point is inside the mask."""
    xyxy = detections.xyxy[detections.scores >= count_score]
    height, width = mask.shape
    x = np.clip((xyxy[:, 0] + xyxy[:, 2]) / 2, 0, width - 1).astype(int)
    y = np.clip(xyxy[:, 1] + HEAD * (xyxy[:, 3] - xyxy[:, 1]), 0, height - 1).astype(int)
    return int(mask[y, x].sum())


def load_person_detector(models_dir: Path, name: str, threads: int, nms_iou: float,
                         min_score: float) -> PersonDetector:
    manifest = load_manifest()
    if name not in manifest:
        raise ApplianceError(f"unknown detector {name!r}; known: {', '.join(manifest)}")
    backend = build_backend(verified_path(models_dir, manifest[name]), threads)
    return build_detector(name, backend, min_score, nms_iou)


def evaluate_occupancy(frames_dir: Path, truth: Path, roi_mask: Path | None, models_dir: Path,
                       detector: str = "yolox_nano", tiles: tuple[int, int] = TILES,
                       count_score: float = COUNT_SCORE, every: int = 1, threads: int = 2,
                       nms_iou: float = DetectionConfig.nms_iou,
                       min_score: float = DetectionConfig.min_score) -> dict:
    """Per-frame count error of the detector over frames_dir (every `every`-th image)."""
    if every < 1:
        raise ApplianceError(f"every {every}: expected 1 or more")
    if len(tiles) != 2 or not all(1 <= n <= 4 for n in tiles):
        raise ApplianceError(f"tiles {list(tiles)}: expected [columns, rows] of 1-4 each")
    files = frame_files(frames_dir)[::every]
    counts = read_counts(truth)
    expected = [truth_of(path, counts, truth) for path in files]
    mask = read_mask(roi_mask) if roi_mask is not None else None
    person = load_person_detector(models_dir, detector, threads, nms_iou, min_score)
    areas: dict[tuple[int, int], tuple[DetectionArea, np.ndarray]] = {}
    predicted, seconds = [], 0.0
    for path in files:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ApplianceError(f"{path}: not a readable image")
        started = time.perf_counter()
        height, width = frame.shape[:2]
        if (width, height) not in areas:
            areas[(width, height)] = _area(mask, tiles, width, height, nms_iou)
        area, frame_mask = areas[(width, height)]
        found = area.merge([(person.detect(frame[y1:y2, x1:x2]), (x1, y1))
                            for x1, y1, x2, y2 in area.windows])
        person.forget()
        del frame
        predicted.append(count_people(found, frame_mask, count_score))
        seconds += time.perf_counter() - started
    error = np.array(predicted, float) - np.array(expected, float)
    return {
        "frames": len(files),
        "mae": round(float(np.abs(error).mean()), 3),
        "bias": round(float(error.mean()), 3),
        "fps": round(len(files) / max(seconds, 1e-9), 2),
        "mean_count": round(float(np.mean(expected)), 3),
        "settings": {"detector": detector, "tiles": list(tiles), "count_score": count_score,
                     "min_score": min_score, "nms_iou": nms_iou, "threads": threads,
                     "every": every, "roi_mask": str(roi_mask) if roi_mask else None},
    }


def _area(mask: np.ndarray | None, tiles: tuple[int, int], width: int, height: int,
          nms_iou: float) -> tuple[DetectionArea, np.ndarray]:
    """The detection area over the mask's bounding box, and the mask at this frame size."""
    if mask is None:
        return DetectionArea(None, tiles, width, height, nms_iou), np.ones((height, width), bool)
    if mask.shape != (height, width):
        mask = cv2.resize(mask.astype(np.uint8), (width, height),
                          interpolation=cv2.INTER_NEAREST) > 0
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    box = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
    return DetectionArea(box, tiles, width, height, nms_iou), mask
