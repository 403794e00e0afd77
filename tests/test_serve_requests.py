"""The model server's request checks without a server (export/serving/requests.py, the body limit).

Protects: encoded bytes decode exactly as infer_onnx.py reads a file (EXIF orientation included), the
pixel and side limits read from the header, raw tensors checked before their data is read, the label
dtype by class count, the requested outputs, and the body limit on chunked uploads (no
Content-Length), which the server tests' clients never send.
"""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest
from PIL import Image
from softlabelseg_export.runtime import read_image
from softlabelseg_export.serving.requests import (
    BadRequest,
    ImageLimits,
    TooLarge,
    decode_image,
    encoded_bytes,
    label_dtype,
    output_names,
    raw_image,
)
from softlabelseg_export.serving.server import BodyLimit


def test_encoded_bytes_decode_as_the_runner_reads_the_file(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    png = tmp_path / "a.png"
    cv2.imwrite(str(png), pixels)
    jpeg = tmp_path / "rotated.jpg"
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees when shown
    Image.fromarray(pixels).save(jpeg, exif=exif.tobytes())
    for path in (png, jpeg):
        decoded = decode_image(path.read_bytes(), ImageLimits())
        assert np.array_equal(decoded, read_image(path)), path.name
    assert decode_image(jpeg.read_bytes(), ImageLimits()).shape == (60, 40, 3)  # the orientation applied


def test_limits_are_read_from_the_header():
    png = cv2.imencode(".png", np.zeros((30, 50, 3), np.uint8))[1].tobytes()
    with pytest.raises(TooLarge, match="50x30 = 1500 pixels, above the limit of 1000"):
        decode_image(png, ImageLimits(max_pixels=1000))
    with pytest.raises(BadRequest, match="at least 31 pixels") as refused:
        decode_image(png, ImageLimits(min_side=31))
    assert refused.value.status == 400 and TooLarge.status == 413


def test_raw_tensor_checked_before_its_data_is_read():
    def never():
        raise AssertionError("data read before the checks")

    cases = [("INT8", [4, 4, 3], "must be UINT8"), ("UINT8", [4, 4, 4], "[H, W, 3]"),
             ("UINT8", [1, 4, 4, 3], "[H, W, 3]"), ("UINT8", [9000, 9000, 3], "--max-pixels")]  # fmt: skip
    for datatype, shape, words in cases:
        with pytest.raises(BadRequest, match=words.replace("[", r"\[")):
            raw_image(datatype, shape, never, ImageLimits(min_side=1))
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(
        raw_image("UINT8", [4, 5, 3], lambda: image.ravel(), ImageLimits(min_side=1)), image
    )


def test_base64_bytes_label_dtype_and_outputs():
    assert encoded_bytes("aGVsbG8=", {"content_type": "base64"}) == b"hello"
    assert encoded_bytes(b"raw", None) == b"raw"
    with pytest.raises(BadRequest, match="not base64"):
        encoded_bytes("not base64!", {"content_type": "base64"})
    assert label_dtype(256) == np.uint8 and label_dtype(257) == np.uint16
    assert output_names([], True) == ["labels"]
    assert output_names(["scores", "labels", "scores"], True) == ["scores", "labels"]
    with pytest.raises(BadRequest, match="labels only"):
        output_names(["scores"], False)


def _post(app, chunks: list[bytes], headers: list) -> tuple[int, bytes]:
    """(status, body) of one POST through ``app`` whose body arrives in ``chunks``."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "headers": headers}, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_body_limit_counts_chunked_uploads_and_replays_the_body():
    async def echo(scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = BodyLimit(echo, max_bytes=10)
    assert _post(app, [b"12345", b"6789"], []) == (200, b"123456789")
    status, body = _post(app, [b"12345", b"678901"], [])
    assert status == 413 and b"11 bytes is above the limit of 10 bytes (--max-body-mb)" in body
    assert _post(app, [b"x"], [(b"content-length", b"11")])[0] == 413  # refused by its header, unread
    assert _post(app, [b"0123456789"], [(b"content-length", b"10")]) == (200, b"0123456789")
