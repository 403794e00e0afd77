"""Checkpoint atomicity, retention, and loading of weights files (weights_only, safetensors, DDP prefix)."""

import os

import pytest
import softlabelseg.engine.checkpoint as ckpt_mod
import torch
from softlabelseg.engine import Checkpointer
from softlabelseg.engine.hooks import PeriodicCheckpointer

from tests.helpers.standins import ToySegModel


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = ToySegModel()
    ck = Checkpointer(model, str(tmp_path))
    ck.save("model_0000001", iteration=2)
    before = (tmp_path / "model_0000001.pth").read_bytes()

    def broken_save(obj, f):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with torch.no_grad():
        model.head.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        ck.save("model_0000001", iteration=4)  # same name: must not clobber
    with pytest.raises(OSError):
        ck.save("model_0000003", iteration=4)
    monkeypatch.undo()
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]  # no temp files left
    assert ck.get_checkpoint_file() == str(tmp_path / "model_0000001.pth")
    assert Checkpointer(ToySegModel(), str(tmp_path)).load(ck.get_checkpoint_file())["iteration"] == 2


def test_max_to_keep(tmp_path):
    class T:
        iter = 0
        max_iter = 100

    hook = PeriodicCheckpointer(
        Checkpointer(ToySegModel(), str(tmp_path)), period=1, max_iter=100, max_to_keep=2
    )
    hook.trainer = T()
    hook.before_train()
    for i in range(5):
        T.iter = i
        hook.after_step()
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth")) == [
        "model_0000003.pth",
        "model_0000004.pth",
    ]


def test_load_weights_variants(tmp_path, caplog):
    src = ToySegModel()
    sd = src.state_dict()
    # bare state dict with a DDP prefix
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "bare.pth")
    dst = ToySegModel()
    Checkpointer(dst).load(str(tmp_path / "bare.pth"))
    torch.testing.assert_close(dst.head.weight, src.head.weight)
    # safetensors
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    dst = ToySegModel()
    Checkpointer(dst).load(str(tmp_path / "w.safetensors"))
    torch.testing.assert_close(dst.conv1.weight, src.conv1.weight)
    # a head with another number of classes is skipped with a warning (fine-tuning), the rest loads
    other = ToySegModel(num_classes=5)
    Checkpointer(other).load(str(tmp_path / "bare.pth"))
    torch.testing.assert_close(other.conv1.weight, src.conv1.weight)
    assert "head.weight" in caplog.text
    # pickled arbitrary objects are refused with a clear message
    torch.save({"model": sd, "obj": object()}, tmp_path / "unsafe.pth")
    with pytest.raises(RuntimeError, match="refused.*pickled Python objects"):
        Checkpointer(ToySegModel()).load(str(tmp_path / "unsafe.pth"))
    with pytest.raises(FileNotFoundError):
        Checkpointer(ToySegModel()).load(str(tmp_path / "missing.pth"))
