"""SoftLabelDatasetMapper: one geometry for image and label, the label equal to softlabel_ops on the
transformed full label, image and soft label aligned under rescale, crop, padding and flip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from softlabelseg.data import SoftLabelDatasetMapper
from softlabelseg.data.datasets import load_cityscapes_semantic
from softlabelseg.data.transforms import sample_geometry

import softlabel_ops
from tests.helpers.fixtures import cityscapes_tree, palette

HW = (64, 128)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    label = cityscapes_tree(root, "train", n=1, hw=HW)[0]
    return load_cityscapes_semantic(root, "train")[0], label


def _mapper(**kw):
    base = dict(num_classes=19, factor=0.25, crop_size=(12, 20), scale_range=(0.5, 2.0), flip_prob=0.5,
                photometric=False)
    return SoftLabelDatasetMapper(**{**base, **kw})


def _geometry(m, seed):
    return sample_geometry(np.random.default_rng(seed), HW, m.factor, m.scale_range, m.crop_size, m.flip_prob)


MODES = [("torch:bilinear", False), ("torch:bilinear", True), ("cv2:area", False)]


@pytest.mark.parametrize("mode,aa", MODES)
def test_label_equals_soft_resize_of_transformed_label(sample, mode, aa):
    rec, label = sample
    m = _mapper(image_mode=mode, antialias=aa)
    flips = 0
    for seed in range(8):
        out = m(rec, np.random.default_rng(seed))
        geo = _geometry(m, seed)
        flips += geo.flip
        exp = softlabel_ops.soft_resize(label, 19, size=geo.size, mode=mode, antialias=aa, crop=geo.window)
        exp = exp.hflip() if geo.flip else exp
        assert torch.equal(out["sem_seg"].probs, exp.probs) and torch.equal(out["sem_seg"].valid, exp.valid)
        if geo.flip:  # == resampling the flipped full label on the mirrored window
            top, left, ch, cw = geo.window
            flipped = np.ascontiguousarray(label[:, ::-1])
            alt = softlabel_ops.soft_resize(flipped, 19, size=geo.size, mode=mode, antialias=aa,
                                            crop=(top, geo.size[1] - left - cw, ch, cw))
            torch.testing.assert_close(out["sem_seg"].probs, alt.probs, atol=1e-5, rtol=0)
            torch.testing.assert_close(out["sem_seg"].valid, alt.valid, atol=1e-5, rtol=0)
        assert out["image"].shape == (3, 12, 20) and out["image"].dtype == torch.uint8
        assert (out["height"], out["width"], out["file_name"]) == (*HW, rec["file_name"])
    assert 0 < flips < 8


@pytest.mark.parametrize("mode,aa,tol", [("torch:bilinear", False, 0.51), ("torch:bilinear", True, 0.51),
                                         ("cv2:area", False, 1.5), ("pil:bilinear", False, 1.5)])
def test_image_and_soft_label_stay_aligned(sample, mode, aa, tol):
    """The image is the label painted with class colours (ignore black, padding black), so its resized
    pixels must equal sum_c probs_c * valid * colour_c; one-hot pixels show exactly their class colour."""
    rec, _ = sample
    pal = torch.from_numpy(palette(19)[:19]).float()  # (C, 3)
    m = _mapper(image_mode=mode, antialias=aa, scale_range=(0.4, 2.5), pad_value=0)
    for seed in range(10):
        out = m(rec, np.random.default_rng(seed))
        soft, img = out["sem_seg"], out["image"].float()
        expect = torch.einsum("chw,cd->dhw", soft.probs * soft.valid, pal)
        assert (img - expect).abs().max() <= tol
        one_hot = soft.single_class_mask() & (soft.valid == 1)
        argmax_colour = pal[soft.argmax()[one_hot]]
        assert torch.equal(img.permute(1, 2, 0)[one_hot], argmax_colour)


def test_padding_when_the_rescaled_map_is_smaller(sample):
    rec, _ = sample
    m = _mapper(scale_range=(0.5, 0.5), crop_size=1.0, flip_prob=0.0, pad_value=7)
    out = m(rec, np.random.default_rng(0))
    assert out["image"].shape == (3, 16, 32)
    valid = out["sem_seg"].valid
    assert bool((valid[8:] == 0).all() and (valid[:, 16:] == 0).all()) and float(valid[:8, :16].min()) > 0
    assert bool((out["image"][:, 8:] == 7).all() and (out["image"][:, :, 16:] == 7).all())


def test_nearest_and_sparse_share_the_geometry(sample):
    rec, label = sample
    dense = _mapper(label_mode="soft")
    for seed in range(5):
        geo = _geometry(dense, seed)
        for label_mode, nearest in (("nearest", "torch:nearest-exact"), ("nearest_topleft", "torch:nearest")):
            hard = _mapper(label_mode=label_mode)(rec, np.random.default_rng(seed))["sem_seg"]
            exp = softlabel_ops.hard_resize(label, geo.size, nearest, crop=geo.window)
            assert hard.dtype == torch.int64 and torch.equal(hard, exp.flip(-1) if geo.flip else exp)
        sparse = _mapper(label_mode="soft_sparse")(rec, np.random.default_rng(seed))["sem_seg"]
        ref = dense(rec, np.random.default_rng(seed))["sem_seg"]
        assert isinstance(sparse, softlabel_ops.SparseSoftLabel)
        torch.testing.assert_close(sparse.to_dense().probs, ref.probs, atol=1e-6, rtol=0)


def test_nearest_baseline_is_the_mode_of_soft_labels_on_the_image_grid(sample):
    """Centred nearest picks, per cell, the pixel under the cell centre: the class the soft label gives the
    most weight to wherever the cell is uniform; top-left nearest disagrees with it far more often."""
    rec, label = sample
    kw = dict(factor=0.25, crop_size=None, scale_range=(1.0, 1.0), flip_prob=0.0)
    soft = _mapper(label_mode="soft", image_mode="torch:area", **kw)(rec)["sem_seg"]
    arg = soft.argmax(min_valid=0.5)
    centred = _mapper(label_mode="nearest", image_mode="torch:area", **kw)(rec)["sem_seg"]
    topleft = _mapper(label_mode="nearest_topleft", image_mode="torch:area", **kw)(rec)["sem_seg"]
    pure = (soft.probs.amax(0) > 0.999) & (soft.valid > 0.999)  # one class, no ignored pixel
    assert torch.equal(centred[pure], arg[pure]) and torch.equal(topleft[pure], arg[pure])
    mixed = ~pure
    assert (centred[mixed] == arg[mixed]).float().mean() > (topleft[mixed] == arg[mixed]).float().mean()


def test_label_filter_changes_the_label_only(sample):
    """label_filter: the soft label is the one-hot label resampled with that filter on the same window,
    while the image keeps the image filter (the area-label diagnostic of the evidence grid)."""
    rec, label = sample
    plain, area_label = _mapper(), _mapper(label_filter="torch:area")
    for seed in range(4):
        geo = _geometry(plain, seed)
        ref, out = plain(rec, np.random.default_rng(seed)), area_label(rec, np.random.default_rng(seed))
        assert torch.equal(out["image"], ref["image"])
        exp = softlabel_ops.soft_resize(label, 19, size=geo.size, mode="torch:area", crop=geo.window)
        exp = exp.hflip() if geo.flip else exp
        assert torch.equal(out["sem_seg"].probs, exp.probs) and torch.equal(out["sem_seg"].valid, exp.valid)
        assert not torch.equal(out["sem_seg"].probs, ref["sem_seg"].probs)


def test_full_res_label_is_the_original_grid(sample):
    rec, label = sample
    out = _mapper(label_mode="full_res", crop_size=None, scale_range=(1.0, 1.0), flip_prob=0.0)(rec)
    assert out["image"].shape[-2:] == (HW[0] // 4, HW[1] // 4)
    assert torch.equal(out["sem_seg"], torch.from_numpy(label.astype(np.int64)))
    m = _mapper(label_mode="full_res")
    for seed in range(4):  # random scale and crop: the target is 4 x the image grid, same window
        out, geo = m(rec, np.random.default_rng(seed)), _geometry(m, seed)
        exp = softlabel_ops.hard_resize(label, (geo.size[0] * 4, geo.size[1] * 4), "torch:nearest-exact",
                                        crop=tuple(4 * v for v in geo.window))
        assert out["sem_seg"].shape == (4 * out["image"].shape[1], 4 * out["image"].shape[2])
        assert torch.equal(out["sem_seg"], exp.flip(-1) if geo.flip else exp)
    with pytest.raises(ValueError, match="full_res"):
        _mapper(label_mode="full_res", factor=0.3)


def test_photometric_changes_the_image_only(sample):
    rec, _ = sample
    a = _mapper(photometric=False)(rec, np.random.default_rng(3))
    b = _mapper(photometric=True)(rec, np.random.default_rng(3))
    assert torch.equal(a["sem_seg"].probs, b["sem_seg"].probs)
    plain, jitter = _mapper(photometric=False), _mapper(photometric=True)
    changed = [not torch.equal(plain(rec, np.random.default_rng(s))["image"],
                               jitter(rec, np.random.default_rng(s))["image"]) for s in range(6)]
    assert any(changed)


def test_cat_max_ratio_redraws_dominated_crops(tmp_path):
    label = np.zeros((64, 128), np.uint8)
    label[:, 100:] = 1  # class 0 dominates most crops
    root = tmp_path / "cs"
    (root / "leftImg8bit/train/x").mkdir(parents=True)
    (root / "gtFine/train/x").mkdir(parents=True)
    from PIL import Image
    Image.fromarray(palette(19)[label]).save(root / "leftImg8bit/train/x/x_0_0_leftImg8bit.png")
    Image.fromarray(label).save(root / "gtFine/train/x/x_0_0_gtFine_labelTrainIds.png")
    rec = load_cityscapes_semantic(root, "train")[0]

    def share(ratio):
        m = _mapper(factor=1.0, crop_size=(32, 32), scale_range=(1.0, 1.0), cat_max_ratio=ratio)
        ok = 0
        for s in range(20):
            hard = m(rec, np.random.default_rng(s))["sem_seg"].argmax()
            counts = torch.bincount(hard.flatten(), minlength=2)
            ok += int(counts.max()) < 0.75 * int(counts.sum())
        return ok / 20

    assert share(0.75) >= 0.9 > share(1.0)


def test_eval_mapper_keeps_full_resolution_label(sample):
    rec, label = sample
    out = SoftLabelDatasetMapper(False, num_classes=19, factor=0.5)(rec)
    assert out["image"].shape == (3, 32, 64) and out["sem_seg"].dtype == torch.int64
    assert torch.equal(out["sem_seg"], torch.from_numpy(label).long())
    full = SoftLabelDatasetMapper(False, num_classes=19, factor=0.5, test_factor=1.0)(rec)
    assert full["image"].shape == (3, 64, 128)


def test_bad_arguments():
    with pytest.raises(ValueError, match="label_mode"):
        SoftLabelDatasetMapper(num_classes=19, label_mode="hard")
    with pytest.raises(ValueError, match="mode"):
        SoftLabelDatasetMapper(num_classes=19, image_mode="cv2:bilinear")
    with pytest.raises(ValueError, match="label_filter.*soft labels only"):
        SoftLabelDatasetMapper(num_classes=19, label_mode="nearest", label_filter="torch:area")
    with pytest.raises(ValueError, match="mode"):
        SoftLabelDatasetMapper(num_classes=19, label_filter="torch:boxy")
