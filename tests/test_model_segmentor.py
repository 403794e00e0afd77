"""SemanticSegmentor: normalisation, padding, losses (soft / hard), eval output size, export path."""

import pytest
import torch
import torch.nn.functional as F
from softlabelseg.modeling import (
    ConcatFuseHead,
    CrossEntropy,
    LossByTarget,
    SemanticSegmentor,
    SoftKL,
    TinyCNN,
)

from softlabel_ops import DenseSoftLabel, SparseSoftLabel, soft_kl_loss, soft_resize

C = 5



def _model(output_stride=4, **kw):
    torch.manual_seed(0)
    bb = TinyCNN(output_stride=output_stride)
    kw.setdefault("pixel_mean", [120.0, 110.0, 100.0])
    kw.setdefault("pixel_std", [60.0, 50.0, 40.0])
    return SemanticSegmentor(bb, lambda input_shape: ConcatFuseHead(input_shape, C, channels=16),
                             num_classes=C, **kw)


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def _label(h, w, seed=0, ignore=True):
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, C, (h, w), generator=g)
    if ignore:
        lab[: h // 4] = 255
    return lab


def test_normalize_and_partial_head():
    m = _model()
    assert isinstance(m.head, ConcatFuseHead) and m.size_divisibility == 8
    x = torch.full((1, 3, 2, 2), 120, dtype=torch.uint8)
    assert torch.allclose(m.normalize(x)[0, 0], torch.zeros(2, 2))
    head = ConcatFuseHead(m.backbone.output_shape(), C)
    assert SemanticSegmentor(m.backbone, head, [0, 0, 0], [1, 1, 1], C).head is head


def test_hard_loss_equals_cross_entropy_at_image_grid():
    m = _model().train()
    imgs, labs = [_image(32, 48, s) for s in (0, 1)], [_label(32, 48, s) for s in (0, 1)]
    loss = m([{"image": i, "sem_seg": t} for i, t in zip(imgs, labs)])["loss_sem_seg"]
    logits = m.forward_features(m.normalize(torch.stack(imgs)))
    up = F.interpolate(logits, (32, 48), mode="bilinear")
    ref = F.cross_entropy(up, torch.stack(labs), ignore_index=255)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("sparse", [False, True])
def test_soft_loss_equals_ce_for_one_hot(sparse):
    """One-hot soft targets (nearest resize at the same size) give exactly the cross-entropy loss."""
    m = _model().train()
    imgs, labs = [_image(32, 48, s) for s in (0, 1)], [_label(32, 48, s) for s in (0, 1)]
    soft = [soft_resize(t, C, size=(32, 48), mode="torch:nearest", sparse=sparse) for t in labs]
    assert isinstance(soft[0], SparseSoftLabel if sparse else DenseSoftLabel)
    l_soft = m([{"image": i, "sem_seg": t} for i, t in zip(imgs, soft)])["loss_sem_seg"]
    l_hard = m([{"image": i, "sem_seg": t} for i, t in zip(imgs, labs)])["loss_sem_seg"]
    torch.testing.assert_close(l_soft, l_hard)


def test_targets_at_output_grid_and_padding():
    """Targets at 1/4 of the image (the output grid) and images of different, non-divisible sizes."""
    m = _model().train()
    sizes = [(36, 52), (28, 44)]
    imgs = [_image(h, w, s) for s, (h, w) in enumerate(sizes)]
    labs = [_label(h // 4, w // 4, s, ignore=False) for s, (h, w) in enumerate(sizes)]
    soft = [soft_resize(t, C, size=t.shape, mode="torch:nearest") for t in labs]
    loss = m([{"image": i, "sem_seg": t} for i, t in zip(imgs, soft)])["loss_sem_seg"]
    # Reference: padded batch (40, 56) -> logits (10, 14) exactly the padded target grid, no resize.
    batch = torch.zeros(2, 3, 40, 56)
    for b, i in zip(batch, imgs):
        b[:, : i.shape[1], : i.shape[2]] = m.normalize(i[None])[0]
    logits = m.forward_features(batch)
    assert logits.shape[-2:] == (10, 14)
    target = torch.full((2, 10, 14), 255)
    for t, out in zip(labs, target):
        out[: t.shape[0], : t.shape[1]] = t
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, ignore_index=255))
    stacked = DenseSoftLabel.stack(soft, size=(10, 14))
    torch.testing.assert_close(loss, soft_kl_loss(logits, stacked))
    with pytest.raises(ValueError, match="scale"):
        m([{"image": imgs[0], "sem_seg": labs[0]}, {"image": imgs[1], "sem_seg": _label(28, 44)}])


def test_multi_class_switch_and_class_weights():
    w = [1.0, 2.0, 1.0, 0.5, 1.0]
    loss = LossByTarget(soft=SoftKL(multi_class=False, class_weights=w, loss_weight=2.0), hard=CrossEntropy())
    m = _model(loss=loss).train()
    img, lab = _image(32, 32), _label(32, 32)
    soft = soft_resize(lab, C, size=(8, 8), mode="torch:bilinear")
    out = m([{"image": img, "sem_seg": soft}])["loss_sem_seg"]
    logits = m.forward_features(m.normalize(img[None]))
    ref = soft_kl_loss(logits, DenseSoftLabel.stack([soft]), multi_class=False, class_weights=torch.tensor(w))
    torch.testing.assert_close(out, 2.0 * ref)
    with pytest.raises(ValueError, match="class_weights"):
        _model(loss=LossByTarget(soft=SoftKL(class_weights=[1.0]), hard=CrossEntropy()))
    with pytest.raises(ValueError, match="classes"):
        m([{"image": img, "sem_seg": soft_resize(lab, C + 1, size=(8, 8))}])


def test_options_of_configs_saved_before_the_loss_part_build_the_same_loss():
    """A config.yaml saved with the segmentor's old loss options still builds and scores the same loss."""
    w = [1.0, 2.0, 1.0, 0.5, 1.0]
    old = _model(multi_class=False, class_weights=w, loss_weight=2.0).train()
    new = _model(loss=LossByTarget(soft=SoftKL(multi_class=False, class_weights=w, loss_weight=2.0),
                                   hard=CrossEntropy(class_weights=w, loss_weight=2.0))).train()
    img, lab = _image(32, 32), _label(32, 32)
    for target in (soft_resize(lab, C, size=(8, 8), mode="torch:bilinear"), lab):
        torch.testing.assert_close(old([{"image": img, "sem_seg": target}])["loss_sem_seg"],
                                   new([{"image": img, "sem_seg": target}])["loss_sem_seg"])
    assert old.state_dict().keys() == new.state_dict().keys() == _model().state_dict().keys()
    with pytest.raises(ValueError, match="not beside model.loss"):
        _model(loss=CrossEntropy(), multi_class=False)


def test_the_loss_is_a_part_and_each_kind_refuses_the_other_target():
    img, lab = _image(32, 32), _label(32, 32)
    soft = soft_resize(lab, C, size=(8, 8), mode="torch:bilinear")
    smooth = _model(loss=CrossEntropy(label_smoothing=0.1)).train()
    out = smooth([{"image": img, "sem_seg": lab}])["loss_sem_seg"]
    logits = F.interpolate(smooth.forward_features(smooth.normalize(img[None])), size=(32, 32),
                           mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, F.cross_entropy(logits, lab[None], ignore_index=255, label_smoothing=0.1))
    plain = _model().train()([{"image": img, "sem_seg": lab}])["loss_sem_seg"]
    assert out.item() != pytest.approx(plain.item())
    with pytest.raises(TypeError, match="hard labels"):
        smooth([{"image": img, "sem_seg": soft}])
    with pytest.raises(TypeError, match="soft targets"):
        _model(loss=SoftKL()).train()([{"image": img, "sem_seg": lab}])
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropy(label_smoothing=1.0)


def test_all_ignored_hard_target_gives_zero_not_nan():
    m = _model().train()
    loss = m([{"image": _image(16, 16), "sem_seg": torch.full((16, 16), 255)}])["loss_sem_seg"]
    assert loss.item() == 0.0
    loss.backward()


def test_eval_output_size_and_export_path():
    m = _model().eval()
    inputs = [{"image": _image(30, 50, 0), "height": 61, "width": 99},
              {"image": _image(24, 40, 1), "height": 24, "width": 40}]
    with torch.no_grad():
        out = m(inputs)
        assert [o["sem_seg"].shape for o in out] == [(C, 61, 99), (C, 24, 40)]
        torch.testing.assert_close(out[0]["sem_seg"].sum(0), torch.ones(61, 99))
        # Padding next to a larger image only perturbs the border (BN/ReLU of padded zeros).
        alone = m([{"image": _image(24, 40, 1), "height": 24, "width": 40}])[0]["sem_seg"]
        torch.testing.assert_close(alone, out[1]["sem_seg"], atol=5e-3, rtol=0)
        logits = m.forward_logits(_image(24, 40, 1)[None])
    assert logits.shape == (1, C, 24, 40)
    torch.testing.assert_close(logits.softmax(1)[0], alone, atol=1e-5, rtol=1e-4)


def test_forward_logits_exports_with_dynamic_size():
    m = _model(output_stride=8).eval()

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_logits(x)

    auto = torch.export.Dim.AUTO
    program = torch.export.export(Logits(m), (_image(40, 52)[None],), dynamic_shapes=({2: auto, 3: auto},))
    for h, w in [(40, 52), (64, 96), (33, 47)]:
        x = _image(h, w)[None]
        torch.testing.assert_close(program.module()(x), m.forward_logits(x))


def test_class_offsets_move_the_argmax_as_computed_by_hand_and_only_in_eval():
    m = _model().eval()
    img = _image(32, 48)
    inputs = [{"image": img, "height": 32, "width": 48}]
    with torch.no_grad():
        plain_logits = m.forward_features(m.normalize(img[None]))
        up = F.interpolate(plain_logits, size=(32, 48), mode="bilinear", align_corners=False)[0]
        offsets = torch.zeros(C)
        offsets[3] = float(up.max() - up.min()) + 1.0  # class 3 wins everywhere
        offsets[1] = -0.5
        assert (m.predict_labels(inputs)[0]["sem_seg_labels"] == up.argmax(0)).all()
        m.set_class_offsets(offsets, {"method": "by hand"})
        out = m.predict_labels(inputs)[0]
        expected = (up + offsets[:, None, None]).argmax(0)
        assert (out["sem_seg_labels"] == expected).all() and (expected == 3).all()
        assert (out["sem_seg_labels_plain"] == up.argmax(0)).all()  # the same forward, without offsets
        assert m(inputs)[0]["sem_seg"].argmax(0).eq(3).all()
        torch.testing.assert_close(m.forward_logits(img[None])[0], up + offsets[:, None, None])
    m.train()
    lab = _label(32, 48)
    trained = m([{"image": img, "sem_seg": lab}])["loss_sem_seg"]
    m.set_class_offsets(None)
    torch.testing.assert_close(m([{"image": img, "sem_seg": lab}])["loss_sem_seg"], trained)  # no offsets
    with pytest.raises(ValueError, match="finite"):
        m.set_class_offsets([float("nan")] * C)


def test_a_checkpoint_without_offsets_behaves_as_before(tmp_path):
    from softlabelseg.engine import Checkpointer

    m = _model().eval()
    assert "class_offsets" not in m.state_dict()  # checkpoints keep their keys
    Checkpointer(m, str(tmp_path)).save("plain")
    assert "calibration" not in torch.load(tmp_path / "plain.pth", weights_only=True)
    m.set_class_offsets(torch.arange(C, dtype=torch.float32), {"method": "prior matching", "fit_images": 9})
    Checkpointer(m, str(tmp_path)).save("calibrated")
    fresh = _model().eval()
    Checkpointer(fresh).load(str(tmp_path / "calibrated.pth"), checkpointables=[], strict=True)
    assert fresh.calibration == {"method": "prior matching", "fit_images": 9}
    torch.testing.assert_close(fresh.class_offsets, torch.arange(C, dtype=torch.float32))
    Checkpointer(fresh).load(str(tmp_path / "plain.pth"), checkpointables=[], strict=True)
    assert fresh.calibration is None and not fresh.offsets_active
    img = _image(24, 40, 2)
    with torch.no_grad():
        torch.testing.assert_close(fresh.forward_logits(img[None]), _model().eval().forward_logits(img[None]))
