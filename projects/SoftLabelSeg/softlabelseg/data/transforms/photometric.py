"""Photometric jitter of a uint8 RGB image (brightness, contrast, saturation, hue); the label is untouched."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PhotometricDistortion"]


class PhotometricDistortion:
    """Each distortion is applied with probability 1/2, in random order of contrast vs. colour (as mmseg).

    Args:
        brightness: max additive shift in grey levels.
        contrast, saturation: (lo, hi) multiplicative ranges.
        hue: max hue shift in degrees.
    """

    def __init__(self, brightness: float = 32, contrast=(0.5, 1.5), saturation=(0.5, 1.5), hue: float = 18):
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """image uint8 (H, W, 3) RGB -> jittered uint8 (H, W, 3)."""
        img = image.astype(np.float32)
        if rng.random() < 0.5:
            img += rng.uniform(-self.brightness, self.brightness)
        contrast_first = rng.random() < 0.5
        if contrast_first and rng.random() < 0.5:
            img *= rng.uniform(*self.contrast)
        do_sat, do_hue = rng.random() < 0.5, rng.random() < 0.5
        if do_sat or do_hue:
            hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
            if do_sat:
                hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*self.saturation), 0, 255)
            if do_hue:  # OpenCV 8-bit hue is in [0, 180)
                hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue, self.hue) / 2) % 180
            img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        if not contrast_first and rng.random() < 0.5:
            img *= rng.uniform(*self.contrast)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)
