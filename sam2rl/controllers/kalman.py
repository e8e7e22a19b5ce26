"""A batched constant-velocity Kalman filter on boxes (x, y, a, h), as SAMURAI's `kalman_filter.py`.

SAMURAI (yangchris11/samurai, `sam2/sam2/utils/kalman_filter.py`) keeps the DeepSORT/ByteTrack
filter: 8-d state (x, y, a, h, vx, vy, va, vh) with box centre (x, y), aspect ratio a = w/h and
height h; noise proportional to the height with weights 1/20 (position) and 1/160 (velocity).
Here the same equations run on [B, 8] means and [B, 8, 8] covariances in float64.
"""

from __future__ import annotations

import torch

__all__ = ["BoxKalmanFilter", "xyah_to_xyxy", "xyxy_to_xyah"]


def xyxy_to_xyah(box: torch.Tensor) -> torch.Tensor:
    """[..., 4] (x1, y1, x2, y2) -> (xc, yc, w/h, h); h = 0 is taken as 1, as SAMURAI does."""
    x1, y1, x2, y2 = box.unbind(-1)
    height = y2 - y1
    height = torch.where(height == 0, torch.ones_like(height), height)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / height, height], dim=-1)


def xyah_to_xyxy(box: torch.Tensor) -> torch.Tensor:
    """[..., 4] (xc, yc, w/h, h) -> (x1, y1, x2, y2), the inverse of `xyxy_to_xyah`."""
    xc, yc, aspect, height = box.unbind(-1)
    half_w, half_h = aspect * height / 2, height / 2
    return torch.stack([xc - half_w, yc - half_h, xc + half_w, yc + half_h], dim=-1)


class BoxKalmanFilter:
    """`initiate`, `predict`, `project`, `update` of SAMURAI's `KalmanFilter`, batched."""

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160,
                 dtype: torch.dtype = torch.float64):
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity
        self.dtype = dtype
        motion = torch.eye(8, dtype=dtype)
        motion[:4, 4:] = torch.eye(4, dtype=dtype)  # dt = 1
        self._motion = motion
        self._update = torch.eye(4, 8, dtype=dtype)

    def _mats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return self._motion.to(device), self._update.to(device)

    def initiate(self, measurement: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 4] xyah -> mean [B, 8] (zero velocity), covariance [B, 8, 8]."""
        measurement = measurement.to(self.dtype)
        mean = torch.cat([measurement, torch.zeros_like(measurement)], dim=-1)
        h = measurement[:, 3]
        pos, vel = 2 * self.std_weight_position * h, 10 * self.std_weight_velocity * h
        std = torch.stack([pos, pos, torch.full_like(h, 1e-2), pos, vel, vel, torch.full_like(h, 1e-5), vel], dim=-1)
        return mean, torch.diag_embed(std.square())

    def predict(self, mean: torch.Tensor, covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        motion, _ = self._mats(mean.device)
        h = mean[:, 3]
        pos, vel = self.std_weight_position * h, self.std_weight_velocity * h
        std = torch.stack([pos, pos, torch.full_like(h, 1e-2), pos, vel, vel, torch.full_like(h, 1e-5), vel], dim=-1)
        mean = mean @ motion.T
        covariance = motion @ covariance @ motion.T + torch.diag_embed(std.square())
        return mean, covariance

    def project(self, mean: torch.Tensor, covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, update = self._mats(mean.device)
        h = mean[:, 3]
        pos = self.std_weight_position * h
        std = torch.stack([pos, pos, torch.full_like(h, 1e-1), pos], dim=-1)
        return mean @ update.T, update @ covariance @ update.T + torch.diag_embed(std.square())

    def update(self, mean: torch.Tensor, covariance: torch.Tensor,
               measurement: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Correction step with [B, 4] xyah measurements (Cholesky solve, as the original)."""
        _, update = self._mats(mean.device)
        projected_mean, projected_cov = self.project(mean, covariance)
        chol = torch.linalg.cholesky(projected_cov)
        # kalman_gain = (P H^T) S^-1, i.e. solve S K^T = (P H^T)^T
        gain = torch.cholesky_solve((covariance @ update.T).transpose(1, 2), chol).transpose(1, 2)  # [B, 8, 4]
        innovation = measurement.to(self.dtype) - projected_mean
        new_mean = mean + (gain @ innovation[..., None])[..., 0]
        new_covariance = covariance - gain @ projected_cov @ gain.transpose(1, 2)
        return new_mean, new_covariance
