"""Constant-velocity Kalman filter on (centre x, centre y, aspect, height), vectorised.

The state and noise model are ByteTrack's (after SORT/DeepSORT): noise scales with the box
height, so near and far people are treated alike. All tracks predict in one numpy call.
Velocities are per second of media time (not per frame), so they mean the same at 25 fps
and at 5 fps, and a prediction steps by the real time between looks.
"""

from __future__ import annotations

import numpy as np

_POS = 1 / 20  # position noise, as a share of the box height
_VEL = 25 / 160  # velocity noise (per second), as a share of the box height, per 1/25 s


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    w = xyxy[..., 2] - xyxy[..., 0]
    h = np.maximum(xyxy[..., 3] - xyxy[..., 1], 1e-3)
    return np.stack([xyxy[..., 0] + w / 2, xyxy[..., 1] + h / 2, w / h, h], -1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    h = xyah[..., 3]
    w = xyah[..., 2] * h
    return np.stack([xyah[..., 0] - w / 2, xyah[..., 1] - h / 2,
                     xyah[..., 0] + w / 2, xyah[..., 1] + h / 2], -1)


def initiate(xyah: np.ndarray, seconds: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """A new track's state; `seconds` between looks, so the velocity's spread is
    ByteTrack's per-frame one at the camera's rate (the same filter at any fixed rate)."""
    mean = np.concatenate([xyah, np.zeros(4)])
    h = xyah[3]
    vel = 10 * _VEL * h / (25 * seconds)
    std = np.array([2 * _POS * h, 2 * _POS * h, 1e-2, 2 * _POS * h, vel, vel, 1e-5, vel])
    return mean, np.diag(std**2)


def predict(means: np.ndarray, covs: np.ndarray, seconds: float = 0.04
            ) -> tuple[np.ndarray, np.ndarray]:
    """Predict (N, 8) means and (N, 8, 8) covariances `seconds` of media time ahead.

    ByteTrack's noise was set per frame at 25-30 fps; per second of media time that is one
    velocity noise for any step of 1/25 s or longer (a 7 fps camera, a rate cap: the same
    filter as ByteTrack's with its velocity in units of the step).
    """
    if len(means) == 0:
        return means, covs
    h = means[:, 3]
    vel = _VEL * max(1.0, 1 / (25 * seconds)) * h
    std = np.stack([_POS * h, _POS * h, np.full_like(h, 1e-2), _POS * h,
                    vel, vel, np.full_like(h, 1e-5), vel], 1)
    motion = np.zeros_like(covs)
    idx = np.arange(8)
    motion[:, idx, idx] = std**2
    transition = np.eye(8)
    transition[:4, 4:] = seconds * np.eye(4)
    means = means @ transition.T
    covs = transition @ covs @ transition.T + motion
    return means, covs


def update(means: np.ndarray, covs: np.ndarray, xyahs: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Correct (N, 8) means and (N, 8, 8) covariances with (N, 4) measured boxes."""
    h = means[:, 3]
    noise = np.stack([_POS * h, _POS * h, np.full_like(h, 1e-1), _POS * h], 1) ** 2
    projected = covs[:, :4, :4] + noise[:, :, None] * np.eye(4)  # H P H' + R
    # Gain P H' (H P H' + R)^-1, from one batched solve (P and H P H' + R are symmetric).
    gain = np.linalg.solve(projected, covs[:, :4, :]).transpose(0, 2, 1)
    means = means + (gain @ (xyahs - means[:, :4])[:, :, None])[:, :, 0]
    covs = covs - gain @ projected @ gain.transpose(0, 2, 1)
    return means, covs
