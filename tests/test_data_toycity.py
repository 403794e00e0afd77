"""ToyCity generator: Cityscapes layout and naming, determinism, label/colour table, first-use generation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from softlabelseg.data import (
    DatasetCatalog,
    MetadataCatalog,
    ToyCityParams,
    ensure_toycity,
    generate_toycity,
    read_sem_seg,
)
from softlabelseg.data.datasets import load_toycity_semantic
from softlabelseg.data.datasets.builtin_meta import CITYSCAPES_CLASSES, CITYSCAPES_COLORS
from softlabelseg.data.toycity.generator import (
    GENERATOR_VERSION,
    MARKER,
    TOYCITY_SIZES,
    WORKERS_ENV,
    generation_workers,
)
from softlabelseg.data.toycity.scene import SCENE_STYLES, _annotation_error, render_scene

SMALL = ToyCityParams(height=64, width=128, num_train=4, num_val=2, seed=3, supersample=2)


def _arrays(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in folder.rglob("*.png")}


def test_layout_naming_and_colour_table(tmp_path):
    out = generate_toycity(tmp_path / "toycity", SMALL)
    marker = json.loads((out / MARKER).read_text())
    assert marker["generator_version"] == GENERATOR_VERSION and marker["params"]["num_train"] == 4
    assert marker["classes"] == CITYSCAPES_CLASSES and len(marker["colors"]) == 19
    for split, n in (("train", 4), ("val", 2)):
        recs = load_toycity_semantic(tmp_path, split, SMALL)
        assert len(recs) == n
        for r in recs:
            assert r["file_name"].endswith("_leftImg8bit.png") and f"/leftImg8bit/{split}/" in r["file_name"]
            assert r["sem_seg_file_name"].endswith("_gtFine_labelTrainIds.png")
            assert (r["height"], r["width"]) == (64, 128)
            img = np.asarray(Image.open(r["file_name"]))
            assert img.shape == (64, 128, 3) and img.dtype == np.uint8 and img.std() > 10
            lab = read_sem_seg(r, 19)  # raises on values outside 0..18 / 255
            color = np.asarray(Image.open(r["sem_seg_file_name"].replace("labelTrainIds", "color")))
            lut = np.zeros((256, 3), np.uint8)
            lut[:19] = CITYSCAPES_COLORS
            np.testing.assert_array_equal(color, lut[lab])


def test_deterministic(tmp_path):
    a = _arrays(generate_toycity(tmp_path / "a", SMALL))
    b = _arrays(generate_toycity(tmp_path / "b", SMALL))
    assert a.keys() == b.keys() and len(a) == 18
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = _arrays(generate_toycity(tmp_path / "c", ToyCityParams(**{**SMALL.__dict__, "seed": 4})))
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_worker_processes_write_the_same_files(tmp_path):
    """Scenes rendered by 2 processes are byte for byte those of one process, marker included."""
    one = generate_toycity(tmp_path / "one", SMALL, workers=1)
    two = generate_toycity(tmp_path / "two", SMALL, workers=2)
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert len(files) == 19 and files == sorted(p.relative_to(two).as_posix() for p in two.rglob("*")
                                                 if p.is_file())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_generation_workers_rule(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert generation_workers() == 1 and generation_workers(3) == 3  # one process unless asked
    monkeypatch.setenv(WORKERS_ENV, "5")
    assert generation_workers() == 5 and generation_workers(2) == 2  # an argument beats the variable
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ValueError, match=WORKERS_ENV):
        generation_workers()
    with pytest.raises(ValueError, match="at least 1 worker"):
        generation_workers(0)


def _dying_render(out_dir, params, split_idx, split, i):
    """Kills a spawned worker outright; in the calling process it renders a stand-in file."""
    import multiprocessing
    import os

    if multiprocessing.parent_process() is not None:
        os._exit(3)
    (out_dir / f"{split}_{i}.done").touch()


def test_dead_worker_falls_back_to_one_process(tmp_path, monkeypatch, caplog):
    import softlabelseg.data.toycity.generator as gen

    monkeypatch.setattr(gen, "_render_to", _dying_render)
    out = generate_toycity(tmp_path / "set", SMALL, workers=2)
    assert len(list(out.glob("*.done"))) == 6 and (out / MARKER).is_file()
    assert "rendering the 6 scenes in this process" in caplog.text


def _failing_render(out_dir, params, split_idx, split, i):
    """Stands in for the generator's per-scene job (top level, so a spawned worker can import it): the first
    scene fails, the others leave a file behind."""
    if (split, i) == ("train", 0):
        raise RuntimeError(f"scene {split}/{i} exploded")
    import time

    time.sleep(0.5)
    (out_dir / f"{split}_{i}.done").touch()


def test_worker_error_reaches_the_caller(tmp_path, monkeypatch):
    """A scene that fails in a worker process fails the generation, and ensure leaves no folder behind."""
    import softlabelseg.data.toycity.generator as gen

    monkeypatch.setattr(gen, "_render_to", _failing_render)
    many = ToyCityParams(**{**SMALL.__dict__, "num_train": 40})
    out = tmp_path / "direct"
    with pytest.raises(RuntimeError, match="exploded"):
        generate_toycity(out, many, workers=2)
    assert len(list(out.glob("*.done"))) < 41  # the scenes queued behind the failure were cancelled
    assert not (out / MARKER).exists()
    with pytest.raises(RuntimeError, match="exploded"):
        ensure_toycity(tmp_path, SMALL, workers=2)
    assert not (tmp_path / SMALL.folder).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{SMALL.folder}-tmp-")]


def test_ensure_generates_once_and_replaces_stale(tmp_path):
    out = ensure_toycity(tmp_path, SMALL)
    stamp = (out / MARKER).stat().st_mtime_ns
    assert ensure_toycity(tmp_path, SMALL) == out and (out / MARKER).stat().st_mtime_ns == stamp
    bigger = ToyCityParams(**{**SMALL.__dict__, "num_val": 3})
    ensure_toycity(tmp_path, bigger)
    assert len(load_toycity_semantic(tmp_path, "val", bigger)) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["toycity_64x128"]
    assert SMALL.folder == "toycity_64x128" and ToyCityParams().folder == "toycity"


def test_ensure_refuses_foreign_folder(tmp_path):
    (tmp_path / SMALL.folder).mkdir()
    (tmp_path / SMALL.folder / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not a generated ToyCity"):
        ensure_toycity(tmp_path, SMALL)


def test_scenes_have_thin_structures_and_vary():
    """Default-size scenes: poles a few pixels wide, small things present, layouts differ."""
    widths, present, labels = [], set(), []
    for i in range(3):
        _, lab = render_scene(np.random.default_rng([7, i]), 256, 512)
        labels.append(lab)
        present |= set(np.unique(lab).tolist())
        pole = np.pad(lab == 5, ((0, 0), (1, 1)))
        edges = np.diff(pole.astype(np.int8), axis=1)
        starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
        widths += (ends[1] - starts[1]).tolist()  # row-wise run lengths of pole pixels
    assert {0, 1, 2, 5, 8, 10, 11, 13} <= present
    assert np.median(widths) <= 4  # thin: nearest-neighbour at 1/8 keeps 1 column in 8
    assert np.mean(labels[0] != labels[1]) > 0.2


@pytest.mark.slow
def test_default_set_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTLABELSEG_DATASETS", str(tmp_path))
    recs = DatasetCatalog.get("toycity_sem_seg_train")
    assert len(recs) == 240 and len(DatasetCatalog.get("toycity_sem_seg_val")) == 48


def test_larger_sizes_render_the_same_scenes_and_register():
    """Objects are sized in metres: the 2x rendering, brought back to 1x, is the same scene."""
    _, small = render_scene(np.random.default_rng([5, 1]), 128, 256, 4)
    _, large = render_scene(np.random.default_rng([5, 1]), 256, 512, 2)
    centres = large[1::2, 1::2]  # the 2x pixel under each 1x pixel's centre
    assert (centres == small).mean() > 0.9
    for h, w in TOYCITY_SIZES:
        name = "toycity_sem_seg_val" if (h, w) == (256, 512) else f"toycity_{h}x{w}_sem_seg_val"
        assert name in DatasetCatalog
        assert tuple(MetadataCatalog.get(name).evaluation_resolution) == (h, w)
    assert ToyCityParams(height=1024, width=2048).supersample == 2
    with pytest.raises(ValueError, match="at least"):
        ToyCityParams(height=32, width=64)
    with pytest.raises(ValueError, match="supersample"):
        ToyCityParams(supersample=0)
    with pytest.raises(ValueError, match="seed"):
        ToyCityParams(seed=-1)


def test_cluttered_scenes_are_denser_and_registered(tmp_path):
    """More thin-class pixels and more 4 x 4 cells holding several classes than the clean scenes of the same
    seeds; own folder, marker and dataset names."""
    thin = [4, 5, 6, 7, 11, 18]  # fence, pole, traffic light, traffic sign, person, bicycle
    share, mixed = {}, {}
    for style in SCENE_STYLES:
        labels = np.stack([render_scene(np.random.default_rng([11, i]), 128, 256, 4, style)[1]
                           for i in range(6)])
        share[style] = np.isin(labels, thin).mean()
        cells = labels.reshape(6, 32, 4, 64, 4).transpose(0, 1, 3, 2, 4).reshape(6, 32, 64, 16)
        mixed[style] = (cells != cells[..., :1]).any(-1).mean()
    assert share["cluttered"] > 1.05 * share["clean"] and mixed["cluttered"] > 1.1 * mixed["clean"]
    cluttered = ToyCityParams(**{**SMALL.__dict__, "scene": "cluttered"})
    out = generate_toycity(tmp_path / cluttered.folder, cluttered)
    assert cluttered.folder == "toycity_64x128_cluttered"
    assert json.loads((out / MARKER).read_text())["params"]["scene"] == "cluttered"
    clean = generate_toycity(tmp_path / "clean", SMALL)  # clean markers keep the fields they always had
    assert "scene" not in json.loads((clean / MARKER).read_text())["params"]
    assert ToyCityParams(scene="cluttered").folder == "toycity_cluttered"
    for h, w in TOYCITY_SIZES:
        size = "" if (h, w) == (256, 512) else f"_{h}x{w}"
        name = f"toycity{size}_cluttered_sem_seg_val"
        assert tuple(MetadataCatalog.get(name).evaluation_resolution) == (h, w)
    with pytest.raises(ValueError, match="cluttered"):
        ToyCityParams(scene="busy")
    with pytest.raises(ValueError, match="clean"):
        render_scene(np.random.default_rng(0), 64, 128, 2, "busy")


def test_annotation_error_moves_boundaries_smoothly_by_its_rms():
    """A vertical class edge, displaced: per-row offsets have the requested RMS, vary smoothly along the
    edge, and no class value is invented."""
    label = np.zeros((2048, 512), np.uint8)
    label[:, 256:] = 7
    moved = _annotation_error(label, np.random.default_rng(0), rms=3.0, correlation=64.0)
    assert set(np.unique(moved).tolist()) == {0, 7}
    offsets = np.argmax(moved == 7, axis=1).astype(float) - 256
    assert 2.0 < np.sqrt(np.mean(offsets ** 2)) < 4.0
    assert np.corrcoef(offsets[:-8], offsets[8:])[0, 1] > 0.7  # neighbours 8 rows apart move together
    still = _annotation_error(label, np.random.default_rng(0), rms=0.0, correlation=64.0)
    np.testing.assert_array_equal(still, label)


def test_a_toycity_path_that_cannot_become_a_folder_is_named_before_rendering(tmp_path):
    from softlabelseg.data import DatasetNotFoundError
    from softlabelseg.data.toycity import ensure_toycity

    (tmp_path / "toycity").symlink_to("toycity")  # links to itself
    with pytest.raises(DatasetNotFoundError, match="symbolic link that leads nowhere"):
        ensure_toycity(tmp_path, ToyCityParams(num_train=1, num_val=1))
    (tmp_path / "toycity").unlink()
    (tmp_path / "toycity").write_text("a file")
    with pytest.raises(DatasetNotFoundError, match="is a file"):
        ensure_toycity(tmp_path, ToyCityParams(num_train=1, num_val=1))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".toycity-tmp")]  # nothing rendered
