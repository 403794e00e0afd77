"""Backbones: output_shape() matches the returned tensors; strides; checkpoint loading."""

import pytest
import torch
from softlabelseg.modeling import MixTransformer, TimmBackbone, TinyCNN, load_state_dict_file


def _check(backbone, size=(64, 96)):
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        feats = backbone.eval()(x)
    shape = backbone.output_shape()
    assert list(feats) == list(shape)
    for name, (c, s) in shape.items():
        assert feats[name].shape == (1, c, size[0] // s, size[1] // s), name
    return shape


@pytest.mark.parametrize("output_stride,strides", [(8, [4, 8]), (16, [4, 16]), (None, [4, 32])])
def test_timm_resnet_output_stride(output_stride, strides):
    bb = TimmBackbone("resnet18", out_indices=(1, 4), output_stride=output_stride)
    shape = _check(bb)
    assert [s for _, s in shape.values()] == strides
    assert [c for c, _ in shape.values()] == [64, 512]
    assert bb.size_divisibility == 32


def test_timm_hrnet_raw_branches():
    bb = TimmBackbone("hrnet_w18_small", out_indices=(1, 2, 3, 4), feature_location="")
    shape = _check(bb, (64, 64))
    assert shape == {"stage1": (16, 4), "stage2": (32, 8), "stage3": (64, 16), "stage4": (128, 32)}


def test_timm_local_checkpoint(tmp_path):
    src = TimmBackbone("resnet18", out_indices=(4,))
    ref = src.body.state_dict()
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": ref}, path)
    bb = TimmBackbone("resnet18", out_indices=(4,), checkpoint=str(path))
    for k, v in bb.body.state_dict().items():
        torch.testing.assert_close(v, ref[k])
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        TimmBackbone("resnet18", checkpoint=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("output_stride", [1, 2, 4, 8])
def test_tiny_cnn(output_stride):
    bb = TinyCNN(output_stride=output_stride)
    shape = _check(bb)
    assert min(s for _, s in shape.values()) == output_stride
    assert 90_000 < sum(p.numel() for p in bb.parameters()) < 120_000
    assert list(shape) == sorted(shape, key=lambda k: shape[k][1])  # finest first: it sets the head's grid
    with pytest.raises(ValueError, match="output_stride"):
        TinyCNN(output_stride=16)


def test_mix_transformer_shapes_and_checkpoint(tmp_path):
    small = dict(embed_dims=(16, 32, 40, 64), num_heads=(1, 2, 5, 8), depths=(1, 1, 1, 1))
    bb = MixTransformer(**small)
    shape = _check(bb, (64, 96))
    assert shape == {"stage1": (16, 4), "stage2": (32, 8), "stage3": (40, 16), "stage4": (64, 32)}
    # A full SegFormer checkpoint: "backbone." prefix and a classification "head." are handled.
    sd = {f"backbone.{k}": v for k, v in bb.state_dict().items()}
    sd["decode_head.linear_pred.weight"] = torch.zeros(1)
    path = tmp_path / "segformer.pth"
    torch.save({"state_dict": sd}, path)
    bb2 = MixTransformer(**small, checkpoint=str(path))
    for k, v in bb2.state_dict().items():
        torch.testing.assert_close(v, bb.state_dict()[k])
    assert set(load_state_dict_file(str(path))) == set(sd)
    with pytest.raises(ValueError, match="checkpoint"):
        MixTransformer(**small, pretrained=True)


def test_mit_b2_official_key_names():
    """Names follow the released mit_b2.pth so ImageNet weights load without renaming."""
    keys = set(MixTransformer(depths=(1, 1, 1, 1)).state_dict())
    for k in ["patch_embed1.proj.weight", "patch_embed1.norm.bias", "block1.0.attn.q.weight",
              "block1.0.attn.kv.weight", "block1.0.attn.sr.weight", "block1.0.attn.norm.weight",
              "block1.0.mlp.fc1.weight", "block1.0.mlp.dwconv.dwconv.weight", "block4.0.attn.proj.bias",
              "norm4.weight"]:
        assert k in keys, k
    assert "block4.0.attn.sr.weight" not in keys  # sr_ratio 1 in the last stage
