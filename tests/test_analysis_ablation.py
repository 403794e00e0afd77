"""Ablation sweep: grid shape, per-point overrides, skip/resume, and the aggregated tables."""
import json
import os
import sys
from fractions import Fraction

import pytest
from softlabelseg.analysis.ablation import (
    RESULT_FILE,
    GridPoint,
    OverrideKeys,
    collect,
    make_grid,
    markdown_tables,
    parse_factor,
    plot_miou,
    run_point,
)

CLASSES = ["road", "pole"]


def _write_result(run_dir, miou, pole):
    os.makedirs(os.path.join(run_dir, "inference"), exist_ok=True)
    with open(os.path.join(run_dir, RESULT_FILE), "w") as f:
        json.dump({"metrics": {"mIoU": miou, "IoU-road": 90.0, "IoU-pole": pole}}, f)


def test_parse_factor():
    assert parse_factor("1/8") == Fraction(1, 8)
    assert parse_factor("0.25") == Fraction(1, 4)
    with pytest.raises(ValueError, match="must be in"):
        parse_factor("2")


def test_grid_runs_nearest_once_per_factor_and_seed():
    grid = make_grid(["nearest", "soft"], [Fraction(1, 4), Fraction(1, 8)], [True, False], [0, 1])
    assert len(grid) == 2 * 2 * (1 + 2)
    assert grid[0].factor == Fraction(1, 8)  # coarsest first
    names = {p.name for p in grid}
    assert len(names) == len(grid)
    assert "nearest_f1of8_s0" in names and "soft_nomc_f1of4_s1" in names
    assert {p.variant for p in grid} == {"nearest", "soft", "soft, MC off"}


def test_overrides_set_every_grid_key():
    p = GridPoint("soft", Fraction(1, 8), False, 3)
    ov = p.overrides(OverrideKeys(), "out/x")
    assert "dataloader.train.mapper.label_mode=soft" in ov
    assert "dataloader.train.mapper.factor=0.125" in ov
    assert "model.multi_class=False" in ov
    assert "train.output_dir=out/x" in ov
    assert "train.seed=3" in ov and "dataloader.train.seed=3" in ov


def test_run_point_skips_finished_and_resumes_interrupted(tmp_path):
    # A stand-in training script: records its argv and writes the result file.
    script = tmp_path / "fake_train.py"
    script.write_text(
        "import json, os, sys\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('train.output_dir=')][0]\n"
        "open(os.path.join(out, 'argv.json'), 'w').write(json.dumps(sys.argv))\n"
        "os.makedirs(os.path.join(out, 'inference'))\n"
        "res = os.path.join(out, 'inference', 'sem_seg_evaluation.json')\n"
        "json.dump({'metrics': {'mIoU': 50.0}}, open(res, 'w'))\n"
    )
    p = GridPoint("soft", Fraction(1, 8), True, 0)
    root = str(tmp_path / "sweep")
    os.makedirs(os.path.join(root, p.name))
    open(os.path.join(root, p.name, "last_checkpoint"), "w").write("model_0000099.pth")
    quiet = lambda s: None  # noqa: E731
    assert run_point(p, "cfg.py", root, ["train.max_iter=5"], OverrideKeys(), str(script), log=quiet) > 0
    argv = json.load(open(os.path.join(root, p.name, "argv.json")))
    assert "--resume" in argv and "train.max_iter=5" in argv and "--config-file" in argv
    os.remove(os.path.join(root, p.name, "argv.json"))
    assert run_point(p, "cfg.py", root, [], OverrideKeys(), str(script), log=lambda s: None) == 0
    assert not os.path.exists(os.path.join(root, p.name, "argv.json"))  # finished: not run again


def test_run_point_failure_names_the_log(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import sys\nprint('bad config key')\nsys.exit(3)\n")
    p = GridPoint("nearest", Fraction(1, 2), False, 0)
    with pytest.raises(RuntimeError, match="(?s)exit 3.*ablation_run.log.*bad config key"):
        run_point(p, "cfg.py", str(tmp_path), [], OverrideKeys(), str(script), log=lambda s: None)


def test_tables_aggregate_mean_and_std_over_seeds(tmp_path):
    grid = make_grid(["nearest", "soft"], [Fraction(1, 8)], [True], [0, 1])
    values = {"nearest": (40.0, 44.0), "soft": (60.0, 62.0)}
    for p in grid:
        _write_result(tmp_path / p.name, values[p.variant][p.seed], pole=10.0 * (p.seed + 1))
    results = collect(grid, str(tmp_path))
    assert len(results) == 4
    md = markdown_tables(results, CLASSES)
    assert "| nearest | 1/8 |" in md and "**42.0 ± 2.8**" in md and "**61.0 ± 1.4**" in md
    assert "15.0 ± 7.1" in md  # pole IoU over the two seeds
    table3 = md.split("Table 3")[1]
    assert "| 1/8 | 42.0 ± 2.8 | 61.0 ± 1.4 |" in table3
    plot_miou(results, str(tmp_path / "m.png"))
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_cli_aggregate_only_on_finished_runs(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
    import run_ablation

    root = tmp_path / "sweep"
    for p in make_grid(["nearest", "soft"], [Fraction(1, 8)], [True], [0]):
        _write_result(root / p.name, 50.0, 5.0)

    class _Meta:
        stuff_classes = CLASSES

    monkeypatch.setattr("softlabelseg.data.MetadataCatalog.get", lambda name: _Meta)
    cfg = "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"
    cfg = os.path.join(os.path.dirname(__file__), "..", cfg)
    rc = run_ablation.main(["--config-file", cfg, "--factors", "1/8", "--mc", "on", "--seeds", "0",
                            "--output", str(root), "--aggregate-only"])
    assert rc == 0
    assert "| soft | 1/8 |" in (root / "ablation.md").read_text()
