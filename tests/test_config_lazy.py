"""LazyCall / LazyConfig load, save, overrides and instantiate."""

import logging
import textwrap

import pytest
import torch
from omegaconf import DictConfig
from softlabelseg.config import InstantiationError, L, LazyConfig, instantiate, locate


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def cfg_tree(tmp_path):
    """configs/{common/{data/toy.py,models/net.py,train.py},toy/recipe.py} importing each other."""
    root = tmp_path / "configs"
    _write(root / "common/data/toy.py", """
        from omegaconf import OmegaConf
        dataloader = OmegaConf.create()
        dataloader.train = dict(batch_size=4, names=["a", "b"])
        _private = dict(x=1)
    """)
    _write(root / "common/models/net.py", """
        import types

        import torch
        from softlabelseg.config import LazyCall as L
        model = L(types.SimpleNamespace)(
            num_classes=5,
            conv=L(torch.nn.Conv2d)(in_channels=3, out_channels="${..num_classes}", kernel_size=1),
        )
    """)
    _write(root / "common/train.py", """
        train = dict(max_iter=100, output_dir="./output", amp=dict(enabled=False))
    """)
    recipe = _write(root / "toy/recipe.py", """
        from ..common.data.toy import dataloader
        from ..common.models.net import model
        from ..common import train as train_module

        train = train_module.train
        train.max_iter = 7
        dataloader.train.batch_size = 2
    """)
    return recipe


def test_lazycall_produces_dictconfig():
    cfg = L(torch.nn.Linear)(in_features=3, out_features=2)
    assert isinstance(cfg, DictConfig) and cfg._target_ is torch.nn.Linear
    m = instantiate(cfg)
    assert isinstance(m, torch.nn.Linear) and m.out_features == 2
    m2 = instantiate(L("torch.nn.Linear")(in_features=3, out_features=4))
    assert m2.out_features == 4


def test_load_relative_imports(cfg_tree):
    cfg = LazyConfig.load(cfg_tree)
    assert set(cfg.keys()) == {"dataloader", "model", "train"}
    assert cfg.train.max_iter == 7 and cfg.train.amp.enabled is False
    assert cfg.dataloader.train.batch_size == 2
    assert instantiate(cfg.model).conv.out_channels == 5
    assert LazyConfig.load(cfg_tree, keys="train").max_iter == 7
    tr, dl = LazyConfig.load(cfg_tree, keys=("train", "dataloader"))
    assert tr.max_iter == 7 and dl.train.names == ["a", "b"]
    with pytest.raises(KeyError, match="nonexistent"):
        LazyConfig.load(cfg_tree, keys="nonexistent")


def test_load_rel(cfg_tree, tmp_path):
    f = _write(tmp_path / "configs/toy/rel.py", """
        from softlabelseg.config import LazyConfig
        train = LazyConfig.load_rel("../common/train.py", "train")
        train.max_iter = 3
    """)
    assert LazyConfig.load(f).train == {"max_iter": 3, "output_dir": "./output", "amp": {"enabled": False}}


def test_relative_import_missing_file(tmp_path):
    f = _write(tmp_path / "a/b.py", "from ..nothere import x\n")
    with pytest.raises(ImportError, match="nothere"):
        LazyConfig.load(f)


def test_round_trip_load_override_save_load(cfg_tree, tmp_path):
    cfg = LazyConfig.load(cfg_tree)
    LazyConfig.apply_overrides(cfg, ["train.max_iter=11", "dataloader.train.names=[x,y,z]",
                                     "model.num_classes=19", "+train.new_key=abc", "~train.amp"])
    assert cfg.model.conv.out_channels == 19  # interpolation follows the single num_classes key
    out = tmp_path / "out/config.yaml"
    LazyConfig.save(cfg, str(out), resolve=True)
    text = out.read_text()
    # targets as dotted strings, interpolations resolved
    assert "torch.nn.Conv2d" in text and "types.SimpleNamespace" in text and "${" not in text
    cfg2 = LazyConfig.load(str(out))
    assert cfg2.train.max_iter == 11 and cfg2.train.new_key == "abc" and "amp" not in cfg2.train
    assert list(cfg2.dataloader.train.names) == ["x", "y", "z"]
    conv = instantiate(cfg2.model).conv
    assert isinstance(conv, torch.nn.Conv2d) and conv.out_channels == 19
    LazyConfig.save(cfg2, str(tmp_path / "again.yaml"))
    assert LazyConfig.load(str(tmp_path / "again.yaml")) == cfg2


def test_save_keeps_interpolation_by_default(cfg_tree, tmp_path):
    cfg = LazyConfig.load(cfg_tree)
    LazyConfig.save(cfg, str(tmp_path / "c.yaml"))
    assert "${..num_classes}" in (tmp_path / "c.yaml").read_text()
    cfg2 = LazyConfig.load(str(tmp_path / "c.yaml"))
    LazyConfig.apply_overrides(cfg2, ["model.num_classes=3"])
    assert cfg2.model.conv.out_channels == 3


def test_save_unserializable_warns(tmp_path, caplog):
    cfg = DictConfig({"a": 1, "obj": object(), "fn": lambda x: x}, flags={"allow_objects": True})
    with caplog.at_level(logging.WARNING):
        LazyConfig.save(cfg, str(tmp_path / "c.yaml"))
    assert "obj" in caplog.text and "fn" in caplog.text
    cfg2 = LazyConfig.load(str(tmp_path / "c.yaml"))
    assert cfg2.a == 1 and cfg2.obj.startswith("<unserializable")


def test_override_unknown_key_is_named(cfg_tree):
    cfg = LazyConfig.load(cfg_tree)
    with pytest.raises(KeyError, match=r"train\.max_itr.*Did you mean 'train\.max_iter'"):
        LazyConfig.apply_overrides(cfg, ["train.max_itr=3"])
    with pytest.raises(KeyError, match="nope.deeper"):
        LazyConfig.apply_overrides(cfg, ["nope.deeper=3"])
    with pytest.raises(KeyError, match="already exists"):
        LazyConfig.apply_overrides(cfg, ["+train.max_iter=3"])
    with pytest.raises(KeyError, match="not a config node"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter.x=3"])
    with pytest.raises(ValueError, match="Cannot parse override"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter=[1,"])


def test_override_argument_of_target(cfg_tree):
    """An argument the _target_ accepts may be set without '+', a typo of it may not."""
    cfg = LazyConfig.load(cfg_tree)
    LazyConfig.apply_overrides(cfg, ["model.conv.bias=false", "++model.conv.stride=2",
                                     "model.conv.padding=null"])
    assert cfg.model.conv.bias is False and cfg.model.conv.stride == 2 and cfg.model.conv.padding is None
    with pytest.raises(KeyError, match="model.conv.biass"):
        LazyConfig.apply_overrides(cfg, ["model.conv.biass=false"])


def _kw(name, **kwargs):
    return name, kwargs


def test_override_kwargs_target_rejects_near_misses():
    """A target with **kwargs accepts new names, but not a near miss of a parameter or key."""
    cfg = DictConfig({"m": L(_kw)(name="a")}, flags={"allow_objects": True})
    LazyConfig.apply_overrides(cfg, ["m.drop_path_rate=0.1"])
    assert instantiate(cfg.m) == ("a", {"drop_path_rate": 0.1})
    with pytest.raises(KeyError, match="Did you mean 'm.name'"):
        LazyConfig.apply_overrides(cfg, ["m.nam=b"])
    with pytest.raises(KeyError, match="Did you mean 'm.drop_path_rate'"):
        LazyConfig.apply_overrides(cfg, ["m.drop_path_rat=0.2"])
    LazyConfig.apply_overrides(cfg, ["+m.nam=b"])  # explicit add still possible
    assert cfg.m.nam == "b"


def test_load_yaml_and_errors(tmp_path):
    y = _write(tmp_path / "c.yaml", "a:\n  b: 1\n")
    assert LazyConfig.load(y).a.b == 1
    with pytest.raises(ValueError, match="must be"):
        LazyConfig.load(str(tmp_path / "c.txt"))
    with pytest.raises(FileNotFoundError, match="missing.py"):
        LazyConfig.load(str(tmp_path / "missing.py"))
    bad = _write(tmp_path / "bad.py", "x = (\n")
    with pytest.raises(SyntaxError, match="bad.py"):
        LazyConfig.load(bad)


def _mk(**kwargs):
    return kwargs


def _boom(x):
    raise ValueError(f"bad x={x}")


def test_instantiate_errors_name_key_path():
    cfg = L(_mk)(model=L(_mk)(backbone=L(_boom)(x=3)))
    with pytest.raises(InstantiationError, match=r"'model\.backbone'.*_boom.*bad x=3"):
        instantiate(cfg)
    with pytest.raises(InstantiationError, match=r"'head'.*no_such_thing"):
        instantiate({"head": L("torch.nn.no_such_thing")()})
    with pytest.raises(InstantiationError, match=r"'<root>'.*Linear.*unexpected keyword"):
        instantiate(L(torch.nn.Linear)(in_features=1, out_features=1, nonsense=2))
    # A node of a bigger config is named by its full key.
    root = DictConfig({"model": {"net": L(_boom)(x=1)}}, flags={"allow_objects": True})
    with pytest.raises(InstantiationError, match=r"'model\.net'"):
        instantiate(root.model)
    with pytest.raises(InstantiationError, match=r"'model\.net'.*missing"):
        instantiate(DictConfig({"model": {"net": L(_mk)(y="${missing}")}}, flags={"allow_objects": True}))


def test_instantiate_recursion_and_locate():
    cfg = DictConfig({"a": [L(_mk)(x=1), 2], "b": {"c": L(_mk)(y=[1, 2])}, "d": 3},
                     flags={"allow_objects": True})
    out = instantiate(cfg)
    assert out["a"][0] == {"x": 1} and out["b"]["c"] == {"y": [1, 2]} and out["d"] == 3
    plain = DictConfig({"p": 1})
    assert instantiate(plain) is plain
    assert locate("torch.nn.functional.relu") is torch.nn.functional.relu
    with pytest.raises(ImportError, match="no attribute"):
        locate("torch.nn.NoSuchLayer")


def test_saved_recipe_reloaded_with_overrides_stays_coherent(tmp_path):
    """A run's config.yaml reloaded with overrides: the evaluation folder follows ``train.output_dir``, the
    evaluator's dataset follows ``dataloader.test.dataset`` and the test mapper follows the train factor."""
    import os

    from softlabelseg.engine.defaults import save_config_file

    recipe = os.path.join(os.path.dirname(__file__), "..", "projects", "SoftLabelSeg", "configs", "toycity",
                          "tiny_soft.py")
    cfg = LazyConfig.load(recipe)
    LazyConfig.apply_overrides(cfg, [f"train.output_dir={tmp_path / 'run'}"])
    save_config_file(cfg, str(tmp_path / "run" / "config.yaml"))
    again = LazyConfig.load(str(tmp_path / "run" / "config.yaml"))
    assert again.dataloader.evaluator.output_dir == cfg.dataloader.evaluator.output_dir
    assert again.dataloader.test.mapper.factor == cfg.dataloader.train.mapper.factor == 0.125

    LazyConfig.apply_overrides(again, [
        f"train.output_dir={tmp_path / 'other'}",
        "dataloader.test.dataset=toycity_sem_seg_train",
        "dataloader.train.mapper.factor=0.25",
    ])
    assert again.dataloader.evaluator.output_dir == os.path.join(str(tmp_path / "other"), "inference")
    assert again.dataloader.evaluator.dataset_name == "toycity_sem_seg_train"
    assert again.dataloader.test.mapper.factor == 0.25
