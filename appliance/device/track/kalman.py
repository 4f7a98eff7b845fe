"""Constant-velocity Kalman filter on (centre x, centre y, aspect, height), vectorised.

The state and noise model are ByteTrack's (after SORT/DeepSORT): noise scales with the box
height, so near and far people are treated alike. All tracks predict in one numpy call.
"""

from __future__ import annotations

import numpy as np

_POS = 1 / 20  # position noise, as a share of the box height
_VEL = 1 / 160  # velocity noise per 1/25 s, as a share of the box height

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    w = xyxy[..., 2] - xyxy[..., 0]
    h = np.maximum(xyxy[..., 3] - xyxy[..., 1], 1e-3)
    return np.stack([xyxy[..., 0] + w / 2, xyxy[..., 1] + h / 2, w / h, h], -1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    h = xyah[..., 3]
    w = xyah[..., 2] * h
    return np.stack([xyah[..., 0] - w / 2, xyah[..., 1] - h / 2,
                     xyah[..., 0] + w / 2, xyah[..., 1] + h / 2], -1)


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.concatenate([xyah, np.zeros(4)])
    h = xyah[3]
    std = np.array([2 * _POS * h, 2 * _POS * h, 1e-2, 2 * _POS * h,
                    10 * _VEL * h, 10 * _VEL * h, 1e-5, 10 * _VEL * h])
    return mean, np.diag(std**2)


def predict(means: np.ndarray, covs: np.ndarray, steps_per_25fps: float = 1.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Predict (N, 8) means and (N, 8, 8) covariances one step ahead.

    ByteTrack's noise was set for 25-30 fps; a longer step (a 7 fps camera, a rate cap)
    lets velocity change more between looks, so its noise grows with the step length.
    """
    if len(means) == 0:
        return means, covs
    h = means[:, 3]
    vel = _VEL * steps_per_25fps * h
    std = np.stack([_POS * h, _POS * h, np.full_like(h, 1e-2), _POS * h,
                    vel, vel, np.full_like(h, 1e-5), vel], 1)
    motion = np.zeros_like(covs)
    idx = np.arange(8)
    motion[:, idx, idx] = std**2
    means = means @ _F.T
    covs = _F @ covs @ _F.T + motion
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
