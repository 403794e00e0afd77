"""Your own data without code: a data file over a folder of images and a folder of label PNGs, on generated
folders. Pairing by stem (suffixes, nested folders), orphans, bad label values, the data file's own
errors, the class count against the recipe, and a run end to end through tools/lazyconfig_train_net.py
whose evaluation, overlays and export metadata carry the data file's classes and colours."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from softlabelseg.config import LazyConfig
from softlabelseg.data import (
    BadSampleError,
    DatasetCatalog,
    DatasetNotFoundError,
    MetadataCatalog,
    SoftLabelDatasetMapper,
    get_dataset_dicts,
)
from softlabelseg.data.datasets.data_file import DataFileError, read_data_file
from softlabelseg.data.datasets.folder import IMAGE_EXTENSIONS, load_folder_semantic

from tests.helpers.repo import CONFIGS, load_tool

CLASSES = ["road", "car", "person"]
RECIPE = os.path.join(CONFIGS, "toycity", "tiny_soft.py")


def write_pair(images, labels, stem, size=(24, 32), values=(0, 1, 2, 255), image_ext=".jpg",
               label_ext=".png", seed=0):
    """An RGB image and a label PNG of ``size`` whose values cycle through ``values`` in horizontal bands."""
    rng = np.random.default_rng(seed)
    h, w = size
    for folder, name in ((images, stem + image_ext), (labels, stem + label_ext)):
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(os.path.join(images, stem + image_ext))
    label = np.array(values, np.uint8)[(np.arange(h) * len(values) // h)][:, None].repeat(w, 1)
    Image.fromarray(label).save(os.path.join(labels, stem + label_ext))
    return label


def write_data_file(root, text):
    path = root / "data.yaml"
    path.write_text(text)
    return str(path)


def standard_file(root, extra=""):
    return write_data_file(root, f"classes: {json.dumps(CLASSES)}\n{extra}"
                           "train: {images: images/train, labels: labels/train}\n"
                           "val: {images: images/val, labels: labels/val}\n")


@pytest.fixture
def mine(tmp_path):
    """train: 4 images (one in a sub-folder); val: 2 images of different sizes; a notes file among them."""
    for i, stem in enumerate(["a", "b", "c", "city/d"]):
        write_pair(tmp_path / "images/train", tmp_path / "labels/train", stem, seed=i)
    write_pair(tmp_path / "images/val", tmp_path / "labels/val", "v0", size=(40, 56), seed=7)
    write_pair(tmp_path / "images/val", tmp_path / "labels/val", "v1", size=(48, 32), values=(2, 1, 255, 0),
               seed=8)
    (tmp_path / "images/train/notes.txt").write_text("not an image")
    return tmp_path


def test_pairs_match_by_stem_in_nested_folders_with_each_image_size(mine):
    name = f"folder:{standard_file(mine)}:train"
    records = DatasetCatalog.get(name)
    assert [r["image_id"] for r in records] == ["a", "b", "c", "city/d"]
    assert records[3]["file_name"].endswith(os.path.join("images", "train", "city", "d.jpg"))
    assert records[3]["sem_seg_file_name"].endswith(os.path.join("labels", "train", "city", "d.png"))
    val = DatasetCatalog.get(name.replace(":train", ":val"))
    assert [(r["height"], r["width"]) for r in val] == [(40, 56), (48, 32)]
    meta = MetadataCatalog.get(name)
    assert meta.stuff_classes == CLASSES and meta.num_classes == 3 and meta.ignore_label == 255
    assert meta.evaluation_resolution is None and meta.evaluator_type == "sem_seg"


def test_orphans_on_both_sides_are_counted_and_the_first_named(mine):
    for i in range(7):
        Image.new("RGB", (8, 8)).save(mine / f"images/train/lonely{i}.png")
    Image.new("L", (8, 8)).save(mine / "labels/train/city/no_image.png")
    with pytest.raises(BadSampleError) as err:
        load_folder_semantic(mine / "images/train", mine / "labels/train")
    msg = str(err.value)
    assert "7 image(s) without a label" in msg and "lonely0.png, lonely1.png" in msg and "and 2 more" in msg
    assert "lonely6.png" not in msg
    assert "1 label(s) without an image" in msg and "city/no_image.png" in msg
    assert f"looked for {mine / 'labels/train'}/<stem>.png" in msg


def test_orphans_are_left_out_with_skip_bad_samples(mine, caplog):
    Image.new("RGB", (8, 8)).save(mine / "images/train/lonely.png")
    name = f"folder:{standard_file(mine)}:train"
    with pytest.raises(BadSampleError, match="1 image"):
        get_dataset_dicts(name)
    with caplog.at_level("WARNING"):
        records = get_dataset_dicts(name, skip_bad=True)
    assert [r["image_id"] for r in records] == ["a", "b", "c", "city/d"]
    assert "lonely.png" in caplog.text


def test_suffixes_pair_cityscapes_style_names_and_a_split_may_set_its_own(tmp_path):
    imgs, labs = tmp_path / "left", tmp_path / "gt"
    for stem in ("aachen/aachen_0_1", "bonn/bonn_0_2"):
        write_pair(imgs, labs, stem, image_ext="_leftImg8bit.png", label_ext="_gtFine_labelTrainIds.png")
        Image.new("RGB", (32, 24)).save(labs / f"{stem}_gtFine_color.png")  # another suffix: not a label
    write_pair(tmp_path / "vi", tmp_path / "vl", "x", image_ext=".jpeg", label_ext="_mask.png")
    path = write_data_file(tmp_path, f"classes: {json.dumps(CLASSES)}\nimage_suffix: _leftImg8bit.png\n"
                           "label_suffix: _gtFine_labelTrainIds.png\ntrain: {images: left, labels: gt}\n"
                           "val: {images: vi, labels: vl, image_suffix: .jpeg, label_suffix: _mask.png}\n")
    train = DatasetCatalog.get(f"folder:{path}:train")
    assert [r["image_id"] for r in train] == ["aachen/aachen_0_1", "bonn/bonn_0_2"]
    assert all(r["sem_seg_file_name"].endswith("_gtFine_labelTrainIds.png") for r in train)
    assert [r["image_id"] for r in DatasetCatalog.get(f"folder:{path}:val")] == ["x"]
    # without the suffixes the same folders do not pair, and the error says which setting to look at
    with pytest.raises(BadSampleError, match="image_suffix / label_suffix"):
        load_folder_semantic(imgs, labs)


def test_two_images_of_one_stem_are_an_error(mine):
    Image.new("RGB", (32, 24)).save(mine / "images/train/a.png")
    with pytest.raises(BadSampleError, match="same stem 'a'"):
        load_folder_semantic(mine / "images/train", mine / "labels/train")
    assert len(load_folder_semantic(mine / "images/train", mine / "labels/train", image_suffix=".jpg")) == 4


def test_bad_label_values_name_the_file_and_the_values(mine):
    write_pair(mine / "images/train", mine / "labels/train", "b", values=(0, 7, 255, 3))
    name = f"folder:{standard_file(mine)}:train"
    mapper = SoftLabelDatasetMapper(True, num_classes=3, factor=0.5)
    bad = next(r for r in DatasetCatalog.get(name) if r["image_id"] == "b")
    with pytest.raises(BadSampleError) as err:
        mapper(bad, np.random.default_rng(0))
    assert err.value.path.endswith(os.path.join("labels", "train", "b.png"))
    assert "label values [3, 7] are neither a class id in [0, 3) nor the ignore value 255" in str(err.value)


def test_another_ignore_value_becomes_255_and_others_are_refused(tmp_path):
    write_pair(tmp_path / "i", tmp_path / "l", "ok", values=(0, 2, 9))
    write_pair(tmp_path / "i", tmp_path / "l", "zz_bad", values=(0, 255))
    path = write_data_file(tmp_path, f"classes: {json.dumps(CLASSES)}\nignore_value: 9\n"
                           "train: {images: i, labels: l}\n")
    records = DatasetCatalog.get(f"folder:{path}:train")
    mapper = SoftLabelDatasetMapper(False, num_classes=3)
    assert set(np.unique(mapper(records[0])["sem_seg"].numpy())) == {0, 2, 255}
    with pytest.raises(BadSampleError, match=r"raw label values \[255\]"):
        mapper(records[1])
    assert "9 -> 255" in MetadataCatalog.get(f"folder:{path}:train").label_mapping


def test_colours_given_or_generated_and_classes_from_a_text_file(mine):
    given = standard_file(mine, "colors: [[1, 2, 3], '#ff8000', [0, 0, 0]]\n")
    assert read_data_file(given).colors == ((1, 2, 3), (255, 128, 0), (0, 0, 0))
    (mine / "names.txt").write_text("\n".join(f"class {i}" for i in range(12)) + "\n\n")
    spec = read_data_file(write_data_file(mine, "classes: names.txt\ntrain: {images: images/train, "
                                          "labels: labels/train}\n"))
    assert spec.classes[11] == "class 11" and len(spec.classes) == 12
    assert len(set(spec.colors)) == 12 and all(len(c) == 3 for c in spec.colors)


@pytest.mark.parametrize("text, message", [
    ("train: {images: a, labels: b}\n", "has no classes"),
    ("classes: []\ntrain: {images: a, labels: b}\n", "non-empty list"),
    ("classes: [a, b, a]\ntrain: {images: a, labels: b}\n", "'a' listed more than once"),
    ("classes: [a, b]\nclases: [a]\ntrain: {images: a, labels: b}\n", "did you mean 'classes'"),
    ("classes: [a, b]\ntrain: {images: a, label: b}\n", r"'label' in split 'train' \(did you mean 'labels'"),
    ("classes: [a, b]\ntrain: {images: a}\n", "train.labels: expected a folder"),
    ("classes: [a, b]\ncolors: [[1, 2, 3]]\ntrain: {images: a, labels: b}\n", r"per class \(2\), got 1"),
    ("classes: [a, b]\ncolors: [[1, 2, 3], [1, 2, 300]]\ntrain: {images: a, labels: b}\n", r"colors\[1\]"),
    ("classes: [a, b]\nignore_value: 1\ntrain: {images: a, labels: b}\n", r"in \[2, 255\]"),
    ("classes: [a, b]\n", "names no split"),
    ("classes: [a\n", "cannot be read as YAML"),
])
def test_data_file_mistakes_name_the_key(tmp_path, text, message):
    with pytest.raises(DataFileError, match=message):
        read_data_file(write_data_file(tmp_path, text))


def test_missing_data_file_folder_or_split_is_named(mine):
    with pytest.raises(DatasetNotFoundError, match="the data file .*nope.yaml"):
        "folder:nope.yaml:train" in DatasetCatalog  # noqa: B015 (the look-up registers or raises)
    path = standard_file(mine)
    with pytest.raises(DataFileError, match="has no split 'test'.*its splits: train, val"):
        DatasetCatalog.get(f"folder:{path}:test")
    with pytest.raises(KeyError, match="expected folder:<data file>:<split>"):
        DatasetCatalog.get(f"folder:{path}")
    os.rename(mine / "labels/val", mine / "labels/validation")
    with pytest.raises(DatasetNotFoundError, match="the labels folder .*labels/val' does not exist"):
        DatasetCatalog.get(f"folder:{path}:val")


def test_image_extensions_are_those_of_the_other_folder_tools():
    from softlabelseg.folder_contract import IMAGE_EXTENSIONS as FOLDER_TOOLS

    assert IMAGE_EXTENSIONS is FOLDER_TOOLS


def folder_overrides(path, out, num_classes=3):
    return [f"dataloader.train.dataset=folder:{path}:train", f"dataloader.test.dataset=folder:{path}:val",
            f"model.num_classes={num_classes}", f"dataloader.train.mapper.num_classes={num_classes}",
            "dataloader.train.mapper.factor=0.5", "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0", "train.max_iter=3", "train.checkpointer.period=3",
            "train.log_period=1", "train.calibration.enabled=False", f"train.output_dir={out}"]


def test_a_class_count_that_differs_from_the_data_file_stops_before_the_run_folder(mine, tmp_path, capsys):
    tool = load_tool("lazyconfig_train_net")
    path, out = standard_file(mine), tmp_path / "run"
    args = folder_overrides(path, out)
    args[2:4] = ["model.num_classes=19"]  # the recipe's mapper keeps 19 too
    assert tool.console_main(["--config-file", RECIPE, *args]) in (1, 2)  # a bad-input exit code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"has 3 classes ({path})" in err
    assert "model.num_classes=19, dataloader.train.mapper.num_classes=19" in err
    assert "add the override(s) model.num_classes=3 dataloader.train.mapper.num_classes=3" in err
    assert not out.exists()


def test_a_bad_value_in_the_val_labels_stops_before_training(mine, tmp_path, capsys):
    write_pair(mine / "images/val", mine / "labels/val", "v1", size=(48, 32), values=(0, 3))
    out = tmp_path / "run"
    tool = load_tool("lazyconfig_train_net")
    assert tool.console_main(["--config-file", RECIPE, *folder_overrides(standard_file(mine), out)]) in (1, 2)
    err = capsys.readouterr().err
    assert "v1.png: label values [3] are neither a class id in [0, 3)" in err and not out.exists()


def test_trains_and_evaluates_end_to_end_from_a_data_file(mine, tmp_path):
    """tiny_soft.py with overrides only: 3 iterations on the folder, evaluation on each val label at its
    own size with the data file's class names, overlays in its colours, the export metadata likewise."""
    path = standard_file(mine, "colors: [[128, 64, 128], [0, 0, 142], [220, 20, 60]]\n")
    out = tmp_path / "run"
    tool = load_tool("lazyconfig_train_net")
    assert tool.console_main(["--config-file", RECIPE, *folder_overrides(path, out)]) == 0
    assert (out / "model_final.pth").is_file()
    res = json.loads((out / "inference" / "sem_seg_evaluation.json").read_text())
    assert res["dataset"] == f"folder:{path}:val" and res["class_names"] == CLASSES
    labels = [np.asarray(Image.open(mine / f"labels/val/{s}.png")) for s in ("v0", "v1")]
    assert sum(map(sum, res["confusion_matrix"])) == sum(int((x != 255).sum()) for x in labels)
    overlays = sorted(os.listdir(out / "inference" / "overlays"))
    assert overlays == ["v0.png", "v1.png"]
    assert Image.open(out / "inference" / "overlays" / "v1.png").size == (32, 48)

    from softlabelseg.config import instantiate

    from export.recipe import recipe_metadata

    cfg = LazyConfig.load(str(out / "config.yaml"))
    meta = recipe_metadata(cfg, instantiate(cfg.model))
    assert meta.class_names == CLASSES and meta.class_colors == [[128, 64, 128], [0, 0, 142], [220, 20, 60]]
    assert meta.ignore_value == 255


def test_the_manual_s_data_file_and_command_work_as_written(tmp_path):
    """docs/datasets.md (Your own data): its data file parses, and its command's recipe takes its overrides
    with a class count that matches that file."""
    import re
    import shlex

    from softlabelseg.data.datasets.data_file import folder_class_mismatch

    from tests.helpers.repo import REPO

    page = open(os.path.join(REPO, "docs", "datasets.md"), encoding="utf-8").read()
    section = page[page.index("## Your own data"):]
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "data.yaml").write_text(yaml_text)
    spec = read_data_file(tmp_path / "data.yaml")
    assert len(spec.classes) == len(spec.colors) == 5 and set(spec.splits) == {"train", "val"}
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    words = shlex.split(command)
    recipe = words[words.index("--config-file") + 1]
    overrides = [w.replace("/data/mydata", str(tmp_path)) for w in words if "=" in w]
    for split in ("train", "val"):
        os.makedirs(tmp_path / "images" / split)
        os.makedirs(tmp_path / "labels" / split)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(REPO, recipe)), overrides)
    assert cfg.dataloader.test.dataset == f"folder:{tmp_path}/data.yaml:val"
    assert folder_class_mismatch(cfg) is None
    assert "has 5 classes" in folder_class_mismatch(LazyConfig.apply_overrides(cfg, ["model.num_classes=11"]))
    # the test mapper's count refers to the train mapper's: that is the override to name, --eval-only too
    cfg = LazyConfig.apply_overrides(cfg, ["model.num_classes=5", "dataloader.train.mapper.num_classes=11"])
    message = folder_class_mismatch(cfg, eval_only=True)
    assert "dataloader.test.mapper.num_classes=11" in message
    assert message.endswith("add the override(s) dataloader.train.mapper.num_classes=5")
