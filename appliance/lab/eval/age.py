"""Age and gender accuracy on UTKFace-style crops: `{age}_{gender}_..._.jpg`, gender 0 male,
1 female. Each crop goes through what a camera's face goes through: the face detector on
the image (with a border around it, as a head region has), then the age model on the
detected box. `face_size` first shrinks the crop to that many pixels (area interpolation)
and compresses it as JPEG at quality 40 in memory, as a shop camera sees a face."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np

from appliance.errors import ApplianceError

NAME = re.compile(r"^(\d+)_([01])_")
DEFAULT_BANDS = (0, 13, 18, 25, 35, 45, 55, 65)  # lower bounds: 0-12, 13-17, ..., 65+


def band_of(age: float, bounds=DEFAULT_BANDS) -> int:
    return int(np.searchsorted(bounds, age, side="right") - 1)


def cctv(image: np.ndarray, size: int) -> np.ndarray:
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 40])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def labelled_faces(directory: Path, limit: int | None = None) -> list[tuple[Path, int, int]]:
    if not directory.is_dir():
        raise ApplianceError(f"{directory}: no such directory")
    found = []
    for path in sorted(directory.iterdir()):
        match = NAME.match(path.name)
        if match and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            found.append((path, int(match.group(1)), int(match.group(2))))
    if not found:
        raise ApplianceError(f"{directory}: no labelled face crops ({{age}}_{{gender}}_*.jpg)")
    return found[:limit] if limit else found


def evaluate(directory: Path, estimator, face_size: int | None = None,
             limit: int | None = None) -> dict:
    """`estimator(image) -> AgeGender | None` runs detection and the age model."""
    errors, adult_errors, bands_right, bands_near, genders_right = [], [], 0, 0, 0
    faces = labelled_faces(directory, limit)
    seconds = 0.0
    for path, age, gender in faces:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ApplianceError(f"{path}: not a readable image")
        if face_size:
            image = cctv(image, face_size)
        started = time.perf_counter()
        estimate = estimator(image)
        seconds += time.perf_counter() - started
        if estimate is None:
            continue
        error = abs(estimate.age - age)
        errors.append(error)
        if age >= 18:
            adult_errors.append(error)
        truth_band, band = band_of(age), band_of(estimate.age)
        bands_right += band == truth_band
        bands_near += abs(band - truth_band) <= 1
        genders_right += (estimate.female >= 0.5) == (gender == 1)
    n = len(errors)
    return {
        "faces": len(faces),
        "faces_found": round(n / len(faces), 4),
        "mae": round(float(np.mean(errors)), 3) if n else None,
        "mae_adults": round(float(np.mean(adult_errors)), 3) if adult_errors else None,
        "band_accuracy": round(bands_right / n, 4) if n else None,
        "band_within_one": round(bands_near / n, 4) if n else None,
        "gender_accuracy": round(genders_right / n, 4) if n else None,
        "ms_per_face": round(1000 * seconds / len(faces), 2),
    }
