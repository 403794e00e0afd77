"""Prediction writers (Cityscapes labelIds, overlays) and test-time wrappers (flip/scales, sliding window)."""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from softlabelseg.evaluation import (
    CityscapesLabelIdsWriter,
    OverlayWriter,
    SemSegTTA,
    SlidingWindowInference,
    build_test_model,
)


def test_cityscapes_labelids_layout(tmp_path):
    w = CityscapesLabelIdsWriter(str(tmp_path))
    pred = np.array([[0, 11, 18]], dtype=np.uint8)  # road, person, bicycle
    path = w.write(
        {"file_name": "/d/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"}, pred
    )
    assert path == str(tmp_path / "frankfurt" / "frankfurt_000000_000294_labelIds.png")
    assert np.asarray(Image.open(path)).tolist() == [[7, 24, 33]]


def test_overlay_writer(tmp_path):
    img = tmp_path / "img.png"
    Image.fromarray(np.full((4, 6, 3), 100, np.uint8)).save(img)
    w = OverlayWriter(str(tmp_path / "ov"), colors=[(0, 0, 0), (200, 0, 0)], max_images=1)
    path = w.write({"file_name": str(img)}, np.ones((4, 6), np.uint8))
    out = np.asarray(Image.open(path))
    assert out.shape == (4, 6, 3) and tuple(out[0, 0]) == (150, 50, 50)
    assert w.write({"file_name": str(img)}, np.ones((4, 6), np.uint8)) is None  # max_images reached


class PixelModel(torch.nn.Module):
    """Per-pixel classifier: probabilities from image channels, bilinearly resized to height x width."""

    def forward(self, batched):
        out = []
        for d in batched:
            x = d["image"].float()[None] / 255.0
            logits = torch.cat([x, 1 - x[:, :1]], dim=1) * 5
            logits = F.interpolate(
                logits, size=(d["height"], d["width"]), mode="bilinear", align_corners=False
            )
            out.append({"sem_seg": logits[0].softmax(0)})
        return out


def test_sliding_window_matches_whole_image_for_pixelwise_model():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)
    inp = {"image": image, "height": 20, "width": 30}
    whole = PixelModel()([inp])[0]["sem_seg"]
    win = SlidingWindowInference(PixelModel(), crop=(8, 12), stride=(5, 7))([inp])[0]["sem_seg"]
    torch.testing.assert_close(win, whole)
    # full-resolution output when the record is larger than the test image
    big = SlidingWindowInference(PixelModel(), crop=(8, 12))([{**inp, "height": 40, "width": 60}])[0][
        "sem_seg"
    ]
    assert big.shape == (4, 40, 60)


def test_flip_tta_of_pixelwise_model_is_identity_and_scales_average():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    inp = {"image": image, "height": 16, "width": 16}
    base = PixelModel()([inp])[0]["sem_seg"]
    flipped = SemSegTTA(PixelModel(), flip=True)([inp])[0]["sem_seg"]
    torch.testing.assert_close(flipped, base)
    ms = build_test_model(PixelModel(), scales=(0.5, 1.0))([inp])[0]["sem_seg"]
    assert ms.shape == base.shape
    torch.testing.assert_close(ms.sum(0), torch.ones(16, 16))
    assert isinstance(build_test_model(PixelModel()), PixelModel)
