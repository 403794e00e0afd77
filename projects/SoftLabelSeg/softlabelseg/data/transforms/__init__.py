"""Paired geometry (shared by image and label) and image-only photometric jitter."""
from .geometry import Geometry, crop_pad_image, sample_geometry, scaled_size
from .photometric import PhotometricDistortion

__all__ = ["Geometry", "PhotometricDistortion", "crop_pad_image", "sample_geometry", "scaled_size"]
