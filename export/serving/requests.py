"""Open Inference Protocol tensors of the segmentation service, and the checks a request must pass.

Inputs (exactly one per request):
- ``image``: BYTES, shape [1]: an encoded image (PNG, JPEG, anything OpenCV decodes) as a camera or a
  browser sends it; in JSON the element may be base64 with the input parameter
  ``content_type: "base64"``.
- ``image_rgb``: UINT8, shape [H, W, 3]: raw RGB pixels.
Outputs: ``labels`` (UINT8 or UINT16 [H, W], train ids at the image's own size, always) and ``scores``
(FP32 [C, h, w], the graph's logits or probabilities at the model's resolution, when requested).

Every refusal is a :class:`BadRequest` whose message names the input and what to send instead; its
``status`` is the HTTP code (400, or 413 for an image over the pixel limit). No framework is imported
here: the same checks hold for REST and gRPC.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from softlabelseg.folder_contract import ImageReadError
from softlabelseg.folder_contract import decode_image as decode_image_bytes

INPUT_IMAGE = "image"
INPUT_RGB = "image_rgb"
OUTPUT_LABELS = "labels"
OUTPUT_SCORES = "scores"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadRequest(ValueError):
    """A request the service refuses; ``status`` is its HTTP status code."""

    status = 400


class TooLarge(BadRequest):
    """An image above the pixel limit (decoding it would cost memory the service does not grant)."""

    status = 413


@dataclass(frozen=True)
class ImageLimits:
    """``max_pixels``: largest H * W accepted; ``min_side``: smallest H or W accepted."""

    max_pixels: int = 4096 * 4096
    min_side: int = 8

    def check(self, height: int, width: int, what: str) -> None:
        """Raise :class:`BadRequest` (:class:`TooLarge`) for a (height, width) outside the limits."""
        if height <= 0 or width <= 0:
            raise BadRequest(f"{what} is {width}x{height}: an image needs at least one pixel")
        if min(height, width) < self.min_side:
            raise BadRequest(
                f"{what} is {width}x{height}: each side must be at least {self.min_side} pixels (--min-side)"
            )
        if height * width > self.max_pixels:
            raise TooLarge(
                f"{what} is {width}x{height} = {height * width} pixels, above the limit of {self.max_pixels}"
                " (--max-pixels): resize it before sending"
            )


def decode_image(data: bytes, limits: ImageLimits) -> np.ndarray:
    """RGB uint8 (H, W, 3) from encoded bytes, decoded by ``softlabelseg.folder_contract.decode_image`` as
    the folder tools decode a file (OpenCV, EXIF orientation applied). The header is read first (Pillow),
    so an image over the limit is refused before its pixels are allocated."""
    what = f"input '{INPUT_IMAGE}'"
    if not data:
        raise BadRequest(f"{what} is empty: send the bytes of a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            kind = probe.format or "image"
    except Image.DecompressionBombError as e:
        raise TooLarge(f"{what}: {e}; resize it before sending") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])  # a header Pillow refuses, e.g. 0x0
            limits.check(height, width, f"{what} (PNG)")
        raise BadRequest(
            f"{what} ({len(data)} bytes starting {data[:8]!r}) is not an image: send the bytes of a PNG or"
            " JPEG file"
        ) from None
    limits.check(height, width, f"{what} ({kind})")
    try:
        return decode_image_bytes(data, what)  # the folder tools' decode: one EXIF rule everywhere
    except ImageReadError:
        raise BadRequest(
            f"{what} is a {width}x{height} {kind} whose pixels cannot be decoded ({len(data)} bytes):"
            " the file is truncated or corrupt"
        ) from None


def encoded_bytes(element, parameters: dict | None) -> bytes:
    """The bytes of one BYTES element: as sent (binary extension, gRPC), or base64-decoded when the
    input's parameters say ``content_type: "base64"`` (JSON clients such as curl)."""
    if isinstance(element, str):
        element = element.encode("latin-1", errors="replace")
    data = bytes(element)
    if (parameters or {}).get("content_type") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"input '{INPUT_IMAGE}' says content_type base64 but is not base64") from None
    return data


def raw_image(datatype: str, shape, read, limits: ImageLimits) -> np.ndarray:
    """RGB uint8 (H, W, 3) from the ``image_rgb`` tensor: ``read()`` returns its numpy array, and is
    called only after the datatype and the shape passed the checks."""
    what = f"input '{INPUT_RGB}'"
    if datatype != "UINT8":
        raise BadRequest(f"{what} must be UINT8 RGB pixels, got datatype {datatype}")
    shape = [int(s) for s in shape]
    if len(shape) != 3 or shape[2] != 3:
        raise BadRequest(f"{what} must have shape [H, W, 3] (RGB), got {shape}")
    limits.check(shape[0], shape[1], what)
    try:
        array = read()
    except (ValueError, TypeError, OverflowError) as e:
        raise BadRequest(f"{what}: its data does not match UINT8 {shape} ({e})") from None
    return np.ascontiguousarray(array, dtype=np.uint8).reshape(shape)


def label_dtype(num_classes: int):
    """The smallest unsigned type that holds every train id and the ignore value 255."""
    return np.uint8 if num_classes <= 256 else np.uint16


def output_names(requested: list[str], scores_available: bool) -> list[str]:
    """Outputs to return: ``labels`` when none are named, otherwise the named ones, checked."""
    if not requested:
        return [OUTPUT_LABELS]
    known = [OUTPUT_LABELS] + ([OUTPUT_SCORES] if scores_available else [])
    for name in requested:
        if name == OUTPUT_SCORES and not scores_available:
            raise BadRequest(
                "output 'scores' is not available: this export returns labels only (export it with"
                " --output-kind logits or probs)"
            )
        if name not in known:
            raise BadRequest(f"unknown output {name!r}: this model returns {known}")
    return list(dict.fromkeys(requested))
